#pragma once
// The few settings each module reads, cut from the gateway configuration in one place, so modules
// below app/ never see the whole config.
#include <string>

#include "config/gateway_config.hpp"
#include "ingest/ingest_service.hpp"
#include "ingest/record_pipeline.hpp"

namespace gw::app {

/// The configured clinics, programs and partner ids, as the record pipeline reads them.
ingest::PipelineSettings pipelineSettings(const config::GatewayConfig& config);

/// Everything ingest reads: clinics, partners, the disclosure policy, private folders.
ingest::IngestSettings ingestSettings(const config::GatewayConfig& config, std::string record_key_secret);

/// Where the configured rule set's files are (mapping.format_dir, profiles_dir, csv_mappers_dir).
ingest::RuleSetPaths ruleSetPaths(const config::GatewayConfig& config);

/// Loads the configured rule set and logs what it holds.
Result<std::shared_ptr<const ingest::RuleSet>> loadConfiguredRuleSet(const config::GatewayConfig& config);

}  // namespace gw::app

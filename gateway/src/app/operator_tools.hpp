#pragma once
// `fhir-gateway outbox ...` and `fhir-gateway records reprocess`: the operations of
// app/operations.hpp run straight on the configured database (the gateway may be running: its
// workers pick up what is queued or resumed within their poll interval). The operator running
// them has the config file and the database, so they cover every clinic; `--clinic` narrows.
#include <map>
#include <string>
#include <string_view>

#include "app/operations.hpp"
#include "config/gateway_config.hpp"

namespace gw::app {

/// The CLI's actor in the audit log: --operator NAME, else the OS user ("cli:<user>").
std::string cliOperator(std::string_view given);

/// outbox list: the same parameters and JSON as GET /v1/outbox; logged (outbox-list) as the operator.
Result<std::string> outboxListCommand(const config::GatewayConfig& config, const std::map<std::string, std::string>& params,
                                      const std::string& actor);
/// outbox replay: one item, or the dead items of a partner (optionally of a clinic, older than an age).
Result<ReplayResult> outboxReplayCommand(const config::GatewayConfig& config, ReplayFilter filter,
                                         std::string_view older_than, const std::string& actor);
/// outbox pause | resume PARTNER
Status partnerPauseCommand(const config::GatewayConfig& config, std::string_view partner, bool paused,
                           std::string_view reason, const std::string& actor);
/// outbox status: per configured partner its counts by state and whether it is paused (JSON).
Result<std::string> outboxStatusCommand(const config::GatewayConfig& config);
/// records reprocess --state invalid|unmapped [--record-type T] [--dry-run]
Result<ReprocessResult> reprocessCommand(const config::GatewayConfig& config, const ReprocessOptions& options,
                                         const std::string& actor, const ProgressFn& progress);

}  // namespace gw::app

#include "app/settings.hpp"

#include "common/log.hpp"

namespace gw::app {

ingest::PipelineSettings pipelineSettings(const config::GatewayConfig& config) {
  ingest::PipelineSettings settings;
  settings.clinics = config.clinics;
  for (const auto& partner : config.partners) settings.partner_ids.push_back(partner.id);
  return settings;
}

ingest::IngestSettings ingestSettings(const config::GatewayConfig& config, std::string record_key_secret) {
  ingest::IngestSettings settings;
  settings.pipeline = pipelineSettings(config);
  settings.partners = config.partners;
  settings.policy = {config.privacy.part2_notice, config.privacy.policy_version};
  settings.record_key_secret = std::move(record_key_secret);
  settings.private_dirs = {config.mapping.format_dir, config.mapping.csv_mappers_dir};
  return settings;
}

ingest::RuleSetPaths ruleSetPaths(const config::GatewayConfig& config) {
  return {config.mapping.format_dir, config.mapping.profiles_dir, config.mapping.csv_mappers_dir};
}

Result<std::shared_ptr<const ingest::RuleSet>> loadConfiguredRuleSet(const config::GatewayConfig& config) {
  GW_TRY(auto rules, ingest::loadRuleSet(ruleSetPaths(config)));
  const auto stats = rules->classifier->stats();
  GW_LOG(Info, Mapping, "rules_loaded")
      .kv("schemas", rules->schemas->recordTypes().size())
      .kv("mappers", rules->mappers->recordTypes().size())
      .kv("profiles", rules->profiles->profileUrls().size())
      .kv("csv_mappers", rules->csv_mappers->names().size())
      .kv("sensitivity_codes", stats.codes)
      .kv("unverified_codes", stats.unverified);
  return rules;
}

}  // namespace gw::app

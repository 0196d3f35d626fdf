#include "app/operator_tools.hpp"

#include <pwd.h>
#include <unistd.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "app/consent_registry_loader.hpp"
#include "app/keys.hpp"
#include "app/settings.hpp"
#include "common/json.hpp"
#include "ingest/group_committer.hpp"
#include "ingest/input_format.hpp"

namespace gw::app {
namespace {

// The store and the consents, as the gateway would load them.
struct Opened {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<consent::ConsentRegistry> registry;
};

Result<Opened> openForOperator(const config::GatewayConfig& config) {
  Opened o;
  GW_TRY(o.store, openConfiguredStore(config, 2));
  o.registry = std::make_unique<consent::ConsentRegistry>(clinicZones(config));
  GW_TRY(auto unreconciled, loadConsentRegistry(*o.store, *o.registry));
  (void)unreconciled;  // settled by the gateway at its next start
  return o;
}

OperatorContext contextOf(const config::GatewayConfig& config, Opened& o, const std::string& actor) {
  return OperatorContext{*o.store, *o.registry, config.privacy.policy_version, actor, {"*"}, SystemClock().now()};
}

Status knownPartner(const config::GatewayConfig& config, std::string_view partner) {
  if (partner.empty() || config.findPartner(partner) != nullptr) return ok();
  std::string known;
  for (const auto& p : config.partners) known += (known.empty() ? "" : ", ") + p.id;
  return makeError(ErrorCode::NotFound, "no partner '" + std::string(partner) + "' in the configuration", "partner",
                   known.empty() ? "the configuration has no partners" : "configured partners: " + known);
}

}  // namespace

std::string cliOperator(std::string_view given) {
  if (!given.empty()) return std::string(given);
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_name != nullptr) {
    return "cli:" + std::string(pw->pw_name);
  }
  return "cli:uid-" + std::to_string(::geteuid());
}

Result<std::string> outboxListCommand(const config::GatewayConfig& config, const std::map<std::string, std::string>& params,
                                      const std::string& actor) {
  GW_TRY(auto query, parseOutboxQuery(params, {"*"}, SystemClock().now()));
  GW_TRY(knownPartner(config, query.partner_id));
  GW_TRY(auto store, openConfiguredStore(config, 2));
  GW_TRY(auto page, store->listOutbox(query));
  GW_TRY(store->appendAudit({outboxListEntry(query, page.items.size(), actor, SystemClock().now())}));
  return outboxPageJson(page);
}

Result<ReplayResult> outboxReplayCommand(const config::GatewayConfig& config, ReplayFilter filter,
                                         std::string_view older_than, const std::string& actor) {
  GW_TRY(knownPartner(config, filter.partner_id));
  if (!older_than.empty()) {
    GW_TRY(auto q, parseOutboxQuery({{"older_than", std::string(older_than)}}, {"*"}, SystemClock().now()));
    filter.created_before_ms = q.created_before_ms;
  }
  GW_TRY(auto opened, openForOperator(config));
  return replayDead(contextOf(config, opened, actor), filter);
}

Status partnerPauseCommand(const config::GatewayConfig& config, std::string_view partner, bool paused,
                           std::string_view reason, const std::string& actor) {
  if (partner.empty()) {
    return makeError(ErrorCode::BadRequest, "no partner named", "partner", "outbox pause|resume PARTNER_ID");
  }
  GW_TRY(knownPartner(config, partner));
  GW_TRY(auto opened, openForOperator(config));
  return setPartnerPaused(contextOf(config, opened, actor), partner, paused, reason);
}

Result<std::string> outboxStatusCommand(const config::GatewayConfig& config) {
  GW_TRY(auto store, openConfiguredStore(config, 2));
  GW_TRY(auto pauses, store->partnerPauses());
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("partners");
  w.StartArray();
  for (const auto& p : config.partners) {
    GW_TRY(auto counts, store->outboxCounts(p.id));
    w.StartObject();
    w.Key("partner");
    json::writeString(w, p.id);
    const store::PartnerPause* pause = nullptr;
    for (const auto& x : pauses) pause = x.partner_id == p.id ? &x : pause;
    w.Key("paused");
    w.Bool(pause != nullptr);
    if (pause != nullptr) {
      w.Key("paused_at");
      json::writeString(w, formatRfc3339(fromUnixMillis(pause->paused_at_ms)));
      w.Key("paused_by");
      json::writeString(w, pause->actor);
      w.Key("reason");
      json::writeString(w, pause->reason);
    }
    for (const auto& [name, n] : {std::pair<const char*, std::int64_t>{"queued", counts.queued},
                                  {"retrying", counts.retrying},
                                  {"delivered", counts.delivered},
                                  {"dead", counts.dead},
                                  {"superseded", counts.superseded},
                                  {"cancelled", counts.cancelled}}) {
      w.Key(name);
      w.Int64(n);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

Result<ReprocessResult> reprocessCommand(const config::GatewayConfig& config, const ReprocessOptions& options,
                                         const std::string& actor, const ProgressFn& progress) {
  GW_TRY(auto rules, loadConfiguredRuleSet(config));
  GW_TRY(auto opened, openForOperator(config));
  const auto ctx = contextOf(config, opened, actor);
  ReprocessParts parts;
  parts.dry_rules = rules;
  parts.dry_settings = pipelineSettings(config);
  if (options.dry_run) return reprocessRecords(ctx, parts, options, progress);
  GW_TRY(auto record_key_secret, opened.store->deploymentSecret("record-key"));
  const auto settings = ingestSettings(config, std::move(record_key_secret));
  const auto formats = ingest::InputFormatRegistry::builtins();
  SystemClock clock;
  Result<ReprocessResult> result = ReprocessResult{};
  {
    ingest::GroupCommitter committer(*opened.store, clock);
    const ingest::IngestService service(
        ingest::IngestParts{settings, rules, formats, committer, *opened.store, *opened.registry});
    parts.service = &service;
    result = reprocessRecords(ctx, parts, options, progress);
  }  // the committer drains before the store closes
  return result;
}

}  // namespace gw::app

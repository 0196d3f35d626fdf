#include "app/runtime.hpp"

#include <algorithm>

#include "app/consent_registry_loader.hpp"
#include "app/engineer_tools.hpp"
#include "app/golden_cases.hpp"
#include "app/keys.hpp"
#include "app/settings.hpp"
#include "common/log.hpp"
#include "delivery/partner_auth.hpp"

namespace gw::app {
namespace {

std::vector<http::TokenEntry> tokenEntries(const std::vector<config::Token>& tokens) {
  std::vector<http::TokenEntry> entries;
  for (const auto& t : tokens) {
    http::TokenEntry e{t.id, t.sha256, {}, t.clinics, t.client_certs};
    for (const auto& r : t.roles) {
      if (auto role = parseRole(r)) e.roles.push_back(*role);
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

// The golden cases of a rule set about to be put in place: <format_dir>/golden and those beside
// its CSV mappers. Golden cases are written in the dry-run convention, so they run without the
// configured clinics.
struct GoldenRun {
  std::size_t cases = 0;
  std::vector<std::string> failed;  // case names, with the first reason
};

GoldenRun runGolden(const std::shared_ptr<const ingest::RuleSet>& rules, const config::Mapping& mapping) {
  MappingSnapshot snapshot;
  snapshot.rules = rules;
  auto results = runGoldenCases(snapshot, mapping.format_dir / "golden");
  if (!mapping.csv_mappers_dir.empty()) {
    auto csv = runCsvGoldenCases(snapshot, mapping.csv_mappers_dir);
    std::move(csv.begin(), csv.end(), std::back_inserter(results));
  }
  GoldenRun run;
  run.cases = results.size();
  for (const auto& r : results) {
    // A set may drop a mapper (its records then wait as unmapped): its cases do not apply.
    if (!r.unreadable && r.mapped.errors.empty() && r.mapped.state == "unmapped") {
      --run.cases;
      continue;
    }
    if (r.passed()) continue;
    std::string why;
    if (r.unreadable) {
      why = r.unreadable->describe();
    } else if (!r.mapped.errors.empty()) {
      why = r.mapped.errors.front().describe();
    } else if (!r.differences.empty()) {
      why = "differs at " + r.differences.front().path;
    } else {
      why = "a mapped resource fails its profile";
    }
    run.failed.push_back(r.name + ": " + why);
  }
  return run;
}

}  // namespace

Runtime::Runtime(config::GatewayConfig config, const Clock& clock) : config_(std::move(config)), clock_(clock) {}

Runtime::~Runtime() { stop(); }

Status Runtime::open(std::unique_ptr<store::Store> store) {
  const auto& cfg = config_;
  if (store != nullptr) {
    store_ = std::move(store);
  } else {
    // Readers: the blocking pool, one per partner worker, the jobs thread and the committer.
    const int readers = cfg.server.blocking_threads + static_cast<int>(cfg.partners.size()) + 2;
    GW_TRY(auto opened, openConfiguredStore(cfg, readers));
    store_ = std::move(opened);
  }
  GW_TRY(auto record_key_secret, store_->deploymentSecret("record-key"));
  ingest_settings_ = ingestSettings(cfg, std::move(record_key_secret));
  formats_ = ingest::InputFormatRegistry::builtins();
  GW_TRY(auto rules, loadConfiguredRuleSet(cfg));
  GW_TRY(auto unreconciled, loadConsentRegistry(*store_, registry_));
  unreconciled_ = std::move(unreconciled);
  committer_ = std::make_unique<ingest::GroupCommitter>(*store_, clock_);
  install(std::move(rules));
  auth_ = std::make_unique<http::Authenticator>(tokenEntries(cfg.tokens));
  GW_TRY(auto signing_keys, delivery::publishedSigningKeys(cfg));
  jwks_ = delivery::jwksJson(signing_keys);
  for (const auto& partner : cfg.partners) {
    GW_TRY(auto endpoint, delivery::endpointFor(partner));
    GW_TRY(auto credentials, delivery::credentialsFor(partner));
    GW_TRY(auto client, delivery::FhirClient::create(std::move(endpoint), std::move(credentials)));
    workers_.push_back(
        std::make_unique<delivery::PartnerWorker>(partner, cfg.delivery, *store_, clock_, std::move(client),
                                                  delivery::DisclosureCheck{&registry_, cfg.privacy.policy_version}));
  }
  blocking_ = std::make_unique<WorkPool>("blocking", cfg.server.blocking_threads,
                                         static_cast<std::size_t>(cfg.server.blocking_queue));
  const auto& retention = cfg.privacy.retention_days;
  if (retention.general > 0 || retention.sud > 0 || retention.mh > 0) {
    jobs_.every(cfg.privacy.purge_interval, std::chrono::seconds(10), [this] { purgeExpired(); });
  }
  if (cfg.audit.anchor.enabled()) {
    GW_TRY(anchors_, AnchorPublisher::create(cfg.audit.anchor, *store_, clock_));
    // Soon after start (rows written since a crash get their anchor), then on the interval.
    const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(cfg.audit.anchor.interval);
    jobs_.every(interval, std::min<std::chrono::steady_clock::duration>(interval, std::chrono::seconds(5)),
                [this] { publishAnchor(); });
  } else {
    GW_LOG(Warn, Audit, "audit_anchor_not_configured")
        .kv("risk", "a truncated or rewritten audit log cannot be told from an intact one")
        .kv("fix", "set audit.anchor.file (and/or audit.anchor.syslog)");
  }
  return ok();
}

void Runtime::start() {
  jobs_.start();
  for (auto& w : workers_) w->start();
  // Consents stored but not settled before the last stop (a crash between the two) settle now.
  for (const auto& v : unreconciled_) scheduleReconcile(v);
  unreconciled_.clear();
}

void Runtime::stop() {
  // In the order work flows: requests already accepted finish and submit their commits, the
  // commits finish and post their reconciliations, those run, and only then the workers stop.
  if (blocking_) blocking_->stop();
  if (committer_) committer_->stop();
  jobs_.stop();  // a reload in progress finishes first
  for (auto& w : workers_) w->stop();
  // Nothing appends to the log any more: the head as the gateway leaves it.
  publishAnchor();
}

std::shared_ptr<const Runtime::Live> Runtime::current() const {
  std::lock_guard lock(live_mutex_);
  return live_;
}

void Runtime::install(std::shared_ptr<const ingest::RuleSet> rules) {
  auto next = std::make_shared<Live>();
  next->rules = rules;
  next->ingest = std::make_unique<ingest::IngestService>(ingest::IngestParts{
      ingest_settings_, std::move(rules), formats_, *committer_, *store_, registry_,
      [this](const consent::ConsentVersion& v) { scheduleReconcile(v); },
      [this](const std::string& patient_key) { scheduleReconcilePatient(patient_key); }, &ingest_stats_});
  std::lock_guard lock(live_mutex_);
  live_ = std::move(next);
}

Result<ReloadSummary> Runtime::reload(std::uint64_t ticket) {
  std::lock_guard serial(reload_mutex_);
  if (last_reload_ && reload_covered_ >= ticket) {
    // The files were read after this request arrived: that reload's answer is this one's too.
    if (!*last_reload_) return last_reload_->error();
    ReloadSummary shared = last_reload_->value();
    shared.coalesced = true;
    return shared;
  }
  const std::uint64_t covering = reload_tickets_.load();
  auto result = loadAndInstall();
  reload_covered_ = covering;
  last_reload_ = result;
  return result;
}

Result<ReloadSummary> Runtime::loadAndInstall() {
  auto loaded = loadConfiguredRuleSet(config_);
  if (!loaded) {
    GW_LOG(Error, Mapping, "reload_rejected").kv("error", loaded.error().describe());
    return loaded.error();
  }
  // A set that loads can still be wrong (a misspelt FHIR element makes every record invalid):
  // its golden cases must pass before it serves anyone.
  const auto golden = runGolden(loaded.value(), config_.mapping);
  if (!golden.failed.empty()) {
    std::string list;
    for (std::size_t i = 0; i < golden.failed.size() && i < 5; ++i) list += (i == 0 ? "" : "; ") + golden.failed[i];
    GW_LOG(Error, Mapping, "reload_rejected").kv("golden_failed", golden.failed.size()).kv("golden_cases", golden.cases);
    return makeError(ErrorCode::Config,
                     std::to_string(golden.failed.size()) + " of " + std::to_string(golden.cases) +
                         " golden cases fail with the new mapping set: " + list,
                     (config_.mapping.format_dir / "golden").string(),
                     "run fhir-gateway mappers test to see every difference; fix the mapper, or update the "
                     "expected files (mappers test --update) after reviewing the change");
  }
  const auto& rules = *loaded.value();
  ReloadSummary summary{rules.schemas->recordTypes().size(), rules.mappers->recordTypes().size(),
                        rules.profiles->profileUrls().size(), golden.cases};
  install(std::move(loaded).value());
  GW_LOG(Info, Mapping, "reloaded")
      .kv("schemas", summary.schemas)
      .kv("mappers", summary.mappers)
      .kv("profiles", summary.profiles)
      .kv("golden_cases", summary.golden_cases);
  return summary;
}

// A consent version entered the registry: settle what is queued and held for its patient and
// partner on the jobs thread (it reads and maps stored records), then mark it reconciled so a
// restart does not redo it. A crash before that mark redoes it at the next start.
void Runtime::scheduleReconcile(const consent::ConsentVersion& v) {
  jobs_.post([this, patient = v.patient_key, partner = v.partner_id, clinic = v.clinic, consent_id = v.consent_id,
              version = v.version] {
    auto running = current();
    if (auto settled = running->ingest->reconcile(patient, partner); !settled) {
      GW_LOG(Error, Consent, "reconcile_failed").kv("partner", partner).kv("error", settled.error().describe());
      return;
    }
    if (auto marked = store_->markConsentReconciled(clinic, consent_id, version); !marked) {
      GW_LOG(Error, Consent, "reconcile_not_marked").kv("error", marked.error().describe());
    }
    wakeWorkers();
  });
}

void Runtime::scheduleReconcilePatient(const std::string& patient_key) {
  jobs_.post([this, patient_key] {
    auto running = current();
    for (const auto& partner : config_.partners) {
      if (auto settled = running->ingest->reconcile(patient_key, partner.id); !settled) {
        GW_LOG(Error, Consent, "reconcile_failed").kv("partner", partner.id).kv("error", settled.error().describe());
      }
    }
    wakeWorkers();
  });
}

void Runtime::wakeWorkers() {
  for (auto& w : workers_) w->wake();
}

Status Runtime::logRead(store::AuditEntry entry) {
  if (auto logged = store_->appendAudit({std::move(entry)}); !logged) {
    GW_LOG(Error, Audit, "audit_read_not_logged").kv("error", logged.error().describe());
    return makeError(ErrorCode::Unavailable, "the read could not be written to the audit log, so it is not answered",
                     "audit_log", "retry shortly; if it persists, check the database (disk space, permissions)");
  }
  return ok();
}

void Runtime::publishAnchor() {
  if (anchors_) (void)anchors_->publishIfMoved();  // a failure is logged; the next run retries
}

void Runtime::purgeExpired() {
  auto purged = store_->purgeExpired(clock_.now(), retentionOf(config_.privacy));
  if (!purged) {
    GW_LOG(Error, Store, "purge_failed").kv("error", purged.error().describe());
    return;
  }
  const auto& n = purged.value();
  GW_LOG(Info, Store, "purged")
      .kv("record_versions", n.record_versions)
      .kv("resources", n.resources)
      .kv("outbox_items", n.outbox_items)
      .kv("records", n.records);
}

}  // namespace gw::app

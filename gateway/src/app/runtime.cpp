#include "app/runtime.hpp"

#include <algorithm>

#include "app/consent_registry_loader.hpp"
#include "app/engineer_tools.hpp"
#include "app/golden_cases.hpp"
#include "app/instances.hpp"
#include "app/keys.hpp"
#include "app/metrics.hpp"
#include "app/settings.hpp"
#include "audit/anchor_file.hpp"
#include "audit/audit_query.hpp"
#include "common/log.hpp"
#include "delivery/backoff.hpp"
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

Runtime::Runtime(config::GatewayConfig config, const Clock& clock)
    : config_(std::move(config)), clock_(clock), instance_id_(config::instanceId(config_)), registry_(clinicZones(config_)) {
  stats_.audit_verify_result.set(-1);
  metrics_ = std::make_shared<Metrics>(*this);
}

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
  // The versions this instance runs, recorded at start and after every reload (gateway_instances).
  GW_TRY(auto mappers_version, mappingSetVersion(cfg.mapping));
  GW_TRY(auto rules, loadConfiguredRuleSet(cfg));
  {
    const std::int64_t now_ms = toUnixMillis(clock_.now());
    std::lock_guard lock(instance_mutex_);
    instance_row_.instance_id = instance_id_;
    instance_row_.started_at_ms = now_ms;
    instance_row_.last_seen_at_ms = now_ms;
    instance_row_.binary_version = std::string(binaryVersion());
    instance_row_.config_version = configVersion(cfg);
    instance_row_.mappers_version = std::move(mappers_version);
    instance_row_.mappers_loaded_at_ms = now_ms;
  }
  GW_TRY(auto unreconciled, loadConsentRegistry(*store_, registry_));
  unreconciled_ = std::move(unreconciled);
  GW_TRY(loadBreakGlass(*store_, registry_));
  {
    // Break-glasses that ran out while the gateway was down are marked and logged soon after start.
    GW_TRY(auto rows, store_->breakGlasses(""));
    for (const auto& g : rows) {
      if (g.ended_at_ms == 0 && g.ended_by.empty()) {
        next_break_glass_expiry_ms_ = std::min(next_break_glass_expiry_ms_.load(), g.expires_at_ms);
      }
    }
  }
  // Several instances on one database (PostgreSQL): a consent another instance committed enters
  // this registry too, and is reconciled here as one committed here would be.
  GW_TRY(store_->watchConsents([this](const std::string& patient_key) {
    jobs_.post([this, patient_key] {
      (void)refreshConsents(patient_key);
      (void)refreshBreakGlass(patient_key);
    });
  }));
  // A reload asked of another instance on the database is done here too, with this instance's files.
  GW_TRY(store_->watchReloads(
      [this](const std::string& origin) { jobs_.post([this, origin] { reloadRequestedBy(origin); }); }));
  committer_ = std::make_unique<ingest::GroupCommitter>(*store_, clock_, &memory_returner_);
  // A consent change waits at most as long as one send can take: connect, handshake, request.
  std::chrono::milliseconds longest_send{0};
  for (const auto& partner : cfg.partners) {
    longest_send = std::max(longest_send, 2 * partner.connect_timeout + partner.request_timeout);
  }
  send_gate_ = std::make_unique<outbox::SendGate>(longest_send);
  install(std::move(rules));
  auth_ = std::make_unique<http::Authenticator>(tokenEntries(cfg.tokens));
  GW_TRY(auto signing_keys, delivery::publishedSigningKeys(cfg));
  jwks_ = delivery::jwksJson(signing_keys);
  for (const auto& partner : cfg.partners) {
    GW_TRY(auto endpoint, delivery::endpointFor(partner));
    GW_TRY(auto credentials, delivery::credentialsFor(partner));
    // One client per sender thread, all presenting the one (cached) credential.
    auto views = delivery::sharedCredentials(std::move(credentials),
                                             static_cast<std::size_t>(partner.max_concurrent_requests));
    std::vector<std::unique_ptr<delivery::FhirClient>> clients;
    for (auto& view : views) {
      GW_TRY(auto client, delivery::FhirClient::create(endpoint, std::move(view)));
      clients.push_back(std::move(client));
    }
    workers_.push_back(std::make_unique<delivery::PartnerWorker>(
        partner, cfg.delivery, *store_, clock_, std::move(clients),
        delivery::DisclosureCheck{&registry_, cfg.privacy.policy_version, send_gate_.get(),
                                  // Several instances on one database: the consents and break-glass grants stored for
                                  // the patient are read again right before each send's re-check, so a revocation or
                                  // a grant ended through another instance stops a send even before its announcement
                                  // arrives here.
                                  cfg.storage.postgres
                                      ? std::function<bool(const std::string&)>([this](const std::string& patient_key) {
                                          return refreshConsents(patient_key) && refreshBreakGlass(patient_key);
                                        })
                                      : nullptr}));
  }
  storage_probe_ = std::make_unique<StorageProbe>(*store_, cfg.storage.sqlite_path, clock_);
  // Partners' health follows their workers' counters (a failure since the last delivery).
  // Free space every second (a commit only while failing): ingest refuses while it is short.
  jobs_.every(std::chrono::seconds(1), std::chrono::seconds(1), [this] {
    (void)storage_probe_->check(false);
    observePartners();
    if (toUnixMillis(clock_.now()) >= next_break_glass_expiry_ms_.load()) endExpiredBreakGlasses();
  });
  // The heartbeat: the instances list tells a running instance from a killed or hung one.
  jobs_.every(kInstanceHeartbeat, kInstanceHeartbeat, [this] {
    {
      std::lock_guard lock(instance_mutex_);
      instance_row_.last_seen_at_ms = toUnixMillis(clock_.now());
    }
    recordInstance();
  });
  blocking_ = std::make_unique<WorkPool>("blocking", cfg.server.blocking_threads,
                                         static_cast<std::size_t>(cfg.server.blocking_queue));
  // Failed reconciliations come back here (docs/threading.md §2.5); a look at an empty list is cheap.
  jobs_.every(std::chrono::milliseconds(250), std::chrono::milliseconds(250), [this] { retryDueReconciles(); });
  const auto& retention = cfg.privacy.retention_days;
  if (retention.general > 0 || retention.sud > 0 || retention.mh > 0) {
    jobs_.every(cfg.privacy.purge_interval, std::chrono::seconds(10), [this] { purgeExpired(); });
  }
  if (cfg.audit.verify_interval.count() > 0) {
    const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(cfg.audit.verify_interval);
    jobs_.every(interval, std::min<std::chrono::steady_clock::duration>(interval, std::chrono::seconds(10)), [this] {
      if (auto verified = verifyAudit(std::nullopt, "gateway"); !verified) {
        GW_LOG(Error, Audit, "audit_verify_failed").kv("error", verified.error().describe());
      }
    });
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
  recordInstance();
  GW_LOG(Info, Main, "instance_versions")
      .kv("binary_version", instanceRow().binary_version)
      .kv("config_version", instanceRow().config_version)
      .kv("mappers_version", instanceRow().mappers_version);
  jobs_.start();
  for (auto& w : workers_) w->start();
  // Consents stored but not settled before the last stop (a crash between the two) settle now.
  for (const auto& v : unreconciled_) scheduleReconcile(v);
  unreconciled_.clear();
}

void Runtime::stop() {
  // No more consent changes or reloads from other instances: their handlers post to the jobs thread.
  if (store_) {
    (void)store_->watchConsents(nullptr);
    (void)store_->watchReloads(nullptr);
  }
  // In the order work flows: requests already accepted finish and submit their commits, the
  // commits finish and post their reconciliations, those run, and only then the workers stop.
  if (blocking_) blocking_->stop();
  if (committer_) committer_->stop();
  jobs_.stop();  // a reload in progress finishes first
  for (auto& w : workers_) w->stop();
  // Nothing appends to the log any more: the head as the gateway leaves it.
  publishAnchor();
  bool recorded = false;
  {
    std::lock_guard lock(instance_mutex_);
    if (store_ && !instance_row_.instance_id.empty() && instance_row_.stopped_at_ms == 0) {
      instance_row_.last_seen_at_ms = instance_row_.stopped_at_ms = toUnixMillis(clock_.now());
      recorded = true;
    }
  }
  if (recorded) recordInstance();
}

store::InstanceRow Runtime::instanceRow() const {
  std::lock_guard lock(instance_mutex_);
  return instance_row_;
}

void Runtime::recordInstance() {
  const auto row = instanceRow();
  if (row.instance_id.empty() || !store_) return;
  if (auto put = store_->putInstance(row); !put) {
    GW_LOG(Warn, Store, "instance_not_recorded").kv("error", put.error().describe());
  }
}

Result<ReloadSummary> Runtime::reloadEverywhere(std::uint64_t ticket) {
  auto result = reload(ticket);
  if (result && result.value().coalesced) return result;  // the reload that answered it announced it
  const auto announced = store_->announceReload(instance_id_);
  if (!announced) {
    GW_LOG(Warn, Mapping, "reload_not_announced").kv("error", announced.error().describe());
  }
  if (result) result.value().announced = static_cast<bool>(announced);
  return result;
}

void Runtime::reloadRequestedBy(const std::string& origin) {
  GW_LOG(Info, Mapping, "reload_requested_by_instance").kv("origin", origin);
  (void)reload(reloadTicket());  // logs and records its outcome; a failure keeps the running set
}

std::shared_ptr<const Runtime::Live> Runtime::current() const {
  std::lock_guard lock(live_mutex_);
  return live_;
}

void Runtime::install(std::shared_ptr<const ingest::RuleSet> rules) {
  auto next = std::make_shared<Live>();
  next->rules = rules;
  next->ingest = std::make_unique<ingest::IngestService>(
      ingest::IngestParts{ingest_settings_, std::move(rules), formats_, *committer_, *store_, registry_,
                          [this](const consent::ConsentVersion& v) { scheduleReconcile(v); },
                          [this](const std::string& patient_key) { scheduleReconcilePatient(patient_key); }, &ingest_stats_,
                          send_gate_.get(), &ingest_breakdown_});
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
  (result ? stats_.reloads : stats_.reload_failures).inc();
  {
    // What this instance runs now: the new set, or, refused, the one it ran before (and why).
    const std::int64_t now_ms = toUnixMillis(clock_.now());
    std::lock_guard lock(instance_mutex_);
    instance_row_.last_reload_at_ms = now_ms;
    instance_row_.last_seen_at_ms = now_ms;
    if (result) {
      instance_row_.mappers_version = result.value().mappers_version;
      instance_row_.mappers_loaded_at_ms = now_ms;
      instance_row_.last_reload_error.clear();
    } else {
      instance_row_.last_reload_error = result.error().message.substr(0, 512);
    }
  }
  recordInstance();
  if (result) result.value().instance_id = instance_id_;
  reload_covered_ = covering;
  last_reload_ = result;
  return result;
}

Result<ReloadSummary> Runtime::loadAndInstall() {
  // Read before the set: a file changed while it loads makes the next reload differ, not this one lie.
  auto version = mappingSetVersion(config_.mapping);
  if (!version) {
    GW_LOG(Error, Mapping, "reload_rejected").kv("error", version.error().describe());
    return version.error();
  }
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
  summary.mappers_version = version.value();
  install(std::move(loaded).value());
  GW_LOG(Info, Mapping, "reloaded")
      .kv("schemas", summary.schemas)
      .kv("mappers", summary.mappers)
      .kv("profiles", summary.profiles)
      .kv("golden_cases", summary.golden_cases)
      .kv("mappers_version", summary.mappers_version);
  return summary;
}

// A consent version entered the registry: settle what is queued and held for its patient and
// partner on the jobs thread (it reads and maps stored records), then mark it reconciled so a
// restart does not redo it. A crash before that mark redoes it at the next start.
void Runtime::scheduleReconcile(const consent::ConsentVersion& v) {
  jobs_.post(
      [this, task = ReconcileRetry{v.patient_key, v.partner_id, {{v.clinic, v.consent_id, v.version}}}] { settle(task); });
}

void Runtime::breakGlassChanged(const store::BreakGlass& row) {
  if (row.ended_at_ms == 0 && row.ended_by.empty()) {
    auto next = next_break_glass_expiry_ms_.load();
    while (row.expires_at_ms < next && !next_break_glass_expiry_ms_.compare_exchange_weak(next, row.expires_at_ms)) {
    }
  }
  // Like a consent version (docs/privacy.md §8.3): no re-check runs half before and half after
  // it, and an ended one is answered only once the sends claimed under it have finished.
  if (!send_gate_->change(row.patient_key, row.partner_id, [&] { registry_.openBreakGlass(breakGlassGrant(row)); })) {
    GW_LOG(Warn, Consent, "break_glass_sends_still_in_flight").kv("partner", row.partner_id).kv("break_glass", row.id);
  }
  // Records held for the partner go now; what is queued under it and no longer may is cancelled.
  jobs_.post([this, task = ReconcileRetry{row.patient_key, row.partner_id, {}}] { settle(task); });
}

void Runtime::endExpiredBreakGlasses() {
  // Taken down first, so that a grant opened on another thread while this scan runs keeps its
  // expiry (breakGlassChanged lowers it) and this scan's own result is merged in at the end.
  const auto before = next_break_glass_expiry_ms_.exchange(std::numeric_limits<std::int64_t>::max());
  auto lower = [this](std::int64_t at) {
    auto next = next_break_glass_expiry_ms_.load();
    while (at < next && !next_break_glass_expiry_ms_.compare_exchange_weak(next, at)) {
    }
  };
  auto rows = store_->breakGlasses("");
  if (!rows) {
    GW_LOG(Error, Consent, "break_glass_expiry_not_recorded").kv("error", rows.error().describe());
    lower(before);  // tried again next second
    return;
  }
  const auto now = toUnixMillis(clock_.now());
  auto next = std::numeric_limits<std::int64_t>::max();
  for (auto g : rows.value()) {
    if (g.ended_at_ms != 0 || !g.ended_by.empty()) continue;  // ended by hand, or marked already
    if (g.expires_at_ms > now) {
      next = std::min(next, g.expires_at_ms);
      continue;
    }
    // Not ended by anyone: it ran out. ended_at stays 0 (it was not ended), ended_by marks it.
    g.ended_by = std::string(store::kBreakGlassExpired);
    auto e = store::AuditEntryBuilder(store::AuditKind::Operation, store::AuditOutcome::Ok, "gateway", now)
                 .clinic(g.clinic)
                 .patient(g.patient_key)
                 .partner(g.partner_id)
                 .reason("break-glass-expired")
                 .detail(R"({"break_glass":")" + g.id + R"(","expired_at":")" +
                         formatRfc3339(fromUnixMillis(g.expires_at_ms)) + R"("})")
                 .build();
    auto stored = store_->endBreakGlass(g, {std::move(e)});
    if (!stored) {
      GW_LOG(Error, Consent, "break_glass_expiry_not_recorded")
          .kv("break_glass", g.id)
          .kv("error", stored.error().describe());
      next = std::min(next, g.expires_at_ms);  // tried again next second
      continue;
    }
    // Another instance's scan marked it first, or an officer ended it just now: that one is
    // logged, and its announcement brings the row here.
    if (!stored.value()) continue;
    GW_LOG(Info, Consent, "break_glass_expired").kv("break_glass", g.id).kv("partner", g.partner_id);
    breakGlassChanged(g);
  }
  lower(next);
}

// A consent or break-glass change was committed by some instance (the announcement does not say
// which): the patient's stored grants that the registry does not hold as stored ("" : any
// patient's) enter it and are settled as after a change here. A grant this instance stored
// itself is held as stored already: nothing to do.
bool Runtime::refreshBreakGlass(const std::string& patient_key) {
  auto rows = patient_key.empty() ? store_->breakGlasses("") : store_->breakGlassesOfPatient(patient_key);
  if (!rows) {
    GW_LOG(Error, Consent, "break_glass_refresh_failed").kv("error", rows.error().describe());
    return false;
  }
  for (const auto& g : rows.value()) {
    const auto held = registry_.breakGlass(g.id);
    if (held && *held == breakGlassGrant(g)) continue;
    breakGlassChanged(g);
  }
  return true;
}

// A consent was committed to the database by some instance: its stored versions enter the
// registry (one already known is ignored) and a new one is reconciled as at our own commit.
// "" (the watch lost its connection): every stored consent is read again.
bool Runtime::refreshConsents(const std::string& patient_key) {
  auto stored = store_->consents(patient_key);
  if (!stored) {
    GW_LOG(Error, Consent, "consent_refresh_failed").kv("error", stored.error().describe());
    return false;
  }
  for (const auto& c : stored.value()) {
    auto v = consent::fromRow(c.row);
    if (!v) continue;  // reported at load; a newer readable version still enters
    auto applied = registry_.upsert(v.value());
    if (applied && applied.value().applied) {
      GW_LOG(Info, Consent, "consent_from_another_instance")
          .kv("clinic", v.value().clinic)
          .kv("version", v.value().version)
          .kv("partner", v.value().partner_id);
      scheduleReconcile(v.value());
    }
  }
  return true;
}

void Runtime::scheduleReconcilePatient(const std::string& patient_key) {
  jobs_.post([this, patient_key] {
    for (const auto& partner : config_.partners) settle(ReconcileRetry{patient_key, partner.id, {}});
  });
}

// How long a failed reconciliation waits before its next attempt: 1 s, doubling up to 5 min,
// with jitter (a database that failed once is not hammered).
constexpr delivery::RetryPolicy kReconcileRetry{std::chrono::seconds(1), std::chrono::minutes(5), 2.0};

void Runtime::settle(ReconcileRetry task) {
  {
    // A retry waiting for the same pair joins this attempt: one reconciliation settles both.
    std::lock_guard lock(reconcile_mutex_);
    for (auto it = reconcile_retries_.begin(); it != reconcile_retries_.end(); ++it) {
      if (it->patient_key != task.patient_key || it->partner_id != task.partner_id) continue;
      for (auto& m : it->marks) task.marks.push_back(std::move(m));
      task.attempts = std::max(task.attempts, it->attempts);
      if (task.failing_since == SystemTime{} || it->failing_since < task.failing_since) {
        task.failing_since = it->failing_since;
      }
      reconcile_retries_.erase(it);
      break;
    }
  }
  auto running = current();
  Status settled = running->ingest->reconcile(task.patient_key, task.partner_id);
  if (settled) {
    std::vector<ConsentMark> unmarked;
    for (auto& m : task.marks) {
      if (auto marked = store_->markConsentReconciled(m.clinic, m.consent_id, m.version); !marked) {
        settled = marked.error();
        unmarked.push_back(std::move(m));
      }
    }
    task.marks = std::move(unmarked);
  }
  wakeWorkers();  // what it queued or cancelled
  if (settled) {
    if (task.attempts > 0) {
      GW_LOG(Info, Consent, "reconcile_recovered").kv("partner", task.partner_id).kv("failed_attempts", task.attempts);
    }
    return;
  }
  ++task.attempts;
  if (task.failing_since == SystemTime{}) task.failing_since = clock_.now();
  const double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(reconcile_random_);
  const auto delay = delivery::backoffDelay(task.attempts, kReconcileRetry, jitter);
  task.next_at = std::chrono::steady_clock::now() + delay;
  GW_LOG(Error, Consent, "reconcile_failed")
      .kv("partner", task.partner_id)
      .kv("attempt", task.attempts)
      .kv("retry_in_ms", delay.count())
      .kv("error", settled.error().describe());
  std::lock_guard lock(reconcile_mutex_);
  reconcile_retries_.push_back(std::move(task));
}

void Runtime::retryDueReconciles() {
  std::vector<ReconcileRetry> due;
  {
    std::lock_guard lock(reconcile_mutex_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = reconcile_retries_.begin(); it != reconcile_retries_.end();) {
      if (it->next_at <= now) {
        due.push_back(std::move(*it));
        it = reconcile_retries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& task : due) settle(std::move(task));
}

std::vector<std::pair<std::string, delivery::CapabilityReport>> Runtime::partnerCapabilities() const {
  std::vector<std::pair<std::string, delivery::CapabilityReport>> out;
  out.reserve(workers_.size());
  for (const auto& w : workers_) out.emplace_back(w->partnerId(), w->capabilityReport());
  return out;
}

Runtime::ReconcileHealth Runtime::reconcileHealth() const {
  ReconcileHealth health;
  std::lock_guard lock(reconcile_mutex_);
  health.failing = reconcile_retries_.size();
  const auto now = std::chrono::steady_clock::now();
  for (const auto& r : reconcile_retries_) {
    health.most_attempts = std::max(health.most_attempts, r.attempts);
    if (health.failing_since == SystemTime{} || r.failing_since < health.failing_since) {
      health.failing_since = r.failing_since;
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(r.next_at - now);
    const auto in = std::max(std::chrono::milliseconds(0), wait);
    if (health.next_retry_in == std::chrono::milliseconds(0) || in < health.next_retry_in) health.next_retry_in = in;
  }
  return health;
}

StorageHealth Runtime::storageHealth() { return storage_probe_->check(true); }

StorageHealth Runtime::lastStorageHealth() { return storage_probe_->lastKnown(); }

void Runtime::observePartners() {
  const SystemTime now = clock_.now();
  for (const auto& w : workers_) {
    const auto& stats = w->stats();
    partner_health_.observe(w->partnerId(), {stats.delivered.value(), stats.retries.value(), stats.dead.value()}, now);
  }
}

std::vector<PartnerHealth> Runtime::partnerHealth() {
  std::vector<PartnerHealth> out;
  observePartners();
  auto pauses = store_->partnerPauses();
  for (const auto& w : workers_) {
    PartnerHealth h;
    h.partner_id = w->partnerId();
    h.failing_since = partner_health_.failingSince(h.partner_id);
    if (pauses) {
      for (const auto& p : pauses.value()) {
        if (p.partner_id != h.partner_id) continue;
        h.paused = true;
        h.paused_by = p.actor;
        h.paused_at = fromUnixMillis(p.paused_at_ms);
      }
    }
    // The class of the oldest retrying item's error (one indexed read; no counts here: /readyz
    // is polled, and counting a large outbox is the metrics' job).
    {
      store::OutboxQuery q;
      q.partner_id = h.partner_id;
      q.state = store::OutboxState::Retrying;
      q.limit = 1;
      if (auto page = store_->listOutbox(q); page && !page.value().items.empty()) {
        h.last_error_class = errorClass(page.value().items.front().last_error);
      }
    }
    const auto capability = w->capabilityReport();
    h.circuit = std::string(delivery::circuitStateName(capability.circuit.state));
    h.circuit_since = capability.circuit.since;
    if (h.paused) {
      h.state = "paused";
    } else if (h.failing_since != SystemTime{} || capability.circuit.state != delivery::CircuitState::Closed) {
      h.state = "failing";
    } else if (capability.waiting_items > 0) {
      h.state = "capability-mismatch";
    }
    out.push_back(std::move(h));
  }
  return out;
}

void Runtime::wakeWorkers() {
  for (auto& w : workers_) w->wake();
}

void Runtime::wakeWorkers(const std::vector<std::string>& partners) {
  for (auto& w : workers_) {
    if (std::find(partners.begin(), partners.end(), w->partnerId()) != partners.end()) w->wake();
  }
}

Status Runtime::logRead(store::AuditEntry entry) {
  if (auto logged = store_->appendAudit({std::move(entry)}); !logged) {
    GW_LOG(Error, Audit, "audit_read_not_logged").kv("error", logged.error().describe());
    return makeError(ErrorCode::Unavailable, "the read could not be written to the audit log, so it is not answered",
                     "audit_log", "retry shortly; if it persists, check the database (disk space, permissions)");
  }
  return ok();
}

Result<store::VerifyReport> Runtime::verifyAudit(const std::optional<store::ChainAnchor>& anchor, std::string_view actor) {
  auto& store = *store_;
  GW_TRY(auto report, audit::verifyWithAnchors([&store](const auto& a) { return store.verifyAudit(a); },
                                               store.anchorSealer(), {anchor, config_.audit.anchor.file, false}));
  stats_.audit_verify_result.set(report.ok ? 1 : 0);
  stats_.audit_verify_at_ms.set(toUnixMillis(clock_.now()));
  if (!report.ok) {
    GW_LOG(Error, Audit, "chain_broken").kv("breaks", report.break_count).kv("by", actor);
  }
  GW_TRY(logRead(audit::auditVerifyEntry(report, actor, toUnixMillis(clock_.now()))));
  return report;
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

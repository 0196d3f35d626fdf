#pragma once
// The running gateway's parts and the operations its routes and signals use: the store, the
// committer, the consent registry, the partner workers, the blocking-work pool, the jobs thread,
// and the live rule set with the IngestService over it. Gateway (gateway.hpp) builds and starts
// it; routes.cpp serves it. Threads: see docs/threading.md.
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "app/audit_anchors.hpp"
#include "app/health.hpp"
#include "app/views.hpp"
#include "common/clock.hpp"
#include "common/memory_returner.hpp"
#include "common/work_pool.hpp"
#include "config/gateway_config.hpp"
#include "consent/consent_registry.hpp"
#include "delivery/partner_worker.hpp"
#include "http/auth.hpp"
#include "ingest/group_committer.hpp"
#include "ingest/ingest_service.hpp"
#include "ingest/input_format.hpp"
#include "store/store.hpp"

namespace gw::app {

class Metrics;

/// What the Runtime itself counts (common/stats.hpp), for GET /metrics.
#define ALL_RUNTIME_STATS(COUNTER, GAUGE, HISTOGRAM)                                                       \
  COUNTER(reloads, "Rule set reloads put in place")                                                        \
  COUNTER(reload_failures, "Reloads refused (files or golden cases): the running rule set stayed")         \
  GAUGE(audit_verify_result, "The last audit chain verification: 1 intact, 0 broken, -1 none since start") \
  GAUGE(audit_verify_at_ms, "Unix milliseconds of the last audit chain verification; 0: none since start")
GW_DECLARE_STATS_STRUCT(RuntimeStats, ALL_RUNTIME_STATS);

class Runtime {
 public:
  Runtime(config::GatewayConfig config, const Clock& clock);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Opens the store (the configured one, or `store` when given: tests inject fault backends),
  /// loads the rule set and the consent registry, prepares the partner workers. Nothing is started.
  Status open(std::unique_ptr<store::Store> store = nullptr);
  /// Starts the jobs thread and the workers (the listener is the Gateway's).
  void start();
  /// Stops the blocking pool (running and queued requests finish), drains the committer, runs the
  /// jobs those commits posted (reconciliations) and stops the jobs thread, then the workers, and
  /// publishes the audit chain's head once more when it moved. Idempotent.
  void stop();

  // --- the live rule set ---------------------------------------------------------------------
  /// The rule set and the IngestService over it, replaced whole on reload. A request copies the
  /// shared_ptr when it starts and keeps that set until it has answered.
  struct Live {
    std::shared_ptr<const ingest::RuleSet> rules;
    std::unique_ptr<ingest::IngestService> ingest;
  };
  std::shared_ptr<const Live> current() const;

  /// A ticket for reload(): a reload covers every ticket taken before it began.
  std::uint64_t reloadTicket() { return ++reload_tickets_; }
  /// Loads the rule set again, runs its golden cases, and puts it in place only when it loads and
  /// every case passes; otherwise the running set stays and the error says why. Blocks while it
  /// reads files: call it off the I/O threads. Reloads run one at a time; requests that arrived
  /// while one was running are answered by the next.
  Result<ReloadSummary> reload(std::uint64_t ticket);
  /// reload(), then, unless this answer was another reload's, tells every instance on the same
  /// database to reload too (PostgreSQL: NOTIFY gw_reload; SQLite: nothing to tell). Each reloads
  /// its own files and records the version it now runs (or its refusal) in gateway_instances.
  /// What SIGHUP and POST /v1/admin/reload run.
  Result<ReloadSummary> reloadEverywhere(std::uint64_t ticket);

  // --- this instance among several (docs/architecture.md §5.3) -------------------------------
  /// config::instanceId: in every log line, metric and log row of this process.
  const std::string& instanceId() const { return instance_id_; }
  /// The versions this instance runs, as last recorded.
  store::InstanceRow instanceRow() const;
  /// Writes the instance's row (start, reloads, heartbeat, stop); a failure is logged.
  void recordInstance();

  // --- background work ------------------------------------------------------------------------
  /// A consent version entered the registry: settle the patient's queue for its partner (jobs thread).
  void scheduleReconcile(const consent::ConsentVersion& v);
  /// Records decided under a registry that changed before they committed: settle the patient
  /// with every partner (jobs thread).
  void scheduleReconcilePatient(const std::string& patient_key);
  /// A break-glass row was stored (opened or ended): it enters the registry, and the patient's
  /// queue for its partner is settled like after a consent change (jobs thread).
  void breakGlassChanged(const store::BreakGlass& row);
  /// Store::watchConsents' handler too (jobs thread): the patient's stored break-glass grants into
  /// the registry (another instance may have opened or ended one); "" every patient's. False
  /// when they could not be read (the registry may be behind).
  bool refreshBreakGlass(const std::string& patient_key);
  /// Store::watchConsents' handler (jobs thread): the patient's stored consents into the registry.
  /// False when the stored consents could not be read (the registry may be behind).
  bool refreshConsents(const std::string& patient_key);
  void wakeWorkers();
  /// Wakes the workers of these partners only.
  void wakeWorkers(const std::vector<std::string>& partners);

  /// Reconciliations that failed and wait for their next attempt (docs/threading.md §2.5): what
  /// /readyz shows. No ids: counts and times only (the answer is public).
  struct ReconcileHealth {
    std::size_t failing = 0;     // (patient, partner) pairs waiting for a retry
    int most_attempts = 0;       // the highest number of failed attempts among them
    SystemTime failing_since{};  // when the oldest of them first failed
    std::chrono::milliseconds next_retry_in{0};
    bool stuck() const { return most_attempts >= kReconcileStuckAfter; }
  };
  /// A reconciliation that failed this many times in a row is reported stuck.
  static constexpr int kReconcileStuckAfter = 3;
  ReconcileHealth reconcileHealth() const;

  /// Each partner's write mode and what its CapabilityStatement allows (/readyz), in config order.
  std::vector<std::pair<std::string, delivery::CapabilityReport>> partnerCapabilities() const;

  // --- operations and health (docs/operations.md) -------------------------------------------
  /// Whether the database can commit now (free space and a commit, at most once a second): /readyz.
  StorageHealth storageHealth();
  /// The last storage check (the jobs thread checks the free space every second, and commits
  /// while failing): ingest answers 503 with Retry-After while it says not writable.
  StorageHealth lastStorageHealth();
  /// Each configured partner's delivery health, in config order (/readyz).
  std::vector<PartnerHealth> partnerHealth();
  /// The current consents: what a replay decides with.
  const consent::ConsentRegistry& registry() const { return registry_; }

  /// Appends the audit row of a read. A read whose row cannot be written must not be answered
  /// (nothing leaves unlogged): the error says so and the caller answers it instead of the data.
  Status logRead(store::AuditEntry entry);

  /// Verifies the whole chain, against the anchor file too (`anchor`, when given, instead of its
  /// latest line), records the result in the metrics and as an audit-verify row by `actor`.
  /// Reads the whole log: on the jobs thread.
  Result<store::VerifyReport> verifyAudit(const std::optional<store::ChainAnchor>& anchor, std::string_view actor);

  const config::GatewayConfig& config() const { return config_; }
  /// The gateway's public signing keys as a JWKS (GET /.well-known/jwks.json), built at start.
  const std::string& jwks() const { return jwks_; }
  const Clock& clock() const { return clock_; }
  store::Store& store() { return *store_; }
  const std::string& recordKeySecret() const { return ingest_settings_.record_key_secret; }
  const http::Authenticator& authenticator() const { return *auth_; }
  WorkPool& blockingPool() { return *blocking_; }
  const ingest::IngestStats& ingestStats() const { return ingest_stats_; }
  const ingest::IngestBreakdown& ingestBreakdown() const { return ingest_breakdown_; }
  /// Null before open().
  const ingest::GroupCommitStats* groupCommitStats() const { return committer_ ? &committer_->stats() : nullptr; }
  const std::vector<std::unique_ptr<delivery::PartnerWorker>>& workers() const { return workers_; }
  /// GET /metrics and the HTTP front's observer (app/metrics.hpp).
  const std::shared_ptr<Metrics>& metrics() const { return metrics_; }
  RuntimeStats& stats() { return stats_; }
  const RuntimeStats& stats() const { return stats_; }
  JobQueue& jobs() { return jobs_; }

 private:
  void install(std::shared_ptr<const ingest::RuleSet> rules);
  /// A consent version whose reconciliation is to be marked done in the store.
  struct ConsentMark {
    std::string clinic, consent_id;
    std::int64_t version = 0;
  };
  struct ReconcileRetry;
  /// Reconciles (patient, partner) and then marks the consents; on failure, keeps it for a retry
  /// with backoff. Jobs thread only.
  void settle(ReconcileRetry task);
  /// Runs the retries that are due (a periodic task of the jobs thread).
  void retryDueReconciles();
  Result<ReloadSummary> loadAndInstall();
  void purgeExpired();
  /// Break-glasses whose time ran out are marked and logged (`break-glass-expired`) once, and
  /// their patient's queue settled (jobs thread, every second once the earliest expiry passed).
  void endExpiredBreakGlasses();
  /// The earliest expiry of a break-glass not yet marked, in Unix ms (INT64_MAX: none).
  std::atomic<std::int64_t> next_break_glass_expiry_ms_{std::numeric_limits<std::int64_t>::max()};
  void publishAnchor();
  /// Takes each worker's counters (failing since the first failure after the last delivery):
  /// cheap, every second on the jobs thread.
  void observePartners();

  /// A reload announced by another instance (the watch's thread): run here on the jobs thread.
  void reloadRequestedBy(const std::string& origin);

  config::GatewayConfig config_;
  const Clock& clock_;
  std::string instance_id_;
  mutable std::mutex instance_mutex_;
  store::InstanceRow instance_row_;  // guarded by instance_mutex_
  std::unique_ptr<store::Store> store_;
  ingest::IngestSettings ingest_settings_;
  ingest::InputFormatRegistry formats_;
  ingest::IngestStats ingest_stats_;  // outlives the IngestService a reload replaces
  ingest::IngestBreakdown ingest_breakdown_;
  RuntimeStats stats_;
  std::shared_ptr<Metrics> metrics_;  // reads everything above at scrape time
  MemoryReturner memory_returner_;    // asked by the committer after large groups
  std::unique_ptr<ingest::GroupCommitter> committer_;
  consent::ConsentRegistry registry_;  // current consents; decisions read it from every thread
  std::unique_ptr<http::Authenticator> auth_;
  std::unique_ptr<outbox::SendGate> send_gate_;  // sends against consent changes (docs/privacy.md §8.3)
  std::vector<std::unique_ptr<delivery::PartnerWorker>> workers_;
  std::string jwks_ = R"({"keys":[]})";
  std::vector<consent::ConsentVersion> unreconciled_;  // settled once the jobs thread runs
  std::unique_ptr<AnchorPublisher> anchors_;           // null when audit.anchor names no sink
  std::unique_ptr<StorageProbe> storage_probe_;        // made by open()
  PartnerHealthTracker partner_health_;

  // Reconciliations that failed: retried with backoff on the jobs thread; read by /readyz.
  struct ReconcileRetry {
    std::string patient_key, partner_id;
    std::vector<ConsentMark> marks;  // consents waiting for this pair's reconciliation
    int attempts = 0;                // failed attempts so far
    std::chrono::steady_clock::time_point next_at;
    SystemTime failing_since{};
  };
  mutable std::mutex reconcile_mutex_;
  std::vector<ReconcileRetry> reconcile_retries_;             // guarded by reconcile_mutex_
  std::mt19937_64 reconcile_random_{std::random_device{}()};  // jobs thread only

  mutable std::mutex live_mutex_;
  std::shared_ptr<const Live> live_;  // guarded by live_mutex_

  std::mutex reload_mutex_;  // one reload at a time
  std::atomic<std::uint64_t> reload_tickets_{0};
  std::uint64_t reload_covered_ = 0;                  // guarded by reload_mutex_
  std::optional<Result<ReloadSummary>> last_reload_;  // guarded by reload_mutex_

  // Declared last: destroyed (joined) first, while everything their jobs use still exists.
  std::unique_ptr<WorkPool> blocking_;  // record status, audit reads and appends, ingest
  JobQueue jobs_{"jobs"};               // reloads, reconciliation, audit verify, retention purge, anchor publishing
};

}  // namespace gw::app

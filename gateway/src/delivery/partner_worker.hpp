#pragma once
// One thread per partner drains that partner's outbox: take the consent decision again, post
// each due Bundle, then record delivered / retry-after / dead (and the disclosure in the audit
// log). It claims the due items in batches (at most one per patient: a patient's next item is due
// only once the one before it is settled) and sends a batch on up to max_concurrent_requests
// sender threads, each with its own client, through the partner's rate limit and circuit breaker
// (docs/architecture.md §5.7). Items stay in the database until their outcome is recorded,
// so a crash or restart resends at most what was in flight, and conditional create/update
// makes that resend a no-op at the partner.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/stats.hpp"
#include "config/gateway_config.hpp"
#include "consent/consent_registry.hpp"
#include "delivery/attempt_outcome.hpp"
#include "delivery/backoff.hpp"
#include "delivery/capability.hpp"
#include "delivery/fhir_client.hpp"
#include "delivery/flow_control.hpp"
#include "delivery/outcome_batcher.hpp"
#include "outbox/send_gate.hpp"
#include "store/store.hpp"

namespace gw::delivery {

/// What one partner's worker counts (common/stats.hpp). The answers_* counters count each item
/// attempt by the class of the partner's HTTP status (answers_none: no answer, e.g. refused).
#define ALL_DELIVERY_STATS(COUNTER, GAUGE, HISTOGRAM)                                                     \
  COUNTER(attempts, "Bundles posted to the partner")                                                      \
  COUNTER(delivered, "Items the partner accepted")                                                        \
  COUNTER(retries, "Attempts that failed in a way worth retrying (connection, timeout, 429, 5xx)")        \
  COUNTER(dead, "Items given up: a 4xx refusal, or the retry limit reached")                              \
  COUNTER(cancelled, "Items no longer permitted when their turn came (consent re-check)")                 \
  COUNTER(answers_2xx, "Item attempts the partner answered with a 2xx status")                            \
  COUNTER(answers_3xx, "Item attempts the partner answered with a 3xx status")                            \
  COUNTER(answers_4xx, "Item attempts the partner answered with a 4xx status")                            \
  COUNTER(answers_5xx, "Item attempts the partner answered with a 5xx status")                            \
  COUNTER(answers_none, "Item attempts without an answer: connection refused, TLS failure, timeout")      \
  GAUGE(consecutive_failures, "Item attempts that failed in a row since the partner last accepted one")   \
  GAUGE(failing_since_ms, "Unix milliseconds of the first failure of the current run of failures; 0: up") \
  HISTOGRAM(attempt_us, "Time of one post to the partner, in microseconds")                               \
  HISTOGRAM(delivery_latency_ms, "Time from an item being queued to the partner accepting it, in milliseconds")
GW_DECLARE_STATS_STRUCT(DeliveryStats, ALL_DELIVERY_STATS);

/// The partner's endpoint (URL, CA, client certificate, timeouts) as the config describes it.
/// Its credential comes apart, from credentialsFor.
Result<PartnerEndpoint> endpointFor(const config::Partner& partner);
/// The credential source the partner's settings name: an OAuth token source (auth: SMART
/// Backend Services or client credentials), a static bearer token from bearer_token_env (which
/// must be set), or none (mutual TLS alone). `clock` nullptr: the system clock.
Result<std::unique_ptr<CredentialSource>> credentialsFor(const config::Partner& partner, const Clock* clock = nullptr);

/// What the worker needs to take the consent decision again before each send.
struct DisclosureCheck {
  const consent::ConsentRegistry* registry = nullptr;  // required
  std::string policy_version;
  /// The re-check and the claim of an item happen under it, and consent changes wait for the
  /// claims (docs/privacy.md §8.3). Optional: without it nothing orders sends against changes.
  outbox::SendGate* gate = nullptr;
  /// Optional: brings the registry up to date with the consents stored for the patient before the
  /// re-check (several gateway instances on one database: another instance's consent commit may
  /// not have been announced here yet). It runs under the send's hold (Store::holdSend), so it
  /// reads every consent change committed before the send. False: they could not be read, and
  /// nothing is sent (the item waits for a later turn).
  std::function<bool(const std::string& patient_key)> refresh;
};

/// What the worker knows of its partner's capabilities and the write mode it uses (/readyz).
/// No PHI: resource types and reasons only.
struct CapabilityReport {
  std::string write_mode;       // "transaction" | "batch" | "per-resource"
  std::string why;              // how the mode was chosen
  bool statement_read = false;  // a CapabilityStatement was read and understood
  std::string fhir_version;     // from it
  std::string error;            // the last read's failure, "" when it succeeded
  SystemTime read_at{};         // the last read (successful or not); epoch: never
  /// Writes the partner cannot take, each with its reason; items needing one wait.
  std::vector<std::string> unsupported;
  std::size_t waiting_items = 0;  // items found waiting for one of them at their last turn
  CircuitReport circuit;          // the partner's circuit breaker (flow control, not capability)
};

class PartnerWorker {
 public:
  PartnerWorker(const config::Partner& partner, const config::Delivery& settings, store::Store& store, const Clock& clock,
                std::unique_ptr<FhirClient> client, DisclosureCheck check);
  /// One client per sender thread (FhirClient is not thread-safe): the partner's items are sent
  /// with up to min(max_concurrent_requests, clients.size()) requests in flight. At least one.
  PartnerWorker(const config::Partner& partner, config::Delivery settings, store::Store& store, const Clock& clock,
                std::vector<std::unique_ptr<FhirClient>> clients, DisclosureCheck check);
  ~PartnerWorker();
  PartnerWorker(const PartnerWorker&) = delete;
  PartnerWorker& operator=(const PartnerWorker&) = delete;

  void start();
  /// Finishes the attempt in flight (bounded by the request timeout), then returns.
  void stop();
  /// New items were queued: look now instead of at the next poll.
  void wake();

  /// Delivers every item due now, once; returns how many attempts were made. For tests and tools.
  Result<int> runOnce();

  /// Reads GET [base]/metadata and picks the write mode again (at start, then every
  /// capability_refresh_hours; tests call it directly). A failed read keeps what was known before.
  Status refreshCapability();
  CapabilityReport capabilityReport() const;

  const std::string& partnerId() const { return partner_.id; }
  const DeliveryStats& stats() const { return stats_; }
  CircuitReport circuitReport() const { return breaker_.report(); }
  /// Sender threads a batch is spread over.
  int concurrency() const { return static_cast<int>(clients_.size()); }

  /// Splits a batch into lanes, one per patient key, each in the batch's order: lanes run side
  /// by side, a lane's items one after another.
  static std::vector<std::vector<const store::OutboxItem*>> lanesByPatient(const std::vector<store::OutboxItem>& items);

 private:
  void run();
  Status attempt(const store::OutboxItem& item, FhirClient& client);
  /// Sends the lanes on the sender threads (the calling thread is the first) and returns the
  /// first error recording an outcome, after all lanes ended.
  Status sendLanes(const std::vector<std::vector<const store::OutboxItem*>>& lanes);
  /// Counts the attempt's answer class and keeps the partner's run of failures (stats_).
  void countAnswer(const AttemptOutcome& outcome, SystemTime now);
  /// Sends the item in the current write mode and says what came of it.
  /// Every request starts under `hold` (Store::holdSend), or is not sent.
  AttemptOutcome send(const store::OutboxItem& item, FhirClient& client, const store::SendHold& hold);
  /// Batch and per-resource modes: the entries not yet accepted, Patient first, resuming
  /// where the last attempt of the item stopped.
  AttemptOutcome sendInParts(const store::OutboxItem& item, WriteMode mode, FhirClient& client, const store::SendHold& hold);
  /// Waits until `requests` requests fit the partner's rate limit; false when stopping.
  bool waitForRateLimit(int requests);
  /// One request to the partner through the circuit breaker: asks it, and tells it what came
  /// back. nullopt: not sent (the breaker refused). The rate limit was waited for before.
  std::optional<Result<HttpResult>> request(const std::function<Result<HttpResult>()>& call);
  /// The breaker is open: due items wait until the probe, without using up their retries, and
  /// say why in their status. Returns how many were marked.
  Result<int> parkWhileOpen(const CircuitReport& circuit);
  std::string circuitWaitReason(const CircuitReport& circuit) const;
  /// Why the partner cannot take the item (from its CapabilityStatement), or nullopt.
  std::optional<std::string> cannotTake(const store::OutboxItem& item);

  /// The entries of an item the partner already accepted (batch and per-resource modes), so a
  /// retry resends only the rest. In memory: after a restart the whole item is sent again,
  /// which conditional writes make harmless.
  struct ItemProgress {
    std::map<std::string, std::string> resolved;      // fullUrl -> "Type/id" at the partner
    std::vector<std::optional<EntryResult>> results;  // by Bundle index, set once accepted
  };
  std::mutex progress_mutex_;                      // guards the map; an entry is used by its item's lane only
  std::map<std::int64_t, ItemProgress> progress_;  // by item id

  config::Partner partner_;
  config::Delivery settings_;
  RetryPolicy policy_;
  store::Store& store_;
  OutcomeBatcher outcomes_{store_};  // the senders' outcomes, committed together
  const Clock& clock_;
  std::vector<std::unique_ptr<FhirClient>> clients_;  // [0]: the worker thread's (also reads metadata)
  DisclosureCheck check_;
  std::mutex random_mutex_;
  std::mt19937_64 random_;  // guarded by random_mutex_
  TokenBucket rate_;
  CircuitBreaker breaker_;
  DeliveryStats stats_;

  // Capability state: written by the worker thread, read by /readyz.
  mutable std::mutex capability_mutex_;
  std::optional<PartnerCapability> capability_;
  WriteModeChoice mode_;
  CapabilityReport report_;
  std::set<std::int64_t> waiting_;  // items waiting for an unsupported write
  SystemTime next_capability_read_{};

  std::mutex mutex_;
  std::condition_variable wake_cv_;
  std::condition_variable stop_cv_;  // wakes a sender waiting for its rate-limit turn
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gw::delivery

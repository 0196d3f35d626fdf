#pragma once
// What /readyz tells (docs/operations.md): whether the database can commit, and each partner's
// delivery health. Readiness fails only for the database: one partner's outage is reported, not
// fatal, since ingest goes on and the outbox keeps the items until the partner is back.
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "store/store.hpp"

namespace gw::app {

/// Below this much free space in the database's folder the gateway reports not ready (and ingest
/// answers 503) before SQLite fails a commit half-way: a WAL that cannot grow, a checkpoint.
inline constexpr std::int64_t kMinFreeBytes = 4 * 1024 * 1024;

struct StorageHealth {
  bool writable = true;
  std::string reason;  // "disk-full" | "read-only" | "database" (empty when writable)
  std::string error;   // what failed (no PHI: paths and SQLite messages)
  SystemTime failing_since{};
  std::int64_t free_bytes = -1;  // -1: unknown
};

/// Checks that the database can commit: the free space of its file system (statvfs) and a
/// one-row write commit (store.probeWrite). At most one check per `interval`; in between the
/// last result is given. Thread-safe.
class StorageProbe {
 public:
  StorageProbe(store::Store& store, std::filesystem::path database_file, const Clock& clock,
               std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  /// The current health, checked again when the last check is older than the interval: the free
  /// space, and with `write` (or while the database is failing, to see it recover) a commit.
  StorageHealth check(bool write = true);
  /// The last check's result, without checking (ingest's path: no statvfs, no write lock).
  StorageHealth lastKnown();

 private:
  store::Store& store_;
  std::filesystem::path folder_;
  const Clock& clock_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  StorageHealth last_;                          // guarded by mutex_
  std::chrono::steady_clock::time_point at_{};  // guarded by mutex_: of the last check
  bool wrote_ = false;                          // guarded by mutex_: the last check committed
  bool checked_ = false;                        // guarded by mutex_
};

/// One partner's delivery health, as /readyz and `fhir-gateway outbox status` show it. No PHI:
/// partner ids, states, times and error classes.
struct PartnerHealth {
  std::string partner_id;
  /// "up" (delivering, or nothing to deliver), "failing" (attempts fail since failing_since),
  /// "paused" (an operator paused it), "capability-mismatch" (items wait for writes its
  /// CapabilityStatement does not offer).
  std::string state = "up";
  SystemTime failing_since{};
  std::string last_error_class;  // "connection", "timeout", "tls", "http-4xx", "http-429", "http-5xx", "other"
  bool paused = false;
  std::string paused_by;
  SystemTime paused_at{};
  /// The worker's circuit breaker (docs/architecture.md §5.7): "closed", "open" or "half-open".
  std::string circuit = "closed";
  SystemTime circuit_since{};  // when it entered that state; epoch: never left closed
};

/// The class of a delivery error text (store OutboxItem::last_error), for health and alerts.
std::string errorClass(std::string_view error);

/// Follows each partner's worker counters: an attempt that failed since the last delivery makes
/// the partner failing (since the first such failure), a delivery makes it up again. Thread-safe.
class PartnerHealthTracker {
 public:
  struct Counters {
    std::uint64_t delivered = 0, retries = 0, dead = 0;
  };
  /// Takes the partner's counters now; returns whether it is failing and since when.
  void observe(const std::string& partner_id, const Counters& counters, SystemTime now);
  /// failing_since, or epoch when the partner is not failing.
  SystemTime failingSince(const std::string& partner_id) const;

 private:
  struct Seen {
    Counters counters;
    SystemTime failing_since{};
  };
  mutable std::mutex mutex_;
  std::map<std::string, Seen> seen_;  // guarded by mutex_
};

}  // namespace gw::app

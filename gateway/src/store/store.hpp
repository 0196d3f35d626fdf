#pragma once
// Durable state of the gateway: the inbox of received records (with every version), the FHIR
// resources mapped from them, and the per-partner outbox. One interface, one implementation per
// database (SQLite embedded by default; PostgreSQL for several instances is a later backend).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace gw::store {

/// received -> mapped | unmapped (no mapper for the type yet) | invalid (mapping failed)
enum class RecordState { Received, Mapped, Unmapped, Invalid };
std::string_view recordStateName(RecordState s);

/// queued -> delivered | retrying -> ... | dead; superseded when a newer version of the record is
/// queued; cancelled when the partner may no longer receive it (checked again before each send).
enum class OutboxState { Queued, Retrying, Delivered, Dead, Superseded, Cancelled };
std::string_view outboxStateName(OutboxState s);
std::optional<OutboxState> parseOutboxState(std::string_view s);

struct MappedResourceRow {
  std::string resource_type;
  std::string resource_id;
  std::string identifier_system;
  std::string identifier_value;
  std::string body;  // FHIR JSON
};

struct NewOutboxItem {
  std::string partner_id;
  std::string bundle;  // transaction Bundle JSON, exactly what will be posted
  int entry_count = 0;
};

/// Everything one accepted record changes; committed atomically with the others of its batch.
struct IngestWrite {
  std::string clinic;
  std::string record_id;
  std::string record_type;
  std::string content_hash;  // SHA-256 of the canonical record JSON
  std::string payload;       // the record JSON as received (canonical form)
  std::string patient_key;   // internal Patient resource id: groups a patient's items for ordering
  RecordState state = RecordState::Received;
  std::string error;         // for Invalid: what was wrong (no PHI)
  std::vector<MappedResourceRow> resources;
  std::vector<NewOutboxItem> outbox;
};

enum class IngestDisposition { Created, NewVersion, Unchanged };
std::string_view dispositionName(IngestDisposition d);

struct IngestOutcome {
  IngestDisposition disposition = IngestDisposition::Created;
  int version = 1;
};

struct DeliveredEntry {
  std::string status;    // partner's entry status, e.g. "201 Created"
  std::string location;  // partner's resource location, e.g. Patient/123/_history/1
  std::string etag;
};

struct OutboxItem {
  std::int64_t id = 0;
  std::string partner_id;
  std::string clinic;
  std::string record_id;
  int record_version = 0;
  std::string patient_key;
  std::string bundle;
  int entry_count = 0;  // requests in the Bundle; the partner must answer as many entries
  OutboxState state = OutboxState::Queued;
  int attempts = 0;
  std::int64_t next_attempt_at_ms = 0;
  std::string last_error;
  std::string outcome;  // partner's OperationOutcome (dead items)
  std::int64_t updated_at_ms = 0;
  std::vector<DeliveredEntry> entries;  // delivered items
};

struct RecordStatus {
  std::string clinic;
  std::string record_id;
  std::string record_type;
  int version = 0;
  RecordState state = RecordState::Received;
  std::string error;
  std::int64_t received_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::vector<MappedResourceRow> resources;  // body left empty: status needs ids only
  std::vector<OutboxItem> deliveries;         // bundle left empty
};

struct OutboxCounts {
  std::int64_t queued = 0, retrying = 0, delivered = 0, dead = 0, superseded = 0, cancelled = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  /// Applies every write in one transaction (one fsync): all or nothing. For each record: same
  /// content hash and same state as the current version -> Unchanged (nothing written); else a
  /// new version, its resources replaced, older pending outbox items of the record superseded,
  /// new items queued. (Same content, new state: an unmapped or invalid record resent after its
  /// mapper or profile was fixed.)
  virtual Result<std::vector<IngestOutcome>> ingest(const std::vector<IngestWrite>& writes, SystemTime now) = 0;

  virtual Result<std::optional<RecordStatus>> recordStatus(std::string_view clinic, std::string_view record_id) = 0;

  /// Items of `partner` due at `now`, oldest first, at most one per patient and only when no
  /// earlier item of that patient is still pending (per-patient order is kept).
  virtual Result<std::vector<OutboxItem>> dueItems(std::string_view partner, SystemTime now, int limit) = 0;
  /// Earliest next_attempt_at among pending items of the partner (to sleep until then).
  virtual Result<std::optional<SystemTime>> nextDueTime(std::string_view partner) = 0;

  virtual Status markDelivered(std::int64_t item_id, const std::vector<DeliveredEntry>& entries, SystemTime now) = 0;
  virtual Status markRetry(std::int64_t item_id, int attempts, SystemTime next_attempt, std::string_view error,
                           SystemTime now) = 0;
  virtual Status markDead(std::int64_t item_id, int attempts, std::string_view error, std::string_view outcome,
                          SystemTime now) = 0;

  /// The item may no longer go to its partner; `reason` says why (no PHI).
  virtual Status markCancelled(std::int64_t item_id, std::string_view reason, SystemTime now) = 0;

  virtual Result<OutboxCounts> outboxCounts(std::string_view partner) = 0;
  /// A random secret of this deployment, made (32 bytes, hex) the first time it is asked for.
  virtual Result<std::string> deploymentSecret(std::string_view name) = 0;

  /// Cheap liveness probe of the database (for /readyz).
  virtual Status ping() = 0;
};

struct SqliteOptions {
  std::string path;
  bool synchronous_full = true;
  int read_pool_size = 16;  // at least I/O threads + partner workers + the committer
};

/// Opens (creating if needed) the SQLite file in WAL mode and brings its schema up to date.
Result<std::unique_ptr<Store>> openSqliteStore(const SqliteOptions& options);

}  // namespace gw::store

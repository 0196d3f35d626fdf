#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/SessionPool.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "store/migrations.hpp"
#include "store/store.hpp"

namespace gw::store {
namespace {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;

Error storageError(std::string_view what, const Poco::Exception& e) {
  return makeError(ErrorCode::Storage, std::string(what) + ": " + e.displayText(), "sqlite",
                   "check the disk and the database file; the request can be retried");
}

std::string str(const RecordSet& rs, std::size_t col, std::size_t row) {
  const auto& v = rs.value(col, row);
  return v.isEmpty() ? std::string() : v.convert<std::string>();
}

std::int64_t i64(const RecordSet& rs, std::size_t col, std::size_t row) {
  const auto& v = rs.value(col, row);
  return v.isEmpty() ? 0 : v.convert<Poco::Int64>();
}

void configureSession(Session& s, bool synchronous_full) {
  // busy_timeout first: other connections may hold the write lock while this one starts.
  s << "PRAGMA busy_timeout=10000", now;
  s << "PRAGMA foreign_keys=ON", now;
  s << (synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"), now;
  // Index pages of the inbox and outbox stay hot: a 32 MB page cache and memory-mapped reads
  // halve the pread/pwrite traffic of a grouped ingest commit.
  s << "PRAGMA cache_size=-32768", now;
  s << "PRAGMA mmap_size=268435456", now;
  s << "PRAGMA temp_store=MEMORY", now;
}

class SqliteStore final : public Store {
 public:
  SqliteStore(const SqliteOptions& options)
      : options_(options),
        writer_("SQLite", options.path),
        readers_("SQLite", options.path, 1, options.read_pool_size, 60) {}

  Status init() {
    try {
      // Larger pages: a record, its resources and its Bundles are a few KB, so 16 KB pages mean
      // fewer page writes per commit (only effective when the file is created).
      writer_ << "PRAGMA page_size=16384", now;
      std::string mode;
      writer_ << "PRAGMA journal_mode=WAL", into(mode), now;
      if (mode != "wal") {
        return makeError(ErrorCode::Storage, "SQLite refused WAL mode (got '" + mode + "')", options_.path,
                         "put the database on a local file system");
      }
      configureSession(writer_, options_.synchronous_full);
      return applyMigrations(writer_);
    } catch (const Poco::Exception& e) {
      return storageError("opening the database", e);
    }
  }

  Result<std::vector<IngestOutcome>> ingest(const std::vector<IngestWrite>& writes, SystemTime now_time) override {
    const std::int64_t now_ms = toUnixMillis(now_time);
    std::lock_guard lock(write_mutex_);
    std::vector<IngestOutcome> outcomes;
    outcomes.reserve(writes.size());
    try {
      writer_.begin();
      for (const auto& w : writes) outcomes.push_back(ingestOne(w, now_ms));
      writer_.commit();
    } catch (const Poco::Exception& e) {
      rollback();
      return storageError("storing records", e);
    }
    return outcomes;
  }

  Result<std::optional<RecordStatus>> recordStatus(std::string_view clinic_v, std::string_view record_id_v) override {
    try {
      Session s = reader();
      std::string clinic(clinic_v), record_id(record_id_v);
      Statement rec(s);
      rec << "SELECT record_type, version, state, error, received_at, updated_at FROM records "
             "WHERE clinic=? AND record_id=?",
          use(clinic), use(record_id), now;
      RecordSet rs(rec);
      if (rs.rowCount() == 0) return std::optional<RecordStatus>();
      RecordStatus st;
      st.clinic = clinic;
      st.record_id = record_id;
      st.record_type = str(rs, 0, 0);
      st.version = static_cast<int>(i64(rs, 1, 0));
      st.state = parseRecordState(str(rs, 2, 0));
      st.error = str(rs, 3, 0);
      st.received_at_ms = i64(rs, 4, 0);
      st.updated_at_ms = i64(rs, 5, 0);

      Statement res(s);
      res << "SELECT resource_type, resource_id, identifier_system, identifier_value FROM resources "
             "WHERE clinic=? AND record_id=? ORDER BY resource_type, resource_id",
          use(clinic), use(record_id), now;
      RecordSet rr(res);
      for (std::size_t i = 0; i < rr.rowCount(); ++i) {
        st.resources.push_back({str(rr, 0, i), str(rr, 1, i), str(rr, 2, i), str(rr, 3, i), {}});
      }

      Statement out(s);
      out << "SELECT id, partner_id, record_version, state, attempts, next_attempt_at, last_error, outcome, "
             "updated_at FROM outbox WHERE clinic=? AND record_id=? ORDER BY id",
          use(clinic), use(record_id), now;
      RecordSet ro(out);
      for (std::size_t i = 0; i < ro.rowCount(); ++i) {
        OutboxItem item;
        item.id = i64(ro, 0, i);
        item.partner_id = str(ro, 1, i);
        item.clinic = clinic;
        item.record_id = record_id;
        item.record_version = static_cast<int>(i64(ro, 2, i));
        item.state = parseOutboxState(str(ro, 3, i)).value_or(OutboxState::Queued);
        item.attempts = static_cast<int>(i64(ro, 4, i));
        item.next_attempt_at_ms = i64(ro, 5, i);
        item.last_error = str(ro, 6, i);
        item.outcome = str(ro, 7, i);
        item.updated_at_ms = i64(ro, 8, i);
        item.entries = deliveredEntries(s, item.id);
        st.deliveries.push_back(std::move(item));
      }
      return std::optional<RecordStatus>(std::move(st));
    } catch (const Poco::Exception& e) {
      return storageError("reading record status", e);
    }
  }

  Result<std::vector<OutboxItem>> dueItems(std::string_view partner_v, SystemTime now_time, int limit) override {
    try {
      Session s = reader();
      std::string partner(partner_v);
      Poco::Int64 now_ms = toUnixMillis(now_time);
      Statement q(s);
      // The NOT EXISTS keeps per-patient order: a later item waits while an earlier one is pending.
      q << "SELECT o.id, o.clinic, o.record_id, o.record_version, o.patient_key, o.bundle, o.state, o.attempts, "
           "o.entry_count FROM outbox o WHERE o.partner_id=? AND o.state IN ('queued','retrying') AND o.next_attempt_at<=? "
           "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partner_id=o.partner_id AND p.patient_key=o.patient_key "
           "AND p.id<o.id AND p.state IN ('queued','retrying')) ORDER BY o.id LIMIT ?",
          use(partner), use(now_ms), bind(limit), now;
      RecordSet rs(q);
      std::vector<OutboxItem> items;
      items.reserve(rs.rowCount());
      for (std::size_t i = 0; i < rs.rowCount(); ++i) {
        OutboxItem item;
        item.id = i64(rs, 0, i);
        item.partner_id = partner;
        item.clinic = str(rs, 1, i);
        item.record_id = str(rs, 2, i);
        item.record_version = static_cast<int>(i64(rs, 3, i));
        item.patient_key = str(rs, 4, i);
        item.bundle = str(rs, 5, i);
        item.state = parseOutboxState(str(rs, 6, i)).value_or(OutboxState::Queued);
        item.attempts = static_cast<int>(i64(rs, 7, i));
        item.entry_count = static_cast<int>(i64(rs, 8, i));
        items.push_back(std::move(item));
      }
      return items;
    } catch (const Poco::Exception& e) {
      return storageError("reading the outbox", e);
    }
  }

  Result<std::optional<SystemTime>> nextDueTime(std::string_view partner_v) override {
    try {
      Session s = reader();
      std::string partner(partner_v);
      Statement q(s);
      // Only items dueItems could return count: a later item of a patient waiting behind a retrying
      // one is not due, whatever its own time says (else the worker would spin during an outage).
      q << "SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.partner_id=? AND o.state IN ('queued','retrying') "
           "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partner_id=o.partner_id AND p.patient_key=o.patient_key "
           "AND p.id<o.id AND p.state IN ('queued','retrying'))",
          use(partner), now;
      RecordSet rs(q);
      if (rs.rowCount() == 0 || rs.value(0, 0).isEmpty()) return std::optional<SystemTime>();
      return std::optional<SystemTime>(fromUnixMillis(i64(rs, 0, 0)));
    } catch (const Poco::Exception& e) {
      return storageError("reading the outbox", e);
    }
  }

  Status markDelivered(std::int64_t item_id, const std::vector<DeliveredEntry>& entries, SystemTime now_time) override {
    Poco::Int64 id = item_id;
    Poco::Int64 now_ms = toUnixMillis(now_time);
    std::lock_guard lock(write_mutex_);
    try {
      writer_.begin();
      writer_ << "UPDATE outbox SET state='delivered', attempts=attempts+1, updated_at=?, delivered_at=?, "
                 "last_error='' WHERE id=?",
          use(now_ms), use(now_ms), use(id), now;
      writer_ << "DELETE FROM deliveries WHERE outbox_id=?", use(id), now;
      for (std::size_t i = 0; i < entries.size(); ++i) {
        int index = static_cast<int>(i);
        std::string status = entries[i].status, location = entries[i].location, etag = entries[i].etag;
        writer_ << "INSERT INTO deliveries(outbox_id, entry_index, status, location, etag) VALUES(?,?,?,?,?)",
            use(id), use(index), use(status), use(location), use(etag), now;
      }
      writer_.commit();
      return ok();
    } catch (const Poco::Exception& e) {
      rollback();
      return storageError("recording a delivery", e);
    }
  }

  Status markRetry(std::int64_t item_id, int attempts, SystemTime next_attempt, std::string_view error,
                   SystemTime now_time) override {
    return updateState(item_id, "retrying", attempts, toUnixMillis(next_attempt), error, {}, now_time);
  }

  Status markDead(std::int64_t item_id, int attempts, std::string_view error, std::string_view outcome,
                  SystemTime now_time) override {
    return updateState(item_id, "dead", attempts, 0, error, outcome, now_time);
  }

  Status markCancelled(std::int64_t item_id, std::string_view reason, SystemTime now_time) override {
    return updateState(item_id, "cancelled", -1, 0, reason, {}, now_time);
  }

  Result<OutboxCounts> outboxCounts(std::string_view partner_v) override {
    try {
      Session s = reader();
      std::string partner(partner_v);
      Statement q(s);
      q << "SELECT state, COUNT(*) FROM outbox WHERE partner_id=? GROUP BY state", use(partner), now;
      RecordSet rs(q);
      OutboxCounts counts;
      for (std::size_t i = 0; i < rs.rowCount(); ++i) {
        const auto state = parseOutboxState(str(rs, 0, i));
        const std::int64_t n = i64(rs, 1, i);
        if (!state) continue;
        switch (*state) {
          case OutboxState::Queued: counts.queued = n; break;
          case OutboxState::Retrying: counts.retrying = n; break;
          case OutboxState::Delivered: counts.delivered = n; break;
          case OutboxState::Dead: counts.dead = n; break;
          case OutboxState::Superseded: counts.superseded = n; break;
          case OutboxState::Cancelled: counts.cancelled = n; break;
        }
      }
      return counts;
    } catch (const Poco::Exception& e) {
      return storageError("counting the outbox", e);
    }
  }

  Result<std::string> deploymentSecret(std::string_view name_v) override {
    std::string name(name_v);
    std::string candidate = ids::randomHex(32);
    std::lock_guard lock(write_mutex_);
    try {
      // Insert-if-absent then read: whoever made it first wins, every caller sees the same value.
      writer_ << "INSERT OR IGNORE INTO deployment_secrets(name, value) VALUES(?,?)", use(name), use(candidate), now;
      std::string value;
      writer_ << "SELECT value FROM deployment_secrets WHERE name=?", use(name), into(value), now;
      return value;
    } catch (const Poco::Exception& e) {
      return storageError("reading a deployment secret", e);
    }
  }

  Status ping() override {
    try {
      Session s = reader();
      int one = 0;
      s << "SELECT 1", into(one), now;
      return ok();
    } catch (const Poco::Exception& e) {
      return storageError("database ping", e);
    }
  }

 private:
  // A pooled read connection. Poco's pool throws when exhausted rather than waiting; the pool
  // is sized for every thread that reads (see SqliteOptions), so that means a bug or overload,
  // reported as a storage error by the callers' catch.
  Session reader() {
    Session s = readers_.get();
    s << "PRAGMA busy_timeout=10000", now;
    return s;
  }

  void rollback() {
    try {
      if (writer_.isTransaction()) writer_.rollback();
    } catch (const Poco::Exception&) {
      // The connection is unusable if rollback fails; the next begin() reports it.
    }
  }

  static RecordState parseRecordState(const std::string& s) {
    if (s == "mapped") return RecordState::Mapped;
    if (s == "unmapped") return RecordState::Unmapped;
    if (s == "invalid") return RecordState::Invalid;
    return RecordState::Received;
  }

  std::vector<DeliveredEntry> deliveredEntries(Session& s, Poco::Int64 id) {
    Statement q(s);
    q << "SELECT status, location, etag FROM deliveries WHERE outbox_id=? ORDER BY entry_index", use(id), now;
    RecordSet rs(q);
    std::vector<DeliveredEntry> entries;
    for (std::size_t i = 0; i < rs.rowCount(); ++i) entries.push_back({str(rs, 0, i), str(rs, 1, i), str(rs, 2, i)});
    return entries;
  }

  // The ingest statements, prepared once on the writer connection and re-executed per record:
  // compiling SQL per record cost more than the inserts themselves. Each statement is bound to
  // the member variables below; ingestOne assigns them and executes.
  struct IngestStatements {
    std::string clinic, record_id, type, hash, payload, patient, state, error;
    std::string resource_type, resource_id, identifier_system, identifier_value, body;
    std::string partner, bundle;
    int version = 0, entries = 0;
    Poco::Int64 now_ms = 0;
    std::vector<std::string> found_hash;
    std::vector<int> found_version;
    std::vector<std::string> found_state;
    Statement select, insert_version, insert_record, update_record, supersede, delete_resources, insert_resource,
        insert_outbox;

    explicit IngestStatements(Session& s)
        : select(s), insert_version(s), insert_record(s), update_record(s), supersede(s), delete_resources(s),
          insert_resource(s), insert_outbox(s) {
      select << "SELECT content_hash, version, state FROM records WHERE clinic=? AND record_id=?", use(clinic),
          use(record_id), into(found_hash), into(found_version), into(found_state);
      insert_version << "INSERT INTO record_versions(clinic, record_id, version, content_hash, payload, received_at) "
                        "VALUES(?,?,?,?,?,?)",
          use(clinic), use(record_id), use(version), use(hash), use(payload), use(now_ms);
      insert_record << "INSERT INTO records(clinic, record_id, record_type, version, content_hash, state, error, "
                       "patient_key, received_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?)",
          use(clinic), use(record_id), use(type), use(version), use(hash), use(state), use(error), use(patient),
          use(now_ms), use(now_ms);
      update_record << "UPDATE records SET record_type=?, version=?, content_hash=?, state=?, error=?, patient_key=?, "
                       "updated_at=? WHERE clinic=? AND record_id=?",
          use(type), use(version), use(hash), use(state), use(error), use(patient), use(now_ms), use(clinic),
          use(record_id);
      // A newer version replaces what is still waiting; what was delivered stays as history.
      supersede << "UPDATE outbox SET state='superseded', updated_at=? WHERE clinic=? AND record_id=? "
                   "AND state IN ('queued','retrying')",
          use(now_ms), use(clinic), use(record_id);
      delete_resources << "DELETE FROM resources WHERE clinic=? AND record_id=?", use(clinic), use(record_id);
      insert_resource << "INSERT OR REPLACE INTO resources(resource_type, resource_id, clinic, record_id, "
                         "record_version, identifier_system, identifier_value, body) VALUES(?,?,?,?,?,?,?,?)",
          use(resource_type), use(resource_id), use(clinic), use(record_id), use(version), use(identifier_system),
          use(identifier_value), use(body);
      insert_outbox << "INSERT INTO outbox(partner_id, clinic, record_id, record_version, patient_key, bundle, "
                       "entry_count, state, attempts, next_attempt_at, last_error, outcome, created_at, updated_at) "
                       "VALUES(?,?,?,?,?,?,?,'queued',0,?,'','',?,?)",
          use(partner), use(clinic), use(record_id), use(version), use(patient), use(bundle), use(entries),
          use(now_ms), use(now_ms), use(now_ms);
    }
  };

  // Runs inside the batch transaction; throws Poco::Exception on database failure.
  IngestOutcome ingestOne(const IngestWrite& w, Poco::Int64 now_ms) {
    if (!ingest_statements_) ingest_statements_ = std::make_unique<IngestStatements>(writer_);
    auto& st = *ingest_statements_;
    st.clinic = w.clinic;
    st.record_id = w.record_id;
    st.now_ms = now_ms;
    st.found_hash.clear();
    st.found_version.clear();
    st.found_state.clear();
    st.select.execute();
    const int current_version = st.found_version.empty() ? 0 : st.found_version.front();
    // Same content and same outcome: nothing to do. Same content with another outcome (a record
    // kept as unmapped or invalid, resent after its mapper or profile was fixed and reloaded) is
    // processed again as a new version, so it is not stuck forever.
    if (current_version > 0 && st.found_hash.front() == w.content_hash &&
        st.found_state.front() == recordStateName(w.state)) {
      return {IngestDisposition::Unchanged, current_version};
    }
    st.version = current_version + 1;
    st.type = w.record_type;
    st.hash = w.content_hash;
    st.payload = w.payload;
    st.patient = w.patient_key;
    st.state = std::string(recordStateName(w.state));
    st.error = w.error;
    st.insert_version.execute();
    if (current_version == 0) {
      st.insert_record.execute();
    } else {
      st.update_record.execute();
      st.supersede.execute();
      st.delete_resources.execute();
    }
    for (const auto& r : w.resources) {
      st.resource_type = r.resource_type;
      st.resource_id = r.resource_id;
      st.identifier_system = r.identifier_system;
      st.identifier_value = r.identifier_value;
      st.body = r.body;
      st.insert_resource.execute();
    }
    for (const auto& o : w.outbox) {
      st.partner = o.partner_id;
      st.bundle = o.bundle;
      st.entries = o.entry_count;
      st.insert_outbox.execute();
    }
    return {current_version == 0 ? IngestDisposition::Created : IngestDisposition::NewVersion, st.version};
  }

  Status updateState(std::int64_t item_id, const char* state_name, int attempts, std::int64_t next_ms,
                     std::string_view error_v, std::string_view outcome_v, SystemTime now_time) {
    Poco::Int64 id = item_id, next = next_ms, now_ms = toUnixMillis(now_time);
    std::string state(state_name), error(error_v), outcome(outcome_v);
    std::lock_guard lock(write_mutex_);
    try {
      // Only pending items change: a newer version may have superseded this one while it was in flight.
      writer_ << "UPDATE outbox SET state=?, attempts=CASE WHEN ?<0 THEN attempts ELSE ? END, next_attempt_at=?, "
                 "last_error=?, outcome=?, updated_at=? WHERE id=? AND state IN ('queued','retrying')",
          use(state), bind(attempts), bind(attempts), use(next), use(error), use(outcome), use(now_ms), use(id), now;
      return ok();
    } catch (const Poco::Exception& e) {
      return storageError("updating the outbox", e);
    }
  }

  SqliteOptions options_;
  std::mutex write_mutex_;  // one writer connection; SQLite serializes writers anyway
  Session writer_;
  Poco::Data::SessionPool readers_;
  std::unique_ptr<IngestStatements> ingest_statements_;  // after writer_: destroyed first
};

}  // namespace

std::string_view recordStateName(RecordState s) {
  switch (s) {
    case RecordState::Received: return "received";
    case RecordState::Mapped: return "mapped";
    case RecordState::Unmapped: return "unmapped";
    case RecordState::Invalid: return "invalid";
  }
  return "received";
}

std::string_view outboxStateName(OutboxState s) {
  switch (s) {
    case OutboxState::Queued: return "queued";
    case OutboxState::Retrying: return "retrying";
    case OutboxState::Delivered: return "delivered";
    case OutboxState::Dead: return "dead";
    case OutboxState::Superseded: return "superseded";
    case OutboxState::Cancelled: return "cancelled";
  }
  return "queued";
}

std::optional<OutboxState> parseOutboxState(std::string_view s) {
  if (s == "queued") return OutboxState::Queued;
  if (s == "retrying") return OutboxState::Retrying;
  if (s == "delivered") return OutboxState::Delivered;
  if (s == "dead") return OutboxState::Dead;
  if (s == "superseded") return OutboxState::Superseded;
  if (s == "cancelled") return OutboxState::Cancelled;
  return std::nullopt;
}

std::string_view dispositionName(IngestDisposition d) {
  switch (d) {
    case IngestDisposition::Created: return "created";
    case IngestDisposition::NewVersion: return "new-version";
    case IngestDisposition::Unchanged: return "unchanged";
  }
  return "created";
}

Result<std::unique_ptr<Store>> openSqliteStore(const SqliteOptions& options) {
  static std::once_flag registered;
  std::call_once(registered, [] { Poco::Data::SQLite::Connector::registerConnector(); });
  std::error_code ec;
  const auto parent = std::filesystem::path(options.path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return makeError(ErrorCode::Storage, "cannot create the database folder: " + ec.message(), parent.string(),
                     "create it or point storage.sqlite_path elsewhere");
  }
  try {
    auto store = std::make_unique<SqliteStore>(options);
    GW_TRY(store->init());
    // The database holds clinical records: readable by the gateway's user only.
    std::filesystem::permissions(options.path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace, ec);
    GW_LOG(Info, Store, "opened").kv("backend", "sqlite").kv("schema_version", kSchemaVersion);
    return std::unique_ptr<Store>(std::move(store));
  } catch (const Poco::Exception& e) {
    return storageError("opening " + options.path, e);
  }
}

}  // namespace gw::store

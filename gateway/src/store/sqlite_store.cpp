#include <Poco/Data/LOB.h>
#include <Poco/Data/RecordSet.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/SessionPool.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "store/keyring.hpp"
#include "store/migrations.hpp"
#include "store/store.hpp"

namespace gw::store {
namespace {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;
using privacy::DataClass;

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

std::string_view blobView(const Poco::Data::BLOB& b) {
  return b.size() == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char*>(b.rawContent()), b.size());
}

// Copies bytes into a bound BLOB in place, reusing its buffer (assignRaw allocates anew).
void setBlob(Poco::Data::BLOB& b, std::string_view bytes) {
  b.resize(bytes.size());
  if (!bytes.empty()) std::memcpy(b.rawContent(), bytes.data(), bytes.size());
}

// The row identities payloads are bound to (keyring.hpp: the AAD). Changing one makes every
// stored payload of that column unreadable: never change them, add a new envelope version.
std::string recordPayloadContext(std::string_view clinic, std::string_view record_id, int version) {
  return payloadContext({"record_versions.payload", clinic, record_id, std::to_string(version)});
}
std::string resourceContext(std::string_view column, std::string_view type, std::string_view id) {
  return payloadContext({column, type, id});
}
std::string bundleContext(std::string_view partner, std::string_view clinic, std::string_view record_id, int version) {
  return payloadContext({"outbox.bundle", partner, clinic, record_id, std::to_string(version)});
}
std::string outcomeContext(std::int64_t item_id) {
  return payloadContext({"outbox.outcome", std::to_string(item_id)});
}

// A payload that does not open names the class (from the keyring) and the row (here).
Error payloadError(Error e, std::string where) {
  e.where = std::move(where);
  return e;
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
  // Deleted rows (purged or replaced payloads) are zeroed where that costs no extra I/O.
  s << "PRAGMA secure_delete=FAST", now;
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
      GW_TRY(applyMigrations(writer_));
    } catch (const Poco::Exception& e) {
      return storageError("opening the database", e);
    }
    auto keyring = Keyring::open(writer_, options_.master_key, std::chrono::system_clock::now());
    options_.master_key = crypto::SecretKey();  // only the unwrapped data keys stay in memory
    if (!keyring) {
      Error e = keyring.error();
      e.where = options_.path + " (" + e.where + ")";
      return e;
    }
    keyring_ = std::move(keyring).value();
    return ok();
  }

  Result<std::vector<IngestOutcome>> ingest(const std::vector<IngestWrite>& writes, SystemTime now_time) override {
    const std::int64_t now_ms = toUnixMillis(now_time);
    std::lock_guard lock(write_mutex_);
    std::vector<IngestOutcome> outcomes;
    outcomes.reserve(writes.size());
    try {
      writer_.begin();
      std::vector<AuditEntry> audit;
      for (const auto& w : writes) {
        auto outcome = ingestOne(w, now_ms);
        if (!outcome) {
          rollback();
          return outcome.error();
        }
        if (outcome.value().disposition != IngestDisposition::Unchanged) {
          for (auto e : w.audit) {
            if (e.kind == audit_kind::kConsent) e.consent_version = outcome.value().consent_version;
            audit.push_back(std::move(e));
          }
        }
        outcomes.push_back(outcome.value());
      }
      if (auto appended = audit_.append(writer_, audit); !appended) {
        rollback();
        return appended.error();
      }
      writer_.commit();
      audit_.committed();
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

      // Payload columns hold BLOB envelopes: read with explicit BLOB extraction (RecordSet would
      // read them as text, by the declared column type, and stop at the first zero byte).
      std::vector<std::string> types, resource_ids, systems, resource_classes;
      std::vector<Poco::Data::BLOB> values;
      s << "SELECT resource_type, resource_id, identifier_system, identifier_value, data_class FROM resources "
           "WHERE clinic=? AND record_id=? ORDER BY resource_type, resource_id",
          use(clinic), use(record_id), into(types), into(resource_ids), into(systems), into(values),
          into(resource_classes), now;
      for (std::size_t i = 0; i < types.size(); ++i) {
        MappedResourceRow row{types[i], resource_ids[i], systems[i], {}, {}, classOf(resource_classes[i])};
        auto value = keyring_.open(blobView(values[i]),
                                   resourceContext("resources.identifier_value", types[i], resource_ids[i]));
        if (!value) return payloadError(value.error(), "resources " + types[i] + "/" + resource_ids[i] + " identifier");
        row.identifier_value = std::move(value).value();
        st.resources.push_back(std::move(row));
      }

      std::vector<Poco::Int64> item_ids, next_attempts, updated;
      std::vector<std::string> partners, states, errors, item_classes;
      std::vector<int> versions, attempts;
      std::vector<Poco::Data::BLOB> outcomes;
      s << "SELECT id, partner_id, record_version, state, attempts, next_attempt_at, last_error, outcome, "
           "updated_at, data_class FROM outbox WHERE clinic=? AND record_id=? ORDER BY id",
          use(clinic), use(record_id), into(item_ids), into(partners), into(versions), into(states), into(attempts),
          into(next_attempts), into(errors), into(outcomes), into(updated), into(item_classes), now;
      for (std::size_t i = 0; i < item_ids.size(); ++i) {
        OutboxItem item;
        item.id = item_ids[i];
        item.partner_id = partners[i];
        item.clinic = clinic;
        item.record_id = record_id;
        item.record_version = versions[i];
        item.state = parseOutboxState(states[i]).value_or(OutboxState::Queued);
        item.attempts = attempts[i];
        item.next_attempt_at_ms = next_attempts[i];
        item.last_error = errors[i];
        if (outcomes[i].size() > 0) {
          auto outcome = keyring_.open(blobView(outcomes[i]), outcomeContext(item.id));
          if (!outcome) return payloadError(outcome.error(), "outbox item " + std::to_string(item.id) + " outcome");
          item.outcome = std::move(outcome).value();
        }
        item.updated_at_ms = updated[i];
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
      std::vector<Poco::Int64> ids;
      std::vector<std::string> clinics, record_ids, patients, states, disclosures;
      std::vector<int> versions, attempts, entry_counts;
      std::vector<Poco::Data::BLOB> bundles;
      // The NOT EXISTS keeps per-patient order: a later item waits while an earlier one is pending.
      s << "SELECT o.id, o.clinic, o.record_id, o.record_version, o.patient_key, o.bundle, o.state, o.attempts, "
           "o.entry_count, o.disclosure FROM outbox o WHERE o.partner_id=? AND o.state IN ('queued','retrying') AND o.next_attempt_at<=? "
           "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partner_id=o.partner_id AND p.patient_key=o.patient_key "
           "AND p.id<o.id AND p.state IN ('queued','retrying')) ORDER BY o.id LIMIT ?",
          use(partner), use(now_ms), bind(limit), into(ids), into(clinics), into(record_ids), into(versions),
          into(patients), into(bundles), into(states), into(attempts), into(entry_counts), into(disclosures), now;
      std::vector<OutboxItem> items;
      items.reserve(ids.size());
      for (std::size_t i = 0; i < ids.size(); ++i) {
        OutboxItem item;
        item.id = ids[i];
        item.partner_id = partner;
        item.clinic = std::move(clinics[i]);
        item.record_id = std::move(record_ids[i]);
        item.record_version = versions[i];
        item.patient_key = std::move(patients[i]);
        auto bundle = keyring_.open(blobView(bundles[i]),
                                    bundleContext(partner, item.clinic, item.record_id, item.record_version));
        if (!bundle) return payloadError(bundle.error(), "outbox item " + std::to_string(item.id) + " bundle");
        item.bundle = std::move(bundle).value();
        item.state = parseOutboxState(states[i]).value_or(OutboxState::Queued);
        item.attempts = attempts[i];
        item.entry_count = entry_counts[i];
        item.disclosure = std::move(disclosures[i]);
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

  Status markDelivered(std::int64_t item_id, const std::vector<DeliveredEntry>& entries, SystemTime now_time,
                       std::vector<AuditEntry> audit) override {
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
      if (auto appended = audit_.append(writer_, audit); !appended) {
        rollback();
        return appended.error();
      }
      writer_.commit();
      audit_.committed();
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
                  SystemTime now_time, std::vector<AuditEntry> audit) override {
    return updateState(item_id, "dead", attempts, 0, error, outcome, now_time, std::move(audit));
  }

  Status markCancelled(std::int64_t item_id, std::string_view reason, SystemTime now_time,
                       std::vector<AuditEntry> audit) override {
    return updateState(item_id, "cancelled", -1, 0, reason, {}, now_time, std::move(audit));
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

  Result<std::optional<std::string>> recordPayload(std::string_view clinic_v, std::string_view record_id_v,
                                                   int version) override {
    try {
      Session s = reader();
      std::string clinic(clinic_v), record_id(record_id_v);
      std::vector<Poco::Data::BLOB> payloads;
      s << "SELECT payload FROM record_versions WHERE clinic=? AND record_id=? AND version=?", use(clinic),
          use(record_id), bind(version), into(payloads), now;
      if (payloads.empty()) return std::optional<std::string>();
      auto plain = keyring_.open(blobView(payloads.front()), recordPayloadContext(clinic, record_id, version));
      if (!plain) return payloadError(plain.error(), "record_versions version " + std::to_string(version) + " payload");
      return std::optional<std::string>(std::move(plain).value());
    } catch (const Poco::Exception& e) {
      return storageError("reading a record", e);
    }
  }

  Result<std::optional<std::string>> resourceBody(std::string_view type_v, std::string_view id_v) override {
    try {
      Session s = reader();
      std::string type(type_v), id(id_v);
      std::vector<Poco::Data::BLOB> bodies;
      s << "SELECT body FROM resources WHERE resource_type=? AND resource_id=?", use(type), use(id), into(bodies), now;
      if (bodies.empty()) return std::optional<std::string>();
      auto plain = keyring_.open(blobView(bodies.front()), resourceContext("resources.body", type, id));
      if (!plain) return payloadError(plain.error(), "resources " + type + "/" + id + " body");
      return std::optional<std::string>(std::move(plain).value());
    } catch (const Poco::Exception& e) {
      return storageError("reading a resource", e);
    }
  }

  Result<std::vector<ResourceKey>> resourceKeys(std::string_view clinic_v, std::string_view record_id_v) override {
    try {
      Session s = reader();
      std::string clinic(clinic_v), record_id(record_id_v);
      std::vector<std::string> types, ids, systems, classes;
      std::vector<Poco::Data::BLOB> values;
      s << "SELECT resource_type, resource_id, identifier_system, identifier_value, data_class FROM resources "
           "WHERE clinic=? AND record_id=? ORDER BY resource_type, resource_id",
          use(clinic), use(record_id), into(types), into(ids), into(systems), into(values), into(classes), now;
      std::vector<ResourceKey> keys;
      for (std::size_t i = 0; i < types.size(); ++i) {
        auto value = keyring_.open(blobView(values[i]), resourceContext("resources.identifier_value", types[i], ids[i]));
        if (!value) return payloadError(value.error(), "resources " + types[i] + "/" + ids[i] + " identifier");
        keys.push_back({types[i], ids[i], systems[i], std::move(value).value(), classOf(classes[i])});
      }
      return keys;
    } catch (const Poco::Exception& e) {
      return storageError("reading a record's resources", e);
    }
  }

  Result<std::vector<OutboxItem>> pendingItems(std::string_view partner_v, std::string_view patient_v) override {
    try {
      Session s = reader();
      std::string partner(partner_v), patient(patient_v);
      std::vector<Poco::Int64> ids;
      std::vector<std::string> clinics, record_ids, states, disclosures;
      std::vector<int> versions, attempts, entry_counts;
      s << "SELECT id, clinic, record_id, record_version, state, attempts, entry_count, disclosure FROM outbox "
           "WHERE partner_id=? AND patient_key=? AND state IN ('queued','retrying') ORDER BY id",
          use(partner), use(patient), into(ids), into(clinics), into(record_ids), into(versions), into(states),
          into(attempts), into(entry_counts), into(disclosures), now;
      std::vector<OutboxItem> items;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        OutboxItem item;
        item.id = ids[i];
        item.partner_id = partner;
        item.clinic = std::move(clinics[i]);
        item.record_id = std::move(record_ids[i]);
        item.record_version = versions[i];
        item.patient_key = patient;
        item.state = parseOutboxState(states[i]).value_or(OutboxState::Queued);
        item.attempts = attempts[i];
        item.entry_count = entry_counts[i];
        item.disclosure = std::move(disclosures[i]);
        items.push_back(std::move(item));
      }
      return items;
    } catch (const Poco::Exception& e) {
      return storageError("reading the outbox", e);
    }
  }

  Result<std::vector<HeldRecord>> recordsWithoutItem(std::string_view partner_v, std::string_view patient_v) override {
    try {
      Session s = reader();
      std::string partner(partner_v), patient(patient_v);
      std::vector<std::string> clinics, record_ids;
      std::vector<int> versions;
      std::vector<Poco::Data::BLOB> payloads;
      s << "SELECT r.clinic, r.record_id, r.version, v.payload FROM records r JOIN record_versions v "
           "ON v.clinic=r.clinic AND v.record_id=r.record_id AND v.version=r.version "
           "WHERE r.patient_key=? AND r.state='mapped' AND r.record_type<>'consent' AND NOT EXISTS ("
           "SELECT 1 FROM outbox o WHERE o.partner_id=? AND o.clinic=r.clinic AND o.record_id=r.record_id "
           "AND o.record_version=r.version AND o.state IN ('queued','retrying','delivered','dead')) "
           "ORDER BY r.received_at, r.clinic, r.record_id",
          use(patient), use(partner), into(clinics), into(record_ids), into(versions), into(payloads), now;
      std::vector<HeldRecord> held;
      for (std::size_t i = 0; i < clinics.size(); ++i) {
        auto payload = keyring_.open(blobView(payloads[i]), recordPayloadContext(clinics[i], record_ids[i], versions[i]));
        if (!payload) return payloadError(payload.error(), "record_versions payload");
        held.push_back({clinics[i], record_ids[i], versions[i], std::move(payload).value()});
      }
      return held;
    } catch (const Poco::Exception& e) {
      return storageError("reading held records", e);
    }
  }

  Status enqueue(const EnqueueWrite& w, SystemTime now_time) override {
    Poco::Int64 now_ms = toUnixMillis(now_time);
    std::lock_guard lock(write_mutex_);
    try {
      writer_.begin();
      std::vector<int> current;
      std::string clinic = w.clinic, record_id = w.record_id;
      writer_ << "SELECT version FROM records WHERE clinic=? AND record_id=?", use(clinic), use(record_id),
          into(current), now;
      if (current.empty() || current.front() != w.record_version) {
        writer_.rollback();
        return ok();  // the record moved on: its newer version was decided when it arrived
      }
      std::string patient = w.patient_key;
      int version = w.record_version;
      for (const auto& o : w.outbox) {
        const DataClass c = privacy::storageClass(o.classes);
        auto sealed = keyring_.seal(c, o.bundle, bundleContext(o.partner_id, clinic, record_id, version));
        if (!sealed) {
          rollback();
          return sealed.error();
        }
        Poco::Data::BLOB bundle;
        setBlob(bundle, sealed.value());
        std::string partner = o.partner_id, cls(privacy::className(c)), disclosure = o.disclosure;
        int entries = o.entry_count;
        writer_ << "INSERT INTO outbox(partner_id, clinic, record_id, record_version, patient_key, bundle, entry_count, "
                   "state, attempts, next_attempt_at, last_error, outcome, created_at, updated_at, data_class, disclosure) "
                   "VALUES(?,?,?,?,?,?,?,'queued',0,?,'','',?,?,?,?)",
            use(partner), use(clinic), use(record_id), use(version), use(patient), use(bundle), use(entries),
            use(now_ms), use(now_ms), use(now_ms), use(cls), use(disclosure), now;
      }
      std::vector<AuditEntry> audit = w.audit;
      if (auto appended = audit_.append(writer_, audit); !appended) {
        rollback();
        return appended.error();
      }
      writer_.commit();
      audit_.committed();
      return ok();
    } catch (const Poco::Exception& e) {
      rollback();
      return storageError("queueing items", e);
    }
  }

  Result<std::vector<StoredConsent>> consents(std::string_view patient_v) override {
    try {
      Session s = reader();
      Statement q(s);
      std::string patient(patient_v);
      const char* columns =
          "SELECT clinic, consent_id, version, patient_key, partner_id, status, purposes, classes, period_start, "
          "period_end, revoked_on, signed_on, resource_id, recorded_at, reconciled FROM consents";
      if (patient.empty()) {
        q << std::string(columns) + " ORDER BY recorded_at, clinic, consent_id, version", now;
      } else {
        q << std::string(columns) + " WHERE patient_key=? ORDER BY recorded_at, clinic, consent_id, version",
            use(patient), now;
      }
      RecordSet rs(q);
      std::vector<StoredConsent> out;
      out.reserve(rs.rowCount());
      for (std::size_t i = 0; i < rs.rowCount(); ++i) {
        StoredConsent c;
        c.row = {str(rs, 0, i), str(rs, 1, i), i64(rs, 2, i), str(rs, 3, i), str(rs, 4, i), str(rs, 5, i),
                 str(rs, 6, i), str(rs, 7, i), str(rs, 8, i), str(rs, 9, i), str(rs, 10, i), str(rs, 11, i),
                 str(rs, 12, i), i64(rs, 13, i)};
        c.reconciled = i64(rs, 14, i) != 0;
        out.push_back(std::move(c));
      }
      return out;
    } catch (const Poco::Exception& e) {
      return storageError("reading consents", e);
    }
  }

  Status markConsentReconciled(std::string_view clinic_v, std::string_view consent_v, std::int64_t version_v) override {
    std::lock_guard lock(write_mutex_);
    try {
      std::string clinic(clinic_v), consent_id(consent_v);
      Poco::Int64 version = version_v;
      writer_ << "UPDATE consents SET reconciled=1 WHERE clinic=? AND consent_id=? AND version=?", use(clinic),
          use(consent_id), use(version), now;
      return ok();
    } catch (const Poco::Exception& e) {
      return storageError("updating a consent", e);
    }
  }

  Status appendAudit(std::vector<AuditEntry> entries) override {
    if (entries.empty()) return ok();
    std::lock_guard lock(write_mutex_);
    try {
      writer_.begin();
      if (auto appended = audit_.append(writer_, entries); !appended) {
        rollback();
        return appended.error();
      }
      writer_.commit();
      audit_.committed();
      return ok();
    } catch (const Poco::Exception& e) {
      rollback();
      return storageError("writing the audit log", e);
    }
  }

  Result<VerifyReport> verifyAudit(const std::optional<ChainAnchor>& anchor) override {
    try {
      Session s = reader();
      return verifyChain(s, anchor);
    } catch (const Poco::Exception& e) {
      return storageError("reading the audit log", e);
    }
  }

  Result<AuditPage> queryAudit(const AuditQuery& query) override {
    try {
      Session s = reader();
      return store::queryAudit(s, query);
    } catch (const Poco::Exception& e) {
      return storageError("reading the audit log", e);
    }
  }

  Result<PurgeCounts> purgeExpired(SystemTime now_time, const Retention& retention) override {
    PurgeCounts total;
    const std::int64_t now_ms = toUnixMillis(now_time);
    for (DataClass c : {DataClass::General, DataClass::Sud, DataClass::Mh}) {
      const int days = retention.daysFor(c);
      if (days <= 0) continue;  // kept forever
      const Poco::Int64 cutoff = now_ms - static_cast<std::int64_t>(days) * 86'400'000;
      const std::string name(privacy::className(c));
      // Short transactions, the write lock released between them: ingest waits one batch at most.
      for (;;) {
        GW_TRY(auto batch, purgeBatch(name, cutoff));
        total.record_versions += batch.record_versions;
        total.resources += batch.resources;
        total.outbox_items += batch.outbox_items;
        total.records += batch.records;
        if (batch.record_versions + batch.resources + batch.outbox_items == 0) break;
      }
    }
    GW_LOG(Info, Store, "purged")
        .kv("record_versions", total.record_versions)
        .kv("resources", total.resources)
        .kv("outbox_items", total.outbox_items)
        .kv("records", total.records);
    return total;
  }

  Result<KeyRotation> rotateMasterKey(const crypto::SecretKey& current_master,
                                      const crypto::SecretKey& next_master) override {
    std::lock_guard lock(write_mutex_);
    auto rotation = Keyring::rotateMaster(writer_, current_master, next_master);
    if (!rotation) {
      Error e = rotation.error();
      e.where = options_.path + (e.where.empty() ? "" : " (" + e.where + ")");
      return e;
    }
    return rotation;
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

  static constexpr int kPurgeBatch = 500;

  // One purge transaction: up to kPurgeBatch expired rows of each kind for one class.
  Result<PurgeCounts> purgeBatch(std::string cls, Poco::Int64 cutoff) {
    std::lock_guard lock(write_mutex_);
    PurgeCounts n;
    try {
      writer_.begin();
      std::set<std::pair<std::string, std::string>> touched;  // (clinic, record_id)
      const auto remember = [&](std::vector<std::string>& clinics, std::vector<std::string>& record_ids) {
        for (std::size_t i = 0; i < clinics.size(); ++i) touched.emplace(std::move(clinics[i]), std::move(record_ids[i]));
      };
      int limit = kPurgeBatch;
      Poco::Int64 row = 0;
      {
        std::vector<Poco::Int64> rows;
        std::vector<std::string> clinics, record_ids;
        writer_ << "SELECT rowid, clinic, record_id FROM record_versions WHERE received_at<? AND data_class=? LIMIT ?",
            use(cutoff), use(cls), bind(limit), into(rows), into(clinics), into(record_ids), now;
        Statement del(writer_);
        del << "DELETE FROM record_versions WHERE rowid=?", use(row);
        for (auto r : rows) {
          row = r;
          n.record_versions += static_cast<std::int64_t>(del.execute());
        }
        remember(clinics, record_ids);
      }
      {
        std::vector<Poco::Int64> rows;
        std::vector<std::string> clinics, record_ids;
        writer_ << "SELECT rowid, clinic, record_id FROM resources WHERE stored_at<? AND data_class=? LIMIT ?",
            use(cutoff), use(cls), bind(limit), into(rows), into(clinics), into(record_ids), now;
        Statement del(writer_);
        del << "DELETE FROM resources WHERE rowid=?", use(row);
        for (auto r : rows) {
          row = r;
          n.resources += static_cast<std::int64_t>(del.execute());
        }
        remember(clinics, record_ids);
      }
      {
        // Terminal items only, aged from when they last changed (delivered, died, ...): queued and
        // retrying items are never purged, whatever their age. created_at<cutoff is implied by
        // updated_at<cutoff and lets the age index narrow the search.
        std::vector<Poco::Int64> rows;
        std::vector<std::string> clinics, record_ids;
        writer_ << "SELECT id, clinic, record_id FROM outbox WHERE created_at<? AND updated_at<? AND data_class=? "
                   "AND state IN ('delivered','dead','superseded','cancelled') LIMIT ?",
            use(cutoff), use(cutoff), use(cls), bind(limit), into(rows), into(clinics), into(record_ids), now;
        Statement del_entries(writer_), del(writer_);
        del_entries << "DELETE FROM deliveries WHERE outbox_id=?", use(row);
        del << "DELETE FROM outbox WHERE id=?", use(row);
        for (auto r : rows) {
          row = r;
          del_entries.execute();
          n.outbox_items += static_cast<std::int64_t>(del.execute());
        }
        remember(clinics, record_ids);
      }
      // A record with no version, resource or outbox item left goes too (its id may embed an MRN).
      // Resent later, it is stored as new.
      std::string clinic, record_id;
      Statement del_record(writer_);
      del_record << "DELETE FROM records WHERE clinic=? AND record_id=? "
                    "AND NOT EXISTS (SELECT 1 FROM record_versions v WHERE v.clinic=records.clinic AND v.record_id=records.record_id) "
                    "AND NOT EXISTS (SELECT 1 FROM resources r WHERE r.clinic=records.clinic AND r.record_id=records.record_id) "
                    "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.clinic=records.clinic AND o.record_id=records.record_id)",
          use(clinic), use(record_id);
      for (const auto& [c, r] : touched) {
        clinic = c;
        record_id = r;
        n.records += static_cast<std::int64_t>(del_record.execute());
      }
      writer_.commit();
      return n;
    } catch (const Poco::Exception& e) {
      rollback();
      return storageError("purging expired data", e);
    }
  }

  void rollback() {
    audit_.rolledBack();
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
    std::string clinic, record_id, type, hash, patient, state, error, record_class;
    std::string resource_type, resource_id, identifier_system, resource_class;
    std::string partner, outbox_class, disclosure;
    Poco::Data::BLOB payload, identifier_value, body, bundle;  // envelopes (keyring.hpp)
    std::string envelope;  // scratch buffer the envelopes are sealed into
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
      insert_version << "INSERT INTO record_versions(clinic, record_id, version, content_hash, payload, received_at, "
                        "data_class) VALUES(?,?,?,?,?,?,?)",
          use(clinic), use(record_id), use(version), use(hash), use(payload), use(now_ms), use(record_class);
      insert_record << "INSERT INTO records(clinic, record_id, record_type, version, content_hash, state, error, "
                       "patient_key, received_at, updated_at, data_class) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
          use(clinic), use(record_id), use(type), use(version), use(hash), use(state), use(error), use(patient),
          use(now_ms), use(now_ms), use(record_class);
      update_record << "UPDATE records SET record_type=?, version=?, content_hash=?, state=?, error=?, patient_key=?, "
                       "updated_at=?, data_class=? WHERE clinic=? AND record_id=?",
          use(type), use(version), use(hash), use(state), use(error), use(patient), use(now_ms), use(record_class),
          use(clinic), use(record_id);
      // A newer version replaces what is still waiting; what was delivered stays as history.
      supersede << "UPDATE outbox SET state='superseded', updated_at=? WHERE clinic=? AND record_id=? "
                   "AND state IN ('queued','retrying')",
          use(now_ms), use(clinic), use(record_id);
      delete_resources << "DELETE FROM resources WHERE clinic=? AND record_id=?", use(clinic), use(record_id);
      insert_resource << "INSERT OR REPLACE INTO resources(resource_type, resource_id, clinic, record_id, "
                         "record_version, identifier_system, identifier_value, body, data_class, stored_at) "
                         "VALUES(?,?,?,?,?,?,?,?,?,?)",
          use(resource_type), use(resource_id), use(clinic), use(record_id), use(version), use(identifier_system),
          use(identifier_value), use(body), use(resource_class), use(now_ms);
      insert_outbox << "INSERT INTO outbox(partner_id, clinic, record_id, record_version, patient_key, bundle, "
                       "entry_count, state, attempts, next_attempt_at, last_error, outcome, created_at, updated_at, "
                       "data_class, disclosure) VALUES(?,?,?,?,?,?,?,'queued',0,?,'','',?,?,?,?)",
          use(partner), use(clinic), use(record_id), use(version), use(patient), use(bundle), use(entries),
          use(now_ms), use(now_ms), use(now_ms), use(outbox_class), use(disclosure);
    }

    // Seals `plain` under the key of `c` into `blob`.
    Status seal(const Keyring& keyring, DataClass c, std::string_view plain, const std::string& context,
                Poco::Data::BLOB& blob) {
      envelope.clear();
      GW_TRY(keyring.sealAppend(c, plain, context, envelope));
      setBlob(blob, envelope);
      return ok();
    }
  };

  // Runs inside the batch transaction; throws Poco::Exception on database failure.
  Result<IngestOutcome> ingestOne(const IngestWrite& w, Poco::Int64 now_ms) {
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
      return IngestOutcome{IngestDisposition::Unchanged, current_version};
    }
    st.version = current_version + 1;
    st.type = w.record_type;
    st.hash = w.content_hash;
    st.patient = w.patient_key;
    st.state = std::string(recordStateName(w.state));
    st.error = w.error;
    const DataClass record_class = privacy::storageClass(w.classes);
    st.record_class = std::string(privacy::className(record_class));
    GW_TRY(st.seal(keyring_, record_class, w.payload, recordPayloadContext(w.clinic, w.record_id, st.version), st.payload));
    st.insert_version.execute();
    if (current_version == 0) {
      st.insert_record.execute();
    } else {
      st.update_record.execute();
      st.supersede.execute();
      st.delete_resources.execute();
    }
    for (const auto& r : w.resources) {
      const DataClass c = privacy::storageClass(r.classes);
      st.resource_type = r.resource_type;
      st.resource_id = r.resource_id;
      st.identifier_system = r.identifier_system;
      st.resource_class = std::string(privacy::className(c));
      // The identifier value is often the MRN: as sensitive as the body.
      GW_TRY(st.seal(keyring_, c, r.identifier_value,
                     resourceContext("resources.identifier_value", r.resource_type, r.resource_id), st.identifier_value));
      GW_TRY(st.seal(keyring_, c, r.body, resourceContext("resources.body", r.resource_type, r.resource_id), st.body));
      st.insert_resource.execute();
    }
    for (const auto& o : w.outbox) {
      const DataClass c = privacy::storageClass(o.classes);
      st.partner = o.partner_id;
      st.entries = o.entry_count;
      st.outbox_class = std::string(privacy::className(c));
      st.disclosure = o.disclosure;
      GW_TRY(st.seal(keyring_, c, o.bundle, bundleContext(o.partner_id, w.clinic, w.record_id, st.version), st.bundle));
      st.insert_outbox.execute();
    }
    IngestOutcome outcome{current_version == 0 ? IngestDisposition::Created : IngestDisposition::NewVersion, st.version};
    if (w.consent) {
      consent::ConsentRow row = *w.consent;
      Poco::Int64 highest = 0;
      writer_ << "SELECT COALESCE(MAX(version), 0) FROM consents WHERE clinic=? AND consent_id=?", use(row.clinic),
          use(row.consent_id), into(highest), now;
      row.version = highest + 1;
      Poco::Int64 version = row.version, recorded_at = row.recorded_at;
      writer_ << "INSERT INTO consents(clinic, consent_id, version, patient_key, partner_id, status, purposes, classes, "
                 "period_start, period_end, revoked_on, signed_on, resource_id, recorded_at, reconciled) "
                 "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
          use(row.clinic), use(row.consent_id), use(version), use(row.patient_key), use(row.partner_id), use(row.status),
          use(row.purposes), use(row.classes), use(row.period_start), use(row.period_end), use(row.revoked_on),
          use(row.signed_on), use(row.resource_id), use(recorded_at), now;
      outcome.consent_version = row.version;
    }
    return outcome;
  }

  Status updateState(std::int64_t item_id, const char* state_name, int attempts, std::int64_t next_ms,
                     std::string_view error_v, std::string_view outcome_v, SystemTime now_time,
                     std::vector<AuditEntry> audit = {}) {
    std::lock_guard lock(write_mutex_);
    if (audit.empty()) return updateStateLocked(item_id, state_name, attempts, next_ms, error_v, outcome_v, now_time);
    // The state change and its log entries commit together, and only when the item was still
    // pending (a superseded item's cancellation is not logged as one).
    try {
      writer_.begin();
      int changed = 0;
      if (auto updated = updateStateLocked(item_id, state_name, attempts, next_ms, error_v, outcome_v, now_time, &changed);
          !updated) {
        rollback();
        return updated.error();
      }
      if (changed > 0) {
        if (auto appended = audit_.append(writer_, audit); !appended) {
          rollback();
          return appended.error();
        }
      }
      writer_.commit();
      if (changed > 0) audit_.committed();
      return ok();
    } catch (const Poco::Exception& e) {
      rollback();
      return storageError("updating the outbox", e);
    }
  }

  Status updateStateLocked(std::int64_t item_id, const char* state_name, int attempts, std::int64_t next_ms,
                           std::string_view error_v, std::string_view outcome_v, SystemTime now_time,
                           int* changed = nullptr) {
    Poco::Int64 id = item_id, next = next_ms, now_ms = toUnixMillis(now_time);
    std::string state(state_name), error(error_v);
    try {
      // The partner's OperationOutcome may quote the resources sent: stored like the Bundle.
      Poco::Data::BLOB sealed_outcome;
      if (!outcome_v.empty()) {
        std::vector<std::string> item_class;
        writer_ << "SELECT data_class FROM outbox WHERE id=?", use(id), into(item_class), now;
        if (item_class.empty()) return ok();  // no such item: nothing to update
        GW_TRY(auto sealed, keyring_.seal(classOf(item_class.front()), outcome_v, outcomeContext(item_id)));
        setBlob(sealed_outcome, sealed);
      }
      // Only pending items change: a newer version may have superseded this one while it was in flight.
      if (outcome_v.empty()) {
        std::string empty;
        writer_ << "UPDATE outbox SET state=?, attempts=CASE WHEN ?<0 THEN attempts ELSE ? END, next_attempt_at=?, "
                   "last_error=?, outcome=?, updated_at=? WHERE id=? AND state IN ('queued','retrying')",
            use(state), bind(attempts), bind(attempts), use(next), use(error), use(empty), use(now_ms), use(id), now;
        if (changed != nullptr) *changed = changesOfLastStatement();
      } else {
        writer_ << "UPDATE outbox SET state=?, attempts=CASE WHEN ?<0 THEN attempts ELSE ? END, next_attempt_at=?, "
                   "last_error=?, outcome=?, updated_at=? WHERE id=? AND state IN ('queued','retrying')",
            use(state), bind(attempts), bind(attempts), use(next), use(error), use(sealed_outcome), use(now_ms), use(id),
            now;
        if (changed != nullptr) *changed = changesOfLastStatement();
      }
      return ok();
    } catch (const Poco::Exception& e) {
      return storageError("updating the outbox", e);
    }
  }

  // The stored class name of a row as a set (an unknown name reads as unclassified: sud).
  static privacy::ClassSet classOf(const std::string& name) {
    const auto c = privacy::parseClass(name);
    return c ? privacy::ClassSet(*c) : privacy::ClassSet();
  }

  // Rows the writer's last statement changed.
  int changesOfLastStatement() {
    int n = 0;
    writer_ << "SELECT changes()", into(n), now;
    return n;
  }

  SqliteOptions options_;
  AuditAppender audit_;  // used on writer_ under write_mutex_ only
  Keyring keyring_;  // immutable after init(): read by every thread without a lock
  std::mutex write_mutex_;  // one writer connection; SQLite serializes writers anyway
  Session writer_;
  Poco::Data::SessionPool readers_;
  std::unique_ptr<IngestStatements> ingest_statements_;  // after writer_: destroyed first
};

}  // namespace

int Retention::daysFor(privacy::DataClass c) const {
  switch (c) {
    case privacy::DataClass::General: return general_days;
    case privacy::DataClass::Sud: return sud_days;
    case privacy::DataClass::Mh: return mh_days;
  }
  return sud_days;
}

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
  if (options.master_key.empty()) {
    return makeError(ErrorCode::Config, "no master key: stored payloads are encrypted under data keys it wraps",
                     "privacy.master_key_file / privacy.master_key_env",
                     "set one of the two in the config (make a key: openssl rand -hex 32 > FILE; chmod 600 FILE)");
  }
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
    GW_LOG(Info, Store, "opened")
        .kv("backend", "sqlite")
        .kv("schema_version", kSchemaVersion)
        .kv("master_key_id", options.master_key.id());  // a digest prefix: names the key, reveals nothing
    return std::unique_ptr<Store>(std::move(store));
  } catch (const Poco::Exception& e) {
    return storageError("opening " + options.path, e);
  }
}

}  // namespace gw::store

#include <Poco/Data/Statement.h>

#include "store/sqlite_backend.hpp"

namespace gw::store::sqlite {

using namespace Poco::Data::Keywords;
using Poco::Data::Session;
using Poco::Data::Statement;

// The statements of ingest's hot path, prepared once on the writer connection and re-executed
// per row. Each is bound to the members below; the writer assigns them and executes.
struct WriterStatements {
  // records, record_versions
  std::string clinic, record_key, type, hash, state, error, patient, record_class;
  Poco::Data::BLOB payload;
  int version = 0;
  Poco::Int64 received_ms = 0, updated_ms = 0;
  std::vector<std::string> found_hash, found_state;
  std::vector<int> found_version;
  // resources
  std::string resource_type, resource_key, resource_clinic, resource_record_key, identifier_system, resource_class;
  Poco::Data::BLOB resource_id, identifier_value, body;
  int resource_version = 0;
  Poco::Int64 stored_ms = 0;
  // outbox
  std::string partner, outbox_clinic, outbox_record_key, outbox_patient, outbox_class;
  Poco::Data::BLOB bundle, disclosure;
  int outbox_version = 0, entries = 0;
  Poco::Int64 created_ms = 0;
  // audit_log tail
  std::vector<Poco::Int64> tail_seq;
  std::vector<std::string> tail_hash;
  // resource_decisions (one row per resource and partner of each new version)
  DecisionRow decision;

  Statement head, insert_version, insert_record, update_record, supersede, delete_resources, insert_resource, insert_outbox,
      tail, put_decision, delete_decisions;

  explicit WriterStatements(Session& s)
      : head(s),
        insert_version(s),
        insert_record(s),
        update_record(s),
        supersede(s),
        delete_resources(s),
        insert_resource(s),
        insert_outbox(s),
        tail(s),
        put_decision(s),
        delete_decisions(s) {
    head << "SELECT content_hash, version, state FROM records WHERE clinic=? AND record_key=?", use(clinic), use(record_key),
        into(found_hash), into(found_version), into(found_state);
    insert_version << "INSERT INTO record_versions(clinic, record_key, version, content_hash, payload, received_at, "
                      "data_class) VALUES(?,?,?,?,?,?,?)",
        use(clinic), use(record_key), use(version), use(hash), use(payload), use(received_ms), use(record_class);
    insert_record << "INSERT INTO records(clinic, record_key, record_type, version, content_hash, state, error, "
                     "patient_key, received_at, updated_at, data_class) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
        use(clinic), use(record_key), use(type), use(version), use(hash), use(state), use(error), use(patient),
        use(received_ms), use(updated_ms), use(record_class);
    update_record << "UPDATE records SET record_type=?, version=?, content_hash=?, state=?, error=?, patient_key=?, "
                     "updated_at=?, data_class=? WHERE clinic=? AND record_key=?",
        use(type), use(version), use(hash), use(state), use(error), use(patient), use(updated_ms), use(record_class),
        use(clinic), use(record_key);
    // A newer version replaces what is still waiting; what was delivered stays as history.
    supersede << "UPDATE outbox SET state='superseded', updated_at=? WHERE clinic=? AND record_key=? "
                 "AND state IN ('queued','retrying')",
        use(updated_ms), use(clinic), use(record_key);
    delete_resources << "DELETE FROM resources WHERE clinic=? AND record_key=?", use(clinic), use(record_key);
    insert_resource << "INSERT OR REPLACE INTO resources(resource_type, resource_key, resource_id, clinic, record_key, "
                       "record_version, identifier_system, identifier_value, body, data_class, stored_at) "
                       "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
        use(resource_type), use(resource_key), use(resource_id), use(resource_clinic), use(resource_record_key),
        use(resource_version), use(identifier_system), use(identifier_value), use(body), use(resource_class), use(stored_ms);
    insert_outbox << "INSERT INTO outbox(partner_id, clinic, record_key, record_version, patient_key, bundle, "
                     "entry_count, state, attempts, next_attempt_at, last_error, outcome, created_at, updated_at, "
                     "data_class, disclosure) VALUES(?,?,?,?,?,?,?,'queued',0,?,'','',?,?,?,?)",
        use(partner), use(outbox_clinic), use(outbox_record_key), use(outbox_version), use(outbox_patient), use(bundle),
        use(entries), use(created_ms), use(created_ms), use(created_ms), use(outbox_class), use(disclosure);
    // seq is the INTEGER PRIMARY KEY (the rowid): the last row is one b-tree descent away.
    tail << "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", into(tail_seq), into(tail_hash);
    put_decision << "INSERT OR REPLACE INTO resource_decisions(partner_id, clinic, record_key, resource_type, "
                    "resource_key, patient_key, record_version, outcome, removed_activities, reason, updated_at) "
                    "VALUES(?,?,?,?,?,?,?,?,?,?,?)",
        use(decision.partner_id), use(decision.clinic), use(decision.record_key), use(decision.resource_type),
        use(decision.resource_key), use(decision.patient_key), use(decision.record_version), use(decision.outcome),
        use(decision.removed_activities), use(decision.reason), use(updated_ms);
    delete_decisions << "DELETE FROM resource_decisions WHERE clinic=? AND record_key=?", use(clinic), use(record_key);
  }

  void setRecord(const RecordRow& r) {
    clinic = r.clinic;
    record_key = r.record_key;
    type = r.record_type;
    version = r.version;
    hash = r.content_hash;
    state = std::string(recordStateName(r.state));
    error = r.error;
    patient = r.patient_key;
    received_ms = r.received_at_ms;
    updated_ms = r.updated_at_ms;
    record_class = r.data_class;
  }
};

void WriterStatementsDeleter::operator()(WriterStatements* p) const { delete p; }

namespace {

class SqliteWriter final : public StoreWriter {
 public:
  SqliteWriter(WriterConnection& connection, std::unique_lock<std::mutex> lock)
      : c_(connection), s_(connection.session), lock_(std::move(lock)) {}
  ~SqliteWriter() override { rollback(); }

  Status commit() override {
    try {
      s_ << "COMMIT", now;
      open_ = false;
      return ok();
    } catch (const Poco::Exception& e) {
      return storageError("committing", e);
    }
  }

  void rollback() noexcept override {
    if (!open_) return;
    open_ = false;
    try {
      s_ << "ROLLBACK", now;
    } catch (const Poco::Exception&) {
      // SQLite already rolled back (a failed COMMIT may), or the connection is unusable: the
      // next BEGIN reports the latter.
    } catch (...) {
    }
  }

  Result<std::optional<RecordHead>> recordHead(std::string_view clinic, std::string_view record_key) override {
    return run("reading a record", [&] {
      auto& st = statements();
      st.clinic = clinic;
      st.record_key = record_key;
      st.found_hash.clear();
      st.found_version.clear();
      st.found_state.clear();
      st.head.execute();
      if (st.found_version.empty()) return std::optional<RecordHead>();
      return std::optional<RecordHead>(RecordHead{st.found_version.front(), st.found_hash.front(),
                                                  parseRecordState(st.found_state.front()).value_or(RecordState::Received)});
    });
  }

  Status insertRecordVersion(const RecordVersionRow& r) override {
    return run("storing a record version", [&] {
      auto& st = statements();
      st.clinic = r.clinic;
      st.record_key = r.record_key;
      st.version = r.version;
      st.hash = r.content_hash;
      setBlob(st.payload, r.payload_sealed);
      st.received_ms = r.received_at_ms;
      st.record_class = r.data_class;
      st.insert_version.execute();
    });
  }

  Status insertRecord(const RecordRow& r) override {
    return run("storing a record", [&] {
      statements().setRecord(r);
      statements().insert_record.execute();
    });
  }

  Status updateRecord(const RecordRow& r) override {
    return run("storing a record", [&] {
      statements().setRecord(r);
      statements().update_record.execute();
    });
  }

  Status deleteResources(std::string_view clinic, std::string_view record_key) override {
    return run("replacing a record's resources", [&] {
      auto& st = statements();
      st.clinic = clinic;
      st.record_key = record_key;
      st.delete_resources.execute();
    });
  }

  Status putResource(const ResourceRow& r) override {
    return run("storing a resource", [&] {
      auto& st = statements();
      st.resource_type = r.resource_type;
      st.resource_key = r.resource_key;
      setBlob(st.resource_id, r.resource_id_sealed);
      st.resource_clinic = r.clinic;
      st.resource_record_key = r.record_key;
      st.resource_version = r.record_version;
      st.identifier_system = r.identifier_system;
      setBlob(st.identifier_value, r.identifier_value_sealed);
      setBlob(st.body, r.body_sealed);
      st.resource_class = r.data_class;
      st.stored_ms = r.stored_at_ms;
      st.insert_resource.execute();
    });
  }

  Status supersedePending(std::string_view clinic, std::string_view record_key, std::int64_t now_ms) override {
    return run("superseding outbox items", [&] {
      auto& st = statements();
      st.clinic = clinic;
      st.record_key = record_key;
      st.updated_ms = now_ms;
      st.supersede.execute();
    });
  }

  Status insertOutboxItem(const OutboxRow& r) override {
    return run("queueing an outbox item", [&] {
      auto& st = statements();
      st.partner = r.partner_id;
      st.outbox_clinic = r.clinic;
      st.outbox_record_key = r.record_key;
      st.outbox_version = r.record_version;
      st.outbox_patient = r.patient_key;
      setBlob(st.bundle, r.bundle_sealed);
      st.entries = r.entry_count;
      st.created_ms = r.created_at_ms;
      st.outbox_class = r.data_class;
      setBlob(st.disclosure, r.disclosure_sealed);
      st.insert_outbox.execute();
    });
  }

  Result<std::optional<std::string>> outboxItemClass(std::int64_t item_id) override {
    return run("updating the outbox", [&] {
      Poco::Int64 id = item_id;
      std::vector<std::string> item_class;
      s_ << "SELECT data_class FROM outbox WHERE id=?", use(id), into(item_class), now;
      return item_class.empty() ? std::optional<std::string>() : std::optional<std::string>(item_class.front());
    });
  }

  Result<int> updatePendingItem(const OutboxStateChange& c) override {
    return run("updating the outbox", [&] {
      Poco::Int64 id = c.id, next = c.next_attempt_at_ms, now_ms = c.updated_at_ms;
      std::string state(outboxStateName(c.state)), error = c.last_error;
      const int attempts = c.attempts;
      // Only pending items change: a newer version may have superseded this one while it was in flight.
      Statement update(s_);
      update << "UPDATE outbox SET state=?, attempts=CASE WHEN ?<0 THEN attempts ELSE ? END, next_attempt_at=?, "
                "last_error=?, outcome=?, updated_at=? WHERE id=? AND state IN ('queued','retrying')",
          use(state), bind(attempts), bind(attempts), use(next), use(error);
      // No outcome is stored as '' (text); an outcome is a sealed BLOB like the Bundle.
      std::string empty;
      Poco::Data::BLOB sealed;
      if (c.outcome_sealed.empty()) {
        update, use(empty);
      } else {
        setBlob(sealed, c.outcome_sealed);
        update, use(sealed);
      }
      update, use(now_ms), use(id);
      return static_cast<int>(update.execute());
    });
  }

  Status markDelivered(std::int64_t item_id, std::int64_t now_ms_v, const std::vector<DeliveredEntry>& entries) override {
    return run("recording a delivery", [&] {
      Poco::Int64 id = item_id, now_ms = now_ms_v;
      s_ << "UPDATE outbox SET state='delivered', attempts=attempts+1, updated_at=?, delivered_at=?, "
            "last_error='' WHERE id=?",
          use(now_ms), use(now_ms), use(id), now;
      s_ << "DELETE FROM deliveries WHERE outbox_id=?", use(id), now;
      for (std::size_t i = 0; i < entries.size(); ++i) {
        int index = static_cast<int>(i);
        std::string status = entries[i].status, location = entries[i].location, etag = entries[i].etag;
        s_ << "INSERT INTO deliveries(outbox_id, entry_index, status, location, etag) VALUES(?,?,?,?,?)", use(id),
            use(index), use(status), use(location), use(etag), now;
      }
    });
  }

  Result<std::int64_t> highestConsentVersion(std::string_view clinic_v, std::string_view consent_v) override {
    return run("storing a consent", [&] {
      std::string clinic(clinic_v), consent_key(consent_v);
      Poco::Int64 highest = 0;
      s_ << "SELECT COALESCE(MAX(version), 0) FROM consents WHERE clinic=? AND consent_key=?", use(clinic), use(consent_key),
          into(highest), now;
      return static_cast<std::int64_t>(highest);
    });
  }

  Status insertConsent(const ConsentKeyedRow& c) override {
    return run("storing a consent", [&] {
      const auto& row = c.facts;
      Poco::Int64 version = row.version, recorded_at = row.recorded_at;
      Poco::Data::BLOB consent_id = toBlob(c.consent_id_sealed), resource_id = toBlob(c.resource_id_sealed);
      s_ << "INSERT INTO consents(clinic, consent_key, consent_id, version, patient_key, partner_id, status, purposes, "
            "classes, period_start, period_end, revoked_on, signed_on, resource_id, recorded_at, reconciled) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)",
          useRef(row.clinic), useRef(c.consent_key), use(consent_id), use(version), useRef(row.patient_key),
          useRef(row.partner_id), useRef(row.status), useRef(row.purposes), useRef(row.classes), useRef(row.period_start),
          useRef(row.period_end), useRef(row.revoked_on), useRef(row.signed_on), use(resource_id), use(recorded_at), now;
    });
  }

  Status markConsentReconciled(std::string_view clinic_v, std::string_view consent_v, std::int64_t version_v) override {
    return run("updating a consent", [&] {
      std::string clinic(clinic_v), consent_key(consent_v);
      Poco::Int64 version = version_v;
      s_ << "UPDATE consents SET reconciled=1 WHERE clinic=? AND consent_key=? AND version=?", use(clinic), use(consent_key),
          use(version), now;
    });
  }

  Result<ChainTail> auditTail() override {
    return run("appending to the audit log", [&] {
      auto& st = statements();
      st.tail_seq.clear();
      st.tail_hash.clear();
      st.tail.execute();
      if (st.tail_seq.empty()) return ChainTail{};
      return ChainTail{st.tail_seq.front(), st.tail_hash.front()};
    });
  }

  Status appendAudit(const std::vector<AuditRow>& rows) override {
    return run("appending to the audit log", [&] { insertAuditRows(s_, rows); });
  }

  Result<std::vector<DataKeyRow>> dataKeys() override { return selectDataKeys(s_); }

  Status insertDataKeyIfAbsent(const DataKeyRow& row) override {
    return run("storing a data key", [&] {
      Poco::Data::BLOB wrapped = toBlob(row.wrapped);
      Poco::Int64 created = row.created_at_ms;
      s_ << "INSERT OR IGNORE INTO data_keys(data_class, key_version, wrapped, master_key_id, created_at) "
            "VALUES(?, ?, ?, ?, ?)",
          useRef(row.data_class), useRef(row.key_version), use(wrapped), useRef(row.master_key_id), use(created), now;
    });
  }

  Status updateDataKey(const DataKeyRow& row) override {
    return run("re-wrapping the data keys", [&] {
      Poco::Data::BLOB wrapped = toBlob(row.wrapped);
      s_ << "UPDATE data_keys SET wrapped=?, master_key_id=? WHERE data_class=? AND key_version=?", use(wrapped),
          useRef(row.master_key_id), useRef(row.data_class), useRef(row.key_version), now;
    });
  }

  Result<std::string> deploymentSecret(std::string_view name_v, std::string_view candidate_v) override {
    return run("reading a deployment secret", [&] {
      std::string name(name_v);
      Poco::Data::BLOB candidate = toBlob(candidate_v);
      std::vector<Poco::Data::BLOB> value;
      // Insert-if-absent then read: whoever made it first wins, every caller sees the same value.
      s_ << "INSERT OR IGNORE INTO deployment_secrets(name, value) VALUES(?,?)", use(name), use(candidate), now;
      s_ << "SELECT value FROM deployment_secrets WHERE name=?", use(name), into(value), now;
      return value.empty() ? std::string() : std::string(blobView(value.front()));
    });
  }

  Result<SealedBatch> sealedCells(SealedTable table, std::int64_t after_row, int limit) override {
    return run("reading sealed payloads to re-seal", [&] { return selectSealedCells(s_, table, after_row, limit); });
  }

  Result<std::int64_t> lastSealedRow(SealedTable table) override {
    return run("reading sealed payloads to re-seal", [&] { return selectLastSealedRow(s_, table); });
  }

  Status replaceSealed(const SealedCell& cell) override {
    return run("re-sealing a payload", [&] { updateSealedCell(s_, cell); });
  }

  Result<int> requeueDeadItem(std::int64_t item_id, std::string_view note, std::int64_t now_ms) override {
    return run("replaying an outbox item", [&] { return sqlite::requeueDeadItem(s_, item_id, note, now_ms); });
  }

  Status putPartnerPause(const PartnerPause& pause) override {
    return run("pausing a partner", [&] { sqlite::putPartnerPause(s_, pause); });
  }

  Status deletePartnerPause(std::string_view partner_id) override {
    return run("resuming a partner", [&] { sqlite::deletePartnerPause(s_, partner_id); });
  }

  Status addPartnerLogCounts(const std::vector<PartnerLogBucket>& buckets) override {
    return run("counting the partner view's rows", [&] { sqlite::addPartnerLogCounts(s_, buckets); });
  }

  Status putBreakGlass(const BreakGlass& row) override {
    return run("storing a break-glass row", [&] { sqlite::putBreakGlass(s_, row); });
  }

  Status putAccountingRequest(const AccountingRequest& row) override {
    return run("storing an accounting request", [&] { sqlite::putAccountingRequest(s_, row); });
  }

  Status putInstance(const InstanceRow& row) override {
    return run("recording a gateway instance", [&] { sqlite::putInstance(s_, row); });
  }

  Status deleteInstancesSeenBefore(std::int64_t cutoff_ms) override {
    return run("forgetting old gateway instances", [&] { sqlite::deleteInstancesSeenBefore(s_, cutoff_ms); });
  }

  Status writeProbe(std::int64_t now_ms) override {
    return run("the write probe", [&] { sqlite::writeProbe(s_, now_ms); });
  }

  Status deleteDataKey(std::string_view data_class_v, int key_version_v) override {
    return run("destroying a data key", [&] {
      std::string data_class(data_class_v);
      int key_version = key_version_v;
      s_ << "DELETE FROM data_keys WHERE data_class=? AND key_version=?", use(data_class), use(key_version), now;
    });
  }

  Result<PurgedRows> purgeRecordVersions(std::string_view cls, std::int64_t cutoff, int limit) override {
    return run("purging expired data", [&] { return sqlite::purgeRecordVersions(s_, cls, cutoff, limit); });
  }

  Result<PurgedRows> purgeResources(std::string_view cls, std::int64_t cutoff, int limit) override {
    return run("purging expired data", [&] { return sqlite::purgeResources(s_, cls, cutoff, limit); });
  }

  Result<PurgedRows> purgeFinishedItems(std::string_view cls, std::int64_t cutoff, int limit) override {
    return run("purging expired data", [&] { return sqlite::purgeFinishedItems(s_, cls, cutoff, limit); });
  }

  Result<std::int64_t> deleteRecordsIfEmpty(const std::vector<RecordKey>& records) override {
    return run("purging expired data", [&] { return sqlite::deleteRecordsIfEmpty(s_, records); });
  }

  Status insertCopiedRows(const CopyTable& table, const std::vector<CopyRow>& rows) override {
    return run("copying rows", [&] { insertCopyRows(s_, table, rows); });
  }

  Result<std::vector<DecisionRow>> decisionRows(std::string_view partner, std::string_view clinic,
                                                std::string_view record_key, int version) override {
    return run("reading a record's decisions",
               [&] { return sqlite::selectDecisionRows(s_, partner, clinic, record_key, version); });
  }

  Status putDecisionRows(const std::vector<DecisionRow>& rows) override {
    return run("storing a record's decisions", [&] {
      auto& st = statements();
      for (const auto& row : rows) {
        st.decision = row;
        st.updated_ms = row.updated_at_ms;
        st.put_decision.execute();
      }
    });
  }

  Status deleteDecisionRows(std::string_view clinic, std::string_view record_key) override {
    return run("replacing a record's decisions", [&] {
      auto& st = statements();
      st.clinic = clinic;
      st.record_key = record_key;
      st.delete_decisions.execute();
    });
  }

  Result<bool> hasLiveItem(std::string_view partner_v, std::string_view clinic_v, std::string_view record_key_v,
                           int version) override {
    return run("reading a record's outbox items", [&] {
      std::string partner(partner_v), clinic(clinic_v), record_key(record_key_v);
      int found = 0;
      s_ << "SELECT COUNT(*) FROM outbox WHERE partner_id=? AND clinic=? AND record_key=? AND record_version=? "
            "AND state IN ('queued','retrying','delivered','dead')",
          use(partner), use(clinic), use(record_key), use(version), into(found), now;
      return found > 0;
    });
  }

 private:
  WriterStatements& statements() {
    if (!c_.statements) c_.statements.reset(new WriterStatements(s_));
    return *c_.statements;
  }

  // Runs one primitive; a Poco exception becomes a Storage error (the store then rolls back).
  template <class F>
  auto run(std::string_view what, F&& f) -> Result<std::invoke_result_t<F&>> {
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
        f();
        return ok();
      } else {
        return f();
      }
    } catch (const Poco::Exception& e) {
      c_.statements.reset();  // a statement that threw is not reused
      return storageError(what, e);
    }
  }

  WriterConnection& c_;
  Session& s_;
  std::unique_lock<std::mutex> lock_;  // released last, after the rollback
  bool open_ = true;
};

}  // namespace

Result<std::unique_ptr<StoreWriter>> beginWriter(WriterConnection& connection, std::unique_lock<std::mutex> lock) {
  try {
    // IMMEDIATE: the write lock is taken now, not at the first write, so no other connection
    // commits between what this transaction reads (the audit tail, a record's version) and what
    // it writes. Another process holding the lock is waited for (busy_timeout).
    connection.session << "BEGIN IMMEDIATE", now;
  } catch (const Poco::Exception& e) {
    connection.statements.reset();
    return storageError("beginning a write transaction", e);
  }
  return std::unique_ptr<StoreWriter>(std::make_unique<SqliteWriter>(connection, std::move(lock)));
}

}  // namespace gw::store::sqlite

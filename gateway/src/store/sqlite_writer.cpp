#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Statement.h>
#include <sqlite3.h>

#include "store/sqlite_backend.hpp"
#include "store/sqlite_statement.hpp"

namespace gw::store::sqlite {

using namespace Poco::Data::Keywords;
using Poco::Data::Session;
using Poco::Data::Statement;

// The statements of ingest's hot path, prepared once on the writer connection.
struct WriterStatements {
  PreparedStatement begin, commit, head, insert_version, insert_record, update_record, supersede, delete_resources,
      insert_resource, insert_outbox, tail, insert_audit, put_decision, delete_decisions, select_decisions, live_item,
      data_keys, add_partner_counts;

  explicit WriterStatements(sqlite3* db)
      // IMMEDIATE: the write lock is taken now, not at the first write, so no other connection
      // commits between what this transaction reads (the audit tail, a record's version) and what
      // it writes. Another process holding the lock is waited for (busy_timeout).
      : begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT"),
        head(db, "SELECT content_hash, version, state FROM records WHERE clinic=? AND record_key=?"),
        insert_version(db,
                       "INSERT INTO record_versions(clinic, record_key, version, content_hash, payload, received_at, "
                       "data_class) VALUES(?,?,?,?,?,?,?)"),
        insert_record(db,
                      "INSERT INTO records(clinic, record_key, record_type, version, content_hash, state, error, "
                      "patient_key, received_at, updated_at, data_class) VALUES(?,?,?,?,?,?,?,?,?,?,?)"),
        update_record(db,
                      "UPDATE records SET record_type=?, version=?, content_hash=?, state=?, error=?, patient_key=?, "
                      "updated_at=?, data_class=? WHERE clinic=? AND record_key=?"),
        // A newer version replaces what is still waiting; what was delivered stays as history.
        supersede(db,
                  "UPDATE outbox SET state='superseded', updated_at=? WHERE clinic=? AND record_key=? "
                  "AND state IN ('queued','retrying')"),
        delete_resources(db, "DELETE FROM resources WHERE clinic=? AND record_key=?"),
        insert_resource(db,
                        "INSERT OR REPLACE INTO resources(resource_type, resource_key, resource_id, clinic, record_key, "
                        "record_version, identifier_system, identifier_value, body, data_class, stored_at) "
                        "VALUES(?,?,?,?,?,?,?,?,?,?,?)"),
        insert_outbox(db,
                      "INSERT INTO outbox(partner_id, clinic, record_key, record_version, patient_key, bundle, "
                      "entry_count, state, attempts, next_attempt_at, last_error, outcome, created_at, updated_at, "
                      "data_class, disclosure) VALUES(?,?,?,?,?,?,?,'queued',0,?,'','',?,?,?,?)"),
        // seq is the INTEGER PRIMARY KEY (the rowid): the last row is one b-tree descent away.
        tail(db, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"),
        insert_audit(db, insertAuditSql().c_str()),
        put_decision(db,
                     "INSERT OR REPLACE INTO resource_decisions(partner_id, clinic, record_key, resource_type, "
                     "resource_key, patient_key, record_version, outcome, removed_activities, reason, updated_at) "
                     "VALUES(?,?,?,?,?,?,?,?,?,?,?)"),
        delete_decisions(db, "DELETE FROM resource_decisions WHERE clinic=? AND record_key=?"),
        select_decisions(db, kSelectDecisionsSql),
        live_item(db,
                  "SELECT 1 FROM outbox WHERE partner_id=? AND clinic=? AND record_key=? AND record_version=? "
                  "AND state IN ('queued','retrying','delivered','dead') LIMIT 1"),
        // Read by every sealing transaction: another process may have added a key version.
        data_keys(db, kSelectDataKeysSql),
        // The console's partner view counts, added to by every transaction that logs decisions.
        add_partner_counts(db,
                           "INSERT INTO audit_hourly_counts(partner_id, clinic, hour, kind, outcome, classes, reason, "
                           "count) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(partner_id, clinic, hour, kind, outcome, classes, "
                           "reason) DO UPDATE SET count = count + excluded.count") {}

  void insertRecord(const RecordRow& r) {
    insert_record.text(1, r.clinic)
        .text(2, r.record_key)
        .text(3, r.record_type)
        .i64(4, r.version)
        .text(5, r.content_hash)
        .text(6, recordStateName(r.state))
        .text(7, r.error)
        .text(8, r.patient_key)
        .i64(9, r.received_at_ms)
        .i64(10, r.updated_at_ms)
        .text(11, r.data_class)
        .run();
  }

  void updateRecord(const RecordRow& r) {
    update_record.text(1, r.record_type)
        .i64(2, r.version)
        .text(3, r.content_hash)
        .text(4, recordStateName(r.state))
        .text(5, r.error)
        .text(6, r.patient_key)
        .i64(7, r.updated_at_ms)
        .text(8, r.data_class)
        .text(9, r.clinic)
        .text(10, r.record_key)
        .run();
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
      statements().commit.run();
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
      std::optional<RecordHead> head;
      statements().head.text(1, clinic).text(2, record_key).first([&](const PreparedStatement& row) {
        head = RecordHead{static_cast<int>(row.columnInt(1)), row.columnText(0),
                          parseRecordState(row.columnText(2)).value_or(RecordState::Received)};
      });
      return head;
    });
  }

  Status insertRecordVersion(const RecordVersionRow& r) override {
    return run("storing a record version", [&] {
      statements()
          .insert_version.text(1, r.clinic)
          .text(2, r.record_key)
          .i64(3, r.version)
          .text(4, r.content_hash)
          .blob(5, r.payload_sealed)
          .i64(6, r.received_at_ms)
          .text(7, r.data_class)
          .run();
    });
  }

  Status insertRecord(const RecordRow& r) override {
    return run("storing a record", [&] { statements().insertRecord(r); });
  }

  Status updateRecord(const RecordRow& r) override {
    return run("storing a record", [&] { statements().updateRecord(r); });
  }

  Status deleteResources(std::string_view clinic, std::string_view record_key) override {
    return run("replacing a record's resources",
               [&] { statements().delete_resources.text(1, clinic).text(2, record_key).run(); });
  }

  Status putResource(const ResourceRow& r) override {
    return run("storing a resource", [&] {
      statements()
          .insert_resource.text(1, r.resource_type)
          .text(2, r.resource_key)
          .blob(3, r.resource_id_sealed)
          .text(4, r.clinic)
          .text(5, r.record_key)
          .i64(6, r.record_version)
          .text(7, r.identifier_system)
          .blob(8, r.identifier_value_sealed)
          .blob(9, r.body_sealed)
          .text(10, r.data_class)
          .i64(11, r.stored_at_ms)
          .run();
    });
  }

  Status supersedePending(std::string_view clinic, std::string_view record_key, std::int64_t now_ms) override {
    return run("superseding outbox items",
               [&] { statements().supersede.i64(1, now_ms).text(2, clinic).text(3, record_key).run(); });
  }

  Status insertOutboxItem(const OutboxRow& r) override {
    return run("queueing an outbox item", [&] {
      statements()
          .insert_outbox.text(1, r.partner_id)
          .text(2, r.clinic)
          .text(3, r.record_key)
          .i64(4, r.record_version)
          .text(5, r.patient_key)
          .blob(6, r.bundle_sealed)
          .i64(7, r.entry_count)
          .i64(8, r.created_at_ms)
          .i64(9, r.created_at_ms)
          .i64(10, r.created_at_ms)
          .text(11, r.data_class)
          .blob(12, r.disclosure_sealed)
          .run();
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
      ChainTail tail;
      statements().tail.first([&](const PreparedStatement& row) { tail = ChainTail{row.columnInt(0), row.columnText(1)}; });
      return tail;
    });
  }

  Status appendAudit(const std::vector<AuditRow>& rows) override {
    return run("appending to the audit log", [&] {
      for (const auto& row : rows) bindAuditRow(statements().insert_audit, row).run();
    });
  }

  Result<std::vector<DataKeyRow>> dataKeys() override {
    return run("reading the data keys", [&] { return selectDataKeys(statements().data_keys); });
  }

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
    return run("counting the partner view's rows", [&] {
      for (const auto& b : buckets) {
        statements()
            .add_partner_counts.text(1, b.partner_id)
            .text(2, b.clinic)
            .i64(3, b.hour)
            .text(4, b.kind)
            .text(5, b.outcome)
            .text(6, b.classes)
            .text(7, b.reason)
            .i64(8, b.count)
            .run();
      }
    });
  }

  Status putBreakGlass(const BreakGlass& row) override {
    return run("storing a break-glass row", [&] { sqlite::putBreakGlass(s_, row); });
  }

  Result<int> endBreakGlassIfOpen(std::string_view id, std::int64_t ended_at_ms, std::string_view ended_by) override {
    return run("ending a break-glass", [&] { return sqlite::endBreakGlassIfOpen(s_, id, ended_at_ms, ended_by); });
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
               [&] { return selectDecisionRows(statements().select_decisions, partner, clinic, record_key, version); });
  }

  Status putDecisionRows(const std::vector<DecisionRow>& rows) override {
    return run("storing a record's decisions", [&] {
      auto& put = statements().put_decision;
      for (const auto& d : rows) {
        put.text(1, d.partner_id)
            .text(2, d.clinic)
            .text(3, d.record_key)
            .text(4, d.resource_type)
            .text(5, d.resource_key)
            .text(6, d.patient_key)
            .i64(7, d.record_version)
            .text(8, d.outcome)
            .text(9, d.removed_activities)
            .text(10, d.reason)
            .i64(11, d.updated_at_ms)
            .run();
      }
    });
  }

  Status deleteDecisionRows(std::string_view clinic, std::string_view record_key) override {
    return run("replacing a record's decisions",
               [&] { statements().delete_decisions.text(1, clinic).text(2, record_key).run(); });
  }

  Result<bool> hasLiveItem(std::string_view partner_v, std::string_view clinic_v, std::string_view record_key_v,
                           int version) override {
    return run("reading a record's outbox items", [&] {
      return statements()
          .live_item.text(1, partner_v)
          .text(2, clinic_v)
          .text(3, record_key_v)
          .i64(4, version)
          .first([](const PreparedStatement&) {});
    });
  }

 private:
  WriterStatements& statements() {
    if (!c_.statements) c_.statements.reset(new WriterStatements(Poco::Data::SQLite::Utility::dbHandle(s_)));
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
    if (!connection.statements) {
      connection.statements.reset(new WriterStatements(Poco::Data::SQLite::Utility::dbHandle(connection.session)));
    }
    connection.statements->begin.run();
  } catch (const Poco::Exception& e) {
    connection.statements.reset();
    return storageError("beginning a write transaction", e);
  }
  return std::unique_ptr<StoreWriter>(std::make_unique<SqliteWriter>(connection, std::move(lock)));
}

}  // namespace gw::store::sqlite

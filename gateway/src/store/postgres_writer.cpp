// StoreWriter on the PostgreSQL writer connection: records, outbox, consents, the audit log, keys,
// retention, data key rotation and operations' writes, in one transaction.
#include <algorithm>

#include "common/log.hpp"
#include "store/audit_chain.hpp"
#include "store/postgres_backend.hpp"

namespace gw::store::postgres {
namespace {

// Every writer of the database takes this transaction-scoped lock right after BEGIN: write
// transactions are one at a time across every gateway instance on the database, so what one reads
// (the audit chain's head, a record's current version, a consent's highest version) stays true
// until it commits. Released by COMMIT or ROLLBACK, also when the connection drops.
constexpr const char* kWriteLock = "SELECT pg_advisory_xact_lock(7412390002)";

// Audit rows per INSERT statement (20 parameters each, well under PostgreSQL's 65,535).
constexpr std::size_t kAuditChunk = 500;

class PostgresWriter final : public StoreWriter {
 public:
  PostgresWriter(PgConnection& c, std::unique_lock<std::mutex> lock, OutboxClaims& claims)
      : c_(c), lock_(std::move(lock)), claims_(claims) {}
  ~PostgresWriter() override { rollback(); }

  Status commit() override {
    try {
      c_.exec("COMMIT");
      open_ = false;
      // The items' new states are visible to every instance now: their claims may go.
      if (!settled_.empty()) claims_.release(settled_);
      return ok();
    } catch (const PgFailure& f) {
      return storageError("committing", f);
    }
  }

  void rollback() noexcept override {
    if (!open_) return;
    open_ = false;
    c_.discard();  // writes still in the pipeline: the rollback undoes them
    try {
      c_.exec("ROLLBACK");
    } catch (...) {
      // The connection is unusable: beginWrite resets it before the next transaction.
    }
  }

  Result<std::optional<RecordHead>> recordHead(std::string_view clinic, std::string_view record_key) override {
    return run("reading a record", [&] {
      auto r = c_.exec("SELECT content_hash, version, state FROM records WHERE clinic=$1 AND record_key=$2",
                       Params().text(clinic).text(record_key));
      if (r.rows() == 0) return std::optional<RecordHead>();
      return std::optional<RecordHead>(
          RecordHead{r.i32(0, 1), r.text(0, 0), parseRecordState(r.text(0, 2)).value_or(RecordState::Received)});
    });
  }

  Status insertRecordVersion(const RecordVersionRow& v) override {
    return run("storing a record version", [&] {
      c_.send("storing a record version",
              "INSERT INTO record_versions(clinic, record_key, version, content_hash, payload, received_at, data_class) "
              "VALUES($1,$2,$3,$4,$5,$6,$7)",
              Params()
                  .text(v.clinic)
                  .text(v.record_key)
                  .i64(v.version)
                  .text(v.content_hash)
                  .bytes(v.payload_sealed)
                  .i64(v.received_at_ms)
                  .text(v.data_class));
    });
  }

  Status insertRecord(const RecordRow& r) override {
    return run("storing a record", [&] {
      c_.send("storing a record",
              "INSERT INTO records(clinic, record_key, record_type, version, content_hash, state, error, patient_key, "
              "received_at, updated_at, data_class) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
              Params()
                  .text(r.clinic)
                  .text(r.record_key)
                  .text(r.record_type)
                  .i64(r.version)
                  .text(r.content_hash)
                  .text(recordStateName(r.state))
                  .text(r.error)
                  .text(r.patient_key)
                  .i64(r.received_at_ms)
                  .i64(r.updated_at_ms)
                  .text(r.data_class));
    });
  }

  Status updateRecord(const RecordRow& r) override {
    return run("storing a record", [&] {
      c_.send("storing a record",
              "UPDATE records SET record_type=$1, version=$2, content_hash=$3, state=$4, error=$5, patient_key=$6, "
              "updated_at=$7, data_class=$8 WHERE clinic=$9 AND record_key=$10",
              Params()
                  .text(r.record_type)
                  .i64(r.version)
                  .text(r.content_hash)
                  .text(recordStateName(r.state))
                  .text(r.error)
                  .text(r.patient_key)
                  .i64(r.updated_at_ms)
                  .text(r.data_class)
                  .text(r.clinic)
                  .text(r.record_key));
    });
  }

  Status deleteResources(std::string_view clinic, std::string_view record_key) override {
    return run("replacing a record's resources", [&] {
      c_.send("replacing a record's resources", "DELETE FROM resources WHERE clinic=$1 AND record_key=$2",
              Params().text(clinic).text(record_key));
    });
  }

  Status putResource(const ResourceRow& r) override {
    return run("storing a resource", [&] {
      // A replaced row takes a new row_id, as SQLite's INSERT OR REPLACE gives a new rowid.
      c_.send("storing a resource",
              "INSERT INTO resources(resource_type, resource_key, resource_id, clinic, record_key, record_version, "
              "identifier_system, identifier_value, body, data_class, stored_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) "
              "ON CONFLICT (resource_type, resource_key) DO UPDATE SET resource_id=EXCLUDED.resource_id, "
              "clinic=EXCLUDED.clinic, record_key=EXCLUDED.record_key, record_version=EXCLUDED.record_version, "
              "identifier_system=EXCLUDED.identifier_system, identifier_value=EXCLUDED.identifier_value, "
              "body=EXCLUDED.body, data_class=EXCLUDED.data_class, stored_at=EXCLUDED.stored_at, row_id=DEFAULT",
              Params()
                  .text(r.resource_type)
                  .text(r.resource_key)
                  .bytes(r.resource_id_sealed)
                  .text(r.clinic)
                  .text(r.record_key)
                  .i64(r.record_version)
                  .text(r.identifier_system)
                  .bytes(r.identifier_value_sealed)
                  .bytes(r.body_sealed)
                  .text(r.data_class)
                  .i64(r.stored_at_ms));
    });
  }

  Status supersedePending(std::string_view clinic, std::string_view record_key, std::int64_t now_ms) override {
    return run("superseding outbox items", [&] {
      c_.send("superseding outbox items",
              "UPDATE outbox SET state='superseded', updated_at=$1 WHERE clinic=$2 AND record_key=$3 "
              "AND state IN ('queued','retrying')",
              Params().i64(now_ms).text(clinic).text(record_key));
    });
  }

  Status insertOutboxItem(const OutboxRow& r) override {
    return run("queueing an outbox item", [&] {
      c_.send("queueing an outbox item",
              "INSERT INTO outbox(partner_id, clinic, record_key, record_version, patient_key, bundle, entry_count, state, "
              "attempts, next_attempt_at, last_error, outcome, created_at, updated_at, data_class, disclosure) "
              "VALUES($1,$2,$3,$4,$5,$6,$7,'queued',0,$8,'','',$8,$8,$9,$10)",
              Params()
                  .text(r.partner_id)
                  .text(r.clinic)
                  .text(r.record_key)
                  .i64(r.record_version)
                  .text(r.patient_key)
                  .bytes(r.bundle_sealed)
                  .i64(r.entry_count)
                  .i64(r.created_at_ms)
                  .text(r.data_class)
                  .bytes(r.disclosure_sealed));
    });
  }

  Result<std::optional<std::string>> outboxItemClass(std::int64_t item_id) override {
    return run("updating the outbox", [&] {
      auto r = c_.exec("SELECT data_class FROM outbox WHERE id=$1", Params().i64(item_id));
      return r.rows() == 0 ? std::optional<std::string>() : std::optional<std::string>(r.text(0, 0));
    });
  }

  Result<int> updatePendingItem(const OutboxStateChange& c) override {
    settled_.push_back(c.id);
    return run("updating the outbox", [&] {
      // Only pending items change: a newer version may have superseded this one while it was in flight.
      return c_
          .exec(
              "UPDATE outbox SET state=$1, attempts=CASE WHEN $2::bigint<0 THEN attempts ELSE $2::bigint END, "
              "next_attempt_at=$3, last_error=$4, outcome=$5, updated_at=$6 WHERE id=$7 "
              "AND state IN ('queued','retrying')",
              Params()
                  .text(outboxStateName(c.state))
                  .i64(c.attempts)
                  .i64(c.next_attempt_at_ms)
                  .text(c.last_error)
                  .bytes(c.outcome_sealed)
                  .i64(c.updated_at_ms)
                  .i64(c.id))
          .affected();
    });
  }

  Status markDelivered(std::int64_t item_id, std::int64_t now_ms, const std::vector<DeliveredEntry>& entries) override {
    settled_.push_back(item_id);
    return run("recording a delivery", [&] {
      c_.exec(
          "UPDATE outbox SET state='delivered', attempts=attempts+1, updated_at=$1, delivered_at=$1, last_error='' "
          "WHERE id=$2",
          Params().i64(now_ms).i64(item_id));
      c_.exec("DELETE FROM deliveries WHERE outbox_id=$1", Params().i64(item_id));
      for (std::size_t i = 0; i < entries.size(); ++i) {
        c_.exec("INSERT INTO deliveries(outbox_id, entry_index, status, location, etag) VALUES($1,$2,$3,$4,$5)",
                Params()
                    .i64(item_id)
                    .i64(static_cast<std::int64_t>(i))
                    .text(entries[i].status)
                    .text(entries[i].location)
                    .text(entries[i].etag));
      }
    });
  }

  Status insertCopiedRows(const CopyTable& table, const std::vector<CopyRow>& rows) override {
    return run("copying rows", [&] { insertCopyRows(c_, table, rows); });
  }

  Result<std::vector<DecisionRow>> decisionRows(std::string_view partner, std::string_view clinic,
                                                std::string_view record_key, int version) override {
    return run("reading a record's decisions", [&] { return selectDecisionRows(c_, partner, clinic, record_key, version); });
  }

  Status putDecisionRows(const std::vector<DecisionRow>& rows) override {
    return run("storing a record's decisions", [&] {
      for (const auto& d : rows) {
        c_.send(
            "storing a record's decisions",
            "INSERT INTO resource_decisions(partner_id, clinic, record_key, resource_type, resource_key, patient_key, "
            "record_version, outcome, removed_activities, reason, updated_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) "
            "ON CONFLICT (partner_id, clinic, record_key, resource_type, resource_key) DO UPDATE SET "
            "patient_key=EXCLUDED.patient_key, record_version=EXCLUDED.record_version, outcome=EXCLUDED.outcome, "
            "removed_activities=EXCLUDED.removed_activities, reason=EXCLUDED.reason, updated_at=EXCLUDED.updated_at",
            Params()
                .text(d.partner_id)
                .text(d.clinic)
                .text(d.record_key)
                .text(d.resource_type)
                .text(d.resource_key)
                .text(d.patient_key)
                .i64(d.record_version)
                .text(d.outcome)
                .text(d.removed_activities)
                .text(d.reason)
                .i64(d.updated_at_ms));
      }
    });
  }

  Status deleteDecisionRows(std::string_view clinic, std::string_view record_key) override {
    return run("replacing a record's decisions", [&] {
      c_.send("replacing a record's decisions", "DELETE FROM resource_decisions WHERE clinic=$1 AND record_key=$2",
              Params().text(clinic).text(record_key));
    });
  }

  Result<bool> hasLiveItem(std::string_view partner, std::string_view clinic, std::string_view record_key,
                           int version) override {
    return run("reading a record's outbox items", [&] {
      auto r = c_.exec(
          "SELECT EXISTS (SELECT 1 FROM outbox WHERE partner_id=$1 AND clinic=$2 AND record_key=$3 AND "
          "record_version=$4 AND state IN ('queued','retrying','delivered','dead'))",
          Params().text(partner).text(clinic).text(record_key).i64(version));
      return r.text(0, 0) == "t";
    });
  }

  Result<std::int64_t> highestConsentVersion(std::string_view clinic, std::string_view consent_key) override {
    return run("storing a consent", [&] {
      return c_
          .exec("SELECT COALESCE(MAX(version), 0) FROM consents WHERE clinic=$1 AND consent_key=$2",
                Params().text(clinic).text(consent_key))
          .i64(0, 0);
    });
  }

  Status insertConsent(const ConsentKeyedRow& c) override {
    return run("storing a consent", [&] {
      const auto& row = c.facts;
      c_.send("storing a consent",
              "INSERT INTO consents(clinic, consent_key, consent_id, version, patient_key, partner_id, status, purposes, "
              "classes, period_start, period_end, revoked_on, signed_on, resource_id, recorded_at, reconciled) "
              "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,0)",
              Params()
                  .text(row.clinic)
                  .text(c.consent_key)
                  .bytes(c.consent_id_sealed)
                  .i64(row.version)
                  .text(row.patient_key)
                  .text(row.partner_id)
                  .text(row.status)
                  .text(row.purposes)
                  .text(row.classes)
                  .text(row.period_start)
                  .text(row.period_end)
                  .text(row.revoked_on)
                  .text(row.signed_on)
                  .bytes(c.resource_id_sealed)
                  .i64(row.recorded_at));
      // Delivered to every listening instance when (and only if) the transaction commits.
      c_.send("storing a consent", "SELECT pg_notify('gw_consents', $1)", Params().text(row.patient_key));
    });
  }

  Status markConsentReconciled(std::string_view clinic, std::string_view consent_key, std::int64_t version) override {
    return run("updating a consent", [&] {
      c_.exec("UPDATE consents SET reconciled=1 WHERE clinic=$1 AND consent_key=$2 AND version=$3",
              Params().text(clinic).text(consent_key).i64(version));
    });
  }

  Result<ChainTail> auditTail() override {
    return run("appending to the audit log", [&] { return selectAuditTail(c_); });
  }

  Status appendAudit(const std::vector<AuditRow>& rows) override {
    return run("appending to the audit log", [&] {
      // Several rows per INSERT: one round trip per chunk rather than per row.
      for (std::size_t start = 0; start < rows.size(); start += kAuditChunk) {
        const std::size_t end = std::min(rows.size(), start + kAuditChunk);
        std::string sql =
            "INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, "
            "resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, "
            "prev_hash, hash, instance_id) VALUES";
        Params params;
        for (std::size_t i = start; i < end; ++i) {
          const auto& a = rows[i];
          sql += i == start ? "(" : ",(";
          for (int k = 0; k < 21; ++k) {
            sql += (k == 0 ? "$" : ",$") + std::to_string(params.size() + static_cast<std::size_t>(k) + 1);
          }
          sql += ")";
          params.i64(a.seq)
              .i64(a.at_ms)
              .text(a.kind)
              .text(a.actor)
              .text(a.clinic)
              .text(a.patient_key)
              .text(a.partner_id)
              .text(a.purpose)
              .text(a.resource_type)
              .text(a.resource_id)
              .text(a.classes)
              .text(a.labels)
              .text(a.consent_id)
              .i64(a.consent_version)
              .text(a.outcome)
              .text(a.reason)
              .text(a.policy_version)
              .text(a.detail)
              .text(a.prev_hash)
              .text(a.hash)
              .text(a.instance_id);
        }
        c_.send("appending to the audit log", sql, params);
      }
    });
  }

  Result<std::vector<DataKeyRow>> dataKeys() override {
    return run("reading the data keys", [&] { return selectDataKeys(c_); });
  }

  Status insertDataKeyIfAbsent(const DataKeyRow& row) override {
    return run("storing a data key", [&] {
      c_.exec(
          "INSERT INTO data_keys(data_class, key_version, wrapped, master_key_id, created_at) VALUES($1,$2,$3,$4,$5) "
          "ON CONFLICT DO NOTHING",
          Params()
              .text(row.data_class)
              .i64(row.key_version)
              .bytes(row.wrapped)
              .text(row.master_key_id)
              .i64(row.created_at_ms));
    });
  }

  Status updateDataKey(const DataKeyRow& row) override {
    return run("re-wrapping the data keys", [&] {
      c_.exec("UPDATE data_keys SET wrapped=$1, master_key_id=$2 WHERE data_class=$3 AND key_version=$4",
              Params().bytes(row.wrapped).text(row.master_key_id).text(row.data_class).i64(row.key_version));
    });
  }

  Result<std::string> deploymentSecret(std::string_view name, std::string_view candidate) override {
    return run("reading a deployment secret", [&] {
      // Insert-if-absent then read: whoever made it first wins, every caller sees the same value.
      c_.exec("INSERT INTO deployment_secrets(name, value) VALUES($1,$2) ON CONFLICT DO NOTHING",
              Params().text(name).bytes(candidate));
      auto r = c_.exec("SELECT value FROM deployment_secrets WHERE name=$1", Params().text(name));
      return r.rows() == 0 ? std::string() : r.bytes(0, 0);
    });
  }

  Result<SealedBatch> sealedCells(SealedTable table, std::int64_t after_row, int limit) override {
    return run("reading sealed payloads to re-seal", [&] { return selectSealedCells(table, after_row, limit); });
  }

  Result<std::int64_t> lastSealedRow(SealedTable table) override {
    return run("reading sealed payloads to re-seal", [&] {
      // The console's tables are scanned by position in id order: the last is the row count.
      const bool by_position = table == SealedTable::BreakGlass || table == SealedTable::AccountingRequests;
      const std::string sql = (by_position ? std::string("SELECT COUNT(*)")
                                           : "SELECT COALESCE(MAX(" + std::string(positionColumn(table)) + "), 0)") +
                              " FROM " + std::string(sealedTableName(table));
      return c_.exec(sql).i64(0, 0);
    });
  }

  Status replaceSealed(const SealedCell& cell) override {
    return run("re-sealing a payload", [&] {
      const char* sql = nullptr;
      switch (cell.column) {
        case SealedColumn::RecordPayload: sql = "UPDATE record_versions SET payload=$1 WHERE row_id=$2"; break;
        case SealedColumn::ResourceId: sql = "UPDATE resources SET resource_id=$1 WHERE row_id=$2"; break;
        case SealedColumn::ResourceIdentifier: sql = "UPDATE resources SET identifier_value=$1 WHERE row_id=$2"; break;
        case SealedColumn::ResourceBody: sql = "UPDATE resources SET body=$1 WHERE row_id=$2"; break;
        case SealedColumn::OutboxBundle: sql = "UPDATE outbox SET bundle=$1 WHERE id=$2"; break;
        case SealedColumn::OutboxDisclosure: sql = "UPDATE outbox SET disclosure=$1 WHERE id=$2"; break;
        case SealedColumn::OutboxOutcome: sql = "UPDATE outbox SET outcome=$1 WHERE id=$2"; break;
        case SealedColumn::ConsentId: sql = "UPDATE consents SET consent_id=$1 WHERE row_id=$2"; break;
        case SealedColumn::ConsentResourceId: sql = "UPDATE consents SET resource_id=$1 WHERE row_id=$2"; break;
        case SealedColumn::SecretValue: sql = "UPDATE deployment_secrets SET value=$1 WHERE row_id=$2"; break;
        case SealedColumn::BreakGlassRecipient: sql = "UPDATE break_glass SET recipient=$1 WHERE id=$2"; break;
        case SealedColumn::BreakGlassAuthorisedBy: sql = "UPDATE break_glass SET authorised_by=$1 WHERE id=$2"; break;
        case SealedColumn::BreakGlassNature: sql = "UPDATE break_glass SET nature=$1 WHERE id=$2"; break;
        case SealedColumn::AccountingRequestNote: sql = "UPDATE accounting_requests SET note=$1 WHERE id=$2"; break;
      }
      if (isTextSealedColumn(cell.column)) {
        c_.exec(sql, Params().text(cell.sealed).text(cell.name));
        return;
      }
      c_.exec(sql, Params().bytes(cell.sealed).i64(cell.row));
    });
  }

  Status deleteDataKey(std::string_view data_class, int key_version) override {
    return run("destroying a data key", [&] {
      c_.exec("DELETE FROM data_keys WHERE data_class=$1 AND key_version=$2", Params().text(data_class).i64(key_version));
    });
  }

  Result<int> requeueDeadItem(std::int64_t item_id, std::string_view note, std::int64_t now_ms) override {
    return run("replaying an outbox item", [&] {
      return c_
          .exec(
              "UPDATE outbox SET state='queued', attempts=0, next_attempt_at=$1, last_error=$2, outcome='', "
              "updated_at=$1 WHERE id=$3 AND state='dead'",
              Params().i64(now_ms).text(note).i64(item_id))
          .affected();
    });
  }

  Status putPartnerPause(const PartnerPause& pause) override {
    return run("pausing a partner", [&] {
      c_.exec(
          "INSERT INTO partner_pauses(partner_id, paused_at, actor, reason) VALUES($1,$2,$3,$4) "
          "ON CONFLICT (partner_id) DO UPDATE SET paused_at=EXCLUDED.paused_at, actor=EXCLUDED.actor, "
          "reason=EXCLUDED.reason",
          Params().text(pause.partner_id).i64(pause.paused_at_ms).text(pause.actor).text(pause.reason));
    });
  }

  Status putInstance(const InstanceRow& row) override {
    return run("recording a gateway instance", [&] {
      c_.exec(
          "INSERT INTO gateway_instances(instance_id, started_at, last_seen_at, stopped_at, binary_version, "
          "config_version, mappers_version, mappers_loaded_at, last_reload_at, last_reload_error) "
          "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (instance_id) DO UPDATE SET "
          "started_at=EXCLUDED.started_at, last_seen_at=EXCLUDED.last_seen_at, stopped_at=EXCLUDED.stopped_at, "
          "binary_version=EXCLUDED.binary_version, config_version=EXCLUDED.config_version, "
          "mappers_version=EXCLUDED.mappers_version, mappers_loaded_at=EXCLUDED.mappers_loaded_at, "
          "last_reload_at=EXCLUDED.last_reload_at, last_reload_error=EXCLUDED.last_reload_error",
          Params()
              .text(row.instance_id)
              .i64(row.started_at_ms)
              .i64(row.last_seen_at_ms)
              .i64(row.stopped_at_ms)
              .text(row.binary_version)
              .text(row.config_version)
              .text(row.mappers_version)
              .i64(row.mappers_loaded_at_ms)
              .i64(row.last_reload_at_ms)
              .text(row.last_reload_error));
    });
  }

  Status deleteInstancesSeenBefore(std::int64_t cutoff_ms) override {
    return run("forgetting old gateway instances",
               [&] { c_.exec("DELETE FROM gateway_instances WHERE last_seen_at < $1", Params().i64(cutoff_ms)); });
  }

  Status deletePartnerPause(std::string_view partner_id) override {
    return run("resuming a partner",
               [&] { c_.exec("DELETE FROM partner_pauses WHERE partner_id=$1", Params().text(partner_id)); });
  }

  Status addPartnerLogCounts(const std::vector<PartnerLogBucket>& buckets) override {
    return run("counting the partner view's rows", [&] {
      for (const auto& b : buckets) {
        c_.send("counting the partner view's rows",
                "INSERT INTO audit_hourly_counts(partner_id, clinic, hour, kind, outcome, classes, reason, count) "
                "VALUES($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (partner_id, clinic, hour, kind, outcome, classes, reason) "
                "DO UPDATE SET count = audit_hourly_counts.count + EXCLUDED.count",
                Params()
                    .text(b.partner_id)
                    .text(b.clinic)
                    .i64(b.hour)
                    .text(b.kind)
                    .text(b.outcome)
                    .text(b.classes)
                    .text(b.reason)
                    .i64(b.count));
      }
    });
  }

  Result<int> endBreakGlassIfOpen(std::string_view id, std::int64_t ended_at_ms, std::string_view ended_by) override {
    return run("ending a break-glass", [&] {
      // Under READ COMMITTED a concurrent end waits for the first and re-reads the row: one wins.
      auto r = c_.exec(
          "UPDATE break_glass SET ended_at=$1, ended_by=$2 WHERE id=$3 AND ended_at=0 AND ended_by='' "
          "RETURNING patient_key",
          Params().i64(ended_at_ms).text(ended_by).text(id));
      if (r.rows() == 0) return 0;
      // As putBreakGlass: every instance takes the patient's grants again (on commit only).
      c_.exec("SELECT pg_notify('gw_consents', $1)", Params().text(r.text(0, 0)));
      return 1;
    });
  }

  Status putBreakGlass(const BreakGlass& b) override {
    return run("storing a break-glass row", [&] {
      c_.exec(
          "INSERT INTO break_glass(id, clinic, patient_key, partner_id, recipient, authorised_by, nature, opened_by, "
          "opened_at, expires_at, ended_at, ended_by) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) "
          "ON CONFLICT (id) DO UPDATE SET clinic=EXCLUDED.clinic, patient_key=EXCLUDED.patient_key, "
          "partner_id=EXCLUDED.partner_id, recipient=EXCLUDED.recipient, authorised_by=EXCLUDED.authorised_by, "
          "nature=EXCLUDED.nature, opened_by=EXCLUDED.opened_by, opened_at=EXCLUDED.opened_at, "
          "expires_at=EXCLUDED.expires_at, ended_at=EXCLUDED.ended_at, ended_by=EXCLUDED.ended_by",
          Params()
              .text(b.id)
              .text(b.clinic)
              .text(b.patient_key)
              .text(b.partner_id)
              .text(b.recipient)
              .text(b.authorised_by)
              .text(b.nature)
              .text(b.opened_by)
              .i64(b.opened_at_ms)
              .i64(b.expires_at_ms)
              .i64(b.ended_at_ms)
              .text(b.ended_by));
      // A grant opened or ended changes what the patient's data may do, as a consent does: every
      // instance hears of it (on commit only) and takes the patient's grants again.
      c_.exec("SELECT pg_notify('gw_consents', $1)", Params().text(b.patient_key));
    });
  }

  Status putAccountingRequest(const AccountingRequest& a) override {
    return run("storing an accounting request", [&] {
      c_.exec(
          "INSERT INTO accounting_requests(id, clinic, patient_key, received_on, due_on, note, state, delivered_on, "
          "created_by, delivered_by, created_at, updated_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) "
          "ON CONFLICT (id) DO UPDATE SET clinic=EXCLUDED.clinic, patient_key=EXCLUDED.patient_key, "
          "received_on=EXCLUDED.received_on, due_on=EXCLUDED.due_on, note=EXCLUDED.note, state=EXCLUDED.state, "
          "delivered_on=EXCLUDED.delivered_on, created_by=EXCLUDED.created_by, delivered_by=EXCLUDED.delivered_by, "
          "created_at=EXCLUDED.created_at, updated_at=EXCLUDED.updated_at",
          Params()
              .text(a.id)
              .text(a.clinic)
              .text(a.patient_key)
              .text(a.received_on)
              .text(a.due_on)
              .text(a.note)
              .text(a.state)
              .text(a.delivered_on)
              .text(a.created_by)
              .text(a.delivered_by)
              .i64(a.created_at_ms)
              .i64(a.updated_at_ms));
    });
  }

  Status writeProbe(std::int64_t now_ms) override {
    return run("the write probe", [&] {
      c_.exec("INSERT INTO write_probe(id, at_ms) VALUES(1, $1) ON CONFLICT (id) DO UPDATE SET at_ms=EXCLUDED.at_ms",
              Params().i64(now_ms));
    });
  }

  // --- retention: select the expired rows by the age indexes, then delete them by position ---

  Result<PurgedRows> purgeRecordVersions(std::string_view cls, std::int64_t cutoff, int limit) override {
    return run("purging expired data", [&] {
      return purged(
          c_.exec("DELETE FROM record_versions WHERE row_id IN (SELECT row_id FROM record_versions WHERE received_at<$1 "
                  "AND data_class=$2 LIMIT $3) RETURNING clinic, record_key",
                  Params().i64(cutoff).text(cls).i64(limit)));
    });
  }

  Result<PurgedRows> purgeResources(std::string_view cls, std::int64_t cutoff, int limit) override {
    return run("purging expired data", [&] {
      return purged(
          c_.exec("DELETE FROM resources WHERE row_id IN (SELECT row_id FROM resources WHERE stored_at<$1 AND data_class=$2 "
                  "LIMIT $3) RETURNING clinic, record_key",
                  Params().i64(cutoff).text(cls).i64(limit)));
    });
  }

  Result<PurgedRows> purgeFinishedItems(std::string_view cls, std::int64_t cutoff, int limit) override {
    return run("purging expired data", [&] {
      // Terminal items only, aged from when they last changed; queued and retrying items are never
      // purged, whatever their age.
      auto ids = c_.exec(
          "SELECT id FROM outbox WHERE created_at<$1 AND updated_at<$1 AND data_class=$2 "
          "AND state IN ('delivered','dead','superseded','cancelled') LIMIT $3",
          Params().i64(cutoff).text(cls).i64(limit));
      std::string list = "{";
      for (int i = 0; i < ids.rows(); ++i) list += (i == 0 ? "" : ",") + ids.text(i, 0);
      list += "}";
      c_.exec("DELETE FROM deliveries WHERE outbox_id = ANY($1::bigint[])", Params().text(list));
      return purged(
          c_.exec("DELETE FROM outbox WHERE id = ANY($1::bigint[]) RETURNING clinic, record_key", Params().text(list)));
    });
  }

  Result<std::int64_t> deleteRecordsIfEmpty(const std::vector<RecordKey>& records) override {
    return run("purging expired data", [&] {
      std::int64_t deleted = 0;
      for (const auto& rk : records) {
        // A record with no version, resource or outbox item left goes too (its id may embed an MRN),
        // and its last decisions with it.
        const int n = c_.exec(
                            "DELETE FROM records WHERE clinic=$1 AND record_key=$2 "
                            "AND NOT EXISTS (SELECT 1 FROM record_versions v WHERE v.clinic=records.clinic AND "
                            "v.record_key=records.record_key) "
                            "AND NOT EXISTS (SELECT 1 FROM resources r WHERE r.clinic=records.clinic AND "
                            "r.record_key=records.record_key) "
                            "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.clinic=records.clinic AND "
                            "o.record_key=records.record_key)",
                            Params().text(rk.clinic).text(rk.record_key))
                          .affected();
        if (n > 0) {
          c_.exec("DELETE FROM resource_decisions WHERE clinic=$1 AND record_key=$2",
                  Params().text(rk.clinic).text(rk.record_key));
        }
        deleted += n;
      }
      return deleted;
    });
  }

 private:
  static const char* positionColumn(SealedTable table) { return table == SealedTable::Outbox ? "id" : "row_id"; }

  // The deleted rows' count and the record of each (the store checks each record once).
  static PurgedRows purged(const PgResult& r) {
    PurgedRows out;
    out.count = r.rows();
    for (int i = 0; i < r.rows(); ++i) out.records.push_back({r.text(i, 0), r.text(i, 1)});
    return out;
  }

  static void addCell(std::vector<SealedCell>& cells, const SealedCell& identity, SealedColumn column, std::string value) {
    if (value.empty()) return;  // no value (an item without an outcome)
    SealedCell cell = identity;
    cell.column = column;
    cell.sealed = std::move(value);
    cells.push_back(std::move(cell));
  }

  SealedBatch selectSealedCells(SealedTable table, std::int64_t after, int limit) {
    SealedBatch batch;
    const auto params = Params().i64(after).i64(limit);
    PgResult r;
    switch (table) {
      case SealedTable::RecordVersions:
        r = c_.exec(
            "SELECT row_id, clinic, record_key, version, payload FROM record_versions WHERE row_id>$1 "
            "ORDER BY row_id LIMIT $2",
            params);
        for (int i = 0; i < r.rows(); ++i) {
          SealedCell id;
          id.row = r.i64(i, 0);
          id.clinic = r.text(i, 1);
          id.record_key = r.text(i, 2);
          id.version = r.i64(i, 3);
          addCell(batch.cells, id, SealedColumn::RecordPayload, r.bytes(i, 4));
        }
        break;
      case SealedTable::Resources:
        r = c_.exec(
            "SELECT row_id, resource_type, resource_key, resource_id, identifier_value, body FROM resources "
            "WHERE row_id>$1 ORDER BY row_id LIMIT $2",
            params);
        for (int i = 0; i < r.rows(); ++i) {
          SealedCell id;
          id.row = r.i64(i, 0);
          id.resource_type = r.text(i, 1);
          id.resource_key = r.text(i, 2);
          addCell(batch.cells, id, SealedColumn::ResourceId, r.bytes(i, 3));
          addCell(batch.cells, id, SealedColumn::ResourceIdentifier, r.bytes(i, 4));
          addCell(batch.cells, id, SealedColumn::ResourceBody, r.bytes(i, 5));
        }
        break;
      case SealedTable::Outbox:
        r = c_.exec(
            "SELECT id, partner_id, clinic, record_key, record_version, bundle, disclosure, outcome FROM outbox "
            "WHERE id>$1 ORDER BY id LIMIT $2",
            params);
        for (int i = 0; i < r.rows(); ++i) {
          SealedCell id;
          id.row = r.i64(i, 0);
          id.partner_id = r.text(i, 1);
          id.clinic = r.text(i, 2);
          id.record_key = r.text(i, 3);
          id.version = r.i64(i, 4);
          addCell(batch.cells, id, SealedColumn::OutboxBundle, r.bytes(i, 5));
          addCell(batch.cells, id, SealedColumn::OutboxDisclosure, r.bytes(i, 6));
          addCell(batch.cells, id, SealedColumn::OutboxOutcome, r.bytes(i, 7));
        }
        break;
      case SealedTable::Consents:
        r = c_.exec(
            "SELECT row_id, clinic, consent_key, version, consent_id, resource_id FROM consents WHERE row_id>$1 "
            "ORDER BY row_id LIMIT $2",
            params);
        for (int i = 0; i < r.rows(); ++i) {
          SealedCell id;
          id.row = r.i64(i, 0);
          id.clinic = r.text(i, 1);
          id.consent_key = r.text(i, 2);
          id.version = r.i64(i, 3);
          addCell(batch.cells, id, SealedColumn::ConsentId, r.bytes(i, 4));
          addCell(batch.cells, id, SealedColumn::ConsentResourceId, r.bytes(i, 5));
        }
        break;
      case SealedTable::DeploymentSecrets:
        // The audit chain's start marker is a MAC, not sealed (audit_chain.cpp reads it raw).
        r = c_.exec(
            "SELECT row_id, name, value FROM deployment_secrets WHERE row_id>$1 AND name<>$3 ORDER BY row_id LIMIT $2",
            Params().i64(after).i64(limit).text(kChainStartSecretName));
        for (int i = 0; i < r.rows(); ++i) {
          SealedCell id;
          id.row = r.i64(i, 0);
          id.name = r.text(i, 1);
          addCell(batch.cells, id, SealedColumn::SecretValue, r.bytes(i, 2));
        }
        break;
      case SealedTable::BreakGlass:
      case SealedTable::AccountingRequests: return consoleTextCells(table, after, limit);
    }
    batch.rows = r.rows();
    if (r.rows() > 0) batch.last_row = r.i64(r.rows() - 1, 0);
    return batch;
  }

  // The console's tables hold their sealed text in TEXT columns and are scanned by position in
  // id order (rows are few; a row inserted mid-pass can shift the positions, and the rotation's
  // next pass finds what that skipped).
  SealedBatch consoleTextCells(SealedTable table, std::int64_t after, int limit) {
    const bool break_glass = table == SealedTable::BreakGlass;
    const auto r = c_.exec(break_glass ? "SELECT id, recipient, authorised_by, nature FROM break_glass ORDER BY id "
                                         "LIMIT $1 OFFSET $2"
                                       : "SELECT id, note FROM accounting_requests ORDER BY id LIMIT $1 OFFSET $2",
                           Params().i64(limit).i64(after));
    SealedBatch batch;
    batch.rows = r.rows();
    batch.last_row = after + batch.rows;
    for (int i = 0; i < r.rows(); ++i) {
      SealedCell id;
      id.row = after + i + 1;
      id.name = r.text(i, 0);
      if (break_glass) {
        addCell(batch.cells, id, SealedColumn::BreakGlassRecipient, r.text(i, 1));
        addCell(batch.cells, id, SealedColumn::BreakGlassAuthorisedBy, r.text(i, 2));
        addCell(batch.cells, id, SealedColumn::BreakGlassNature, r.text(i, 3));
      } else {
        addCell(batch.cells, id, SealedColumn::AccountingRequestNote, r.text(i, 1));
      }
    }
    return batch;
  }

  // Runs one primitive; a failed statement becomes a Storage error (the store then rolls back).
  template <class F>
  auto run(std::string_view what, F&& f) -> Result<std::invoke_result_t<F&>> {
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
        f();
        return ok();
      } else {
        return f();
      }
    } catch (const PgFailure& e) {
      return storageError(what, e);
    }
  }

  PgConnection& c_;
  std::unique_lock<std::mutex> lock_;  // released last, after the rollback
  OutboxClaims& claims_;
  std::vector<std::int64_t> settled_;  // items whose state this transaction changes
  bool open_ = true;
};

}  // namespace

Result<std::unique_ptr<StoreWriter>> beginWriter(PgConnection& connection, std::unique_lock<std::mutex> lock,
                                                 OutboxClaims& claims, const std::vector<PatientPartner>& consent_changes,
                                                 std::chrono::milliseconds change_wait) {
  try {
    connection.exec("BEGIN");
    try {
      if (!consent_changes.empty()) {
        // The consent's send holds, exclusively, before the write lock (docs/architecture.md §5.3):
        // this waits for the sends in flight that hold them (their requests end within a bound and
        // they let go before recording their outcome, which needs the write lock), and no send
        // starts meanwhile; taken in one order (by key), so two changes cannot wait for each other.
        std::string keys;
        for (const auto& c : consent_changes) {
          if (!keys.empty()) keys += '\n';
          keys += sendHoldKey(c.patient_key, c.partner_id);
        }
        connection.exec("SET LOCAL lock_timeout = '" + std::to_string(change_wait.count()) + "ms'");
        connection.exec(
            "SELECT pg_advisory_xact_lock(74124, h) FROM (SELECT DISTINCT hashtext(k) AS h FROM "
            "unnest(string_to_array($1, E'\\n')) AS k ORDER BY 1) AS held",
            Params().text(keys));
        connection.exec("SET LOCAL lock_timeout = 0");
      }
      connection.exec(kWriteLock);
    } catch (...) {
      connection.exec("ROLLBACK");
      throw;
    }
  } catch (const PgFailure& f) {
    if (f.sqlstate() == "55P03") {
      GW_LOG(Warn, Store, "consent_change_sends_still_in_flight").kv("waited_ms", change_wait.count());
      return makeError(ErrorCode::Unavailable,
                       "a consent change waited " + std::to_string(change_wait.count() / 1000) +
                           " s for a send in flight on a gateway instance, which is longer than any send may last",
                       "storage.postgres",
                       "nothing was stored: retry; give every instance on the database the same partner timeouts");
    }
    return storageError("beginning a write transaction", f);
  }
  return std::unique_ptr<StoreWriter>(std::make_unique<PostgresWriter>(connection, std::move(lock), claims));
}

}  // namespace gw::store::postgres

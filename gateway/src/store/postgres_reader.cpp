// StoreReader on a pooled PostgreSQL connection (autocommit: each read sees what is committed).
#include "store/postgres_backend.hpp"

namespace gw::store::postgres {
namespace {

class PostgresReader final : public StoreReader {
 public:
  PostgresReader(std::unique_ptr<PgConnection> c, ConnectionPool& pool, OutboxClaims* claims)
      : c_(std::move(c)), pool_(pool), claims_(claims) {}
  ~PostgresReader() override { pool_.give(std::move(c_)); }

  Result<std::optional<RecordRow>> record(std::string_view clinic, std::string_view record_key) override {
    return run("reading record status", [&] {
      auto r = c_->exec(
          "SELECT record_type, version, content_hash, state, error, patient_key, received_at, updated_at, data_class "
          "FROM records WHERE clinic=$1 AND record_key=$2",
          Params().text(clinic).text(record_key));
      if (r.rows() == 0) return std::optional<RecordRow>();
      RecordRow row;
      row.clinic = clinic;
      row.record_key = record_key;
      row.record_type = r.text(0, 0);
      row.version = r.i32(0, 1);
      row.content_hash = r.text(0, 2);
      row.state = parseRecordState(r.text(0, 3)).value_or(RecordState::Received);
      row.error = r.text(0, 4);
      row.patient_key = r.text(0, 5);
      row.received_at_ms = r.i64(0, 6);
      row.updated_at_ms = r.i64(0, 7);
      row.data_class = r.text(0, 8);
      return std::optional<RecordRow>(std::move(row));
    });
  }

  Result<std::optional<std::string>> recordPayload(std::string_view clinic, std::string_view record_key,
                                                   int version) override {
    return run("reading a record", [&] {
      auto r = c_->exec("SELECT payload FROM record_versions WHERE clinic=$1 AND record_key=$2 AND version=$3",
                        Params().text(clinic).text(record_key).i64(version));
      return r.rows() == 0 ? std::optional<std::string>() : std::optional<std::string>(r.bytes(0, 0));
    });
  }

  Result<std::vector<ResourceRow>> resources(std::string_view clinic, std::string_view record_key) override {
    return run("reading a record's resources", [&] {
      auto r = c_->exec(
          "SELECT resource_type, resource_key, resource_id, record_version, identifier_system, identifier_value, "
          "data_class, stored_at FROM resources WHERE clinic=$1 AND record_key=$2 ORDER BY resource_type, resource_key",
          Params().text(clinic).text(record_key));
      std::vector<ResourceRow> rows;
      rows.reserve(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) {
        rows.push_back({r.text(i, 0),
                        r.text(i, 1),
                        r.bytes(i, 2),
                        std::string(clinic),
                        std::string(record_key),
                        r.i32(i, 3),
                        r.text(i, 4),
                        r.bytes(i, 5),
                        {},
                        r.text(i, 6),
                        r.i64(i, 7)});
      }
      return rows;
    });
  }

  Result<std::optional<std::string>> resourceBody(std::string_view type, std::string_view key) override {
    return run("reading a resource", [&] {
      auto r = c_->exec("SELECT body FROM resources WHERE resource_type=$1 AND resource_key=$2",
                        Params().text(type).text(key));
      return r.rows() == 0 ? std::optional<std::string>() : std::optional<std::string>(r.bytes(0, 0));
    });
  }

  Result<std::vector<HeldRecord>> heldRecords(std::string_view partner, std::string_view patient) override {
    return run("reading held records", [&] {
      auto r = c_->exec(
          "SELECT r.clinic, r.record_key, r.version, v.payload FROM records r JOIN record_versions v "
          "ON v.clinic=r.clinic AND v.record_key=r.record_key AND v.version=r.version "
          "WHERE r.patient_key=$1 AND r.state='mapped' AND r.record_type<>'consent' AND (NOT EXISTS ("
          "SELECT 1 FROM outbox o WHERE o.partner_id=$2 AND o.clinic=r.clinic AND o.record_key=r.record_key "
          "AND o.record_version=r.version AND o.state IN ('queued','retrying','delivered','dead')) "
          "OR EXISTS (SELECT 1 FROM resource_decisions d WHERE d.partner_id=$2 AND d.clinic=r.clinic "
          "AND d.record_key=r.record_key AND d.record_version=r.version AND d.outcome IN ('deny','redact'))) "
          "ORDER BY r.received_at, r.clinic, r.record_key",
          Params().text(patient).text(partner));
      std::vector<HeldRecord> held;
      held.reserve(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) held.push_back({r.text(i, 0), r.text(i, 1), r.i32(i, 2), r.bytes(i, 3)});
      return held;
    });
  }

  Result<std::vector<DecisionRow>> decisionRows(std::string_view clinic, std::string_view record_key, int version) override {
    return run("reading a record's decisions", [&] { return selectDecisionRows(*c_, {}, clinic, record_key, version); });
  }

  Result<std::vector<OutboxRow>> recordItems(std::string_view clinic, std::string_view record_key) override {
    return run("reading record status", [&] {
      auto r = c_->exec(
          "SELECT id, partner_id, record_version, state, attempts, next_attempt_at, last_error, outcome, updated_at, "
          "data_class FROM outbox WHERE clinic=$1 AND record_key=$2 ORDER BY id",
          Params().text(clinic).text(record_key));
      std::vector<OutboxRow> items(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) {
        auto& item = items[static_cast<std::size_t>(i)];
        item.id = r.i64(i, 0);
        item.partner_id = r.text(i, 1);
        item.clinic = clinic;
        item.record_key = record_key;
        item.record_version = r.i32(i, 2);
        item.state = parseOutboxState(r.text(i, 3)).value_or(OutboxState::Queued);
        item.attempts = r.i32(i, 4);
        item.next_attempt_at_ms = r.i64(i, 5);
        item.last_error = r.text(i, 6);
        item.outcome_sealed = r.bytes(i, 7);
        item.updated_at_ms = r.i64(i, 8);
        item.data_class = r.text(i, 9);
      }
      return items;
    });
  }

  Result<std::vector<DeliveredEntry>> deliveries(std::int64_t item_id) override {
    return run("reading record status", [&] {
      auto r = c_->exec("SELECT status, location, etag FROM deliveries WHERE outbox_id=$1 ORDER BY entry_index",
                        Params().i64(item_id));
      std::vector<DeliveredEntry> entries;
      entries.reserve(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) entries.push_back({r.text(i, 0), r.text(i, 1), r.text(i, 2)});
      return entries;
    });
  }

  Result<std::vector<OutboxRow>> dueItems(std::string_view partner, std::int64_t now_ms, int limit) override {
    // Claims of items another transaction superseded or cancelled while this process held them.
    if (claims_) claims_->releaseSettled();
    return run("reading the outbox", [&] {
      // The NOT EXISTS keeps per-patient order: a later item waits while an earlier one is pending.
      auto r = c_->exec(
          "SELECT o.id, o.clinic, o.record_key, o.record_version, o.patient_key, o.bundle, o.state, o.attempts, "
          "o.entry_count, o.disclosure, o.created_at FROM outbox o WHERE o.partner_id=$1 AND o.state IN "
          "('queued','retrying') AND NOT EXISTS (SELECT 1 FROM partner_pauses z WHERE z.partner_id=o.partner_id) "
          "AND o.next_attempt_at<=$2 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partner_id=o.partner_id "
          "AND p.patient_key=o.patient_key AND p.id<o.id AND p.state IN ('queued','retrying')) ORDER BY o.id LIMIT $3",
          Params().text(partner).i64(now_ms).i64(limit));
      std::vector<OutboxRow> items;
      for (int i = 0; i < r.rows(); ++i) {
        // An item another gateway instance is sending is not offered (outbox claims).
        if (claims_ && !claims_->tryClaim(r.i64(i, 0), now_ms)) continue;
        auto& item = items.emplace_back();
        item.id = r.i64(i, 0);
        item.partner_id = partner;
        item.clinic = r.text(i, 1);
        item.record_key = r.text(i, 2);
        item.record_version = r.i32(i, 3);
        item.patient_key = r.text(i, 4);
        item.bundle_sealed = r.bytes(i, 5);
        item.state = parseOutboxState(r.text(i, 6)).value_or(OutboxState::Queued);
        item.attempts = r.i32(i, 7);
        item.entry_count = r.i32(i, 8);
        item.disclosure_sealed = r.bytes(i, 9);
        item.created_at_ms = r.i64(i, 10);
      }
      return items;
    });
  }

  Result<std::optional<std::int64_t>> nextDueAt(std::string_view partner) override {
    return run("reading the outbox", [&] {
      auto r = c_->exec(
          "SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.partner_id=$1 AND o.state IN ('queued','retrying') "
          "AND NOT EXISTS (SELECT 1 FROM partner_pauses z WHERE z.partner_id=o.partner_id) "
          "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partner_id=o.partner_id AND p.patient_key=o.patient_key "
          "AND p.id<o.id AND p.state IN ('queued','retrying'))",
          Params().text(partner));
      if (r.rows() == 0 || r.null(0, 0)) return std::optional<std::int64_t>();
      return std::optional<std::int64_t>(r.i64(0, 0));
    });
  }

  Result<std::vector<OutboxRow>> pendingItems(std::string_view partner, std::string_view patient) override {
    return patientItems(partner, patient, "state IN ('queued','retrying')");
  }

  Result<std::vector<OutboxRow>> deliveredItems(std::string_view partner, std::string_view patient) override {
    return patientItems(partner, patient, "state='delivered'");
  }

  Result<OutboxCounts> outboxCounts(std::string_view partner) override {
    return run("counting the outbox", [&] {
      auto r = c_->exec("SELECT state, COUNT(*) FROM outbox WHERE partner_id=$1 GROUP BY state", Params().text(partner));
      OutboxCounts counts;
      for (int i = 0; i < r.rows(); ++i) {
        const auto state = parseOutboxState(r.text(i, 0));
        const std::int64_t n = r.i64(i, 1);
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
      auto oldest = c_->exec("SELECT MIN(created_at) FROM outbox WHERE partner_id=$1 AND state IN ('queued','retrying')",
                             Params().text(partner));
      if (oldest.rows() > 0 && !oldest.null(0, 0)) counts.oldest_pending_created_ms = oldest.i64(0, 0);
      return counts;
    });
  }

  Result<std::vector<ConsentKeyedRow>> consents(std::string_view patient) override {
    return run("reading consents", [&] {
      Params params;
      if (!patient.empty()) params.text(patient);
      auto r = c_->exec(
          "SELECT clinic, consent_key, consent_id, version, patient_key, partner_id, status, purposes, classes, "
          "period_start, period_end, revoked_on, signed_on, resource_id, recorded_at, reconciled FROM consents" +
              std::string(patient.empty() ? "" : " WHERE patient_key=$1") +
              " ORDER BY recorded_at, clinic, consent_key, version",
          params);
      std::vector<ConsentKeyedRow> out;
      out.reserve(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) {
        ConsentKeyedRow c;
        c.facts = {r.text(i, 0), {},           r.i64(i, 3),   r.text(i, 4),  r.text(i, 5),  r.text(i, 6), r.text(i, 7),
                   r.text(i, 8), r.text(i, 9), r.text(i, 10), r.text(i, 11), r.text(i, 12), {},           r.i64(i, 14)};
        c.consent_key = r.text(i, 1);
        c.consent_id_sealed = r.bytes(i, 2);
        c.resource_id_sealed = r.bytes(i, 13);
        c.reconciled = r.i64(i, 15) != 0;
        out.push_back(std::move(c));
      }
      return out;
    });
  }

  Result<std::vector<DataKeyRow>> dataKeys() override {
    return run("reading the data keys", [&] { return selectDataKeys(*c_); });
  }

  Result<std::vector<AuditRow>> auditRows(std::int64_t after_seq, int limit) override {
    return run("reading the audit log", [&] { return selectAuditRows(*c_, after_seq, limit); });
  }

  Result<ChainTail> auditTail() override {
    return run("reading the audit log's head", [&] { return selectAuditTail(*c_); });
  }

  Result<std::optional<std::string>> deploymentSecret(std::string_view name) override {
    return run("reading a deployment secret", [&] {
      auto r = c_->exec("SELECT value FROM deployment_secrets WHERE name=$1", Params().text(name));
      return r.rows() == 0 ? std::optional<std::string>() : std::optional<std::string>(r.bytes(0, 0));
    });
  }

  Result<std::vector<AuditRow>> queryAudit(const AuditQuery& query, int limit) override {
    return run("reading the audit log", [&] { return selectAuditQuery(*c_, query, limit); });
  }

  Result<std::vector<OutboxRow>> listOutbox(const OutboxQuery& query, int limit) override {
    return run("listing the outbox", [&] { return selectOutboxList(*c_, query, limit); });
  }

  Result<std::optional<OutboxRow>> outboxItem(std::int64_t item_id) override {
    return run("reading an outbox item", [&] { return selectOutboxItem(*c_, item_id); });
  }

  Result<std::vector<PartnerPause>> partnerPauses() override {
    return run("reading partner pauses", [&] { return selectPartnerPauses(*c_); });
  }

  Result<std::vector<InstanceRow>> instances() override {
    return run("reading the gateway instances", [&] { return selectInstances(*c_); });
  }

  Result<std::vector<BreakGlass>> breakGlasses(std::string_view clinic) override {
    return run("reading break-glass rows", [&] { return selectBreakGlasses(*c_, clinic); });
  }

  Result<std::vector<BreakGlass>> breakGlassesOfPatient(std::string_view patient_key) override {
    return run("reading the patient's break-glass rows", [&] { return selectBreakGlasses(*c_, {}, patient_key); });
  }

  Result<std::vector<AccountingRequest>> accountingRequests(std::string_view clinic) override {
    return run("reading accounting requests", [&] { return selectAccountingRequests(*c_, clinic); });
  }

  Result<std::vector<AuditRow>> partnerLogRows(const PartnerLogQuery& query, int limit) override {
    return run("reading a partner's log rows", [&] { return selectPartnerLogRows(*c_, query, limit); });
  }

  Result<std::vector<PartnerLogCount>> partnerLogCounts(const PartnerLogQuery& query) override {
    return run("counting a partner's log rows", [&] { return selectPartnerLogCounts(*c_, query); });
  }

  Result<std::vector<std::pair<RecordRow, std::string>>> recordsInState(std::string_view state, std::string_view record_type,
                                                                        std::string_view after_clinic,
                                                                        std::string_view after_record_key,
                                                                        int limit) override {
    return run("reading records by state", [&] {
      Params params;
      params.text(state).text(after_clinic).text(after_record_key);
      std::string sql =
          "SELECT r.clinic, r.record_key, r.record_type, r.version, r.content_hash, r.error, r.patient_key, "
          "r.received_at, r.updated_at, r.data_class, v.payload FROM records r JOIN record_versions v "
          "ON v.clinic=r.clinic AND v.record_key=r.record_key AND v.version=r.version "
          "WHERE r.state=$1 AND (r.clinic>$2 OR (r.clinic=$2 AND r.record_key>$3))";
      if (!record_type.empty()) {
        params.text(record_type);
        sql += " AND r.record_type=$4";
      }
      params.i64(limit);
      sql += " ORDER BY r.clinic, r.record_key LIMIT $" + std::to_string(params.size());
      auto r = c_->exec(sql, params);
      std::vector<std::pair<RecordRow, std::string>> out;
      for (int i = 0; i < r.rows(); ++i) {
        RecordRow row;
        row.clinic = r.text(i, 0);
        row.record_key = r.text(i, 1);
        row.record_type = r.text(i, 2);
        row.version = r.i32(i, 3);
        row.content_hash = r.text(i, 4);
        row.state = parseRecordState(state).value_or(RecordState::Received);
        row.error = r.text(i, 5);
        row.patient_key = r.text(i, 6);
        row.received_at_ms = r.i64(i, 7);
        row.updated_at_ms = r.i64(i, 8);
        row.data_class = r.text(i, 9);
        out.emplace_back(std::move(row), r.bytes(i, 10));
      }
      return out;
    });
  }

  Result<std::vector<CopyRow>> copyRows(const CopyTable& table, const CopyRow* after, int limit) override {
    return run("reading rows to copy", [&] { return selectCopyRows(*c_, table, after, limit); });
  }

  Result<std::int64_t> countRows(const CopyTable& table) override {
    return run("counting rows", [&] { return c_->exec("SELECT COUNT(*) FROM " + std::string(table.name)).i64(0, 0); });
  }

  Status ping() override {
    return run("database ping", [&] { c_->exec("SELECT 1"); });
  }

 private:
  // `state_clause` is a constant of this file, never input.
  Result<std::vector<OutboxRow>> patientItems(std::string_view partner, std::string_view patient, const char* state_clause) {
    return run("reading the outbox", [&] {
      auto r = c_->exec(std::string("SELECT id, clinic, record_key, record_version, state, attempts, entry_count, "
                                    "disclosure, bundle FROM outbox WHERE partner_id=$1 AND patient_key=$2 AND ") +
                            state_clause + " ORDER BY id",
                        Params().text(partner).text(patient));
      std::vector<OutboxRow> items(static_cast<std::size_t>(r.rows()));
      for (int i = 0; i < r.rows(); ++i) {
        auto& item = items[static_cast<std::size_t>(i)];
        item.id = r.i64(i, 0);
        item.partner_id = partner;
        item.clinic = r.text(i, 1);
        item.record_key = r.text(i, 2);
        item.record_version = r.i32(i, 3);
        item.patient_key = patient;
        item.state = parseOutboxState(r.text(i, 4)).value_or(OutboxState::Queued);
        item.attempts = r.i32(i, 5);
        item.entry_count = r.i32(i, 6);
        item.disclosure_sealed = r.bytes(i, 7);
        item.bundle_sealed = r.bytes(i, 8);
      }
      return items;
    });
  }

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

  std::unique_ptr<PgConnection> c_;
  ConnectionPool& pool_;
  OutboxClaims* claims_;
};

}  // namespace

std::unique_ptr<StoreReader> makeReader(std::unique_ptr<PgConnection> c, ConnectionPool& pool, OutboxClaims* claims) {
  return std::make_unique<PostgresReader>(std::move(c), pool, claims);
}

}  // namespace gw::store::postgres

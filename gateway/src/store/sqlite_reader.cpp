#include <Poco/Data/Statement.h>
#include <Poco/Nullable.h>

#include <algorithm>

#include "store/sqlite_backend.hpp"
#include "store/sqlite_statement.hpp"

namespace gw::store::sqlite {

// The reads ingest makes for every record (and the record view), prepared once per connection.
struct ReaderStatements {
  PreparedStatement record, resources, resource_body, decisions, data_keys;

  explicit ReaderStatements(sqlite3* db)
      : record(db,
               "SELECT record_type, version, content_hash, state, error, patient_key, received_at, updated_at, "
               "data_class FROM records WHERE clinic=? AND record_key=?"),
        resources(db,
                  "SELECT resource_type, resource_key, resource_id, record_version, identifier_system, "
                  "identifier_value, data_class, stored_at FROM resources WHERE clinic=? AND record_key=? "
                  "ORDER BY resource_type, resource_key"),
        resource_body(db, "SELECT body FROM resources WHERE resource_type=? AND resource_key=?"),
        decisions(db, kSelectDecisionsSql),
        data_keys(db, kSelectDataKeysSql) {}
};

void ReaderStatementsDeleter::operator()(ReaderStatements* p) const { delete p; }

namespace {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;

// Payload columns hold BLOB envelopes: they are read with explicit BLOB extraction (RecordSet
// would read them as text, by the declared column type, and stop at the first zero byte).
class SqliteReader final : public StoreReader {
 public:
  explicit SqliteReader(ReaderPool::Lease connection) : c_(std::move(connection)), s_(c_->session) {}

  Result<std::optional<RecordRow>> record(std::string_view clinic, std::string_view record_key) override {
    return run("reading record status", [&] {
      std::optional<RecordRow> found;
      statements().record.text(1, clinic).text(2, record_key).first([&](const PreparedStatement& row) {
        RecordRow r;
        r.clinic = clinic;
        r.record_key = record_key;
        r.record_type = row.columnText(0);
        r.version = static_cast<int>(row.columnInt(1));
        r.content_hash = row.columnText(2);
        r.state = parseRecordState(row.columnText(3)).value_or(RecordState::Received);
        r.error = row.columnText(4);
        r.patient_key = row.columnText(5);
        r.received_at_ms = row.columnInt(6);
        r.updated_at_ms = row.columnInt(7);
        r.data_class = row.columnText(8);
        found = std::move(r);
      });
      return found;
    });
  }

  Result<std::optional<std::string>> recordPayload(std::string_view clinic_v, std::string_view record_key_v,
                                                   int version) override {
    try {
      std::string clinic(clinic_v), record_key(record_key_v);
      std::vector<Poco::Data::BLOB> payloads;
      s_ << "SELECT payload FROM record_versions WHERE clinic=? AND record_key=? AND version=?", use(clinic),
          use(record_key), bind(version), into(payloads), now;
      if (payloads.empty()) return std::optional<std::string>();
      return std::optional<std::string>(std::string(blobView(payloads.front())));
    } catch (const Poco::Exception& e) {
      return storageError("reading a record", e);
    }
  }

  Result<std::vector<ResourceRow>> resources(std::string_view clinic, std::string_view record_key) override {
    return run("reading a record's resources", [&] {
      std::vector<ResourceRow> rows;
      statements().resources.text(1, clinic).text(2, record_key).each([&](const PreparedStatement& row) {
        rows.push_back({row.columnText(0),
                        row.columnText(1),
                        row.columnBlob(2),
                        std::string(clinic),
                        std::string(record_key),
                        static_cast<int>(row.columnInt(3)),
                        row.columnText(4),
                        row.columnBlob(5),
                        {},
                        row.columnText(6),
                        row.columnInt(7)});
      });
      return rows;
    });
  }

  Result<std::optional<std::string>> resourceBody(std::string_view type, std::string_view key) override {
    return run("reading a resource", [&] {
      std::optional<std::string> body;
      statements().resource_body.text(1, type).text(2, key).first(
          [&](const PreparedStatement& row) { body = row.columnBlob(0); });
      return body;
    });
  }

  Result<std::vector<HeldRecord>> heldRecords(std::string_view partner_v, std::string_view patient_v) override {
    try {
      std::string partner(partner_v), patient(patient_v);
      std::vector<std::string> clinics, record_keys;
      std::vector<int> versions;
      std::vector<Poco::Data::BLOB> payloads;
      s_ << "SELECT r.clinic, r.record_key, r.version, v.payload FROM records r JOIN record_versions v "
            "ON v.clinic=r.clinic AND v.record_key=r.record_key AND v.version=r.version "
            "WHERE r.patient_key=? AND r.state='mapped' AND r.record_type<>'consent' AND (NOT EXISTS ("
            "SELECT 1 FROM outbox o WHERE o.partner_id=? AND o.clinic=r.clinic AND o.record_key=r.record_key "
            "AND o.record_version=r.version AND o.state IN ('queued','retrying','delivered','dead')) "
            "OR EXISTS (SELECT 1 FROM resource_decisions d WHERE d.partner_id=? AND d.clinic=r.clinic "
            "AND d.record_key=r.record_key AND d.record_version=r.version AND d.outcome IN ('deny','redact'))) "
            "ORDER BY r.received_at, r.clinic, r.record_key",
          use(patient), use(partner), use(partner), into(clinics), into(record_keys), into(versions), into(payloads), now;
      std::vector<HeldRecord> held;
      for (std::size_t i = 0; i < clinics.size(); ++i) {
        held.push_back({std::move(clinics[i]), std::move(record_keys[i]), versions[i], std::string(blobView(payloads[i]))});
      }
      return held;
    } catch (const Poco::Exception& e) {
      return storageError("reading held records", e);
    }
  }

  Result<std::vector<DecisionRow>> decisionRows(std::string_view clinic_v, std::string_view record_key_v,
                                                int version) override {
    return run("reading a record's decisions",
               [&] { return selectDecisionRows(statements().decisions, {}, clinic_v, record_key_v, version); });
  }

  Result<std::vector<OutboxRow>> recordItems(std::string_view clinic_v, std::string_view record_key_v) override {
    try {
      std::string clinic(clinic_v), record_key(record_key_v);
      std::vector<Poco::Int64> ids, next_attempts, updated;
      std::vector<std::string> partners, states, errors, classes;
      std::vector<int> versions, attempts;
      std::vector<Poco::Data::BLOB> outcomes;
      s_ << "SELECT id, partner_id, record_version, state, attempts, next_attempt_at, last_error, outcome, "
            "updated_at, data_class FROM outbox WHERE clinic=? AND record_key=? ORDER BY id",
          use(clinic), use(record_key), into(ids), into(partners), into(versions), into(states), into(attempts),
          into(next_attempts), into(errors), into(outcomes), into(updated), into(classes), now;
      std::vector<OutboxRow> items(ids.size());
      for (std::size_t i = 0; i < ids.size(); ++i) {
        auto& item = items[i];
        item.id = ids[i];
        item.partner_id = std::move(partners[i]);
        item.clinic = clinic;
        item.record_key = record_key;
        item.record_version = versions[i];
        item.state = parseOutboxState(states[i]).value_or(OutboxState::Queued);
        item.attempts = attempts[i];
        item.next_attempt_at_ms = next_attempts[i];
        item.last_error = std::move(errors[i]);
        item.outcome_sealed = std::string(blobView(outcomes[i]));
        item.updated_at_ms = updated[i];
        item.data_class = std::move(classes[i]);
      }
      return items;
    } catch (const Poco::Exception& e) {
      return storageError("reading record status", e);
    }
  }

  Result<std::vector<DeliveredEntry>> deliveries(std::int64_t item_id) override {
    try {
      Poco::Int64 id = item_id;
      Statement q(s_);
      q << "SELECT status, location, etag FROM deliveries WHERE outbox_id=? ORDER BY entry_index", use(id), now;
      RecordSet rs(q);
      std::vector<DeliveredEntry> entries;
      for (std::size_t i = 0; i < rs.rowCount(); ++i) entries.push_back({str(rs, 0, i), str(rs, 1, i), str(rs, 2, i)});
      return entries;
    } catch (const Poco::Exception& e) {
      return storageError("reading record status", e);
    }
  }

  Result<std::vector<OutboxRow>> dueItems(std::string_view partner_v, std::int64_t now_ms_v, int limit) override {
    try {
      std::string partner(partner_v);
      Poco::Int64 now_ms = now_ms_v;
      std::vector<Poco::Int64> ids, created;
      std::vector<std::string> clinics, record_keys, patients, states;
      std::vector<int> versions, attempts, entry_counts;
      std::vector<Poco::Data::BLOB> bundles, disclosures;
      // The NOT EXISTS keeps per-patient order: a later item waits while an earlier one is pending.
      s_ << "SELECT o.id, o.clinic, o.record_key, o.record_version, o.patient_key, o.bundle, o.state, o.attempts, "
            "o.entry_count, o.disclosure, o.created_at FROM outbox o WHERE o.partner_id=? AND o.state IN "
            "('queued','retrying') AND NOT EXISTS (SELECT 1 FROM partner_pauses z WHERE z.partner_id=o.partner_id) "
            "AND o.next_attempt_at<=? AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partner_id=o.partner_id "
            "AND p.patient_key=o.patient_key AND p.id<o.id AND p.state IN ('queued','retrying')) ORDER BY o.id LIMIT ?",
          use(partner), use(now_ms), bind(limit), into(ids), into(clinics), into(record_keys), into(versions),
          into(patients), into(bundles), into(states), into(attempts), into(entry_counts), into(disclosures), into(created),
          now;
      std::vector<OutboxRow> items(ids.size());
      for (std::size_t i = 0; i < ids.size(); ++i) {
        auto& item = items[i];
        item.id = ids[i];
        item.partner_id = partner;
        item.clinic = std::move(clinics[i]);
        item.record_key = std::move(record_keys[i]);
        item.record_version = versions[i];
        item.patient_key = std::move(patients[i]);
        item.bundle_sealed = std::string(blobView(bundles[i]));
        item.state = parseOutboxState(states[i]).value_or(OutboxState::Queued);
        item.attempts = attempts[i];
        item.entry_count = entry_counts[i];
        item.disclosure_sealed = std::string(blobView(disclosures[i]));
        item.created_at_ms = created[i];
      }
      return items;
    } catch (const Poco::Exception& e) {
      return storageError("reading the outbox", e);
    }
  }

  Result<std::optional<std::int64_t>> nextDueAt(std::string_view partner_v) override {
    try {
      std::string partner(partner_v);
      Statement q(s_);
      // Only items dueItems could return count: a later item of a patient waiting behind a retrying
      // one is not due, whatever its own time says (else the worker would spin during an outage).
      // A paused partner has nothing due: its worker sleeps a poll interval at a time until resumed.
      q << "SELECT MIN(o.next_attempt_at) FROM outbox o WHERE o.partner_id=? AND o.state IN ('queued','retrying') "
           "AND NOT EXISTS (SELECT 1 FROM partner_pauses z WHERE z.partner_id=o.partner_id) "
           "AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.partner_id=o.partner_id AND p.patient_key=o.patient_key "
           "AND p.id<o.id AND p.state IN ('queued','retrying'))",
          use(partner), now;
      RecordSet rs(q);
      if (rs.rowCount() == 0 || rs.value(0, 0).isEmpty()) return std::optional<std::int64_t>();
      return std::optional<std::int64_t>(i64(rs, 0, 0));
    } catch (const Poco::Exception& e) {
      return storageError("reading the outbox", e);
    }
  }

  Result<std::vector<OutboxRow>> pendingItems(std::string_view partner_v, std::string_view patient_v) override {
    return patientItems(partner_v, patient_v, "state IN ('queued','retrying')");
  }

  Result<std::vector<OutboxRow>> deliveredItems(std::string_view partner_v, std::string_view patient_v) override {
    return patientItems(partner_v, patient_v, "state='delivered'");
  }

  // `state_clause` is a constant of this file, never input.
  Result<std::vector<OutboxRow>> patientItems(std::string_view partner_v, std::string_view patient_v,
                                              const char* state_clause) {
    try {
      std::string partner(partner_v), patient(patient_v);
      std::vector<Poco::Int64> ids;
      std::vector<std::string> clinics, record_keys, states;
      std::vector<int> versions, attempts, entry_counts;
      std::vector<Poco::Data::BLOB> disclosures, bundles;
      const std::string query = std::string(
                                    "SELECT id, clinic, record_key, record_version, state, attempts, entry_count, "
                                    "disclosure, bundle FROM outbox WHERE partner_id=? AND patient_key=? AND ") +
                                state_clause + " ORDER BY id";
      s_ << query, use(partner), use(patient), into(ids), into(clinics), into(record_keys), into(versions), into(states),
          into(attempts), into(entry_counts), into(disclosures), into(bundles), now;
      std::vector<OutboxRow> items(ids.size());
      for (std::size_t i = 0; i < ids.size(); ++i) {
        auto& item = items[i];
        item.id = ids[i];
        item.partner_id = partner;
        item.clinic = std::move(clinics[i]);
        item.record_key = std::move(record_keys[i]);
        item.record_version = versions[i];
        item.patient_key = patient;
        item.state = parseOutboxState(states[i]).value_or(OutboxState::Queued);
        item.attempts = attempts[i];
        item.entry_count = entry_counts[i];
        item.disclosure_sealed = std::string(blobView(disclosures[i]));
        item.bundle_sealed = std::string(blobView(bundles[i]));
      }
      return items;
    } catch (const Poco::Exception& e) {
      return storageError("reading the outbox", e);
    }
  }

  Result<OutboxCounts> outboxCounts(std::string_view partner_v) override {
    try {
      std::string partner(partner_v);
      Statement q(s_);
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
      Poco::Nullable<Poco::Int64> oldest;
      s_ << "SELECT MIN(created_at) FROM outbox WHERE partner_id=? AND state IN ('queued','retrying')", use(partner),
          into(oldest), now;
      if (!oldest.isNull()) counts.oldest_pending_created_ms = oldest.value();
      return counts;
    } catch (const Poco::Exception& e) {
      return storageError("counting the outbox", e);
    }
  }

  Result<std::vector<ConsentKeyedRow>> consents(std::string_view patient_v) override {
    try {
      std::string patient(patient_v);
      std::vector<std::string> clinics, keys, patients, partners, statuses, purposes, classes, starts, ends, revoked,
          signed_on;
      std::vector<Poco::Int64> versions, recorded, reconciled;
      std::vector<Poco::Data::BLOB> consent_ids, resource_ids;
      Statement q(s_);
      q << "SELECT clinic, consent_key, consent_id, version, patient_key, partner_id, status, purposes, classes, "
           "period_start, period_end, revoked_on, signed_on, resource_id, recorded_at, reconciled FROM consents" +
               std::string(patient.empty() ? "" : " WHERE patient_key=?") +
               " ORDER BY recorded_at, clinic, consent_key, version";
      if (!patient.empty()) q, use(patient);
      q, into(clinics), into(keys), into(consent_ids), into(versions), into(patients), into(partners), into(statuses),
          into(purposes), into(classes), into(starts), into(ends), into(revoked), into(signed_on), into(resource_ids),
          into(recorded), into(reconciled);
      q.execute();
      std::vector<ConsentKeyedRow> out;
      out.reserve(clinics.size());
      for (std::size_t i = 0; i < clinics.size(); ++i) {
        ConsentKeyedRow c;
        c.facts = {std::move(clinics[i]),
                   {},
                   versions[i],
                   std::move(patients[i]),
                   std::move(partners[i]),
                   std::move(statuses[i]),
                   std::move(purposes[i]),
                   std::move(classes[i]),
                   std::move(starts[i]),
                   std::move(ends[i]),
                   std::move(revoked[i]),
                   std::move(signed_on[i]),
                   {},
                   recorded[i]};
        c.consent_key = std::move(keys[i]);
        c.consent_id_sealed = std::string(blobView(consent_ids[i]));
        c.resource_id_sealed = std::string(blobView(resource_ids[i]));
        c.reconciled = reconciled[i] != 0;
        out.push_back(std::move(c));
      }
      return out;
    } catch (const Poco::Exception& e) {
      return storageError("reading consents", e);
    }
  }

  Result<std::vector<DataKeyRow>> dataKeys() override {
    return run("reading the data keys", [&] { return selectDataKeys(statements().data_keys); });
  }

  Result<std::vector<AuditRow>> auditRows(std::int64_t after_seq, int limit) override {
    return selectAuditRows(s_, after_seq, limit);
  }

  Result<ChainTail> auditTail() override { return selectAuditTail(s_); }

  Result<std::optional<std::string>> deploymentSecret(std::string_view name_v) override {
    try {
      std::string name(name_v);
      std::vector<std::string> values;
      s_ << "SELECT value FROM deployment_secrets WHERE name=?", use(name), into(values), now;
      if (values.empty()) return std::optional<std::string>();
      return std::optional<std::string>(std::move(values.front()));
    } catch (const Poco::Exception& e) {
      return storageError("reading a deployment secret", e);
    }
  }

  Result<std::vector<AuditRow>> queryAudit(const AuditQuery& query, int limit) override {
    return selectAuditQuery(s_, query, limit);
  }

  Result<std::vector<OutboxRow>> listOutbox(const OutboxQuery& query, int limit) override {
    try {
      return selectOutboxList(s_, query, limit);
    } catch (const Poco::Exception& e) {
      return storageError("listing the outbox", e);
    }
  }

  Result<std::optional<OutboxRow>> outboxItem(std::int64_t item_id) override {
    try {
      return selectOutboxItem(s_, item_id);
    } catch (const Poco::Exception& e) {
      return storageError("reading an outbox item", e);
    }
  }

  Result<std::vector<PartnerPause>> partnerPauses() override {
    try {
      return selectPartnerPauses(s_);
    } catch (const Poco::Exception& e) {
      return storageError("reading partner pauses", e);
    }
  }

  Result<std::vector<InstanceRow>> instances() override {
    try {
      return selectInstances(s_);
    } catch (const Poco::Exception& e) {
      return storageError("reading the gateway instances", e);
    }
  }

  Result<std::vector<BreakGlass>> breakGlasses(std::string_view clinic) override {
    try {
      return selectBreakGlasses(s_, clinic);
    } catch (const Poco::Exception& e) {
      return storageError("reading break-glass rows", e);
    }
  }

  Result<std::vector<BreakGlass>> breakGlassesOfPatient(std::string_view patient_key) override {
    return run("reading the patient's break-glass rows", [&] { return selectBreakGlasses(s_, {}, patient_key); });
  }

  Result<std::vector<AccountingRequest>> accountingRequests(std::string_view clinic) override {
    try {
      return selectAccountingRequests(s_, clinic);
    } catch (const Poco::Exception& e) {
      return storageError("reading accounting requests", e);
    }
  }

  Result<std::vector<AuditRow>> partnerLogRows(const PartnerLogQuery& query, int limit) override {
    try {
      auto rows = selectAuditRowsBySeq(s_, selectPartnerLogSeqs(s_, query, limit));
      std::sort(rows.begin(), rows.end(),
                [](const AuditRow& a, const AuditRow& b) { return a.at_ms != b.at_ms ? a.at_ms < b.at_ms : a.seq < b.seq; });
      return rows;
    } catch (const Poco::Exception& e) {
      return storageError("reading a partner's log rows", e);
    }
  }

  Result<std::vector<PartnerLogCount>> partnerLogCounts(const PartnerLogQuery& query) override {
    try {
      return selectPartnerLogCounts(s_, query);
    } catch (const Poco::Exception& e) {
      return storageError("counting a partner's log rows", e);
    }
  }

  Result<std::vector<std::pair<RecordRow, std::string>>> recordsInState(std::string_view state, std::string_view record_type,
                                                                        std::string_view after_clinic,
                                                                        std::string_view after_record_key,
                                                                        int limit) override {
    try {
      return selectRecordsInState(s_, state, record_type, after_clinic, after_record_key, limit);
    } catch (const Poco::Exception& e) {
      return storageError("reading records by state", e);
    }
  }

  Result<std::vector<CopyRow>> copyRows(const CopyTable& table, const CopyRow* after, int limit) override {
    try {
      return selectCopyRows(s_, table, after, limit);
    } catch (const Poco::Exception& e) {
      return storageError("reading " + std::string(table.name) + " to copy", e);
    }
  }

  Result<std::int64_t> countRows(const CopyTable& table) override {
    try {
      Poco::Int64 n = 0;
      s_ << "SELECT COUNT(*) FROM " + std::string(table.name), into(n), now;
      return static_cast<std::int64_t>(n);
    } catch (const Poco::Exception& e) {
      return storageError("counting " + std::string(table.name), e);
    }
  }

  Status ping() override {
    try {
      int one = 0;
      s_ << "SELECT 1", into(one), now;
      return ok();
    } catch (const Poco::Exception& e) {
      return storageError("database ping", e);
    }
  }

 private:
  ReaderStatements& statements() {
    if (!c_->statements) c_->statements.reset(new ReaderStatements(Poco::Data::SQLite::Utility::dbHandle(s_)));
    return *c_->statements;
  }

  // Runs one prepared read; a Poco exception becomes a Storage error.
  template <class F>
  auto run(std::string_view what, F&& f) -> Result<std::invoke_result_t<F&>> {
    try {
      return f();
    } catch (const Poco::Exception& e) {
      c_->statements.reset();  // a statement that threw is not reused
      return storageError(what, e);
    }
  }

  ReaderPool::Lease c_;
  Session& s_;
};

}  // namespace

std::unique_ptr<StoreReader> makeReader(ReaderPool::Lease connection) {
  return std::make_unique<SqliteReader>(std::move(connection));
}

}  // namespace gw::store::sqlite

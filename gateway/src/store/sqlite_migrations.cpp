#include "store/sqlite_migrations.hpp"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

namespace gw::store {
namespace {

using namespace Poco::Data::Keywords;

// Migration N is kMigrations[N-1]: a list of statements.
const std::array<std::vector<const char*>, kSchemaVersion> kMigrations = {{
    {
        // 1: inbox (records + every version), mapped resources, per-partner outbox, delivery ledger.
        "CREATE TABLE records ("
        "  clinic TEXT NOT NULL, record_id TEXT NOT NULL, record_type TEXT NOT NULL,"
        "  version INTEGER NOT NULL, content_hash TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',"
        "  patient_key TEXT NOT NULL, received_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
        "  PRIMARY KEY (clinic, record_id))",
        "CREATE TABLE record_versions ("
        "  clinic TEXT NOT NULL, record_id TEXT NOT NULL, version INTEGER NOT NULL,"
        "  content_hash TEXT NOT NULL, payload TEXT NOT NULL, received_at INTEGER NOT NULL,"
        "  PRIMARY KEY (clinic, record_id, version))",
        "CREATE TABLE resources ("
        "  resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, clinic TEXT NOT NULL, record_id TEXT NOT NULL,"
        "  record_version INTEGER NOT NULL, identifier_system TEXT NOT NULL, identifier_value TEXT NOT NULL,"
        "  body TEXT NOT NULL, PRIMARY KEY (resource_type, resource_id))",
        "CREATE INDEX resources_by_record ON resources (clinic, record_id)",
        "CREATE TABLE outbox ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT, partner_id TEXT NOT NULL, clinic TEXT NOT NULL,"
        "  record_id TEXT NOT NULL, record_version INTEGER NOT NULL, patient_key TEXT NOT NULL,"
        "  bundle TEXT NOT NULL, entry_count INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,"
        "  next_attempt_at INTEGER NOT NULL, last_error TEXT NOT NULL, outcome TEXT NOT NULL,"
        "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, delivered_at INTEGER)",
        "CREATE INDEX outbox_due ON outbox (partner_id, state, next_attempt_at)",
        "CREATE INDEX outbox_patient ON outbox (partner_id, patient_key, id)",
        "CREATE INDEX outbox_record ON outbox (clinic, record_id)",
        "CREATE TABLE deliveries ("
        "  outbox_id INTEGER NOT NULL REFERENCES outbox(id), entry_index INTEGER NOT NULL,"
        "  status TEXT NOT NULL, location TEXT NOT NULL, etag TEXT NOT NULL,"
        "  PRIMARY KEY (outbox_id, entry_index))",
    },
    {
        // 2: secrets of this deployment made at first start (e.g. the log pseudonym key).
        "CREATE TABLE deployment_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    },
    {
        // 3: segmented privacy. Payload columns hold AES-256-GCM ciphertext under the data key of
        // the row's class (data_class); data keys are stored wrapped by the master key.
        "CREATE TABLE data_keys ("
        "  data_class TEXT NOT NULL, key_version INTEGER NOT NULL, wrapped BLOB NOT NULL,"
        "  master_key_id TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (data_class, key_version))",
        "ALTER TABLE records ADD COLUMN data_class TEXT NOT NULL DEFAULT 'sud'",
        "ALTER TABLE record_versions ADD COLUMN data_class TEXT NOT NULL DEFAULT 'sud'",
        "ALTER TABLE resources ADD COLUMN data_class TEXT NOT NULL DEFAULT 'sud'",
        "ALTER TABLE outbox ADD COLUMN data_class TEXT NOT NULL DEFAULT 'sud'",
        // What was decided for each resource of the item (JSON, no clinical values): re-checked
        // before each send.
        "ALTER TABLE outbox ADD COLUMN disclosure TEXT NOT NULL DEFAULT ''",
        // Consent registry: one row per consent version, the facts decisions need (no PHI).
        "CREATE TABLE consents ("
        "  clinic TEXT NOT NULL, consent_id TEXT NOT NULL, version INTEGER NOT NULL,"
        "  patient_key TEXT NOT NULL, partner_id TEXT NOT NULL, status TEXT NOT NULL,"
        "  purposes TEXT NOT NULL, classes TEXT NOT NULL, period_start TEXT NOT NULL, period_end TEXT NOT NULL,"
        "  revoked_on TEXT NOT NULL, signed_on TEXT NOT NULL, resource_id TEXT NOT NULL,"
        "  recorded_at INTEGER NOT NULL, reconciled INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (clinic, consent_id, version))",
        "CREATE INDEX consents_by_patient ON consents (patient_key, partner_id)",
        // Decision and disclosure log: append-only, each row hashes the previous row's hash.
        "CREATE TABLE audit_log ("
        "  seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,"
        "  clinic TEXT NOT NULL, patient_key TEXT NOT NULL, partner_id TEXT NOT NULL, purpose TEXT NOT NULL,"
        "  resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, classes TEXT NOT NULL, labels TEXT NOT NULL,"
        "  consent_id TEXT NOT NULL, consent_version INTEGER NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,"
        "  policy_version TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
        "CREATE INDEX audit_by_patient ON audit_log (patient_key, seq)",
        "CREATE INDEX audit_by_partner ON audit_log (partner_id, seq)",
    },
    {
        // 4: retention per class. Resources get the time they were stored (back-filled from their
        // record version); the purge finds expired rows through the age indexes, not table scans.
        "ALTER TABLE resources ADD COLUMN stored_at INTEGER NOT NULL DEFAULT 0",
        "UPDATE resources SET stored_at = COALESCE((SELECT v.received_at FROM record_versions v "
        "WHERE v.clinic = resources.clinic AND v.record_id = resources.record_id "
        "AND v.version = resources.record_version), 0)",
        "CREATE INDEX record_versions_by_age ON record_versions (received_at)",
        "CREATE INDEX resources_by_age ON resources (stored_at)",
        "CREATE INDEX outbox_by_age ON outbox (created_at)",
    },
    {
        // 5: identifiers as lookup keys (store/lookup_keys.hpp). The key columns are renamed; the
        // clear FHIR ids that answers show move to sealed columns; disclosure and
        // deployment_secrets.value hold envelopes. Rows of an older database still hold clear
        // values until the store converts them with the keys (keyed_conversions_due).
        "ALTER TABLE records RENAME COLUMN record_id TO record_key",
        "ALTER TABLE record_versions RENAME COLUMN record_id TO record_key",
        "ALTER TABLE resources RENAME COLUMN record_id TO record_key",
        "ALTER TABLE resources RENAME COLUMN resource_id TO resource_key",
        "ALTER TABLE resources ADD COLUMN resource_id BLOB NOT NULL DEFAULT x''",
        "ALTER TABLE outbox RENAME COLUMN record_id TO record_key",
        "ALTER TABLE consents RENAME COLUMN consent_id TO consent_key",
        "ALTER TABLE consents ADD COLUMN consent_id BLOB NOT NULL DEFAULT x''",
        "CREATE TABLE keyed_conversions_due (name TEXT PRIMARY KEY)",
        "INSERT INTO keyed_conversions_due(name) VALUES('lookup-keys')",
    },
    {
        // 6: the last decision per (partner, record, resource) of a record's current version, so a
        // consent change re-plans exactly what is held (denied or redacted) and now fares better
        // (docs/privacy.md §8.2). Lookup keys and decision facts only (no clinical values, no
        // clear ids): stored in clear like the log. A schema 5 database starts with no rows: its
        // records already delivered count as unknown and are not re-sent (they are re-decided at
        // their next version); records without an item are re-planned as before.
        "CREATE TABLE resource_decisions ("
        "  partner_id TEXT NOT NULL, clinic TEXT NOT NULL, record_key TEXT NOT NULL,"
        "  resource_type TEXT NOT NULL, resource_key TEXT NOT NULL, patient_key TEXT NOT NULL,"
        "  record_version INTEGER NOT NULL, outcome TEXT NOT NULL, removed_activities TEXT NOT NULL,"
        "  reason TEXT NOT NULL, updated_at INTEGER NOT NULL,"
        "  PRIMARY KEY (partner_id, clinic, record_key, resource_type, resource_key))",
        "CREATE INDEX resource_decisions_by_record ON resource_decisions (clinic, record_key)",
    },
    {
        // 7: operations (docs/operations.md). A partner an operator paused: its worker sends nothing
        // until resumed, across restarts. Listing the outbox by state and age, and finding records
        // left invalid or unmapped, go through indexes rather than table scans.
        "CREATE TABLE partner_pauses ("
        "  partner_id TEXT PRIMARY KEY, paused_at INTEGER NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL)",
        "CREATE INDEX outbox_by_state ON outbox (state, id)",
        "CREATE INDEX records_by_state ON records (state, clinic, record_key)",
        // /readyz commits a row here to learn whether the database can still commit.
        "CREATE TABLE write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at_ms INTEGER NOT NULL)",
    },
    {
        // 8: the compliance console (docs/console-api.md). Break-glass disclosures (42 CFR 2.51)
        // with the record the rule asks for, and patients' requests for an accounting of
        // disclosures (42 CFR 2.24) with their due date. Patients as lookup keys, no clear ids.
        "CREATE TABLE break_glass ("
        "  id TEXT PRIMARY KEY, clinic TEXT NOT NULL, patient_key TEXT NOT NULL, partner_id TEXT NOT NULL,"
        "  recipient TEXT NOT NULL, authorised_by TEXT NOT NULL, nature TEXT NOT NULL, opened_by TEXT NOT NULL,"
        "  opened_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, ended_at INTEGER NOT NULL, ended_by TEXT NOT NULL)",
        "CREATE INDEX break_glass_by_clinic ON break_glass (clinic, opened_at)",
        "CREATE TABLE accounting_requests ("
        "  id TEXT PRIMARY KEY, clinic TEXT NOT NULL, patient_key TEXT NOT NULL, received_on TEXT NOT NULL,"
        "  due_on TEXT NOT NULL, note TEXT NOT NULL, state TEXT NOT NULL, delivered_on TEXT NOT NULL,"
        "  created_by TEXT NOT NULL, delivered_by TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
        "CREATE INDEX accounting_requests_by_clinic ON accounting_requests (clinic, received_on)",
        // The partner and period view counts and pages a partner's rows of one clinic over a period:
        // a covering index, so a million rows are counted from the index alone.
        "CREATE INDEX audit_by_partner_period ON audit_log (partner_id, clinic, at_ms, kind, outcome, classes, reason, seq)",
        // ... and its counts from hourly counters kept with the log (store/store_backend.hpp,
        // PartnerLogBucket), filled here from the rows already logged.
        "CREATE TABLE audit_hourly_counts ("
        "  partner_id TEXT NOT NULL, clinic TEXT NOT NULL, hour INTEGER NOT NULL, kind TEXT NOT NULL,"
        "  outcome TEXT NOT NULL, classes TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,"
        "  PRIMARY KEY (partner_id, clinic, hour, kind, outcome, classes, reason)) WITHOUT ROWID",
        "INSERT INTO audit_hourly_counts(partner_id, clinic, hour, kind, outcome, classes, reason, count) "
        "SELECT partner_id, clinic, at_ms / 3600000, kind, outcome, classes, reason, COUNT(*) FROM audit_log "
        "WHERE partner_id <> '' AND kind IN ('decision','cancel','disclosure') "
        "GROUP BY partner_id, clinic, at_ms / 3600000, kind, outcome, classes, reason",
    },
    {
        // 9: several instances (docs/architecture.md §5.3). The instance that appended each log
        // row (covered by the v3 hash; '' on the rows before), and a row per gateway instance
        // with the versions it runs (binary, configuration, mapping set), its last reload and a
        // heartbeat, so an instance that runs something else than the others is seen.
        "ALTER TABLE audit_log ADD COLUMN instance_id TEXT NOT NULL DEFAULT ''",
        "CREATE TABLE gateway_instances ("
        "  instance_id TEXT PRIMARY KEY, started_at INTEGER NOT NULL, last_seen_at INTEGER NOT NULL,"
        "  stopped_at INTEGER NOT NULL, binary_version TEXT NOT NULL, config_version TEXT NOT NULL,"
        "  mappers_version TEXT NOT NULL, mappers_loaded_at INTEGER NOT NULL, last_reload_at INTEGER NOT NULL,"
        "  last_reload_error TEXT NOT NULL)",
    },
}};

}  // namespace

Status applyMigrations(Poco::Data::Session& session, int target) {
  try {
    session << "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", now;
    int current = 0;
    {
      Poco::Data::Statement q(session);
      q << "SELECT COALESCE(MAX(version), 0) FROM schema_version", now;
      Poco::Data::RecordSet rs(q);
      current = rs.value(0, 0).convert<int>();
    }
    if (current > kSchemaVersion) {
      return makeError(ErrorCode::Storage,
                       "the database schema is version " + std::to_string(current) + " but this build knows up to " +
                           std::to_string(kSchemaVersion),
                       "sqlite", "run a newer fhir-gateway, or restore a backup made by this version");
    }
    for (int v = current + 1; v <= std::min(target, kSchemaVersion); ++v) {
      session.begin();
      for (const char* sql : kMigrations[static_cast<std::size_t>(v - 1)]) session << sql, now;
      session << "INSERT INTO schema_version(version) VALUES(?)", use(v), now;
      session.commit();
    }
    return ok();
  } catch (const Poco::Exception& e) {
    if (session.isTransaction()) session.rollback();
    return makeError(ErrorCode::Storage, "schema migration failed: " + e.displayText(), "sqlite",
                     "check that the file is a fhir-gateway database and the disk is writable");
  }
}

}  // namespace gw::store

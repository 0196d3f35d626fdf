// The PostgreSQL schema. Numbers are shared with SQLite (store/sqlite_migrations.cpp): schema N is
// the same tables and columns on both, so a store can be copied between them (`store migrate`).
// PostgreSQL support began at schema 7, so an empty database is brought to 7 in one step; each
// later SQLite migration gets its PostgreSQL counterpart under the same number in kLaterMigrations.
//
// Types: SQLite's INTEGER is BIGINT; every column holding an envelope (store/keyring.hpp) is
// BYTEA (an outcome column with no outcome holds zero bytes). Tables whose rows are re-sealed by
// data key rotation get row_id, the position SQLite's rowid gives (StoreWriter::sealedCells).
#include <string>
#include <vector>

#include "store/postgres_backend.hpp"

namespace gw::store::postgres {
namespace {

const std::vector<const char*> kSchema7 = {
    "CREATE TABLE records ("
    "  clinic TEXT NOT NULL, record_key TEXT NOT NULL, record_type TEXT NOT NULL,"
    "  version BIGINT NOT NULL, content_hash TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',"
    "  patient_key TEXT NOT NULL, received_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    "  data_class TEXT NOT NULL DEFAULT 'sud', PRIMARY KEY (clinic, record_key))",
    "CREATE TABLE record_versions ("
    "  clinic TEXT NOT NULL, record_key TEXT NOT NULL, version BIGINT NOT NULL,"
    "  content_hash TEXT NOT NULL, payload BYTEA NOT NULL, received_at BIGINT NOT NULL,"
    "  data_class TEXT NOT NULL DEFAULT 'sud', row_id BIGSERIAL NOT NULL UNIQUE,"
    "  PRIMARY KEY (clinic, record_key, version))",
    "CREATE TABLE resources ("
    "  resource_type TEXT NOT NULL, resource_key TEXT NOT NULL, clinic TEXT NOT NULL, record_key TEXT NOT NULL,"
    "  record_version BIGINT NOT NULL, identifier_system TEXT NOT NULL, identifier_value BYTEA NOT NULL,"
    "  body BYTEA NOT NULL, data_class TEXT NOT NULL DEFAULT 'sud', stored_at BIGINT NOT NULL DEFAULT 0,"
    "  resource_id BYTEA NOT NULL DEFAULT '', row_id BIGSERIAL NOT NULL UNIQUE,"
    "  PRIMARY KEY (resource_type, resource_key))",
    "CREATE INDEX resources_by_record ON resources (clinic, record_key)",
    "CREATE TABLE outbox ("
    "  id BIGSERIAL PRIMARY KEY, partner_id TEXT NOT NULL, clinic TEXT NOT NULL,"
    "  record_key TEXT NOT NULL, record_version BIGINT NOT NULL, patient_key TEXT NOT NULL,"
    "  bundle BYTEA NOT NULL, entry_count BIGINT NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL,"
    "  next_attempt_at BIGINT NOT NULL, last_error TEXT NOT NULL, outcome BYTEA NOT NULL DEFAULT '',"
    "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, delivered_at BIGINT,"
    "  data_class TEXT NOT NULL DEFAULT 'sud', disclosure BYTEA NOT NULL DEFAULT '')",
    "CREATE INDEX outbox_due ON outbox (partner_id, state, next_attempt_at)",
    "CREATE INDEX outbox_patient ON outbox (partner_id, patient_key, id)",
    "CREATE INDEX outbox_record ON outbox (clinic, record_key)",
    "CREATE TABLE deliveries ("
    "  outbox_id BIGINT NOT NULL REFERENCES outbox(id), entry_index BIGINT NOT NULL,"
    "  status TEXT NOT NULL, location TEXT NOT NULL, etag TEXT NOT NULL,"
    "  PRIMARY KEY (outbox_id, entry_index))",
    "CREATE TABLE deployment_secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL, row_id BIGSERIAL NOT NULL UNIQUE)",
    "CREATE TABLE data_keys ("
    "  data_class TEXT NOT NULL, key_version BIGINT NOT NULL, wrapped BYTEA NOT NULL,"
    "  master_key_id TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (data_class, key_version))",
    "CREATE TABLE consents ("
    "  clinic TEXT NOT NULL, consent_key TEXT NOT NULL, version BIGINT NOT NULL,"
    "  patient_key TEXT NOT NULL, partner_id TEXT NOT NULL, status TEXT NOT NULL,"
    "  purposes TEXT NOT NULL, classes TEXT NOT NULL, period_start TEXT NOT NULL, period_end TEXT NOT NULL,"
    "  revoked_on TEXT NOT NULL, signed_on TEXT NOT NULL, resource_id BYTEA NOT NULL DEFAULT '',"
    "  recorded_at BIGINT NOT NULL, reconciled BIGINT NOT NULL DEFAULT 0, consent_id BYTEA NOT NULL DEFAULT '',"
    "  row_id BIGSERIAL NOT NULL UNIQUE, PRIMARY KEY (clinic, consent_key, version))",
    "CREATE INDEX consents_by_patient ON consents (patient_key, partner_id)",
    "CREATE TABLE audit_log ("
    "  seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,"
    "  clinic TEXT NOT NULL, patient_key TEXT NOT NULL, partner_id TEXT NOT NULL, purpose TEXT NOT NULL,"
    "  resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, classes TEXT NOT NULL, labels TEXT NOT NULL,"
    "  consent_id TEXT NOT NULL, consent_version BIGINT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,"
    "  policy_version TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE INDEX audit_by_patient ON audit_log (patient_key, seq)",
    "CREATE INDEX audit_by_partner ON audit_log (partner_id, seq)",
    "CREATE INDEX record_versions_by_age ON record_versions (received_at)",
    "CREATE INDEX resources_by_age ON resources (stored_at)",
    "CREATE INDEX outbox_by_age ON outbox (created_at)",
    "CREATE TABLE resource_decisions ("
    "  partner_id TEXT NOT NULL, clinic TEXT NOT NULL, record_key TEXT NOT NULL,"
    "  resource_type TEXT NOT NULL, resource_key TEXT NOT NULL, patient_key TEXT NOT NULL,"
    "  record_version BIGINT NOT NULL, outcome TEXT NOT NULL, removed_activities TEXT NOT NULL,"
    "  reason TEXT NOT NULL, updated_at BIGINT NOT NULL,"
    "  PRIMARY KEY (partner_id, clinic, record_key, resource_type, resource_key))",
    "CREATE INDEX resource_decisions_by_record ON resource_decisions (clinic, record_key)",
    "CREATE TABLE partner_pauses ("
    "  partner_id TEXT PRIMARY KEY, paused_at BIGINT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL)",
    "CREATE INDEX outbox_by_state ON outbox (state, id)",
    "CREATE INDEX records_by_state ON records (state, clinic, record_key)",
    "CREATE TABLE write_probe (id BIGINT PRIMARY KEY CHECK (id = 1), at_ms BIGINT NOT NULL)",
};

// Migrations after 7: kLaterMigrations[i] brings schema 7+i to 8+i.
const std::vector<std::vector<const char*>> kLaterMigrations = {
    {
        // 8: the compliance console (docs/console-api.md): break-glass disclosures, accounting
        // requests, the partner and period view's covering index and its hourly counters, filled
        // from the rows already logged. As SQLite's migration 8.
        "CREATE TABLE break_glass ("
        "  id TEXT PRIMARY KEY, clinic TEXT NOT NULL, patient_key TEXT NOT NULL, partner_id TEXT NOT NULL,"
        "  recipient TEXT NOT NULL, authorised_by TEXT NOT NULL, nature TEXT NOT NULL, opened_by TEXT NOT NULL,"
        "  opened_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, ended_at BIGINT NOT NULL, ended_by TEXT NOT NULL)",
        "CREATE INDEX break_glass_by_clinic ON break_glass (clinic, opened_at)",
        "CREATE TABLE accounting_requests ("
        "  id TEXT PRIMARY KEY, clinic TEXT NOT NULL, patient_key TEXT NOT NULL, received_on TEXT NOT NULL,"
        "  due_on TEXT NOT NULL, note TEXT NOT NULL, state TEXT NOT NULL, delivered_on TEXT NOT NULL,"
        "  created_by TEXT NOT NULL, delivered_by TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)",
        "CREATE INDEX accounting_requests_by_clinic ON accounting_requests (clinic, received_on)",
        "CREATE INDEX audit_by_partner_period ON audit_log (partner_id, clinic, at_ms, kind, outcome, classes, reason, seq)",
        "CREATE TABLE audit_hourly_counts ("
        "  partner_id TEXT NOT NULL, clinic TEXT NOT NULL, hour BIGINT NOT NULL, kind TEXT NOT NULL,"
        "  outcome TEXT NOT NULL, classes TEXT NOT NULL, reason TEXT NOT NULL, count BIGINT NOT NULL,"
        "  PRIMARY KEY (partner_id, clinic, hour, kind, outcome, classes, reason))",
        // BIGINT division truncates as SQLite's does (at_ms is never negative in a log).
        "INSERT INTO audit_hourly_counts(partner_id, clinic, hour, kind, outcome, classes, reason, count) "
        "SELECT partner_id, clinic, at_ms / 3600000, kind, outcome, classes, reason, COUNT(*) FROM audit_log "
        "WHERE partner_id <> '' AND kind IN ('decision','cancel','disclosure') "
        "GROUP BY partner_id, clinic, at_ms / 3600000, kind, outcome, classes, reason",
    },
    {
        // 9: several instances: the instance that appended each log row, and the versions each
        // instance runs. As SQLite's migration 9.
        "ALTER TABLE audit_log ADD COLUMN instance_id TEXT NOT NULL DEFAULT ''",
        "CREATE TABLE gateway_instances ("
        "  instance_id TEXT PRIMARY KEY, started_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL,"
        "  stopped_at BIGINT NOT NULL, binary_version TEXT NOT NULL, config_version TEXT NOT NULL,"
        "  mappers_version TEXT NOT NULL, mappers_loaded_at BIGINT NOT NULL, last_reload_at BIGINT NOT NULL,"
        "  last_reload_error TEXT NOT NULL)",
    },
};

// Every gateway instance migrating at once: one does it, the others wait and then see it done.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7412390001)";

}  // namespace

int storedSchemaVersion(PgConnection& c) {
  auto exists = c.exec("SELECT to_regclass('schema_version') IS NOT NULL");
  if (exists.text(0, 0) != "t") return 0;
  return static_cast<int>(c.exec("SELECT COALESCE(MAX(version), 0) FROM schema_version").i64(0, 0));
}

void applyMigrations(PgConnection& c) {
  c.exec("BEGIN");
  try {
    c.exec(kMigrationLock);
    c.exec("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)");
    int current = storedSchemaVersion(c);
    if (current > kPostgresSchemaVersion) {
      throw PgFailure("the database schema is version " + std::to_string(current) + " but this build knows up to " +
                          std::to_string(kPostgresSchemaVersion) + " (run a newer fhir-gateway)",
                      "");
    }
    if (current == 0) {
      for (const char* sql : kSchema7) c.exec(sql);
      c.exec("INSERT INTO schema_version(version) VALUES(7)");
      current = 7;
    }
    for (int v = current + 1; v <= kPostgresSchemaVersion; ++v) {
      for (const char* sql : kLaterMigrations[static_cast<std::size_t>(v - 8)]) c.exec(sql);
      c.exec("INSERT INTO schema_version(version) VALUES($1)", Params().i64(v));
    }
    c.exec("COMMIT");
  } catch (...) {
    try {
      c.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
}

}  // namespace gw::store::postgres

#include "app/store_tools.hpp"

#include "app/keys.hpp"
#include "store/audit_chain.hpp"
#include "store/sqlite_store.hpp"

namespace gw::app {

Result<MigrateReport> migrateStore(const config::GatewayConfig& from, const config::GatewayConfig& to) {
  GW_TRY(auto from_master, config::loadMasterKey(from.privacy));
  GW_TRY(auto to_master, config::loadMasterKey(to.privacy));
  if (from_master.id() != to_master.id()) {
    return makeError(ErrorCode::Config,
                     "the two configs name different master keys (" + from_master.id() + " and " + to_master.id() +
                         "): payloads are copied still encrypted, under data keys the source's master key wraps",
                     "--to privacy.master_key_file / master_key_env",
                     "give the target config the source's master key; rotate it afterwards with keys rotate");
  }
  if (from.storage.postgres.has_value() == to.storage.postgres.has_value() &&
      (from.storage.postgres ? false : from.storage.sqlite_path == to.storage.sqlite_path)) {
    return makeError(ErrorCode::Config, "both configs name the same database", "--to storage",
                     "point --to at a new, empty database");
  }
  MigrateReport report;
  {
    GW_TRY(auto source, openConfiguredBackend(from, true));
    GW_TRY(auto target, openConfiguredBackend(to, false));
    report.from = source->location();
    report.to = target->location();
    GW_TRY(auto copied, store::copyStore(*source, *target));
    report.copy = std::move(copied);
  }
  // The chain in both databases, each read back through its own backend, read-only.
  GW_TRY(auto source, openConfiguredBackend(from, true));
  GW_TRY(auto source_log, store::ReadOnlyAuditLog::open(std::move(source), from_master));
  GW_TRY(auto source_report, source_log.verify(std::nullopt));
  report.source_audit = std::move(source_report);
  GW_TRY(auto target, openConfiguredBackend(to, true));
  GW_TRY(auto target_log, store::ReadOnlyAuditLog::open(std::move(target), to_master));
  GW_TRY(auto target_report, target_log.verify(std::nullopt));
  report.target_audit = std::move(target_report);
  const auto& s = report.source_audit;
  const auto& t = report.target_audit;
  if (!t.ok || t.rows != s.rows || t.head_hash != s.head_hash || t.last_seq != s.last_seq) {
    return makeError(ErrorCode::Storage,
                     "the audit chain of the copy does not match the source's: " + std::to_string(t.rows) +
                         " rows (source " + std::to_string(s.rows) + "), head seq " + std::to_string(t.last_seq) +
                         " (source " + std::to_string(s.last_seq) + ")" + (t.ok ? "" : ", broken"),
                     report.to, "run audit verify on both; the copy must not be used");
  }
  return report;
}

Result<std::int64_t> backupStore(const config::GatewayConfig& config, const std::filesystem::path& file) {
  if (config.storage.postgres) {
    return makeError(ErrorCode::Config, "store backup copies an SQLite database; this config uses PostgreSQL",
                     "storage.postgres",
                     "back PostgreSQL up with its own tools: pg_dump --format=custom --file=FILE DBNAME (README "
                     "\"Backups\"), or a base backup with WAL archiving");
  }
  return store::backupSqliteDatabase(config.storage.sqlite_path.string(), file.string());
}

}  // namespace gw::app

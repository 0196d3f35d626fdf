#pragma once
// `fhir-gateway store migrate` and `fhir-gateway store backup`: moving a store between databases
// (SQLite and PostgreSQL, either way) and keeping a copy of an SQLite one.
#include <filesystem>
#include <string>

#include "config/gateway_config.hpp"
#include "store/audit_log.hpp"
#include "store/store_copy.hpp"

namespace gw::app {

struct MigrateReport {
  std::string from;  // the databases, as store backends name them (never a password)
  std::string to;
  store::CopyReport copy;
  store::VerifyReport source_audit;  // the log's chain checked in both, with the same head
  store::VerifyReport target_audit;
};

/// Copies the store of `from`'s database into `to`'s, which must be new (empty), payloads still
/// sealed: both configs must name the same master key. Then checks every table's row count on
/// both sides and the audit chain in the copy (intact, same rows, same head as the source). The
/// gateways using `from` must be stopped first.
Result<MigrateReport> migrateStore(const config::GatewayConfig& from, const config::GatewayConfig& to);

/// An online consistent copy of the configured SQLite database in `file` (store/sqlite_store.hpp
/// backupSqliteDatabase). A PostgreSQL store is refused, with pg_dump as the way. Returns the size.
Result<std::int64_t> backupStore(const config::GatewayConfig& config, const std::filesystem::path& file);

}  // namespace gw::app

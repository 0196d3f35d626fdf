#pragma once
// `fhir-gateway audit verify`: the decision and disclosure log's chain checked offline, straight
// from the configured database (the gateway may be running or stopped) or a copy of it, against
// the latest published anchor (docs/privacy.md §11.4).
#include <filesystem>
#include <optional>

#include "config/gateway_config.hpp"
#include "store/audit_log.hpp"

namespace gw::app {

struct AuditVerifyOptions {
  /// --anchor SEQ:HASH: checked against instead of any published anchor.
  std::optional<store::ChainAnchor> anchor;
  /// --anchor-file FILE: a copy of the anchor file, read instead of audit.anchor.file.
  std::filesystem::path anchor_file;
  /// --read-only: nothing is written to the database (no migration, no key, no audit row, no
  /// -wal or -shm file when there is none).
  bool read_only = false;
  /// --database FILE: check this file (a copy, a backup) instead of storage.sqlite_path; always
  /// read-only.
  std::filesystem::path database;
};

/// Recomputes the chain and checks it against the anchor (options.anchor, else the last
/// authentic line of the anchor file). Unless read-only, records the check itself in the log, as
/// GET /v1/audit/verify does.
Result<store::VerifyReport> verifyAuditLog(const config::GatewayConfig& config, const AuditVerifyOptions& options);

}  // namespace gw::app

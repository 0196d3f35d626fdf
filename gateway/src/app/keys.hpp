#pragma once
// The encrypted store as the configuration describes it: the master key from privacy.*, the
// database from storage.*, the retention per class; and `fhir-gateway keys rotate`.
#include <filesystem>
#include <memory>

#include "config/gateway_config.hpp"
#include "store/store.hpp"
#include "store/store_backend.hpp"

namespace gw::app {

/// Loads the master key (privacy.master_key_file or privacy.master_key_env) and opens the
/// configured database (storage.sqlite_path, or storage.postgres) with it. Errors name the key source or the database. The
/// store loads the same source again when `keys rotate-data` adds a data key version while it runs.
Result<std::unique_ptr<store::Store>> openConfiguredStore(const config::GatewayConfig& config, int read_pool_size);

/// The configured database's backend alone (no keys opened): read-only as asked. A non-empty
/// `sqlite_file` opens that SQLite file instead (a copy, a backup).
Result<std::unique_ptr<store::StoreBackend>> openConfiguredBackend(const config::GatewayConfig& config, bool read_only,
                                                                   const std::filesystem::path& sqlite_file = {});

/// privacy.retention_days as the store takes it (for Store::purgeExpired).
store::Retention retentionOf(const config::Privacy& privacy);

/// `fhir-gateway keys rotate --config FILE --new-master-key-file NEW`: opens the database with
/// the configured (current) master key and re-wraps every data key under the key in `new_key_file`
/// (same file rules: 64 hex digits or base64, mode 0600), in one transaction. Stored payloads are
/// unchanged. Afterwards the config must name the new key (or its file must be replaced by it)
/// before the gateway next starts; a running gateway keeps working meanwhile.
Result<store::KeyRotation> rotateMasterKey(const config::GatewayConfig& config, const std::filesystem::path& new_key_file);

/// `fhir-gateway keys rotate-data --config FILE --class C [--batch-rows N]`: opens the database
/// with the configured master key and runs Store::rotateDataKey for class `c` (actor `cli` in
/// the audit rows), next to a running gateway.
Result<store::DataKeyRotation> rotateDataKey(const config::GatewayConfig& config, privacy::DataClass c, int batch_rows);

}  // namespace gw::app

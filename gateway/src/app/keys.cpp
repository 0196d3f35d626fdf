#include "app/keys.hpp"

namespace gw::app {

Result<std::unique_ptr<store::Store>> openConfiguredStore(const config::GatewayConfig& config, int read_pool_size) {
  GW_TRY(auto master, config::loadMasterKey(config.privacy));
  return store::openSqliteStore(
      {config.storage.sqlite_path.string(), config.storage.synchronous_full, read_pool_size, std::move(master)});
}

store::Retention retentionOf(const config::Privacy& privacy) {
  return {privacy.retention_days.general, privacy.retention_days.sud, privacy.retention_days.mh};
}

Result<store::KeyRotation> rotateMasterKey(const config::GatewayConfig& config, const std::filesystem::path& new_key_file) {
  // Both keys are checked before the database is touched.
  GW_TRY(auto current, config::loadMasterKey(config.privacy));
  auto next = crypto::loadKeyFile(new_key_file);
  if (!next) {
    Error e = next.error();
    e.where = "--new-master-key-file " + new_key_file.string();
    return e;
  }
  GW_TRY(auto store, store::openSqliteStore({config.storage.sqlite_path.string(), config.storage.synchronous_full, 1, current}));
  return store->rotateMasterKey(current, next.value());
}

}  // namespace gw::app

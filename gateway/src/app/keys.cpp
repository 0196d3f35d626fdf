#include "app/keys.hpp"

#include "common/log.hpp"
#include "store/sqlite_store.hpp"

namespace gw::app {

Result<std::unique_ptr<store::Store>> openConfiguredStore(const config::GatewayConfig& config, int read_pool_size) {
  GW_TRY(auto master, config::loadMasterKey(config.privacy));
  store::SqliteOptions options{config.storage.sqlite_path.string(), config.storage.synchronous_full, read_pool_size,
                               std::move(master)};
  // Read again (not kept) when a data key version made by `keys rotate-data` must be unwrapped.
  options.master_key_source = [privacy = config.privacy] { return config::loadMasterKey(privacy); };
  return store::openSqliteStore(options);
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
  GW_TRY(auto store,
         store::openSqliteStore({config.storage.sqlite_path.string(), config.storage.synchronous_full, 1, current}));
  GW_TRY(auto rotation, store->rotateMasterKey(current, next.value()));
  // The rotation is part of the record a compliance review reads (key ids only, never keys).
  auto e = store::AuditEntryBuilder(store::AuditKind::KeyRotation, store::AuditOutcome::Ok, "cli",
                                    toUnixMillis(std::chrono::system_clock::now()))
               .detail(R"({"data_keys":)" + std::to_string(rotation.data_keys) + R"(,"old_master_id":")" +
                       rotation.old_master_id + R"(","new_master_id":")" + rotation.new_master_id + R"("})")
               .build();
  if (auto logged = store->appendAudit({std::move(e)}); !logged) {
    GW_LOG(Warn, Audit, "key_rotation_not_logged").kv("error", logged.error().describe());
  }
  return rotation;
}

}  // namespace gw::app

namespace gw::app {

Result<store::DataKeyRotation> rotateDataKey(const config::GatewayConfig& config, privacy::DataClass c, int batch_rows) {
  GW_TRY(auto master, config::loadMasterKey(config.privacy));
  GW_TRY(auto store,
         store::openSqliteStore({config.storage.sqlite_path.string(), config.storage.synchronous_full, 1, master}));
  store::DataKeyRotationOptions options;
  options.batch_rows = batch_rows;
  options.actor = "cli";
  return store->rotateDataKey(c, master, options);
}

}  // namespace gw::app

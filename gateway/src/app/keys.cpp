#include "app/keys.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "store/postgres_store.hpp"
#include "store/record_store.hpp"
#include "store/sqlite_store.hpp"

namespace gw::app {
namespace {

Result<store::PostgresOptions> postgresOptions(const config::GatewayConfig& config, int read_pool_size) {
  const auto& pg = *config.storage.postgres;
  store::PostgresOptions options;
  options.instance_id = config::instanceId(config);
  GW_TRY(auto dsn, config::loadPostgresDsn(pg));
  options.dsn = std::move(dsn);
  // Never fewer read connections than the threads that read at once (else they would queue).
  options.pool_size = std::max(pg.pool_size, read_pool_size);
  options.connect_timeout_seconds = pg.connect_timeout_seconds;
  options.sslmode = pg.sslmode;
  options.sslrootcert = pg.sslrootcert.string();
  options.sslcert = pg.sslcert.string();
  options.sslkey = pg.sslkey.string();
  // The longest one send may take, as the in-process send gate's bound: sets how long a send's
  // hold against consent changes lasts and how long a change waits for holds (§5.3).
  std::chrono::milliseconds longest_send{0};
  for (const auto& partner : config.partners) {
    longest_send = std::max(longest_send, 2 * partner.connect_timeout + partner.request_timeout);
  }
  if (longest_send.count() > 0) options.longest_send = longest_send;
  return options;
}

// The configured database under `master`.
Result<std::unique_ptr<store::Store>> openStoreWith(const config::GatewayConfig& config, int read_pool_size,
                                                    crypto::SecretKey master, store::MasterKeySource source = {}) {
  if (config.storage.postgres) {
    GW_TRY(auto options, postgresOptions(config, read_pool_size));
    options.master_key = std::move(master);
    options.master_key_source = std::move(source);
    return store::openPostgresStore(options);
  }
  store::SqliteOptions options{config.storage.sqlite_path.string(), config.storage.synchronous_full, read_pool_size,
                               std::move(master)};
  options.master_key_source = std::move(source);
  options.instance_id = config::instanceId(config);  // written into the log rows it appends
  return store::openSqliteStore(options);
}

}  // namespace

Result<std::unique_ptr<store::Store>> openConfiguredStore(const config::GatewayConfig& config, int read_pool_size) {
  GW_TRY(auto master, config::loadMasterKey(config.privacy));
  // Read again (not kept) when a data key version made by `keys rotate-data` must be unwrapped.
  return openStoreWith(config, read_pool_size, std::move(master),
                       [privacy = config.privacy] { return config::loadMasterKey(privacy); });
}

Result<std::unique_ptr<store::StoreBackend>> openConfiguredBackend(const config::GatewayConfig& config, bool read_only,
                                                                   const std::filesystem::path& sqlite_file) {
  if (const auto& pg = config.storage.postgres; pg && sqlite_file.empty()) {
    GW_TRY(auto options, postgresOptions(config, 2));
    options.read_only = read_only;
    return store::openPostgresBackend(options);
  }
  store::SqliteOptions options{
      sqlite_file.empty() ? config.storage.sqlite_path.string() : sqlite_file.string(), true, 2, {}};
  options.read_only = read_only;
  return store::openSqliteBackend(options);
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
  GW_TRY(auto store, openStoreWith(config, 1, current));
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
  GW_TRY(auto store, openStoreWith(config, 1, master));
  store::DataKeyRotationOptions options;
  options.batch_rows = batch_rows;
  options.actor = "cli";
  return store->rotateDataKey(c, master, options);
}

}  // namespace gw::app

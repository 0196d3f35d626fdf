#pragma once
// The embedded SQLite database: the default backend of the store (store/store_backend.hpp).
#include <memory>
#include <string>

#include "common/crypto.hpp"
#include "common/error.hpp"
#include "store/keyring.hpp"
#include "store/store.hpp"
#include "store/store_backend.hpp"

namespace gw::store {

struct SqliteOptions {
  std::string path;
  bool synchronous_full = true;
  int read_pool_size = 16;  // at least blocking threads + partner workers + jobs + the committer
  /// Required by openSqliteStore: wraps the data keys (privacy.master_key_file /
  /// privacy.master_key_env). Used while opening only; the store keeps the unwrapped data keys,
  /// not the master key.
  crypto::SecretKey master_key;
  /// Opens the file without writing to it: no file or folder is made, no pragma that writes, no
  /// migration (a database that needs one is refused), and SQLite is told the file is read-only
  /// (`mode=ro` when a -wal file exists, so committed pages still in it are read; else
  /// `immutable=1`, which also makes no -wal or -shm file). Every write transaction fails.
  /// For ReadOnlyAuditLog (`audit verify --read-only`, a copy of a database).
  bool read_only = false;
  /// Gives the master key again when `keys rotate-data` (another process) adds a data key
  /// version while this store is open (store/keyring.hpp). Optional: without it, writes after
  /// such a rotation fail, saying to restart.
  MasterKeySource master_key_source;
  /// The gateway instance this process is (config::instanceId): written into the log rows it
  /// appends (audit_log.instance_id). Empty in tools and tests that name none.
  std::string instance_id;
};

/// Opens (creating if needed) the SQLite file in WAL mode, brings its schema up to date and
/// opens its data keys with options.master_key (making them on a new database). A master key
/// other than the one that wrapped the keys is a Config error naming both key ids.
Result<std::unique_ptr<Store>> openSqliteStore(const SqliteOptions& options);

/// The backend alone (options.master_key unused): opened, in WAL mode, schema up to date (or
/// read-only as options.read_only says). For openStore (store/record_store.hpp), ReadOnlyAuditLog
/// (store/audit_chain.hpp) and tests.
Result<std::unique_ptr<StoreBackend>> openSqliteBackend(const SqliteOptions& options);

/// An online, consistent copy of the database `path` in `target` (which must not exist), made
/// with VACUUM INTO on a connection of its own: one read transaction, so writers (a running
/// gateway) go on meanwhile and the copy is the database as of one commit. The copy is mode 0600
/// and passes PRAGMA quick_check. Returns its size in bytes.
Result<std::int64_t> backupSqliteDatabase(const std::string& path, const std::string& target);

}  // namespace gw::store

#pragma once
// PostgreSQL: the store backend for several gateway instances sharing one database
// (store/store_backend.hpp; docs/architecture.md §5.3). Same tables and rules as SQLite.
#include <chrono>
#include <memory>
#include <string>

#include "common/crypto.hpp"
#include "common/error.hpp"
#include "store/keyring.hpp"
#include "store/store.hpp"
#include "store/store_backend.hpp"

namespace gw::store {

struct PostgresOptions {
  /// A libpq connection string ("host=... port=... dbname=... user=... password=...") or URI.
  /// Holds a password: never logged, never put into an error message.
  std::string dsn;
  /// Connections for reads (each StoreReader holds one while it lives); the one writer
  /// connection comes on top.
  int pool_size = 16;
  int connect_timeout_seconds = 10;
  /// libpq sslmode ("disable", "require", "verify-ca", "verify-full"); empty leaves the DSN's.
  std::string sslmode;
  /// CA file the server certificate is checked against (verify-ca, verify-full).
  std::string sslrootcert;
  /// Client certificate and key, when the server wants one.
  std::string sslcert;
  std::string sslkey;
  /// Sessions are read-only (default_transaction_read_only) and beginWrite fails; no migration.
  bool read_only = false;
  /// Written into the log rows this process appends (audit_log.instance_id) and used as the
  /// application_name of its connections, so pg_stat_activity tells instances apart.
  std::string instance_id;
  /// The longest one request to a partner may take (twice the connect timeout plus the request
  /// timeout of the slowest partner). A send's hold against consent changes lasts at most a lease
  /// derived from it, and a consent change waits for holds at most a little longer
  /// (docs/architecture.md §5.3).
  std::chrono::milliseconds longest_send{2 * 5000 + 30000};
  /// As SqliteOptions::master_key: wraps the data keys; used while opening only.
  crypto::SecretKey master_key;
  MasterKeySource master_key_source;
};

/// The database and the user the DSN names ("user@host:port/dbname"), for messages: never the
/// password.
std::string describePostgresDsn(const std::string& dsn);

/// Connects, brings the schema up to date (unless read_only) and returns the backend.
Result<std::unique_ptr<StoreBackend>> openPostgresBackend(const PostgresOptions& options);

/// openPostgresBackend, then the store over it (options.master_key required).
Result<std::unique_ptr<Store>> openPostgresStore(const PostgresOptions& options);

}  // namespace gw::store

#include "store/sqlite_backend.hpp"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SessionPool.h>

#include <cstring>
#include <filesystem>

#include "common/log.hpp"
#include "store/record_store.hpp"
#include "store/sqlite_migrations.hpp"
#include "store/sqlite_store.hpp"

namespace gw::store {
namespace sqlite {

using namespace Poco::Data::Keywords;
using Poco::Data::Session;

Error storageError(std::string_view what, const Poco::Exception& e) {
  return makeError(ErrorCode::Storage, std::string(what) + ": " + e.displayText(), "sqlite",
                   "check the disk and the database file; the request can be retried");
}

std::string_view blobView(const Poco::Data::BLOB& b) {
  return b.size() == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char*>(b.rawContent()), b.size());
}

void setBlob(Poco::Data::BLOB& b, std::string_view bytes) {
  b.resize(bytes.size());
  if (!bytes.empty()) std::memcpy(b.rawContent(), bytes.data(), bytes.size());
}

Poco::Data::BLOB toBlob(std::string_view bytes) {
  return Poco::Data::BLOB(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

std::string str(const Poco::Data::RecordSet& rs, std::size_t col, std::size_t row) {
  const auto& v = rs.value(col, row);
  return v.isEmpty() ? std::string() : v.convert<std::string>();
}

std::int64_t i64(const Poco::Data::RecordSet& rs, std::size_t col, std::size_t row) {
  const auto& v = rs.value(col, row);
  return v.isEmpty() ? 0 : v.convert<Poco::Int64>();
}

Result<std::vector<DataKeyRow>> selectDataKeys(Session& s) {
  try {
    std::vector<std::string> classes, master_ids;
    std::vector<int> versions;
    std::vector<Poco::Int64> created;
    std::vector<Poco::Data::BLOB> wrapped;
    s << "SELECT data_class, key_version, wrapped, master_key_id, created_at FROM data_keys "
         "ORDER BY data_class, key_version",
        into(classes), into(versions), into(wrapped), into(master_ids), into(created), now;
    std::vector<DataKeyRow> rows;
    for (std::size_t i = 0; i < classes.size(); ++i) {
      rows.push_back({classes[i], versions[i], std::string(blobView(wrapped[i])), master_ids[i], created[i]});
    }
    return rows;
  } catch (const Poco::Exception& e) {
    return storageError("reading the data keys", e);
  }
}

namespace {

void configureSession(Session& s, bool synchronous_full) {
  // busy_timeout first: other connections may hold the write lock while this one starts.
  s << "PRAGMA busy_timeout=10000", now;
  s << "PRAGMA foreign_keys=ON", now;
  s << (synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"), now;
  // Index pages of the inbox and outbox stay hot: a 32 MB page cache and memory-mapped reads
  // halve the pread/pwrite traffic of a grouped ingest commit.
  s << "PRAGMA cache_size=-32768", now;
  s << "PRAGMA mmap_size=268435456", now;
  s << "PRAGMA temp_store=MEMORY", now;
  // Deleted rows (purged or replaced payloads) are zeroed where that costs no extra I/O.
  s << "PRAGMA secure_delete=FAST", now;
}

class SqliteBackend final : public StoreBackend {
 public:
  explicit SqliteBackend(const SqliteOptions& options)
      : path_(options.path),
        synchronous_full_(options.synchronous_full),
        writer_(options.path),
        readers_("SQLite", options.path, 1, options.read_pool_size, 60) {}

  Status init() {
    try {
      auto& s = writer_.session;
      // Larger pages: a record, its resources and its Bundles are a few KB, so 16 KB pages mean
      // fewer page writes per commit (only effective when the file is created).
      s << "PRAGMA page_size=16384", now;
      std::string mode;
      s << "PRAGMA journal_mode=WAL", into(mode), now;
      if (mode != "wal") {
        return makeError(ErrorCode::Storage, "SQLite refused WAL mode (got '" + mode + "')", path_,
                         "put the database on a local file system");
      }
      configureSession(s, synchronous_full_);
      return applyMigrations(s);
    } catch (const Poco::Exception& e) {
      return storageError("opening the database", e);
    }
  }

  std::string_view name() const override { return "sqlite"; }
  std::string location() const override { return path_; }

  // A pooled read connection. Poco's pool throws when exhausted rather than waiting; the pool is
  // sized for every thread that reads (see SqliteOptions), so that means a bug or overload.
  Result<std::unique_ptr<StoreReader>> read() override {
    try {
      Session s = readers_.get();
      s << "PRAGMA busy_timeout=10000", now;
      return makeReader(std::move(s));
    } catch (const Poco::Exception& e) {
      return storageError("opening a read connection", e);
    }
  }

  Result<std::unique_ptr<StoreWriter>> beginWrite() override {
    // One writer connection; SQLite serializes writers anyway.
    return beginWriter(writer_, std::unique_lock(writer_.mutex));
  }

  Result<std::int64_t> convertLegacyIdentifiers(const LegacyIdentifiers& convert) override {
    return sqlite::convertLegacyIdentifiers(writer_, convert);
  }

 private:
  std::string path_;
  bool synchronous_full_;
  WriterConnection writer_;
  Poco::Data::SessionPool readers_;
};

}  // namespace
}  // namespace sqlite

Result<std::unique_ptr<StoreBackend>> openSqliteBackend(const SqliteOptions& options) {
  static std::once_flag registered;
  std::call_once(registered, [] { Poco::Data::SQLite::Connector::registerConnector(); });
  std::error_code ec;
  const auto parent = std::filesystem::path(options.path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return makeError(ErrorCode::Storage, "cannot create the database folder: " + ec.message(), parent.string(),
                     "create it or point storage.sqlite_path elsewhere");
  }
  try {
    auto backend = std::make_unique<sqlite::SqliteBackend>(options);
    GW_TRY(backend->init());
    // The database holds clinical records: readable by the gateway's user only.
    std::filesystem::permissions(options.path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace, ec);
    return std::unique_ptr<StoreBackend>(std::move(backend));
  } catch (const Poco::Exception& e) {
    return sqlite::storageError("opening " + options.path, e);
  }
}

Result<std::unique_ptr<Store>> openSqliteStore(const SqliteOptions& options) {
  if (options.master_key.empty()) {
    return makeError(ErrorCode::Config, "no master key: stored payloads are encrypted under data keys it wraps",
                     "privacy.master_key_file / privacy.master_key_env",
                     "set one of the two in the config (make a key: openssl rand -hex 32 > FILE; chmod 600 FILE)");
  }
  GW_TRY(auto backend, openSqliteBackend(options));
  GW_TRY(auto store, openStore(std::move(backend), options.master_key));
  GW_LOG(Info, Store, "opened")
      .kv("backend", "sqlite")
      .kv("schema_version", kSchemaVersion)
      .kv("master_key_id", options.master_key.id());  // a digest prefix: names the key, reveals nothing
  return store;
}

}  // namespace gw::store

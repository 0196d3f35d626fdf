#include "store/sqlite_backend.hpp"

#include <Poco/Data/DataException.h>
#include <Poco/Data/SQLite/Connector.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/log.hpp"
#include "store/record_store.hpp"
#include "store/sqlite_migrations.hpp"
#include "store/sqlite_statement.hpp"
#include "store/sqlite_store.hpp"

namespace gw::store {
namespace fs = std::filesystem;
namespace {
// Group and other bits off for every file the process creates once it has opened the database:
// SQLite's own files, and anything later written from what the database holds.
constexpr mode_t kPrivateUmask = 077;
}  // namespace
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

const char* const kSelectDataKeysSql =
    "SELECT data_class, key_version, wrapped, master_key_id, created_at FROM data_keys ORDER BY data_class, key_version";

std::vector<DataKeyRow> selectDataKeys(PreparedStatement& select) {
  std::vector<DataKeyRow> rows;
  select.each([&](const PreparedStatement& row) {
    rows.push_back(
        {row.columnText(0), static_cast<int>(row.columnInt(1)), row.columnBlob(2), row.columnText(3), row.columnInt(4)});
  });
  return rows;
}

namespace {

// Database files are created rw------- and folders rwx------ (the umask only ever takes bits away).
constexpr mode_t kPrivateFile = 0600;
constexpr mode_t kPrivateFolder = 0700;

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

Error fileError(std::string_view what, const fs::path& where, int error_number, std::string hint) {
  return makeError(ErrorCode::Storage, std::string(what) + ": " + std::strerror(error_number), where.string(),
                   std::move(hint));
}

}  // namespace

Status makePrivateFolder(const fs::path& folder) {
  std::vector<fs::path> missing;  // innermost first
  std::error_code ec;
  for (fs::path p = folder; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto p = missing.rbegin(); p != missing.rend(); ++p) {
    // mkdir with 0700 rather than create_directories and chmod: never, even for a moment, open to others.
    if (::mkdir(p->c_str(), kPrivateFolder) != 0 && errno != EEXIST) {
      return fileError("cannot create the database folder", *p, errno,
                       "create it (mode 0700, owned by the gateway's user) or point storage.sqlite_path elsewhere");
    }
    // A umask that takes the owner's own bits away would leave a folder the gateway cannot use.
    if (::chmod(p->c_str(), kPrivateFolder) != 0) {
      return fileError("cannot set the mode of the database folder", *p, errno, "check who owns it");
    }
  }
  return ok();
}

void warnIfFolderIsOpen(const fs::path& folder) {
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return;
  // A folder the gateway did not create may be shared on purpose (a backup group): it is not
  // changed. The files in it are 0600 whatever the folder allows; others can still list them.
  std::error_code ec;
  const fs::path shown = fs::absolute(folder, ec);
  GW_LOG(Warn, Store, "database_folder_open")
      .kv("folder", (ec ? folder : shown).lexically_normal().string())
      .kv("mode", octal(st.st_mode))
      .kv("hint",
          "group and others can list the database's files: chmod 700 the folder, or give the database a "
          "folder of its own");
}

Status makePrivateFiles(const fs::path& file) {
  // The database file first: SQLite creates its -wal, -shm and -journal files with the mode of
  // the database file, so a file it created under the process's default umask (0644) had open
  // siblings for as long as they lived.
  if (const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kPrivateFile); fd >= 0) {
    ::close(fd);
  } else if (errno != EEXIST) {
    return fileError("cannot create the database file", file, errno,
                     "check that its folder is writable by the gateway's user, or point storage.sqlite_path elsewhere");
  }
  // Files an older gateway (or a copy, or a crash before it) left open to others lose the group
  // and other bits before anything more is written into them.
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const fs::path path = file.string() + suffix;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) == 0) continue;
    const mode_t tightened = st.st_mode & 0700;
    if (::chmod(path.c_str(), tightened) != 0) {
      return fileError("cannot take group and other access away from a database file", path, errno,
                       "chmod 600 it as its owner");
    }
    GW_LOG(Warn, Store, "database_file_mode_tightened")
        .kv("file", path.string())
        .kv("mode_was", octal(st.st_mode))
        .kv("mode_now", octal(tightened));
  }
  return ok();
}

ReaderPool::ReaderPool(std::string uri, int size)
    : uri_(std::move(uri)), size_(static_cast<std::size_t>(std::max(1, size))) {}

ReaderPool::~ReaderPool() {
  // Statements before their connection: a connection with live statements does not close.
  for (auto& c : open_) c->statements.reset();
}

ReaderPool::Lease ReaderPool::borrow() {
  std::unique_lock lock(mutex_);
  // Sized for every thread that reads (see SqliteOptions): a long wait means a leak or overload.
  if (!freed_.wait_for(lock, std::chrono::seconds(10), [&] { return !free_.empty() || open_.size() < size_; })) {
    throw Poco::Data::DataException("no read connection became free within 10 s (" + std::to_string(size_) + " are open)");
  }
  if (!free_.empty()) {
    ReaderConnection* c = free_.back();
    free_.pop_back();
    return Lease(c, Return{this});
  }
  auto c = std::make_unique<ReaderConnection>(uri_);
  // Other connections may hold the write lock while this one reads (a checkpoint, a migration).
  c->session << "PRAGMA busy_timeout=10000", now;
  // Reads are point lookups through indexes; pages they miss come from the OS's file cache. A
  // small cache per connection keeps up to 16 of them from adding 2 MB each to RSS (issue 14).
  c->session << "PRAGMA cache_size=-512", now;
  open_.push_back(std::move(c));
  return Lease(open_.back().get(), Return{this});
}

void ReaderPool::giveBack(ReaderConnection* c) {
  {
    std::lock_guard lock(mutex_);
    free_.push_back(c);
  }
  freed_.notify_one();
}

namespace {

void configureSession(Session& s, bool synchronous_full) {
  // busy_timeout first: other connections may hold the write lock while this one starts.
  s << "PRAGMA busy_timeout=10000", now;
  s << "PRAGMA foreign_keys=ON", now;
  s << (synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"), now;
  // Index pages of the inbox and outbox stay hot in a 16 MB page cache. No memory-mapped reads:
  // mapped pages of the file count in the process's RSS (a 256 MB map added 50-100 MB under
  // ingest load, against a 150 MB bound) and measured no faster than the cache (issue 14).
  s << "PRAGMA cache_size=-16384", now;
  s << "PRAGMA mmap_size=0", now;
  s << "PRAGMA temp_store=MEMORY", now;
  // Deleted rows (purged or replaced payloads) are zeroed where that costs no extra I/O.
  s << "PRAGMA secure_delete=FAST", now;
}

class SqliteBackend final : public StoreBackend {
 public:
  explicit SqliteBackend(const SqliteOptions& options)
      : path_(options.path),
        instance_id_(options.instance_id),
        synchronous_full_(options.synchronous_full),
        writer_(options.path),
        readers_(options.path, options.read_pool_size) {}

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

  Result<std::unique_ptr<StoreReader>> read() override {
    try {
      return makeReader(readers_.borrow());
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

  std::string instanceId() const override { return instance_id_; }

 private:
  std::string path_;
  std::string instance_id_;
  bool synchronous_full_;
  WriterConnection writer_;
  ReaderPool readers_;
};

// A SQLite URI for `path` (https://sqlite.org/uri.html): the characters a URI path reserves
// are escaped; everything else is passed as is.
std::string fileUri(const std::string& path, std::string_view query) {
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      static constexpr char kHex[] = "0123456789abcdef";
      uri += '%';
      uri += kHex[static_cast<unsigned char>(c) >> 4];
      uri += kHex[static_cast<unsigned char>(c) & 0x0f];
    } else {
      uri += c;
    }
  }
  return uri + "?" + std::string(query);
}

// The database file opened read-only through a SQLite URI: reads only, on pooled connections;
// beginWrite always fails. Nothing on the way writes to the file or next to it.
class SqliteReadOnlyBackend final : public StoreBackend {
 public:
  SqliteReadOnlyBackend(std::string path, const std::string& uri, int pool_size)
      : path_(std::move(path)), readers_(uri, pool_size) {}

  Status init() {
    try {
      auto c = readers_.borrow();
      Session& s = c->session;
      int tables = 0;
      s << "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='schema_version'", into(tables), now;
      int version = 0;
      if (tables > 0) s << "SELECT COALESCE(MAX(version), 0) FROM schema_version", into(version), now;
      if (version == kSchemaVersion) return ok();
      if (version > kSchemaVersion) {
        return makeError(ErrorCode::Storage,
                         "the database schema is version " + std::to_string(version) + " but this build knows up to " +
                             std::to_string(kSchemaVersion),
                         path_, "run a newer fhir-gateway");
      }
      return makeError(ErrorCode::Storage,
                       tables == 0 ? std::string("the file is not a fhir-gateway database (it has no schema_version table)")
                                   : "the database schema is version " + std::to_string(version) +
                                         " and needs a migration to version " + std::to_string(kSchemaVersion) +
                                         ", which a read-only open does not make",
                       path_,
                       "verify a copy without --read-only (that migrates the copy), or start the gateway of this "
                       "version on the database once");
    } catch (const Poco::Exception& e) {
      return storageError("opening the database read-only", e);
    }
  }

  std::string_view name() const override { return "sqlite"; }
  std::string location() const override { return path_; }

  Result<std::unique_ptr<StoreReader>> read() override {
    try {
      return makeReader(readers_.borrow());
    } catch (const Poco::Exception& e) {
      return storageError("opening a read connection", e);
    }
  }

  Result<std::unique_ptr<StoreWriter>> beginWrite() override {
    return makeError(ErrorCode::Storage, "the database was opened read-only: nothing may be written to it", path_,
                     "open it without --read-only to write");
  }

  // A database still holding clear identifiers needs the conversion a write makes: refused
  // rather than read with the wrong keys.
  Result<std::int64_t> convertLegacyIdentifiers(const LegacyIdentifiers&) override {
    try {
      auto c = readers_.borrow();
      Poco::Int64 due = 0;
      c->session << "SELECT COUNT(*) FROM keyed_conversions_due", into(due), now;
      if (due == 0) return std::int64_t{0};
      return makeError(ErrorCode::Storage,
                       "the database still holds identifiers in clear and needs a conversion to lookup keys, which a "
                       "read-only open does not make",
                       path_,
                       "verify a copy without --read-only (that converts the copy), or start the gateway of this "
                       "version on the database once");
    } catch (const Poco::Exception& e) {
      return storageError("reading the conversions due", e);
    }
  }

 private:
  std::string path_;
  ReaderPool readers_;
};

Result<std::unique_ptr<StoreBackend>> openReadOnly(const SqliteOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.path, ec)) {
    return makeError(ErrorCode::Storage, "there is no database file here", options.path,
                     "check storage.sqlite_path of the config, or the --database path");
  }
  // A -wal file may hold committed pages not yet in the main file: read through it (mode=ro uses
  // the existing -wal and -shm). Without one the main file is everything, and immutable=1 makes
  // SQLite take no lock and create no -wal or -shm file.
  const bool has_wal = std::filesystem::exists(options.path + "-wal", ec);
  const std::string uri = fileUri(options.path, has_wal ? "mode=ro" : "immutable=1");
  try {
    auto backend = std::make_unique<SqliteReadOnlyBackend>(options.path, uri, options.read_pool_size);
    GW_TRY(backend->init());
    return std::unique_ptr<StoreBackend>(std::move(backend));
  } catch (const Poco::Exception& e) {
    return storageError("opening " + options.path + " read-only", e);
  }
}

}  // namespace
}  // namespace sqlite

Result<std::unique_ptr<StoreBackend>> openSqliteBackend(const SqliteOptions& options) {
  static std::once_flag registered;
  std::call_once(registered, [] { Poco::Data::SQLite::Connector::registerConnector(); });
  // A read-only open (audit verify) changes nothing on disk, modes included.
  if (options.read_only) return sqlite::openReadOnly(options);
  ::umask(kPrivateUmask);
  const fs::path file(options.path);
  const fs::path folder = file.has_parent_path() ? file.parent_path() : fs::path(".");
  GW_TRY(sqlite::makePrivateFolder(folder));
  sqlite::warnIfFolderIsOpen(folder);
  GW_TRY(sqlite::makePrivateFiles(file));
  try {
    auto backend = std::make_unique<sqlite::SqliteBackend>(options);
    GW_TRY(backend->init());
    return std::unique_ptr<StoreBackend>(std::move(backend));
  } catch (const Poco::Exception& e) {
    return sqlite::storageError("opening " + options.path, e);
  }
}

Result<std::int64_t> backupSqliteDatabase(const std::string& path, const std::string& target) {
  using namespace Poco::Data::Keywords;
  using Poco::Data::Session;
  static std::once_flag registered;
  std::call_once(registered, [] { Poco::Data::SQLite::Connector::registerConnector(); });
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return makeError(ErrorCode::Storage, "there is no database file here", path, "check storage.sqlite_path of the config");
  }
  if (fs::exists(target, ec)) {
    return makeError(ErrorCode::Config, "the backup file exists already", target,
                     "name a new file (a backup is never written over another)");
  }
  // The copy holds what the database holds (lookup keys, sealed payloads): private from its
  // first byte, whatever the umask.
  const mode_t previous = ::umask(kPrivateUmask);
  try {
    Session s("SQLite", path);
    s << "PRAGMA busy_timeout=10000", now;
    std::string into_file = target;
    s << "VACUUM INTO ?", use(into_file), now;
    ::umask(previous);
    ::chmod(target.c_str(), 0600);
    Session copy("SQLite", target);
    std::string check;
    copy << "PRAGMA quick_check", into(check), now;
    if (check != "ok") {
      return makeError(ErrorCode::Storage, "the backup fails SQLite's quick_check: " + check, target,
                       "check the disk and make the backup again");
    }
  } catch (const Poco::Exception& e) {
    ::umask(previous);
    return sqlite::storageError("backing up " + path + " to " + target, e);
  }
  return static_cast<std::int64_t>(fs::file_size(target, ec));
}

Result<std::unique_ptr<Store>> openSqliteStore(const SqliteOptions& options) {
  if (options.read_only) {
    return makeError(ErrorCode::Internal, "a store cannot be opened read-only: it makes its keys on first open",
                     options.path, "open the backend read-only and use store::ReadOnlyAuditLog");
  }
  if (options.master_key.empty()) {
    return makeError(ErrorCode::Config, "no master key: stored payloads are encrypted under data keys it wraps",
                     "privacy.master_key_file / privacy.master_key_env",
                     "set one of the two in the config (make a key: openssl rand -hex 32 > FILE; chmod 600 FILE)");
  }
  GW_TRY(auto backend, openSqliteBackend(options));
  GW_TRY(auto store, openStore(std::move(backend), options.master_key, options.master_key_source));
  GW_LOG(Info, Store, "opened")
      .kv("backend", "sqlite")
      .kv("schema_version", kSchemaVersion)
      .kv("master_key_id", options.master_key.id());  // a digest prefix: names the key, reveals nothing
  return store;
}

}  // namespace gw::store

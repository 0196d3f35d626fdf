// What only the SQLite backend promises: the file, its mode and its locking. Everything a Store
// must do on any backend is the store contract (store_contract_*_test.cpp).
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/ids.hpp"
#include "store/audit_chain.hpp"
#include "store/sample_audit_entries.hpp"
#include "store/sqlite_migrations.hpp"
#include "store/sqlite_store.hpp"
#include "support/log_capture.hpp"
#include "support/test_keys.hpp"

namespace gw::store {
namespace {

namespace fs = std::filesystem;
using namespace Poco::Data::Keywords;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-store-" + ids::randomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path() const { return (dir_ / "data" / "gw.db").string(); }

  fs::path dir_;
};

TEST_F(SqliteStoreTest, MakesItsFolderAndAPrivateWalDatabaseAtTheCurrentSchema) {
  auto store = openSqliteStore({path(), true, 2, gw::test::testMasterKey()});
  ASSERT_TRUE(store) << store.error().describe();
  const auto perms = fs::status(path()).permissions();
  EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
  Poco::Data::Session s("SQLite", path());
  std::string mode;
  int version = 0;
  s << "PRAGMA journal_mode", into(mode), now;
  s << "SELECT MAX(version) FROM schema_version", into(version), now;
  EXPECT_EQ(mode, "wal");
  EXPECT_EQ(version, kSchemaVersion);
}

// Issue 9, defect 3: the WAL and shared-memory files hold record ids with MRNs and consent
// metadata like the database itself. Whatever the umask (022 is the usual default), the folder
// the gateway makes is 0700 and every database file 0600, also after a crash.
class UmaskFor {
 public:
  explicit UmaskFor(mode_t mask) : previous_(::umask(mask)) {}
  ~UmaskFor() { ::umask(previous_); }
  UmaskFor(const UmaskFor&) = delete;
  UmaskFor& operator=(const UmaskFor&) = delete;

 private:
  mode_t previous_;
};

std::string modeOf(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return text;
}

void writeAuditRows(Store& store, int first, int count) {
  for (int i = first; i < first + count; ++i) ASSERT_TRUE(store.appendAudit({test::sampleDecision(i)}));
}

TEST_F(SqliteStoreTest, UnderUmask022TheFolderIs0700AndEveryDatabaseFile0600) {
  UmaskFor umask(022);
  auto store = openSqliteStore({path(), true, 2, gw::test::testMasterKey()});
  ASSERT_TRUE(store) << store.error().describe();
  writeAuditRows(*store.value(), 0, 20);
  ASSERT_TRUE(store.value()->queryAudit({}));  // a pooled reader maps the shared memory too
  EXPECT_EQ(modeOf(dir_ / "data"), "0700");
  for (const char* suffix : {"", "-wal", "-shm"}) EXPECT_EQ(modeOf(path() + suffix), "0600") << suffix;
  EXPECT_EQ(modeOf(path() + "-journal"), "missing") << "WAL mode: no rollback journal";
}

TEST_F(SqliteStoreTest, AfterAWriterIsKilledMidWriteTheFilesAreStill0600) {
  UmaskFor umask(022);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    ::umask(022);
    auto store = openSqliteStore({path(), true, 1, gw::test::testMasterKey()});
    if (!store) ::_exit(2);
    for (int i = 0;; ++i) {  // writes until killed
      if (!store.value()->appendAudit({test::sampleDecision(i)})) ::_exit(3);
      if (i == 50 && ::write(ready[1], "w", 1) != 1) ::_exit(4);
    }
  }
  ::close(ready[1]);
  char signal = 0;
  ASSERT_EQ(::read(ready[0], &signal, 1), 1) << "the child wrote nothing";
  ::close(ready[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  // As the crash left them: the committed rows are in the WAL, which nobody checkpointed.
  ASSERT_GT(fs::file_size(path() + "-wal"), 0u);
  EXPECT_EQ(modeOf(dir_ / "data"), "0700");
  for (const char* suffix : {"", "-wal", "-shm"}) EXPECT_EQ(modeOf(path() + suffix), "0600") << suffix;

  // Reopened (SQLite recovers from the WAL), written to and read: still private.
  auto again = openSqliteStore({path(), true, 2, gw::test::testMasterKey()});
  ASSERT_TRUE(again) << again.error().describe();
  auto rows = again.value()->queryAudit({});
  ASSERT_TRUE(rows);
  EXPECT_GE(rows.value().entries.size(), 51u) << "the rows committed before the crash are there";
  writeAuditRows(*again.value(), 100000, 5);
  EXPECT_EQ(modeOf(dir_ / "data"), "0700");
  for (const char* suffix : {"", "-wal", "-shm"}) EXPECT_EQ(modeOf(path() + suffix), "0600") << suffix;
}

TEST_F(SqliteStoreTest, FilesLeftOpenToOthersAreTightenedAtOpenWithAWarningAndAnOpenFolderIsReported) {
  {
    auto store = openSqliteStore({path(), true, 1, gw::test::testMasterKey()});
    ASSERT_TRUE(store);
    writeAuditRows(*store.value(), 0, 3);
  }
  // As an older gateway left them under umask 022 (a journal too, as after a crash in another
  // journal mode).
  { std::ofstream(path() + "-journal") << ""; }
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    if (fs::exists(path() + suffix)) fs::permissions(path() + suffix, static_cast<fs::perms>(0644));
  }
  fs::permissions(dir_ / "data", static_cast<fs::perms>(0755));
  gw::test::LogCapture log;
  {
    UmaskFor umask(022);
    auto store = openSqliteStore({path(), true, 1, gw::test::testMasterKey()});
    ASSERT_TRUE(store) << store.error().describe();
    writeAuditRows(*store.value(), 10, 3);
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      if (!fs::exists(path() + suffix)) continue;
      EXPECT_EQ(modeOf(path() + suffix), "0600") << suffix;
    }
  }
  EXPECT_EQ(log.find({"database_file_mode_tightened", "file=" + path() + " ", "mode_was=0644", "mode_now=0600"}).size(), 1u);
  EXPECT_EQ(log.find({"database_file_mode_tightened", "file=" + path() + "-journal"}).size(), 1u);
  // A folder that exists is left as it is (it may be shared on purpose), and reported.
  EXPECT_EQ(modeOf(dir_ / "data"), "0755");
  EXPECT_EQ(log.find({"database_folder_open", "mode=0755"}).size(), 1u);
}

TEST_F(SqliteStoreTest, ReportsUnusablePath) {
  auto s = openSqliteStore({"/proc/forbidden/gw.db", true, 1, gw::test::testMasterKey()});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::Storage);
}

TEST_F(SqliteStoreTest, ANewerSchemaIsRefused) {
  ASSERT_TRUE(openSqliteBackend({path(), true, 1, {}}));
  {
    Poco::Data::Session s("SQLite", path());
    s << "INSERT INTO schema_version(version) VALUES(" + std::to_string(kSchemaVersion + 1) + ")", now;
  }
  auto again = openSqliteBackend({path(), true, 1, {}});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::Storage);
  EXPECT_NE(again.error().message.find("this build knows up to"), std::string::npos);
}

// The write transaction takes SQLite's write lock when it begins (BEGIN IMMEDIATE), so what it
// reads stays true until it commits: another connection's write waits for it.
TEST_F(SqliteStoreTest, AWriteTransactionHoldsTheWriteLockFromItsStart) {
  auto backend = openSqliteBackend({path(), true, 1, {}});
  ASSERT_TRUE(backend);
  auto tx = WriteTransaction::begin(*backend.value());
  ASSERT_TRUE(tx);
  Poco::Data::Session other("SQLite", path());
  other << "PRAGMA busy_timeout=0", now;
  EXPECT_THROW((other << "INSERT INTO deployment_secrets(name, value) VALUES('x', 'y')", now), Poco::Exception);
  ASSERT_TRUE(tx.value().commit());
  other << "INSERT INTO deployment_secrets(name, value) VALUES('x', 'y')", now;
}

TEST_F(SqliteStoreTest, ATransactionDroppedWithoutCommitRollsBack) {
  auto backend = openSqliteBackend({path(), true, 1, {}});
  ASSERT_TRUE(backend);
  {
    auto tx = WriteTransaction::begin(*backend.value());
    ASSERT_TRUE(tx);
    ASSERT_TRUE(tx.value()->deploymentSecret("dropped", "v1"));
  }
  {
    auto tx = WriteTransaction::begin(*backend.value());  // the lock was released
    ASSERT_TRUE(tx);
    EXPECT_EQ(tx.value()->deploymentSecret("dropped", "v2").value(), "v2");
    ASSERT_TRUE(tx.value().commit());
    EXPECT_FALSE(tx.value().commit()) << "a transaction commits once";
  }
}

// --- read-only ----------------------------------------------------------------------------------

std::string fileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct FileState {
  std::string bytes;
  timespec mtime{};
  bool operator==(const FileState& o) const {
    return bytes == o.bytes && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

FileState stateOf(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return {fileBytes(path), st.st_mtim};
}

SqliteOptions readOnly(const std::string& path) {
  SqliteOptions options{path, true, 2, {}};
  options.read_only = true;
  return options;
}

// A database with a keyed log of `rows` rows, closed (so SQLite removed its -wal and -shm).
void makeDatabase(const std::string& path, int rows) {
  auto store = openSqliteStore({path, true, 2, gw::test::testMasterKey()});
  ASSERT_TRUE(store) << store.error().describe();
  std::vector<AuditEntry> entries;
  for (int i = 0; i < rows; ++i) entries.push_back(test::sampleDecision(i));
  ASSERT_TRUE(store.value()->appendAudit(entries));
}

TEST_F(SqliteStoreTest, AReadOnlyVerifyLeavesTheFileAsItWasAndMakesNoWalOrShm) {
  makeDatabase(path(), 20);
  ASSERT_FALSE(fs::exists(path() + "-wal"));
  ASSERT_FALSE(fs::exists(path() + "-shm"));
  const auto before = stateOf(path());
  ::usleep(20'000);  // a write would show in the mtime
  {
    auto backend = openSqliteBackend(readOnly(path()));
    ASSERT_TRUE(backend) << backend.error().describe();
    auto log = ReadOnlyAuditLog::open(std::move(backend).value(), gw::test::testMasterKey());
    ASSERT_TRUE(log) << log.error().describe();
    auto report = log.value().verify(std::nullopt);
    ASSERT_TRUE(report) << report.error().describe();
    EXPECT_TRUE(report.value().ok);
    EXPECT_EQ(report.value().rows, 20);
    EXPECT_FALSE(fs::exists(path() + "-wal")) << "immutable: no -wal while open";
    EXPECT_FALSE(fs::exists(path() + "-shm"));
  }
  EXPECT_TRUE(stateOf(path()) == before) << "the bytes or the mtime of the database changed";
  EXPECT_FALSE(fs::exists(path() + "-wal"));
  EXPECT_FALSE(fs::exists(path() + "-shm"));
}

TEST_F(SqliteStoreTest, AReadOnlyOpenReadsRowsStillInTheWalOfARunningGateway) {
  makeDatabase(path(), 5);
  auto running = openSqliteStore({path(), true, 2, gw::test::testMasterKey()});  // holds the WAL open
  ASSERT_TRUE(running);
  ASSERT_TRUE(running.value()->appendAudit({test::sampleDecision(5), test::sampleDecision(6)}));
  ASSERT_TRUE(fs::exists(path() + "-wal"));
  const auto main_file = fileBytes(path());
  auto log = ReadOnlyAuditLog::open(openSqliteBackend(readOnly(path())).value(), gw::test::testMasterKey());
  ASSERT_TRUE(log) << log.error().describe();
  auto report = log.value().verify(std::nullopt);
  ASSERT_TRUE(report) << report.error().describe();
  EXPECT_TRUE(report.value().ok);
  EXPECT_EQ(report.value().rows, 7) << "rows committed to the WAL and not yet checkpointed are read";
  EXPECT_EQ(fileBytes(path()), main_file);
}

TEST_F(SqliteStoreTest, AReadOnlyOpenRefusesADatabaseThatNeedsAMigrationOrIsMissing) {
  makeDatabase(path(), 1);
  {
    Poco::Data::Session s("SQLite", path());
    s << "DELETE FROM schema_version WHERE version = " + std::to_string(kSchemaVersion), now;
  }
  const auto before = fileBytes(path());
  auto old = openSqliteBackend(readOnly(path()));
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().code, ErrorCode::Storage);
  EXPECT_NE(old.error().message.find("needs a migration"), std::string::npos) << old.error().describe();
  EXPECT_NE(old.error().hint.find("without --read-only"), std::string::npos);
  EXPECT_EQ(fileBytes(path()), before) << "no migration was run";

  auto missing = openSqliteBackend(readOnly((dir_ / "none" / "gw.db").string()));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no database file"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "none")) << "no folder is made";

  std::ofstream(dir_ / "text.db") << "not a database";
  EXPECT_FALSE(openSqliteBackend(readOnly((dir_ / "text.db").string())));
}

TEST_F(SqliteStoreTest, AReadOnlyOpenAcceptsPathsWithUriCharacters) {
  const auto odd = (dir_ / "a?b#c%d" / "gw.db").string();
  makeDatabase(odd, 2);
  auto log = ReadOnlyAuditLog::open(openSqliteBackend(readOnly(odd)).value(), gw::test::testMasterKey());
  ASSERT_TRUE(log) << log.error().describe();
  EXPECT_EQ(log.value().verify(std::nullopt).value().rows, 2);
  EXPECT_FALSE(fs::exists(dir_ / "a")) << "the '?' was not read as the start of the URI's query";
}

}  // namespace
}  // namespace gw::store

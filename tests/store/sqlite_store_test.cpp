// What only the SQLite backend promises: the file, its mode and its locking. Everything a Store
// must do on any backend is the store contract (store_contract_*_test.cpp).
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/ids.hpp"
#include "store/audit_chain.hpp"
#include "store/sample_audit_entries.hpp"
#include "store/sqlite_migrations.hpp"
#include "store/sqlite_store.hpp"
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

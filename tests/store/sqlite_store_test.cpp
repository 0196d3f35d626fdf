// What only the SQLite backend promises: the file, its mode and its locking. Everything a Store
// must do on any backend is the store contract (store_contract_*_test.cpp).
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/ids.hpp"
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
  auto store = openSqliteStore({path(), true, 2, test::testMasterKey()});
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
  auto s = openSqliteStore({"/proc/forbidden/gw.db", true, 1, test::testMasterKey()});
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

}  // namespace
}  // namespace gw::store

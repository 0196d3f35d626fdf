#include "app/keys.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/ids.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class KeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-keys-" + ids::randomHex(6));
    fs::create_directories(dir_);
    config_.storage.sqlite_path = dir_ / "gw.db";
    config_.storage.synchronous_full = false;
    config_.privacy.master_key_file = writeKey("master.key");
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path writeKey(const std::string& name, fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
    const auto path = dir_ / name;
    std::ofstream(path) << ids::randomHex(32) << "\n";
    fs::permissions(path, perms, fs::perm_options::replace);
    return path;
  }

  static store::IngestWrite record() {
    store::IngestWrite w;
    w.clinic = "c1";
    w.record_id = "r1";
    w.record_type = "patient";
    w.content_hash = "h1";
    w.payload = R"({"mrn":"A12345"})";
    w.patient_key = "pk";
    w.state = store::RecordState::Mapped;
    w.classes = privacy::DataClass::Sud;
    return w;
  }

  fs::path dir_;
  config::GatewayConfig config_;
};

TEST_F(KeysTest, RotateThenOnlyTheNewKeyOpensTheDatabaseAndTheDataIsIntact) {
  {
    auto store = openConfiguredStore(config_, 2);
    ASSERT_TRUE(store) << store.error().describe();
    ASSERT_TRUE(store.value()->ingest({record()}, SystemTime{}));
  }
  const auto new_key = writeKey("new.key");
  auto rotated = rotateMasterKey(config_, new_key);
  ASSERT_TRUE(rotated) << rotated.error().describe();
  EXPECT_EQ(rotated.value().data_keys, 5);

  auto stale = openConfiguredStore(config_, 2);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::Config);
  EXPECT_THAT(stale.error().message, HasSubstr("does not match"));

  config_.privacy.master_key_file = new_key;
  auto store = openConfiguredStore(config_, 2);
  ASSERT_TRUE(store) << store.error().describe();
  auto payload = store.value()->recordPayload("c1", "r1", 1);
  ASSERT_TRUE(payload && payload.value());
  EXPECT_EQ(*payload.value(), R"({"mrn":"A12345"})");
  // The rotation is in the audit log, with key ids and never a key.
  store::AuditQuery q;
  q.kind = store::AuditKind::KeyRotation;
  auto page = store.value()->queryAudit(q);
  ASSERT_TRUE(page);
  ASSERT_EQ(page.value().entries.size(), 1u);
  EXPECT_THAT(page.value().entries[0].detail, HasSubstr(rotated.value().new_master_id));
}

TEST_F(KeysTest, RotateChecksTheNewKeyFileBeforeTouchingTheDatabase) {
  auto shared = rotateMasterKey(config_, writeKey("shared.key",
                                                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read));
  ASSERT_FALSE(shared);
  EXPECT_EQ(shared.error().code, ErrorCode::Config);
  EXPECT_THAT(shared.error().where, HasSubstr("--new-master-key-file"));
  EXPECT_THAT(shared.error().hint, HasSubstr("chmod 600"));
  EXPECT_FALSE(fs::exists(dir_ / "gw.db")) << "nothing was created";

  auto missing = rotateMasterKey(config_, dir_ / "nope.key");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("cannot read the key file"));
}

TEST(Retention, ComesFromThePrivacySection) {
  config::Privacy privacy;
  privacy.retention_days = {30, 2555, 0};
  const auto r = retentionOf(privacy);
  EXPECT_EQ(r.daysFor(privacy::DataClass::General), 30);
  EXPECT_EQ(r.daysFor(privacy::DataClass::Sud), 2555);
  EXPECT_EQ(r.daysFor(privacy::DataClass::Mh), 0);
}

}  // namespace
}  // namespace gw::app

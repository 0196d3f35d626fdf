// Publishing the audit chain's head: only when it moved, resumed from the file after a restart,
// once more when the runtime stops; an unusable anchor file stops the gateway from starting.
#include "app/audit_anchors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "app/runtime.hpp"
#include "common/ids.hpp"
#include "store/sample_audit_entries.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_files.hpp"
#include "support/test_keys.hpp"
#include "support/test_pki.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FixedClock final : public Clock {
 public:
  SystemTime now() const override { return fromUnixMillis(1'800'000'000'000); }
};

class AnchorPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-anchors-" + ids::randomHex(6));
    fs::create_directories(dir_ / "db");
    fs::create_directories(dir_ / "anchors");
    auto store = store::openSqliteStore({(dir_ / "db" / "gw.db").string(), false, 2, test::testMasterKey()});
    ASSERT_TRUE(store) << store.error().describe();
    store_ = std::move(store).value();
    config_.file = dir_ / "anchors" / "audit-anchors.log";
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  std::vector<std::string> lines() {
    std::vector<std::string> out;
    std::ifstream in(config_.file);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

  fs::path dir_;
  FixedClock clock_;
  config::AuditAnchor config_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(AnchorPublisherTest, PublishesOnlyWhenTheHeadMovedAndResumesFromTheFileAfterARestart) {
  auto publisher = AnchorPublisher::create(config_, *store_, clock_);
  ASSERT_TRUE(publisher) << publisher.error().describe();
  EXPECT_TRUE(publisher.value()->publishIfMoved().value()) << "the empty log's head, once";
  EXPECT_FALSE(publisher.value()->publishIfMoved().value());
  ASSERT_TRUE(store_->appendAudit({store::test::sampleDecision(0), store::test::sampleDecision(1)}));
  EXPECT_TRUE(publisher.value()->publishIfMoved().value());
  EXPECT_FALSE(publisher.value()->publishIfMoved().value());
  ASSERT_EQ(lines().size(), 2u);
  const auto head = store_->auditHead().value();
  auto last = store_->anchorSealer().read(lines().back());
  ASSERT_TRUE(last) << lines().back();
  EXPECT_EQ(last->seq, head.seq);
  EXPECT_EQ(last->hash, head.hash);
  EXPECT_EQ(last->at_ms, 1'800'000'000'000);

  publisher.value().reset();
  auto restarted = AnchorPublisher::create(config_, *store_, clock_);
  ASSERT_TRUE(restarted);
  EXPECT_FALSE(restarted.value()->publishIfMoved().value()) << "the file already has this head";
  EXPECT_EQ(lines().size(), 2u);
}

TEST_F(AnchorPublisherTest, AnUnusableFileIsRefusedNamingTheSetting) {
  std::ofstream(config_.file) << "";
  fs::permissions(config_.file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_write,
                  fs::perm_options::replace);
  auto shared = AnchorPublisher::create(config_, *store_, clock_);
  ASSERT_FALSE(shared);
  EXPECT_EQ(shared.error().code, ErrorCode::Config);
  EXPECT_THAT(shared.error().where, HasSubstr("audit.anchor.file"));
  config_.file = dir_ / "missing-folder" / "a.log";
  EXPECT_FALSE(AnchorPublisher::create(config_, *store_, clock_));
}

// The runtime publishes on the jobs thread and once more when it stops, after the last writer.
TEST(RuntimeAnchors, TheHeadIsPublishedWhenTheRuntimeStops) {
  const fs::path dir = fs::temp_directory_path() / ("gw-runtime-anchors-" + ids::randomHex(6));
  fs::create_directories(dir / "db");
  fs::create_directories(dir / "anchors");
  const std::string pki = test::devPkiDir();
  const std::string repo = GW_REPO_DIR;
  const fs::path anchor_file = dir / "anchors" / "a.log";
  auto loaded = config::loadText(R"({
      "server": {"port": 0, "tls": {"cert_file": ")" +
                                     pki + R"(/server.crt", "key_file": ")" + pki +
                                     R"(/server.key", "client_cert": "none"}},
      "auth": {"tokens": []},
      "storage": {"sqlite_path": ")" +
                                     (dir / "db" / "gw.db").string() + R"("},
      "mapping": {"format_dir": ")" + repo +
                                     R"(/mappers/clinic-v1", "profiles_dir": ")" + repo +
                                     R"(/fhir-profiles"},
      "clinics": [], "partners": [],
      "privacy": {"master_key_env": "GW_ANCHOR_TEST_UNUSED"},
      "audit": {"anchor": {"file": ")" +
                                     anchor_file.string() + R"(", "interval_seconds": 3600}}
    })",
                                 dir, "anchors-test.json");
  ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors.front().describe());
  auto store = store::openSqliteStore({(dir / "db" / "gw.db").string(), false, 8, test::testMasterKey()});
  ASSERT_TRUE(store);
  store::Store* s = store.value().get();
  SystemClock clock;
  {
    Runtime runtime(std::move(*loaded.config), clock);
    ASSERT_TRUE(runtime.open(std::move(store).value()));
    runtime.start();
    ASSERT_TRUE(s->appendAudit({store::test::sampleDecision(0), store::test::sampleDecision(1)}));
    runtime.stop();  // before the first periodic publish (5 s after start)
    const auto head = s->auditHead().value();
    std::ifstream in(anchor_file);
    std::string line, last;
    while (std::getline(in, line)) last = line;
    auto anchor = s->anchorSealer().read(last);
    ASSERT_TRUE(anchor) << last;
    EXPECT_EQ(anchor->seq, head.seq);
    EXPECT_EQ(anchor->hash, head.hash);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gw::app

// Published anchors in a file: the append-only sink, reading it back, and verifying a store's
// log against the last authentic line. A log rewritten without the master key (rows altered and
// the chain recomputed with plain SHA-256) and a truncated log are caught by the anchor; a line
// altered in the file is caught by its MAC.
#include "audit/anchor_file.hpp"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/ids.hpp"
#include "store/sample_audit_entries.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_files.hpp"
#include "support/test_keys.hpp"

namespace gw::audit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace Poco::Data::Keywords;

constexpr std::int64_t kAt = 1'800'000'000'000;

class AnchorFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-anchor-" + ids::randomHex(6));
    fs::create_directories(dir_ / "db");
    auto store = store::openSqliteStore({db(), true, 2, test::testMasterKey()});
    ASSERT_TRUE(store) << store.error().describe();
    store_ = std::move(store).value();
    std::vector<store::AuditEntry> entries;
    for (int i = 0; i < 8; ++i) entries.push_back(store::test::sampleDecision(i));
    ASSERT_TRUE(store_->appendAudit(entries));
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::string db() const { return (dir_ / "db" / "gw.db").string(); }
  fs::path file() const { return dir_ / "anchors" / "audit-anchors.log"; }

  // Publishes the current head, as the gateway's publisher does.
  store::ChainTail publish() {
    auto head = store_->auditHead().value();
    auto sink = AnchorFileSink::open(file());
    EXPECT_TRUE(sink) << sink.error().describe();
    EXPECT_TRUE(sink.value().append(store_->anchorSealer().line({head.seq, head.hash, kAt + head.seq})));
    return head;
  }

  Result<store::VerifyReport> check(AnchorSource source = {}) {
    if (source.file.empty() && !source.given) source.file = file();
    return verifyWithAnchors([this](const auto& anchor) { return store_->verifyAudit(anchor); }, store_->anchorSealer(),
                             source);
  }

  void sql(const std::string& text) {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session s("SQLite", db());
    s << text, now;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(AnchorFileTest, TheSinkAppendsLinesToAPrivateFileAndRefusesAFileOthersMayWrite) {
  fs::create_directories(file().parent_path());
  ::umask(022);
  publish();
  publish();
  EXPECT_EQ(fs::status(file()).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  const std::string text = test::readFile(file().string());
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  EXPECT_EQ(text.back(), '\n');

  fs::permissions(file(), fs::perms::group_write, fs::perm_options::add);
  auto shared = AnchorFileSink::open(file());
  ASSERT_FALSE(shared);
  EXPECT_THAT(shared.error().message, HasSubstr("may be written by other users"));
  EXPECT_THAT(shared.error().hint, HasSubstr("chattr +a"));
  EXPECT_FALSE(AnchorFileSink::open(dir_));
  fs::create_symlink(file(), dir_ / "link.log");
  EXPECT_FALSE(AnchorFileSink::open(dir_ / "link.log")) << "a symlink could point the gateway anywhere";
  auto missing = AnchorFileSink::open(dir_ / "no-such-folder" / "a.log");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().where, (dir_ / "no-such-folder" / "a.log").string());
}

TEST_F(AnchorFileTest, TheLastAuthenticLineIsTheAnchorAndTheLogMatchesIt) {
  fs::create_directories(file().parent_path());
  publish();
  ASSERT_TRUE(store_->appendAudit({store::test::sampleDecision(8)}));
  const auto head = publish();
  auto r = check();
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r.value().ok) << (r.value().breaks.empty() ? "" : r.value().breaks[0].message);
  const auto& a = r.value().anchor;
  EXPECT_EQ(a.status, store::AnchorStatus::Ok);
  EXPECT_EQ(a.source, "file " + file().string());
  ASSERT_TRUE(a.anchor);
  EXPECT_EQ(a.anchor->seq, head.seq);
  EXPECT_EQ(a.published_at_ms, kAt + head.seq);
  EXPECT_EQ(a.lines, 2);
  EXPECT_EQ(a.forged_lines, 0);
}

TEST_F(AnchorFileTest, ATruncatedLogIsCaughtByThePublishedAnchor) {
  fs::create_directories(file().parent_path());
  publish();
  sql("DELETE FROM audit_log WHERE seq >= 6");
  EXPECT_TRUE(store_->verifyAudit(std::nullopt).value().ok) << "a cut tail leaves a valid chain";
  auto r = check();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r.value().ok);
  EXPECT_EQ(r.value().anchor.status, store::AnchorStatus::Truncated);
  EXPECT_EQ(r.value().breaks[0].problem, store::ChainProblem::Truncated);
}

TEST_F(AnchorFileTest, ALogRewrittenWithoutTheMasterKeyIsCaughtByThePublishedAnchor) {
  fs::create_directories(file().parent_path());
  const auto head = publish();
  // Every row recomputed with plain SHA-256 after row 3 was altered.
  store::VerifyReport before = store_->verifyAudit(std::nullopt).value();
  ASSERT_TRUE(before.ok);
  Poco::Data::SQLite::Connector::registerConnector();
  Poco::Data::Session s("SQLite", db());
  std::string prev(store::kGenesisHash);
  for (std::int64_t seq = 1; seq <= head.seq; ++seq) {
    store::AuditEntry e = store::test::sampleDecision(static_cast<int>(seq - 1));
    e.seq = seq;
    if (seq == 3) e.outcome = store::AuditOutcome::Permit;
    e.prev_hash = prev;
    e.hash = store::entryHash(e);
    prev = e.hash;
    s << "UPDATE audit_log SET outcome='" + std::string(store::auditOutcomeName(e.outcome)) + "', prev_hash='" +
             e.prev_hash + "', hash='" + e.hash + "' WHERE seq=" + std::to_string(seq),
        now;
  }
  auto r = check();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r.value().ok);
  EXPECT_EQ(r.value().anchor.status, store::AnchorStatus::Rewritten);
  EXPECT_TRUE(std::any_of(r.value().breaks.begin(), r.value().breaks.end(), [&](const store::ChainBreak& b) {
    return b.problem == store::ChainProblem::AnchorMismatch && b.seq == head.seq;
  }));
}

TEST_F(AnchorFileTest, AnAlteredOrForeignLineIsReportedAndTheLastAuthenticOneIsUsed) {
  fs::create_directories(file().parent_path());
  const auto first = publish();
  ASSERT_TRUE(store_->appendAudit({store::test::sampleDecision(8)}));
  publish();
  // Line 2 altered to name an earlier head (as if the tail after it had never existed)...
  std::string text = test::readFile(file().string());
  const auto second = text.find('\n') + 1;
  const auto pos = text.find("\"seq\":9", second);
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 7, "\"seq\":8");
  // ... and a line sealed by another database appended.
  auto other = store::openSqliteStore({(dir_ / "other.db").string(), true, 1, test::testMasterKey()});
  ASSERT_TRUE(other);
  text += other.value()->anchorSealer().line({9, first.hash, kAt}) + "\n";
  std::ofstream(file(), std::ios::trunc) << text;

  auto r = check();
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_FALSE(r.value().ok);
  EXPECT_EQ(r.value().anchor.forged_lines, 2);
  EXPECT_EQ(r.value().anchor.lines, 3);
  ASSERT_TRUE(r.value().anchor.anchor);
  EXPECT_EQ(r.value().anchor.anchor->seq, first.seq) << "the last line that checks";
  EXPECT_EQ(r.value().anchor.status, store::AnchorStatus::Ok);
  ASSERT_GE(r.value().breaks.size(), 2u);
  EXPECT_EQ(r.value().breaks[0].problem, store::ChainProblem::AnchorForged);
  EXPECT_THAT(r.value().breaks[0].message, HasSubstr("line 2 of"));
  EXPECT_THAT(r.value().breaks[1].message, HasSubstr("line 3 of"));
}

TEST_F(AnchorFileTest, AGivenAnchorOverridesTheFileAndAMissingFileIsNothingPublishedUnlessRequired) {
  auto none = check();
  ASSERT_TRUE(none) << none.error().describe();
  EXPECT_TRUE(none.value().ok);
  EXPECT_EQ(none.value().anchor.status, store::AnchorStatus::None);
  EXPECT_THAT(none.value().anchor.source, HasSubstr("none published yet"));

  auto required = check({std::nullopt, file(), true});
  ASSERT_FALSE(required);
  EXPECT_EQ(required.error().code, ErrorCode::NotFound);
  EXPECT_EQ(required.error().where, file().string());

  const auto head = store_->auditHead().value();
  auto given = check({store::ChainAnchor{head.seq + 5, head.hash}, file(), true});
  ASSERT_TRUE(given);
  EXPECT_EQ(given.value().anchor.source, "argument");
  EXPECT_EQ(given.value().anchor.status, store::AnchorStatus::Truncated);
}

}  // namespace
}  // namespace gw::audit

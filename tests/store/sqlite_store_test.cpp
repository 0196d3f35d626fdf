#include <gtest/gtest.h>

#include <filesystem>

#include "common/ids.hpp"
#include "store/store.hpp"
#include "support/test_keys.hpp"

namespace gw::store {
namespace {

namespace fs = std::filesystem;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-store-" + ids::randomHex(6));
    fs::create_directories(dir_);
    store_ = open();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::unique_ptr<Store> open() {
    auto s = openSqliteStore({(dir_ / "gw.db").string(), true, 2, test::testMasterKey()});
    EXPECT_TRUE(s) << (s ? "" : s.error().describe());
    return s ? std::move(s).value() : nullptr;
  }

  static IngestWrite write(std::string record_id, std::string hash, std::string patient, int outbox_items = 1) {
    IngestWrite w;
    w.clinic = "c1";
    w.record_id = std::move(record_id);
    w.record_type = "mat_prescription";
    w.content_hash = std::move(hash);
    w.payload = "{}";
    w.patient_key = std::move(patient);
    w.state = RecordState::Mapped;
    w.resources.push_back({"MedicationRequest", ids::randomHex(8), "https://ids/rx", "1", "{}"});
    for (int i = 0; i < outbox_items; ++i) w.outbox.push_back({"p1", "{\"resourceType\":\"Bundle\"}", 2});
    return w;
  }

  SystemTime t(int seconds) { return fromUnixMillis(1'800'000'000'000 + seconds * 1000LL); }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, SameContentIsUnchangedNewContentIsNewVersion) {
  auto first = store_->ingest({write("r1", "h1", "pa")}, t(0));
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value()[0].disposition, IngestDisposition::Created);
  auto again = store_->ingest({write("r1", "h1", "pa")}, t(1));
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value()[0].disposition, IngestDisposition::Unchanged);
  auto changed = store_->ingest({write("r1", "h2", "pa")}, t(2));
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed.value()[0].disposition, IngestDisposition::NewVersion);
  EXPECT_EQ(changed.value()[0].version, 2);

  auto status = store_->recordStatus("c1", "r1");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->version, 2);
  ASSERT_EQ(status.value()->deliveries.size(), 2u);
  // The unsent first version is superseded by the second: only one item is ever sent.
  EXPECT_EQ(status.value()->deliveries[0].state, OutboxState::Superseded);
  EXPECT_EQ(status.value()->deliveries[1].state, OutboxState::Queued);
  EXPECT_EQ(status.value()->resources.size(), 1u);
}

TEST_F(SqliteStoreTest, DuplicateWithinOneBatchIsUnchanged) {
  auto result = store_->ingest({write("r1", "h1", "pa"), write("r1", "h1", "pa")}, t(0));
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value()[1].disposition, IngestDisposition::Unchanged);
  auto counts = store_->outboxCounts("p1");
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts.value().queued, 1);
}

TEST_F(SqliteStoreTest, DueItemsKeepPerPatientOrder) {
  ASSERT_TRUE(store_->ingest({write("a1", "h", "pa"), write("a2", "h", "pa"), write("b1", "h", "pb")}, t(0)));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value().size(), 2u);  // a1 and b1; a2 waits for a1
  EXPECT_EQ(due.value()[0].record_id, "a1");
  EXPECT_EQ(due.value()[1].record_id, "b1");

  // a1 retrying later: a2 still waits (order beats throughput for one patient).
  ASSERT_TRUE(store_->markRetry(due.value()[0].id, 1, t(60), "HTTP 503 from partner", t(0)));
  due = store_->dueItems("p1", t(1), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value().size(), 1u);
  EXPECT_EQ(due.value()[0].record_id, "b1");
  auto next = store_->nextDueTime("p1");
  ASSERT_TRUE(next && next.value());
  EXPECT_EQ(*next.value(), t(0));  // b1 is due now
  ASSERT_TRUE(store_->markRetry(due.value()[0].id, 1, t(30), "HTTP 503 from partner", t(1)));
  next = store_->nextDueTime("p1");
  ASSERT_TRUE(next && next.value());
  // a2 (queued at t0) waits behind a1: the next due time is b1's retry, not a2's queue time.
  EXPECT_EQ(*next.value(), t(30));

  // After the retry time, a1 comes back; once delivered, a2 follows.
  due = store_->dueItems("p1", t(61), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value()[0].record_id, "a1");
  EXPECT_EQ(due.value()[0].attempts, 1);
  ASSERT_TRUE(store_->markDelivered(due.value()[0].id, {{"201 Created", "MedicationRequest/9/_history/1", "W/\"1\""}}, t(61)));
  due = store_->dueItems("p1", t(61), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value().size(), 2u);
  EXPECT_EQ(due.value()[0].record_id, "a2");

  auto status = store_->recordStatus("c1", "a1");
  ASSERT_TRUE(status && status.value());
  ASSERT_EQ(status.value()->deliveries.size(), 1u);
  const auto& d = status.value()->deliveries[0];
  EXPECT_EQ(d.state, OutboxState::Delivered);
  EXPECT_EQ(d.attempts, 2);
  ASSERT_EQ(d.entries.size(), 1u);
  EXPECT_EQ(d.entries[0].location, "MedicationRequest/9/_history/1");
}

TEST_F(SqliteStoreTest, DeadItemsKeepOutcomeAndReleaseThePatientQueue) {
  ASSERT_TRUE(store_->ingest({write("a1", "h", "pa"), write("a2", "h", "pa")}, t(0)));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  ASSERT_TRUE(store_->markDead(due.value()[0].id, 1, "HTTP 400 from partner",
                               R"({"resourceType":"OperationOutcome"})", t(0)));
  auto status = store_->recordStatus("c1", "a1");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->deliveries[0].state, OutboxState::Dead);
  EXPECT_EQ(status.value()->deliveries[0].outcome, R"({"resourceType":"OperationOutcome"})");
  due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  EXPECT_EQ(due.value()[0].record_id, "a2");
}

TEST_F(SqliteStoreTest, SurvivesReopen) {
  ASSERT_TRUE(store_->ingest({write("r1", "h1", "pa")}, t(0)));
  store_.reset();
  store_ = open();
  ASSERT_TRUE(store_);
  auto counts = store_->outboxCounts("p1");
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts.value().queued, 1);
  auto again = store_->ingest({write("r1", "h1", "pa")}, t(1));
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value()[0].disposition, IngestDisposition::Unchanged);
}

TEST_F(SqliteStoreTest, UnknownRecordHasNoStatus) {
  auto status = store_->recordStatus("c1", "nope");
  ASSERT_TRUE(status);
  EXPECT_FALSE(status.value().has_value());
}

TEST_F(SqliteStoreTest, DatabaseFileIsPrivate) {
  const auto perms = fs::status(dir_ / "gw.db").permissions();
  EXPECT_EQ(perms & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
}

TEST(SqliteStoreOpen, ReportsUnusablePath) {
  auto s = openSqliteStore({"/proc/forbidden/gw.db", true, 1, test::testMasterKey()});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::Storage);
}

}  // namespace
}  // namespace gw::store

namespace gw::store {
namespace {

TEST_F(SqliteStoreTest, AnItemSupersededWhileInFlightStaysSuperseded) {
  ASSERT_TRUE(store_->ingest({write("r1", "h1", "pa")}, t(0)));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  // While the worker is sending version 1, version 2 arrives...
  ASSERT_TRUE(store_->ingest({write("r1", "h2", "pa")}, t(1)));
  // ...and the partner answers 503 for version 1: it must not come back as retrying.
  ASSERT_TRUE(store_->markRetry(due.value()[0].id, 1, t(5), "HTTP 503", t(2)));
  auto status = store_->recordStatus("c1", "r1");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->deliveries[0].state, OutboxState::Superseded);
  due = store_->dueItems("p1", t(10), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  EXPECT_EQ(due.value()[0].record_version, 2);
}

}  // namespace
}  // namespace gw::store

namespace gw::store {
namespace {

TEST_F(SqliteStoreTest, DeploymentSecretIsMadeOnceAndKept) {
  auto first = store_->deploymentSecret("record-key");
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value().size(), 64u);
  EXPECT_EQ(store_->deploymentSecret("record-key").value(), first.value());
  EXPECT_NE(store_->deploymentSecret("other").value(), first.value());
  store_.reset();
  store_ = open();
  EXPECT_EQ(store_->deploymentSecret("record-key").value(), first.value());
}

}  // namespace
}  // namespace gw::store

namespace gw::store {
namespace {

TEST_F(SqliteStoreTest, ARecordKeptInvalidIsProcessedAgainWhenResentAfterAFix) {
  auto invalid = write("r1", "h1", "pa", 0);
  invalid.state = RecordState::Invalid;
  invalid.resources.clear();
  ASSERT_TRUE(store_->ingest({invalid}, t(0)));
  // Resent unchanged while still invalid: nothing to do.
  EXPECT_EQ(store_->ingest({invalid}, t(1)).value()[0].disposition, IngestDisposition::Unchanged);
  // The mapper was fixed: the same content now maps; it must not be answered "unchanged".
  auto fixed = write("r1", "h1", "pa");
  auto outcome = store_->ingest({fixed}, t(2));
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome.value()[0].disposition, IngestDisposition::NewVersion);
  EXPECT_EQ(store_->outboxCounts("p1").value().queued, 1);
}

}  // namespace
}  // namespace gw::store

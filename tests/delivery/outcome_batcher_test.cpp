#include "delivery/outcome_batcher.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "store/faulty_backend.hpp"
#include "store/record_store.hpp"
#include "store/sample_audit_entries.hpp"
#include "store/sqlite_store.hpp"
#include "support/scratch_dir.hpp"
#include "support/test_keys.hpp"

namespace gw::delivery {
namespace {

using store::OutboxOutcome;
using store::OutboxState;

SystemTime t(int second) { return fromUnixMillis(1'800'000'000'000 + second * 1000LL); }

class OutcomeBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto backend = store::openSqliteBackend({(dir_.path() / "gw.db").string(), false, 12, {}});
    ASSERT_TRUE(backend);
    auto opened = store::openStore(std::make_unique<store::test::FaultyBackend>(std::move(backend).value(), faults_),
                                   test::testMasterKey());
    ASSERT_TRUE(opened);
    store_ = std::move(opened).value();
    std::vector<store::IngestWrite> writes;
    for (int i = 0; i < kItems; ++i) {
      store::IngestWrite w;
      w.clinic = "c1";
      w.record_id = "r" + std::to_string(i);
      w.record_type = "mat_prescription";
      w.content_hash = "h";
      w.payload = "{}";
      w.patient_key = "pat-" + std::to_string(i);
      w.state = store::RecordState::Mapped;
      w.classes = privacy::DataClass::Sud;
      w.resources.push_back({"MedicationRequest", "m" + std::to_string(i), "https://ids/rx", "1", "{}", w.classes});
      w.outbox.push_back({"p1", R"({"resourceType":"Bundle"})", 1, w.classes, ""});
      writes.push_back(std::move(w));
    }
    ASSERT_TRUE(store_->ingest(std::move(writes), t(0)));
    auto due = store_->dueItems("p1", t(0), kItems);
    ASSERT_TRUE(due && due.value().size() == kItems);
    for (const auto& item : due.value()) items_.push_back(item.id);
  }

  OutboxOutcome delivered(int i) {
    return OutboxOutcome::delivered(items_[i], {{"201 Created", "MedicationRequest/" + std::to_string(i), ""}}, t(1),
                                    {store::test::sampleDecision(i, store::AuditOutcome::Permit)});
  }

  // Holds the first commit until `followers` callers queued behind it: what a slow fsync does
  // while the other senders' answers arrive.
  void holdFirstCommitFor(OutcomeBatcher& batcher, std::size_t followers) {
    faults_->before_write = [this, &batcher, followers,
                             first = std::make_shared<std::atomic<bool>>(true)](std::string_view name) {
      if (name != "commit" || !first->exchange(false)) return;
      holding_ = true;
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (batcher.queued() < followers && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    };
  }

  std::vector<Status> recordConcurrently(OutcomeBatcher& batcher, std::vector<OutboxOutcome> outcomes) {
    std::vector<Status> results(outcomes.size(), ok());
    std::vector<std::thread> senders;
    // The first sender's commit is running before the others start, so they queue behind it.
    senders.emplace_back([&] { results[0] = batcher.record(std::move(outcomes[0])); });
    while (!holding_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (std::size_t i = 1; i < outcomes.size(); ++i) {
      senders.emplace_back([&, i] { results[i] = batcher.record(std::move(outcomes[i])); });
    }
    for (auto& s : senders) s.join();
    return results;
  }

  static constexpr int kItems = 8;
  test::ScratchDir dir_;
  std::shared_ptr<store::test::Faults> faults_ = std::make_shared<store::test::Faults>();
  std::unique_ptr<store::Store> store_;
  std::vector<std::int64_t> items_;
  std::atomic<bool> holding_ = false;  // the first commit is being held
};

TEST_F(OutcomeBatcherTest, OutcomesArrivingDuringACommitShareTheNext) {
  OutcomeBatcher batcher(*store_);
  holdFirstCommitFor(batcher, kItems - 1);
  std::vector<OutboxOutcome> outcomes;
  for (int i = 0; i < kItems; ++i) outcomes.push_back(delivered(i));
  for (const auto& st : recordConcurrently(batcher, std::move(outcomes))) EXPECT_TRUE(st) << st.error().describe();

  EXPECT_EQ(batcher.outcomes(), static_cast<std::uint64_t>(kItems));
  EXPECT_EQ(batcher.commits(), 2u);  // the first alone, the seven that waited together
  EXPECT_EQ(store_->outboxCounts("p1").value().delivered, kItems);
  EXPECT_TRUE(store_->verifyAudit(std::nullopt).value().ok);
}

// One outcome that cannot be recorded fails its own caller only: the group is recorded again
// one by one.
TEST_F(OutcomeBatcherTest, AnOutcomeThatFailsDoesNotFailTheOthersOfItsGroup) {
  OutcomeBatcher batcher(*store_);
  holdFirstCommitFor(batcher, kItems - 1);
  std::vector<OutboxOutcome> outcomes;
  for (int i = 0; i < kItems; ++i) outcomes.push_back(delivered(i));
  outcomes[5].audit[0].reason = "line\nbreak";  // the log refuses it
  const auto results = recordConcurrently(batcher, std::move(outcomes));

  for (int i = 0; i < kItems; ++i) EXPECT_EQ(static_cast<bool>(results[i]), i != 5) << i;
  EXPECT_EQ(store_->outboxCounts("p1").value().delivered, kItems - 1);
  EXPECT_EQ(store_->outboxCounts("p1").value().queued, 1);
  EXPECT_TRUE(store_->verifyAudit(std::nullopt).value().ok);
}

TEST_F(OutcomeBatcherTest, AloneAnOutcomeIsItsOwnCommit) {
  OutcomeBatcher batcher(*store_);
  ASSERT_TRUE(batcher.record(delivered(0)));
  ASSERT_TRUE(batcher.record(OutboxOutcome::retry(items_[1], 1, t(60), "HTTP 503", t(1))));
  EXPECT_EQ(batcher.commits(), 2u);
  EXPECT_EQ(store_->recordStatus("c1", "r1").value()->deliveries[0].state, OutboxState::Retrying);
}

}  // namespace
}  // namespace gw::delivery

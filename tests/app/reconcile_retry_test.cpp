// A reconciliation never stays failed (issue 10, point 4): a store error while a consent's
// reconciliation runs is retried with backoff on the jobs thread, shown meanwhile in the
// runtime's reconcile health (what /readyz answers), and completes: the held record is queued
// and the consent marked reconciled. Real parts: the runtime, its jobs thread and a real SQLite
// file behind a backend that fails one write primitive when told.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include "app/runtime.hpp"
#include "app/runtime_test_config.hpp"
#include "common/ids.hpp"
#include "store/faulty_backend.hpp"
#include "store/record_store.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_keys.hpp"
#include "support/test_pki.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char* kPrescription = R"({"record_id":"c1:rx:R1","record_type":"mat_prescription","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":"R100"},
 "prescription":{"id":"R1","medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},
   "dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","quantity":14,
   "days_supply":14,"refills":0,"status":"active","written_on":"2026-11-20",
   "prescriber":{"npi":"1234567893","name":"Dr. Lee"},"diagnosis":{"system":"icd10","code":"F11.20"}}})";

std::string day(int offset) {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + std::chrono::hours(24 * offset));
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::string consent() {
  return R"({"record_id":"c1:cn:R1","record_type":"consent","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T08:55:00-05:00","patient":{"mrn":"R100"},
 "consent":{"id":"R1","recipient":"st-mary","purposes":["TREAT"],"categories":["general","sud"],
   "effective":{"start":")" +
         day(-3) + R"(","end":")" + day(365) + R"("},"signed_on":")" + day(-3) +
         R"(","signed_by":"patient","status":"active"}})";
}

class ReconcileRetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-reconcile-" + ids::randomHex(6));
    fs::create_directories(dir_);
    // The partner listens nowhere: its items wait; what matters here is that they are queued.
    const std::string text = test::runtimeTestConfig({.database = dir_ / "gateway.db"});
    auto loaded = config::loadText(text, dir_, "reconcile-test.json");
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors.front().describe());
    faults_ = std::make_shared<store::test::Faults>();
    auto backend = store::openSqliteBackend({(dir_ / "gateway.db").string(), true, 8, {}});
    ASSERT_TRUE(backend) << backend.error().describe();
    auto store = store::openStore(std::make_unique<store::test::FaultyBackend>(std::move(backend).value(), faults_),
                                  test::testMasterKey());
    ASSERT_TRUE(store) << store.error().describe();
    runtime_ = std::make_unique<Runtime>(std::move(*loaded.config), clock_);
    ASSERT_TRUE(runtime_->open(std::move(store).value()));
    runtime_->start();
  }
  void TearDown() override {
    if (runtime_) runtime_->stop();
    runtime_.reset();
    fs::remove_all(dir_);
  }

  ingest::BatchResult ingest(const std::string& body) {
    std::promise<ingest::BatchResult> done;
    runtime_->current()->ingest->ingest({body, "application/json", ""}, {"clinic-c1", {"c1"}},
                                        [&](ingest::BatchResult r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }
  std::size_t deliveries() {
    auto status = runtime_->store().recordStatus("c1", "c1:rx:R1");
    return status && status.value() ? status.value()->deliveries.size() : 0;
  }
  bool consentReconciled() {
    auto consents = runtime_->store().consents();
    return consents && consents.value().size() == 1 && consents.value()[0].reconciled;
  }
  template <class Condition>
  static bool eventually(Condition condition, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  fs::path dir_;
  SystemClock clock_;
  std::shared_ptr<store::test::Faults> faults_;
  std::atomic<bool> keep_failing_{true};
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(ReconcileRetryTest, AReconciliationThatFailsOnAStoreErrorIsRetriedAndCompletes) {
  auto held = ingest(kPrescription);
  ASSERT_EQ(held.accepted(), 1u);
  EXPECT_EQ(deliveries(), 0u) << "no consent yet: the record is held";
  EXPECT_EQ(runtime_->reconcileHealth().failing, 0u);

  // The reconciliation's enqueue fails once (a full disk, a locked database).
  faults_->arm("insertOutboxItem");
  auto consented = ingest(consent());
  ASSERT_EQ(consented.accepted(), 1u);
  ASSERT_TRUE(eventually([&] { return faults_->failed == 1; }, 5s)) << "the reconciliation ran and failed";

  // Visible while it waits for its retry; nothing queued, the consent not marked.
  ASSERT_TRUE(eventually([&] { return runtime_->reconcileHealth().failing == 1; }, 2s));
  const auto health = runtime_->reconcileHealth();
  EXPECT_EQ(health.most_attempts, 1);
  EXPECT_FALSE(health.stuck());
  EXPECT_GT(health.failing_since.time_since_epoch().count(), 0);
  EXPECT_EQ(deliveries(), 0u);
  EXPECT_FALSE(consentReconciled());

  // Retried with backoff (about a second), without a restart: it completes.
  EXPECT_TRUE(eventually([&] { return deliveries() == 1 && consentReconciled(); }, 5s))
      << "deliveries " << deliveries() << ", reconciled " << consentReconciled();
  EXPECT_EQ(runtime_->reconcileHealth().failing, 0u);
  EXPECT_EQ(faults_->failed, 1);
}

TEST_F(ReconcileRetryTest, AReconciliationThatKeepsFailingIsReportedStuck) {
  ASSERT_EQ(ingest(kPrescription).accepted(), 1u);
  // Every enqueue fails until the test stops it.
  faults_->before_write = [this](std::string_view primitive) {
    if (primitive == "insertOutboxItem" && faults_->primitive.empty() && keep_failing_) faults_->arm("insertOutboxItem");
  };
  faults_->arm("insertOutboxItem");
  ASSERT_EQ(ingest(consent()).accepted(), 1u);
  // 1 s + 2 s (with jitter, at least half of each) between the first three attempts.
  ASSERT_TRUE(eventually([&] { return runtime_->reconcileHealth().stuck(); }, 8s))
      << "attempts " << runtime_->reconcileHealth().most_attempts;
  EXPECT_EQ(runtime_->reconcileHealth().failing, 1u);
  keep_failing_ = false;
  EXPECT_TRUE(eventually([&] { return deliveries() == 1 && consentReconciled(); }, 10s));
  EXPECT_EQ(runtime_->reconcileHealth().failing, 0u);
}

}  // namespace
}  // namespace gw::app

// A break-glass ends by itself (42 CFR 2.51, docs/privacy.md §7.1), and its end is on the record:
// once its time runs out the gateway marks the row and logs `break-glass-expired` exactly once,
// also when the time ran out while the gateway was down. Real parts: the runtime and its jobs
// thread on a real SQLite file; the clock is moved forward instead of waiting out the minutes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "app/runtime.hpp"
#include "app/runtime_test_config.hpp"
#include "common/ids.hpp"
#include "store/record_store.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_keys.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// The system clock, moved forward by the test.
class ShiftedClock final : public Clock {
 public:
  SystemTime now() const override { return std::chrono::system_clock::now() + std::chrono::milliseconds(shift_ms.load()); }
  std::atomic<std::int64_t> shift_ms{0};
};

class BreakGlassExpiryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-break-glass-" + ids::randomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    stop();
    fs::remove_all(dir_);
  }

  void start() {
    const std::string text = test::runtimeTestConfig({.database = dir_ / "gateway.db"});
    auto loaded = config::loadText(text, dir_, "break-glass-test.json");
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors.front().describe());
    auto backend = store::openSqliteBackend({(dir_ / "gateway.db").string(), true, 8, {}});
    ASSERT_TRUE(backend) << backend.error().describe();
    auto store = store::openStore(std::move(backend).value(), test::testMasterKey());
    ASSERT_TRUE(store) << store.error().describe();
    runtime_ = std::make_unique<Runtime>(std::move(*loaded.config), clock_);
    ASSERT_TRUE(runtime_->open(std::move(store).value()));
    runtime_->start();
  }
  void stop() {
    if (runtime_) runtime_->stop();
    runtime_.reset();
  }

  // Opened now for `minutes`, as POST /v1/compliance/break-glass stores it.
  store::BreakGlass open(const std::string& id, int minutes) {
    store::BreakGlass g;
    g.id = id;
    g.clinic = "c1";
    g.patient_key = "pk-" + id;
    g.partner_id = "st-mary";
    g.recipient = "Dr. Rivera, ED";
    g.authorised_by = "J. Chen";
    g.nature = "unresponsive";
    g.opened_by = "officer";
    g.opened_at_ms = toUnixMillis(clock_.now());
    g.expires_at_ms = g.opened_at_ms + minutes * 60'000;
    EXPECT_TRUE(runtime_->store().putBreakGlass(g, {}));
    runtime_->breakGlassChanged(g);
    return g;
  }
  std::optional<store::BreakGlass> row(const std::string& id) {
    auto rows = runtime_->store().breakGlasses("c1");
    if (!rows) return std::nullopt;
    for (const auto& g : rows.value()) {
      if (g.id == id) return g;
    }
    return std::nullopt;
  }
  std::vector<store::AuditEntry> expiries() {
    store::AuditQuery q;
    q.kind = store::AuditKind::Operation;
    q.limit = 1000;
    auto page = runtime_->store().queryAudit(q);
    std::vector<store::AuditEntry> out;
    if (!page) return out;
    for (auto& e : page.value().entries) {
      if (e.reason == "break-glass-expired") out.push_back(std::move(e));
    }
    return out;
  }
  bool expired(const std::string& id) {
    auto g = row(id);
    return g && g->ended_by == store::kBreakGlassExpired;
  }
  template <class Condition>
  static bool eventually(Condition condition, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  fs::path dir_;
  ShiftedClock clock_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(BreakGlassExpiryTest, ItsEndIsMarkedAndLoggedOnceWhenItsTimeRunsOut) {
  start();
  const auto g = open("bg-1", 30);
  std::this_thread::sleep_for(1500ms);  // the check runs every second
  EXPECT_FALSE(expired("bg-1")) << "still in force";
  EXPECT_TRUE(expiries().empty());

  clock_.shift_ms = 30 * 60'000 + 1;
  ASSERT_TRUE(eventually([&] { return expired("bg-1"); }, 3s));
  const auto marked = row("bg-1");
  EXPECT_EQ(marked->ended_at_ms, 0) << "nobody ended it";
  EXPECT_FALSE(marked->activeAt(toUnixMillis(clock_.now())));
  std::this_thread::sleep_for(1500ms);
  const auto logged = expiries();
  ASSERT_EQ(logged.size(), 1u) << "once, not every second";
  EXPECT_EQ(logged[0].actor, "gateway");
  EXPECT_EQ(logged[0].partner_id, "st-mary");
  EXPECT_EQ(logged[0].patient_key, g.patient_key);
  EXPECT_THAT(logged[0].detail, HasSubstr(R"("break_glass":"bg-1")"));
  EXPECT_THAT(logged[0].detail, HasSubstr(R"("expired_at":")"));
}

TEST_F(BreakGlassExpiryTest, OneThatRanOutWhileTheGatewayWasDownIsLoggedAfterStart) {
  start();
  open("bg-2", 5);
  auto ended_by_hand = open("bg-3", 5);
  ended_by_hand.ended_at_ms = toUnixMillis(clock_.now());
  ended_by_hand.ended_by = "officer";
  ASSERT_TRUE(runtime_->store().putBreakGlass(ended_by_hand, {}));
  runtime_->breakGlassChanged(ended_by_hand);
  stop();
  clock_.shift_ms = 6 * 60'000;
  start();
  ASSERT_TRUE(eventually([&] { return expired("bg-2"); }, 3s));
  std::this_thread::sleep_for(1200ms);
  const auto logged = expiries();
  ASSERT_EQ(logged.size(), 1u) << "the one ended by hand is not logged as expired";
  EXPECT_THAT(logged[0].detail, HasSubstr("bg-2"));
  EXPECT_EQ(row("bg-3")->ended_by, "officer");
}

}  // namespace
}  // namespace gw::app

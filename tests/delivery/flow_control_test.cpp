#include "delivery/flow_control.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "delivery/credential_source.hpp"

#include "delivery/partner_worker.hpp"

namespace gw::delivery {
namespace {

using namespace std::chrono_literals;
using Permit = CircuitBreaker::Permit;

class FakeClock final : public Clock {
 public:
  SystemTime now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  SystemTime now_ = fromUnixMillis(1'800'000'000'000);
};

TEST(TokenBucketTest, UnlimitedNeverWaits) {
  const auto t0 = std::chrono::steady_clock::now();
  TokenBucket bucket(0, t0);
  EXPECT_FALSE(bucket.limited());
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(bucket.reserve(t0), 0ns);
}

TEST(TokenBucketTest, OneSecondOfBurstThenSpacedAtTheRate) {
  const auto t0 = std::chrono::steady_clock::now();
  TokenBucket bucket(10, t0);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(bucket.reserve(t0), 0ns) << "burst of one second's tokens, request " << i;
  // The next reservations at the same instant wait 100 ms, 200 ms, ...: concurrent senders queue up.
  EXPECT_NEAR(std::chrono::duration<double>(bucket.reserve(t0)).count(), 0.1, 1e-6);
  EXPECT_NEAR(std::chrono::duration<double>(bucket.reserve(t0)).count(), 0.2, 1e-6);
  // 1 s later: the two reserved tokens were refilled, and eight more; the bucket holds no more than ten.
  EXPECT_EQ(bucket.reserve(t0 + 1s), 0ns);
  const auto later = t0 + 10s;
  int free = 0;
  while (bucket.reserve(later) == 0ns) ++free;
  EXPECT_EQ(free, 10) << "capped at one second's worth";
}

TEST(TokenBucketTest, SeveralTokensAtOnceForAnItemOfSeveralRequests) {
  const auto t0 = std::chrono::steady_clock::now();
  TokenBucket bucket(2, t0);
  EXPECT_EQ(bucket.reserve(t0, 2), 0ns);
  EXPECT_NEAR(std::chrono::duration<double>(bucket.reserve(t0, 3)).count(), 1.5, 1e-6);
  EXPECT_NEAR(std::chrono::duration<double>(bucket.reserve(t0)).count(), 2.0, 1e-6);
}

TEST(TokenBucketTest, SustainedRateIsTheLimit) {
  // Reserving as fast as possible for 5 simulated seconds gets 5 s x 4/s + the initial burst of 4.
  const auto t0 = std::chrono::steady_clock::now();
  TokenBucket bucket(4, t0);
  auto now = t0;
  int sent = 0;
  while (now < t0 + 5s) {
    now += bucket.reserve(now);
    if (now >= t0 + 5s) break;
    ++sent;
  }
  EXPECT_GE(sent, 23);
  EXPECT_LE(sent, 24);
}

config::CircuitBreakerSettings settings(int threshold = 3) {
  config::CircuitBreakerSettings s;
  s.failure_threshold = threshold;
  s.open = 30s;
  s.max_open = 100s;
  return s;
}

TEST(CircuitBreakerTest, OpensAfterThresholdConsecutiveFailures) {
  FakeClock clock;
  CircuitBreaker breaker(settings(3), clock, "p1");
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(breaker.acquire(), Permit::Granted);
    breaker.record(Permit::Granted, "http 503");
  }
  // A success in between starts the count again.
  breaker.record(breaker.acquire(), "");
  EXPECT_EQ(breaker.report().consecutive_failures, 0);
  for (int i = 0; i < 2; ++i) breaker.record(breaker.acquire(), "connection");
  EXPECT_FALSE(breaker.blocking());
  breaker.record(breaker.acquire(), "http 429");
  const auto report = breaker.report();
  EXPECT_TRUE(breaker.blocking());
  EXPECT_EQ(report.state, CircuitState::Open);
  EXPECT_EQ(report.since, clock.now());
  EXPECT_EQ(report.probe_at, clock.now() + 30s);
  EXPECT_EQ(report.consecutive_failures, 3);
  EXPECT_EQ(report.last_error, "http 429");
  EXPECT_EQ(breaker.acquire(), Permit::Refused);
}

TEST(CircuitBreakerTest, OneProbePerOpenPeriodAndItsResultDecides) {
  FakeClock clock;
  CircuitBreaker breaker(settings(1), clock, "p1");
  breaker.record(breaker.acquire(), "http 503");
  ASSERT_EQ(breaker.report().state, CircuitState::Open);
  clock.advance(29'999ms);
  EXPECT_EQ(breaker.acquire(), Permit::Refused) << "before open_seconds";
  clock.advance(1ms);
  ASSERT_EQ(breaker.acquire(), Permit::Probe);
  EXPECT_EQ(breaker.report().state, CircuitState::HalfOpen);
  EXPECT_EQ(breaker.acquire(), Permit::Refused) << "only one probe at a time";
  // The probe fails: open again, for twice as long.
  breaker.record(Permit::Probe, "timeout");
  auto report = breaker.report();
  EXPECT_EQ(report.state, CircuitState::Open);
  EXPECT_EQ(report.openings, 2);
  EXPECT_EQ(report.probe_at, clock.now() + 60s);
  clock.advance(60s);
  ASSERT_EQ(breaker.acquire(), Permit::Probe);
  breaker.record(Permit::Probe, "http 500");
  EXPECT_EQ(breaker.report().probe_at, clock.now() + 100s) << "capped at max_open_seconds";
  clock.advance(100s);
  ASSERT_EQ(breaker.acquire(), Permit::Probe);
  breaker.record(Permit::Probe, "");
  report = breaker.report();
  EXPECT_EQ(report.state, CircuitState::Closed);
  EXPECT_EQ(report.openings, 0);
  EXPECT_EQ(report.consecutive_failures, 0);
  EXPECT_EQ(breaker.acquire(), Permit::Granted);
  // Closed again: the next opening starts from open_seconds.
  breaker.record(Permit::Granted, "http 503");
  EXPECT_EQ(breaker.report().probe_at, clock.now() + 30s);
}

TEST(CircuitBreakerTest, RequestsInFlightWhenItOpenedDoNotCloseIt) {
  FakeClock clock;
  CircuitBreaker breaker(settings(1), clock, "p1");
  const auto early = breaker.acquire();  // sent before the failure below opened the breaker
  breaker.record(breaker.acquire(), "http 503");
  breaker.record(early, "");
  EXPECT_EQ(breaker.report().state, CircuitState::Open) << "only the probe closes it";
}

TEST(CircuitBreakerTest, FailureClasses) {
  EXPECT_EQ(breakerFailureClass(makeError(ErrorCode::Unavailable, "connect: refused")), "connection");
  EXPECT_EQ(breakerFailureClass(makeError(ErrorCode::Timeout, "read")), "timeout");
  EXPECT_EQ(breakerFailureClass(HttpResult{503, "", {}}), "http 503");
  EXPECT_EQ(breakerFailureClass(HttpResult{429, "", {}}), "http 429");
  EXPECT_EQ(breakerFailureClass(HttpResult{422, "", {}}), "") << "a refusal of one item: the partner works";
  EXPECT_EQ(breakerFailureClass(HttpResult{200, "", {}}), "");
}

// A token source like the OAuth one: fetches on first use, caches, drops the token on rejected().
class CountingTokenSource final : public CredentialSource {
 public:
  Result<std::optional<std::string>> authorization() override {
    if (!cached_) {
      ++fetches;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a token request takes a while
      cached_ = "Bearer t" + std::to_string(fetches.load());
    }
    return cached_;
  }
  void rejected() override { cached_.reset(); }
  bool renewable() const override { return true; }
  std::string_view kind() const override { return "counting"; }
  std::atomic<int> fetches{0};

 private:
  std::optional<std::string> cached_;  // not thread-safe on purpose: the shared views must serialise
};

TEST(SharedCredentialsTest, ConcurrentSendersShareOneCachedToken) {
  auto source = std::make_unique<CountingTokenSource>();
  auto* counting = source.get();
  auto views = sharedCredentials(std::move(source), 4);
  ASSERT_EQ(views.size(), 4u);
  std::vector<std::thread> threads;
  std::atomic<int> same{0};
  for (auto& view : views) {
    threads.emplace_back([&view, &same] {
      for (int i = 0; i < 50; ++i) {
        auto header = view->authorization();
        if (header && header.value() == std::optional<std::string>("Bearer t1")) ++same;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counting->fetches.load(), 1) << "one token request served every sender";
  EXPECT_EQ(same.load(), 200);

  // Sender 0's request is refused: the token is dropped and fetched again once. Sender 1, refused
  // with the same old token after sender 0 renewed it, does not drop the fresh one.
  views[0]->rejected();
  EXPECT_EQ(views[0]->authorization().value(), std::optional<std::string>("Bearer t2"));
  views[1]->rejected();
  EXPECT_EQ(views[1]->authorization().value(), std::optional<std::string>("Bearer t2"));
  EXPECT_EQ(counting->fetches.load(), 2);
  EXPECT_TRUE(views[2]->renewable());
  EXPECT_EQ(views[3]->kind(), "counting");
}

TEST(LaneTest, OneLanePerPatientKeepingTheBatchOrder) {
  std::vector<store::OutboxItem> items(6);
  const char* patients[] = {"A", "B", "A", "C", "B", "A"};
  for (std::size_t i = 0; i < items.size(); ++i) {
    items[i].id = static_cast<std::int64_t>(i + 1);
    items[i].patient_key = patients[i];
  }
  const auto lanes = PartnerWorker::lanesByPatient(items);
  ASSERT_EQ(lanes.size(), 3u);
  const auto ids = [](const std::vector<const store::OutboxItem*>& lane) {
    std::vector<std::int64_t> out;
    for (const auto* item : lane) out.push_back(item->id);
    return out;
  };
  EXPECT_EQ(ids(lanes[0]), (std::vector<std::int64_t>{1, 3, 6}));
  EXPECT_EQ(ids(lanes[1]), (std::vector<std::int64_t>{2, 5}));
  EXPECT_EQ(ids(lanes[2]), (std::vector<std::int64_t>{4}));
}

}  // namespace
}  // namespace gw::delivery

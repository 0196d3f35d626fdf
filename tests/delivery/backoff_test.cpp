#include "delivery/backoff.hpp"

#include <gtest/gtest.h>

namespace gw::delivery {
namespace {

using namespace std::chrono_literals;

TEST(BackoffDelay, GrowsExponentiallyFromInitial) {
  const RetryPolicy policy{1000ms, 300000ms, 2.0};
  // jitter 0 gives base/2, the bottom of the range.
  EXPECT_EQ(backoffDelay(1, policy, 0.0), 500ms);
  EXPECT_EQ(backoffDelay(2, policy, 0.0), 1000ms);
  EXPECT_EQ(backoffDelay(3, policy, 0.0), 2000ms);
  EXPECT_EQ(backoffDelay(5, policy, 0.0), 8000ms);
}

TEST(BackoffDelay, JitterSpansHalfToFullBase) {
  const RetryPolicy policy{1000ms, 300000ms, 2.0};
  EXPECT_EQ(backoffDelay(3, policy, 0.0), 2000ms);  // base 4000
  EXPECT_EQ(backoffDelay(3, policy, 0.5), 3000ms);
  EXPECT_EQ(backoffDelay(3, policy, 0.9999), 4000ms);
  for (double j = 0.0; j < 1.0; j += 0.01) {
    const auto d = backoffDelay(4, policy, j);  // base 8000
    EXPECT_GE(d, 4000ms);
    EXPECT_LE(d, 8000ms);
  }
}

TEST(BackoffDelay, CappedAtMaxEvenAfterVeryManyAttempts) {
  const RetryPolicy policy{1000ms, 300000ms, 2.0};
  EXPECT_EQ(backoffDelay(10, policy, 0.0), 150000ms);  // 512 s base, capped to 300 s
  EXPECT_EQ(backoffDelay(10, policy, 0.99), 298500ms);
  EXPECT_EQ(backoffDelay(5000, policy, 0.99), 298500ms);  // multiplier^4999 overflows a double
}

TEST(BackoffDelay, RetryAfterIsAFloor) {
  const RetryPolicy policy{1000ms, 300000ms, 2.0};
  EXPECT_EQ(backoffDelay(1, policy, 0.0, 7s), 7000ms);
  EXPECT_EQ(backoffDelay(6, policy, 0.0, 7s), 16000ms);      // computed delay already longer
  EXPECT_EQ(backoffDelay(20, policy, 0.0, 600s), 600000ms);  // floor may exceed the cap
}

TEST(BackoffDelay, OutOfRangeInputsAreTamed) {
  const RetryPolicy policy{1000ms, 300000ms, 2.0};
  EXPECT_EQ(backoffDelay(0, policy, 0.0), 500ms);  // attempt < 1 counts as the first
  EXPECT_EQ(backoffDelay(-3, policy, 0.0), 500ms);
  EXPECT_EQ(backoffDelay(1, policy, -1.0), 500ms);  // jitter clamped to [0, 1]
  EXPECT_EQ(backoffDelay(1, policy, 5.0), 1000ms);
  EXPECT_EQ(backoffDelay(3, RetryPolicy{1000ms, 300000ms, 0.5}, 0.0), 500ms);  // no shrinking
}

}  // namespace
}  // namespace gw::delivery

#pragma once
// Exponential backoff between delivery attempts. Randomness comes in as a parameter so the
// outbox and tests decide where it comes from.
#include <chrono>
#include <optional>

namespace gw::delivery {

struct RetryPolicy {  // multiplier below 1 is treated as 1
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds max{300000};
  double multiplier = 2.0;
};

/// Delay before attempt `attempt + 1`, where `attempt` (>= 1) is the number of attempts made.
/// base = min(max, initial * multiplier^(attempt-1)); the delay is base/2 + jitter01 * base/2,
/// i.e. uniform in [base/2, base] for jitter01 uniform in [0,1) (clamped to that range), so
/// partners recovering from an outage are not hit by every queue at once. `retry_after` (the
/// partner's Retry-After) is a floor.
std::chrono::milliseconds backoffDelay(int attempt, const RetryPolicy& policy, double jitter01,
                                       std::optional<std::chrono::milliseconds> retry_after = {});

}  // namespace gw::delivery

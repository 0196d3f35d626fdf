#include "delivery/backoff.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace gw::delivery {

std::chrono::milliseconds backoffDelay(int attempt, const RetryPolicy& policy, double jitter01,
                                       std::optional<std::chrono::milliseconds> retry_after) {
  const double max = static_cast<double>(std::max<std::int64_t>(policy.max.count(), 0));
  const double initial = static_cast<double>(std::max<std::int64_t>(policy.initial.count(), 0));
  const int exponent = std::max(attempt, 1) - 1;
  // pow may overflow to infinity on long outages; min() folds that into the cap.
  const double base = std::min(max, initial * std::pow(std::max(policy.multiplier, 1.0), exponent));
  const double jitter = std::isnan(jitter01) ? 0.0 : std::clamp(jitter01, 0.0, 1.0);
  const auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(base / 2 + jitter * base / 2)));
  if (retry_after && *retry_after > delay) return *retry_after;
  return delay;
}

}  // namespace gw::delivery

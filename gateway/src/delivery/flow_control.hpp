#pragma once
// Per-partner flow control (docs/architecture.md §5.7): a token bucket that spaces requests to a
// partner's requests-per-second limit, and a circuit breaker that stops sending to a partner that
// fails every request, then lets one probe through now and then to find out when it is back.
// Both are shared by the partner's sender threads, so both are thread-safe.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "config/gateway_config.hpp"
#include "delivery/fhir_client.hpp"

namespace gw::delivery {

/// Requests per second as a token bucket holding at most one second's worth of tokens. A caller
/// reserves a token and waits the time it is told, so concurrent senders stay within the rate.
class TokenBucket {
 public:
  using Time = std::chrono::steady_clock::time_point;
  /// `per_second` 0: unlimited (every reservation is free).
  TokenBucket(int per_second, Time start);
  /// Takes the next `count` tokens: how long to wait before sending (zero when they were in the bucket).
  std::chrono::nanoseconds reserve(Time now, int count = 1);
  bool limited() const { return per_second_ > 0; }

 private:
  const int per_second_;
  std::mutex mutex_;
  double tokens_;  // guarded by mutex_: may go negative (reserved tokens not yet refilled)
  Time last_;      // guarded by mutex_
};

enum class CircuitState { Closed, Open, HalfOpen };
std::string_view circuitStateName(CircuitState state);

/// What /readyz and the record status show of a partner's breaker. No PHI: states, times, counts
/// and error classes ("connection", "timeout", "http 503").
struct CircuitReport {
  CircuitState state = CircuitState::Closed;
  SystemTime since{};     // when it entered the state; epoch: never left closed
  SystemTime probe_at{};  // open: when the probe may go
  int consecutive_failures = 0;
  int openings = 0;        // openings in a row without a close between them
  std::string last_error;  // class of the last failure, "" if none
};

/// The failure class of a partner's answer that counts against the breaker ("" for an answer that
/// shows the partner working, including a 4xx refusal of one item): no answer, 5xx, 429.
std::string breakerFailureClass(const Result<HttpResult>& response);

/// Closed: every request goes; failure_threshold failures in a row open it. Open: no request goes
/// until probe_at (open_seconds, doubled with each opening in a row, at most max_open_seconds);
/// then one request is let through as the probe (half-open); its success closes the breaker, its
/// failure opens it again.
class CircuitBreaker {
 public:
  CircuitBreaker(config::CircuitBreakerSettings settings, const Clock& clock, std::string partner_id);

  enum class Permit { Granted, Probe, Refused };
  /// Before each request. A Probe must be followed by the request and its result reported.
  Permit acquire();
  /// The result of a request made under a permit; `failure_class` as breakerFailureClass gives it.
  void record(Permit permit, std::string_view failure_class);

  /// Not closed: requests are refused except the probe when its time comes.
  bool blocking() const;
  CircuitReport report() const;

 private:
  void openLocked(SystemTime now);  // mutex_ held

  const config::CircuitBreakerSettings settings_;
  const Clock& clock_;
  const std::string partner_id_;
  mutable std::mutex mutex_;
  CircuitReport state_;  // guarded by mutex_
};

}  // namespace gw::delivery

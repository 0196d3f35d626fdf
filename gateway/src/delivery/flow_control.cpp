#include "delivery/flow_control.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace gw::delivery {

TokenBucket::TokenBucket(int per_second, Time start)
    : per_second_(per_second), tokens_(per_second > 0 ? per_second : 0), last_(start) {}

std::chrono::nanoseconds TokenBucket::reserve(Time now, int count) {
  if (per_second_ <= 0) return std::chrono::nanoseconds(0);
  std::lock_guard lock(mutex_);
  if (now > last_) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min<double>(per_second_, tokens_ + elapsed * per_second_);
    last_ = now;
  }
  tokens_ -= count;
  if (tokens_ >= 0.0) return std::chrono::nanoseconds(0);
  // The reserved token is refilled after -tokens_ / rate seconds.
  return std::chrono::nanoseconds(static_cast<std::int64_t>(-tokens_ / per_second_ * 1e9));
}

std::string_view circuitStateName(CircuitState state) {
  switch (state) {
    case CircuitState::Closed: return "closed";
    case CircuitState::Open: return "open";
    case CircuitState::HalfOpen: return "half-open";
  }
  return "closed";
}

std::string breakerFailureClass(const Result<HttpResult>& response) {
  if (!response) return response.error().code == ErrorCode::Timeout ? "timeout" : "connection";
  const int status = response.value().status;
  if (status >= 500 || status == 429) return "http " + std::to_string(status);
  return {};
}

CircuitBreaker::CircuitBreaker(config::CircuitBreakerSettings settings, const Clock& clock, std::string partner_id)
    : settings_(settings), clock_(clock), partner_id_(std::move(partner_id)) {}

CircuitBreaker::Permit CircuitBreaker::acquire() {
  std::lock_guard lock(mutex_);
  switch (state_.state) {
    case CircuitState::Closed: return Permit::Granted;
    case CircuitState::HalfOpen: return Permit::Refused;  // the probe is out
    case CircuitState::Open: break;
  }
  const SystemTime now = clock_.now();
  if (now < state_.probe_at) return Permit::Refused;
  state_.state = CircuitState::HalfOpen;
  state_.since = now;
  GW_LOG(Info, Delivery, "circuit_half_open").kv("partner", partner_id_).kv("openings", state_.openings);
  return Permit::Probe;
}

void CircuitBreaker::openLocked(SystemTime now) {
  ++state_.openings;
  // open_seconds, doubled with each opening in a row, capped.
  auto open_for = settings_.open;
  for (int i = 1; i < state_.openings && open_for < settings_.max_open; ++i) open_for *= 2;
  open_for = std::min(open_for, settings_.max_open);
  state_.state = CircuitState::Open;
  state_.since = now;
  state_.probe_at = now + open_for;
  GW_LOG(Warn, Delivery, "circuit_open")
      .kv("partner", partner_id_)
      .kv("consecutive_failures", state_.consecutive_failures)
      .kv("last_error", state_.last_error)
      .kv("open_seconds", open_for.count())
      .kv("openings", state_.openings);
}

void CircuitBreaker::record(Permit permit, std::string_view failure_class) {
  if (permit == Permit::Refused) return;
  std::lock_guard lock(mutex_);
  const SystemTime now = clock_.now();
  if (failure_class.empty()) {
    state_.consecutive_failures = 0;
    // A request let through before the breaker opened that succeeds leaves it open: only the
    // probe decides, so the partner sees at most one request per open period.
    if (permit == Permit::Probe && state_.state == CircuitState::HalfOpen) {
      GW_LOG(Info, Delivery, "circuit_closed").kv("partner", partner_id_).kv("openings", state_.openings);
      state_.state = CircuitState::Closed;
      state_.since = now;
      state_.openings = 0;
      state_.probe_at = {};
    }
    return;
  }
  ++state_.consecutive_failures;
  state_.last_error = std::string(failure_class);
  if (permit == Permit::Probe && state_.state == CircuitState::HalfOpen) {
    openLocked(now);
  } else if (state_.state == CircuitState::Closed && state_.consecutive_failures >= settings_.failure_threshold) {
    openLocked(now);
  }
}

bool CircuitBreaker::blocking() const {
  std::lock_guard lock(mutex_);
  return state_.state != CircuitState::Closed;
}

CircuitReport CircuitBreaker::report() const {
  std::lock_guard lock(mutex_);
  return state_;
}

}  // namespace gw::delivery

#pragma once
// Time comes through a Clock so tests can drive retries and expiry without sleeping.
#include <chrono>
#include <cstdint>
#include <string>

namespace gw {

using SystemTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SystemTime now() const = 0;
};

class SystemClock final : public Clock {
 public:
  SystemTime now() const override { return std::chrono::system_clock::now(); }
};

/// Milliseconds since the Unix epoch (how times are stored).
std::int64_t toUnixMillis(SystemTime t);
SystemTime fromUnixMillis(std::int64_t ms);
/// RFC 3339 UTC with milliseconds, e.g. 2026-11-23T02:13:07.123Z.
std::string formatRfc3339(SystemTime t);

}  // namespace gw

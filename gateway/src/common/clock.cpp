#include "common/clock.hpp"

#include <cstdio>
#include <ctime>

namespace gw {

std::int64_t toUnixMillis(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

SystemTime fromUnixMillis(std::int64_t ms) { return SystemTime(std::chrono::milliseconds(ms)); }

std::string formatRfc3339(SystemTime t) {
  const std::int64_t ms = toUnixMillis(t);
  auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace gw

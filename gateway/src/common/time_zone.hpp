#pragma once
// Time zones for $dateTime with local (offset-less) source times and for consents' local days
// (docs/privacy.md §5.6): IANA zones read from the TZif
// files of the system's tzdata (RFC 8536, version 2+ with its POSIX TZ footer for years after
// the last listed transition), or a fixed offset such as "+05:30". libstdc++ 12 has no
// std::chrono::locate_zone, hence this small reader. Loaded once per mapper; lookups are const,
// allocation-free and thread-safe.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::tz {

/// Where a local wall-clock time falls in a zone.
enum class LocalTimeKind : std::uint8_t {
  Unique,   // exactly one instant
  Gap,      // skipped (spring forward): resolved with the offset in force before the gap
  Overlap,  // repeated (fall back): resolved to the earlier instant
};

struct ResolvedLocalTime {
  std::int64_t utc = 0;     // seconds since the epoch
  std::int32_t offset = 0;  // UTC offset in force at `utc`, in seconds
  LocalTimeKind kind = LocalTimeKind::Unique;
};

class TimeZone {
 public:
  /// An IANA name ("America/New_York", read from $TZDIR or /usr/share/zoneinfo) or a fixed
  /// offset "+hh:mm" / "-hh:mm" within ±14:00. Errors (ErrorCode::Config) say what to write.
  static Result<std::shared_ptr<const TimeZone>> load(std::string_view name);

  /// Parses TZif bytes (exposed for tests). `name` is only used in messages.
  static Result<std::shared_ptr<const TimeZone>> fromTzif(std::string_view name, std::string_view bytes);

  /// A zone that is always `offset_seconds` east of UTC.
  static std::shared_ptr<const TimeZone> fixed(std::string name, std::int32_t offset_seconds);

  const std::string& name() const { return name_; }

  /// The UTC offset (seconds east of UTC) in force at a UTC instant.
  std::int32_t offsetAt(std::int64_t utc) const;

  /// The instant of a local wall-clock time (seconds since 1970-01-01T00:00 local). Deterministic
  /// for DST changes: a time in a gap is read with the offset in force before the gap (02:30 on
  /// the spring-forward day in New York is 07:30Z, i.e. 03:30-04:00); a repeated time takes the
  /// earlier instant (01:30 on the fall-back day is 01:30-04:00). As java.time and Temporal do.
  ResolvedLocalTime resolveLocal(std::int64_t local) const;

  /// The first instant (seconds since the epoch) of a local calendar day (days since 1970-01-01):
  /// its midnight, or where midnight is skipped the moment the day begins (the gap's end).
  std::int64_t startOfLocalDay(std::int64_t local_day) const { return resolveLocal(local_day * 86400).utc; }
  /// The local calendar day (days since 1970-01-01) at an instant.
  std::int64_t localDay(std::int64_t utc) const;

  struct PosixRule;  // the footer's rule for years after the last transition

 private:
  TimeZone() = default;
  std::int32_t ruleOffsetAt(std::int64_t utc) const;

  std::string name_;
  std::vector<std::int64_t> transitions_;  // UTC instants, ascending
  std::vector<std::int32_t> offsets_;      // offset from transitions_[i] on
  std::int32_t initial_offset_ = 0;        // before the first transition (local time type 0)
  std::shared_ptr<const PosixRule> rule_;  // after the last transition; null: the last offset stays
};

/// "+05:30", "-03:00", "+14:00" -> seconds; false when not of that form or beyond ±14:00.
bool parseFixedOffset(std::string_view text, std::int32_t& seconds);

}  // namespace gw::tz

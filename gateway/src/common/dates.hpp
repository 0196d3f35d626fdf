#pragma once
// Calendar arithmetic and the digit-level reading of ISO 8601 / RFC 3339 dates, shared by the
// mapping engine, the validator, consent records and audit filters. Each caller keeps its own
// grammar and messages (a FHIR dateTime may be partial, an audit filter may carry a decoded '+'
// as a space); what they share is here, so a leap-year or offset rule is written once.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace gw::dates {

/// Exactly `count` ASCII digits at `pos`, as a number; false when the text is shorter or a byte
/// is not a digit (`value` is then unspecified).
constexpr bool readDigits(std::string_view text, std::size_t pos, std::size_t count, int& value) {
  if (pos > text.size() || text.size() - pos < count) return false;
  value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  return true;
}

constexpr bool isLeapYear(std::int64_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

/// Days in `month` (1-12) of `year`, proleptic Gregorian.
constexpr int daysInMonth(std::int64_t year, int month) {
  constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && isLeapYear(year) ? 29 : kDays[month - 1];
}

struct CivilDate {
  std::int64_t year = 0;
  unsigned month = 0;
  unsigned day = 0;
};

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t daysFromCivil(std::int64_t year, unsigned month, unsigned day);
CivilDate civilFromDays(std::int64_t days);

/// The YYYY-MM-DD in the first ten bytes of `text`, naming a real day of years 0001-9999
/// (1990-02-30 and 0000-01-01 are rejected); what follows is the caller's business.
std::optional<CivilDate> readCalendarDate(std::string_view text);

/// An RFC 3339 date-time as written (no time zone arithmetic done).
struct DateTime {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  std::string_view fraction;  // the digits after '.', maybe empty
  int offset_minutes = 0;     // east of UTC; 0 for Z
};

/// What an RFC 3339 reader may accept beyond the strict grammar.
struct Rfc3339Rules {
  bool year_zero = false;               // 0000 is a year (audit filters); else years 0001-9999
  std::size_t max_fraction_digits = 9;  // SIZE_MAX: any number
  int max_offset_minutes = 23 * 60 + 59;
  bool url_spaces = false;  // ' ' for 'T' and for '+' (a query string's '+' decoded as a space)
};

/// Why a text is not a date-time, in the order the reader checks (so the first fault is named).
enum class Rfc3339Status : std::uint8_t {
  Ok,
  DateSyntax,  // not YYYY-MM-DD
  NoTime,      // no 'T' after the date
  TimeSyntax,  // not HH:MM:SS
  MonthRange,
  DayRange,       // includes year 0000 unless Rfc3339Rules::year_zero
  TimeRange,      // hour > 23, minute > 59 or second > 60
  EmptyFraction,  // '.' without digits
  LongFraction,   // more than max_fraction_digits
  NoZone,         // ends after the time
  OffsetSyntax,   // a sign not followed by HH:MM
  OffsetRange,    // minutes > 59 or beyond max_offset_minutes
  ZoneSyntax,     // neither Z nor a sign
  TrailingText,   // anything after the zone
};

/// Reads `text` (date, 'T' or 't', time, optional fraction, then Z/z or ±HH:MM) into `out`.
Rfc3339Status readRfc3339(std::string_view text, DateTime& out, const Rfc3339Rules& rules = {});

/// Milliseconds since the Unix epoch (fraction digits after the third are dropped; a leap
/// second :60 counts as the next second, which keeps the order of events).
std::int64_t unixMillis(const DateTime& t);

}  // namespace gw::dates

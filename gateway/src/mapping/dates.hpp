#pragma once
// Date checks for the mapping engine: no regex, no allocation on the happy path.
//
// Without "formats", $date takes YYYY-MM-DD and $dateTime RFC 3339 with an offset
// (isCalendarDate, normaliseDateTime). With "formats" (and, for local date-times, "timezone"),
// a mapper declares how a source writes them: the formats are compiled once at load into a
// DateSpec, and parseDate() reads a value with them into FHIR date / dateTime text.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::tz {
class TimeZone;
struct ResolvedLocalTime;
enum class LocalTimeKind : std::uint8_t;
}  // namespace gw::tz

namespace gw::mapping {

using tz::LocalTimeKind;  // common/time_zone.hpp
using tz::ResolvedLocalTime;
using tz::TimeZone;

/// YYYY-MM-DD naming a real day (year 0001-9999, leap years honoured): 1990-02-30 is rejected.
bool isCalendarDate(std::string_view text);

/// RFC 3339 date-time with an offset -> FHIR dateTime. Checks the calendar date, hour 00-23,
/// minute 00-59, second 00-60, at most 9 fraction digits and an offset FHIR accepts
/// (Z or -14:00..+14:00); writes the text with 'T' and 'Z' upper-cased to `out`.
bool normaliseDateTime(std::string_view text, std::string& out);

/// One compiled entry of "formats". Tokens (see mappers/README.md): YYYY YY MM M MMM DD D HH H
/// hh h mm ss S..SSSSSSSSS A Z, and the named format "ISO" (what $date / $dateTime read without
/// formats). Any other character, and the letter T, is a literal that must appear as written.
struct DateFormat {
  enum class Token : std::uint8_t {
    Literal,
    Year4,
    Year2,  // 69-99 -> 1969-1999, 00-68 -> 2000-2068 (the POSIX strptime rule)
    Month2,
    Month12,    // one or two digits
    MonthName,  // Jan..Dec, any case
    Day2,
    Day12,
    Hour2,        // 00-23
    Hour12,       // 0-23, one or two digits
    ClockHour2,   // 01-12, with A
    ClockHour12,  // 1-12, one or two digits, with A
    Minute2,
    Second2,   // 00-60
    Fraction,  // exactly `width` digits
    AmPm,      // AM / PM, any case
    Offset,    // Z, +hh:mm, -hh:mm or +hhmm, within ±14:00
  };
  struct Item {
    Token token = Token::Literal;
    char literal = 0;
    std::uint8_t width = 0;  // Fraction digits
  };

  std::string text;         // as written in the mapper
  bool iso = false;         // "ISO"
  bool has_offset = false;  // reads the offset itself, so needs no timezone
  std::vector<Item> items;
};

/// Compiles one format. Errors are ErrorCode::Config with the reason (the caller adds where).
/// `with_time`: for $dateTime (needs hours and minutes); else for $date (no time fields).
Result<DateFormat> compileDateFormat(std::string_view text, bool with_time);

/// The compiled "formats" and "timezone" of one $date / $dateTime call.
struct DateSpec {
  std::vector<DateFormat> formats;       // tried in order; all of them, to find ambiguous values
  std::shared_ptr<const TimeZone> zone;  // places local date-times; null: every format has an offset
  bool with_time = false;
  std::string expectation;  // "M/D/YYYY or YYYY-MM-DD", for messages
};

/// Fills spec.expectation from its formats and zone.
void describeDateSpec(DateSpec& spec);

/// FHIR dateTime text is at most 35 bytes ("2026-11-20T09:00:00.123456789+05:30").
constexpr std::size_t kMaxDateText = 40;

struct DateParse {
  enum class Status : std::uint8_t {
    Ok,
    Invalid,       // no format reads the value as a real date / time
    Ambiguous,     // two formats read it as different values (formats `first` and `second`)
    NoFhirOffset,  // the zone had an offset FHIR cannot write then (local mean time, seconds)
  };
  Status status = Status::Invalid;
  std::size_t size = 0;   // bytes written to `out` when Ok
  std::size_t first = 0;  // Ambiguous: indexes into spec.formats
  std::size_t second = 0;
};

/// Reads `text` with the spec's formats and writes FHIR date (YYYY-MM-DD) or dateTime
/// (YYYY-MM-DDThh:mm:ss[.fraction] with Z or ±hh:mm) to `out` (kMaxDateText bytes).
/// Local date-times are placed in spec.zone (DST rule: TimeZone::resolveLocal).
DateParse parseDate(const DateSpec& spec, std::string_view text, char* out);

}  // namespace gw::mapping

#include "mapping/dates.hpp"

#include <cstring>

#include "common/dates.hpp"
#include "common/time_zone.hpp"
#include "mapping/support.hpp"

namespace gw::mapping {

bool isCalendarDate(std::string_view text) { return text.size() == 10 && dates::readCalendarDate(text).has_value(); }

bool normaliseDateTime(std::string_view s, std::string& out) {
  static constexpr dates::Rfc3339Rules kFhirRules{.max_offset_minutes = 14 * 60};  // FHIR's range
  dates::DateTime parsed;
  if (dates::readRfc3339(s, parsed, kFhirRules) != dates::Rfc3339Status::Ok) return false;
  out.assign(s.data(), s.size());
  out[10] = 'T';
  if (out.back() == 'z') out.back() = 'Z';
  return true;
}

// ---- declared source formats ("formats" / "timezone") ----

namespace {

using dates::daysInMonth;
using dates::readDigits;
using Token = DateFormat::Token;

constexpr std::string_view kTokenList =
    "YYYY, YY, MM, M, MMM, DD, D, HH, H, hh, h, mm, ss, S to SSSSSSSSS, A, Z (any other character, and T, is a literal)";

// What one format read from a value.
struct Fields {
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  std::string_view fraction;  // digits only
  bool has_offset = false;
  bool zulu = false;
  int offset = 0;  // seconds east of UTC
};

bool isDigit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// Exactly `count` digits at `pos`.
bool fixedDigits(std::string_view s, std::size_t& pos, std::size_t count, int& value) {
  if (!readDigits(s, pos, count, value)) return false;
  pos += count;
  return true;
}

// One digit, or two when the next character is a digit too (M, D, H, h).
bool shortDigits(std::string_view s, std::size_t& pos, int& value) {
  if (pos >= s.size() || !isDigit(s[pos])) return false;
  value = s[pos++] - '0';
  if (pos < s.size() && isDigit(s[pos])) value = value * 10 + (s[pos++] - '0');
  return true;
}

// Z, ±hh:mm or ±hhmm within ±14:00.
bool readOffset(std::string_view s, std::size_t& pos, Fields& f) {
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
    f.has_offset = true;
    f.zulu = true;
    f.offset = 0;
    return true;
  }
  if (pos >= s.size() || (s[pos] != '+' && s[pos] != '-')) return false;
  const bool negative = s[pos] == '-';
  std::size_t p = pos + 1;
  int hours = 0;
  int minutes = 0;
  if (!fixedDigits(s, p, 2, hours)) return false;
  if (p < s.size() && s[p] == ':') ++p;
  if (!fixedDigits(s, p, 2, minutes)) return false;
  if (minutes > 59 || hours * 60 + minutes > 14 * 60) return false;
  pos = p;
  f.has_offset = true;
  f.zulu = false;
  f.offset = (negative ? -1 : 1) * (hours * 3600 + minutes * 60);
  return true;
}

bool validDate(const Fields& f) {
  return f.year >= 1 && f.year <= 9999 && f.month >= 1 && f.month <= 12 && f.day >= 1 &&
         f.day <= daysInMonth(f.year, f.month);
}

bool validTime(const Fields& f) { return f.hour <= 23 && f.minute <= 59 && f.second <= 60; }

// "ISO": YYYY-MM-DD, or RFC 3339 (offset optional when a zone places local times).
bool matchIso(std::string_view s, bool with_time, bool allow_local, Fields& f) {
  const auto date = dates::readCalendarDate(s);
  if (!date) return false;
  f.year = static_cast<int>(date->year);
  f.month = static_cast<int>(date->month);
  f.day = static_cast<int>(date->day);
  std::size_t p = 10;
  if (!with_time) return p == s.size();
  if (p >= s.size() || (s[p] != 'T' && s[p] != 't')) return false;
  ++p;
  if (!fixedDigits(s, p, 2, f.hour) || p >= s.size() || s[p++] != ':' || !fixedDigits(s, p, 2, f.minute) || p >= s.size() ||
      s[p++] != ':' || !fixedDigits(s, p, 2, f.second) || !validTime(f)) {
    return false;
  }
  if (p < s.size() && s[p] == '.') {
    const std::size_t start = ++p;
    while (p < s.size() && isDigit(s[p])) ++p;
    if (p == start || p - start > 9) return false;
    f.fraction = s.substr(start, p - start);
  }
  if (p == s.size()) return allow_local;
  return readOffset(s, p, f) && p == s.size();
}

bool matchFormat(const DateFormat& format, std::string_view s, bool with_time, bool allow_local, Fields& f) {
  if (format.iso) return matchIso(s, with_time, allow_local, f);
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  std::size_t p = 0;
  int clock_hour = -1;
  bool pm = false;
  for (const auto& item : format.items) {
    bool matched = true;
    switch (item.token) {
      case Token::Literal:
        matched = p < s.size() && s[p] == item.literal;
        ++p;
        break;
      case Token::Year4: matched = fixedDigits(s, p, 4, f.year); break;
      case Token::Year2:
        matched = fixedDigits(s, p, 2, f.year);
        f.year += f.year >= 69 ? 1900 : 2000;
        break;
      case Token::Month2: matched = fixedDigits(s, p, 2, f.month); break;
      case Token::Month12: matched = shortDigits(s, p, f.month); break;
      case Token::MonthName: {
        matched = false;
        if (p + 3 <= s.size()) {
          const char name[3] = {lower(s[p]), lower(s[p + 1]), lower(s[p + 2])};
          for (int m = 0; m < 12 && !matched; ++m) {
            if (std::string_view(name, 3) == kMonths[m]) {
              f.month = m + 1;
              matched = true;
            }
          }
          p += 3;
        }
        break;
      }
      case Token::Day2: matched = fixedDigits(s, p, 2, f.day); break;
      case Token::Day12: matched = shortDigits(s, p, f.day); break;
      case Token::Hour2: matched = fixedDigits(s, p, 2, f.hour); break;
      case Token::Hour12: matched = shortDigits(s, p, f.hour); break;
      case Token::ClockHour2: matched = fixedDigits(s, p, 2, clock_hour); break;
      case Token::ClockHour12: matched = shortDigits(s, p, clock_hour); break;
      case Token::Minute2: matched = fixedDigits(s, p, 2, f.minute); break;
      case Token::Second2: matched = fixedDigits(s, p, 2, f.second); break;
      case Token::Fraction: {
        int ignored = 0;
        const std::size_t start = p;
        matched = true;
        for (std::size_t i = 0; i < item.width && matched; ++i) matched = readDigits(s, p++, 1, ignored);
        if (matched) f.fraction = s.substr(start, item.width);
        break;
      }
      case Token::AmPm:
        matched = p + 2 <= s.size() && (lower(s[p]) == 'a' || lower(s[p]) == 'p') && lower(s[p + 1]) == 'm';
        if (matched) pm = lower(s[p]) == 'p';
        p += 2;
        break;
      case Token::Offset: matched = readOffset(s, p, f); break;
    }
    if (!matched) return false;
  }
  if (p != s.size() || !validDate(f)) return false;
  if (clock_hour >= 0) {
    if (clock_hour < 1 || clock_hour > 12) return false;
    f.hour = clock_hour % 12 + (pm ? 12 : 0);
  }
  return validTime(f);
}

void put2(char*& out, int v) {
  *out++ = static_cast<char>('0' + v / 10);
  *out++ = static_cast<char>('0' + v % 10);
}

// FHIR text of the fields: a date, or a date-time with its offset (Z when the input said Z).
std::size_t render(const Fields& f, bool with_time, char* out) {
  char* p = out;
  put2(p, f.year / 100);
  put2(p, f.year % 100);
  *p++ = '-';
  put2(p, f.month);
  *p++ = '-';
  put2(p, f.day);
  if (with_time) {
    *p++ = 'T';
    put2(p, f.hour);
    *p++ = ':';
    put2(p, f.minute);
    *p++ = ':';
    put2(p, f.second);
    if (!f.fraction.empty()) {
      *p++ = '.';
      std::memcpy(p, f.fraction.data(), f.fraction.size());
      p += f.fraction.size();
    }
    if (f.zulu) {
      *p++ = 'Z';
    } else {
      const int magnitude = f.offset < 0 ? -f.offset : f.offset;
      *p++ = f.offset < 0 ? '-' : '+';
      put2(p, magnitude / 3600);
      *p++ = ':';
      put2(p, magnitude / 60 % 60);
    }
  }
  return static_cast<std::size_t>(p - out);
}

// Places a local date-time in the zone (DST rule in TimeZone::resolveLocal).
DateParse::Status placeInZone(const TimeZone& zone, Fields& f) {
  const std::int64_t local = dates::daysFromCivil(f.year, static_cast<unsigned>(f.month), static_cast<unsigned>(f.day)) *
                                 86400 +
                             f.hour * 3600 + f.minute * 60 + f.second;
  const ResolvedLocalTime resolved = zone.resolveLocal(local);
  if (resolved.offset % 60 != 0 || resolved.offset > 14 * 3600 || resolved.offset < -14 * 3600) {
    return DateParse::Status::NoFhirOffset;
  }
  f.has_offset = true;
  f.zulu = false;
  f.offset = resolved.offset;
  if (resolved.kind == LocalTimeKind::Gap) {  // the wall clock jumped: write the time it showed
    const std::int64_t shifted = resolved.utc + resolved.offset;
    const std::int64_t days = shifted >= 0 ? shifted / 86400 : (shifted - 86399) / 86400;
    const std::int64_t seconds = shifted - days * 86400;
    const dates::CivilDate date = dates::civilFromDays(days);
    if (date.year < 1 || date.year > 9999) return DateParse::Status::Invalid;
    f.year = static_cast<int>(date.year);
    f.month = static_cast<int>(date.month);
    f.day = static_cast<int>(date.day);
    f.hour = static_cast<int>(seconds / 3600);
    f.minute = static_cast<int>(seconds / 60 % 60);
    f.second = static_cast<int>(seconds % 60);
  }
  return DateParse::Status::Ok;
}

Error formatError(std::string message, std::string_view text) {
  return makeError(ErrorCode::Config, std::move(message) + " in date format " + quoteCode(text), "",
                   "tokens: " + std::string(kTokenList) + "; see \"Dates and times in other formats\" in mappers/README.md");
}

bool isNumeric(Token t) { return t != Token::Literal && t != Token::MonthName && t != Token::AmPm && t != Token::Offset; }

}  // namespace

Result<DateFormat> compileDateFormat(std::string_view text, bool with_time) {
  DateFormat format;
  format.text = std::string(text);
  if (text == "ISO") {
    format.iso = true;
    format.has_offset = true;  // reads an offset, so needs no timezone
    return format;
  }
  if (text.empty() || text.size() > 64) return formatError("a format has 1 to 64 characters", text);
  enum Field { kYear, kMonth, kDay, kHour, kClockHour, kMinute, kSecond, kFraction, kAmPm, kOffset, kFields };
  static constexpr std::string_view kFieldNames[] = {"year",    "month",   "day",      "hour",  "hour",
                                                     "minutes", "seconds", "fraction", "AM/PM", "offset"};
  bool seen[kFields] = {};
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!letter || c == 'T') {
      format.items.push_back({Token::Literal, c, 0});
      ++i;
      continue;
    }
    std::size_t run = 1;
    while (i + run < text.size() && text[i + run] == c) ++run;
    const std::string_view token = text.substr(i, run);
    i += run;
    Token t = Token::Literal;
    Field field = kFields;
    switch (c) {
      case 'Y':
        t = run == 4 ? Token::Year4 : run == 2 ? Token::Year2 : Token::Literal;
        field = kYear;
        break;
      case 'M':
        t = run == 1 ? Token::Month12 : run == 2 ? Token::Month2 : run == 3 ? Token::MonthName : Token::Literal;
        field = kMonth;
        break;
      case 'D':
        t = run == 1 ? Token::Day12 : run == 2 ? Token::Day2 : Token::Literal;
        field = kDay;
        break;
      case 'H':
        t = run == 1 ? Token::Hour12 : run == 2 ? Token::Hour2 : Token::Literal;
        field = kHour;
        break;
      case 'h':
        t = run == 1 ? Token::ClockHour12 : run == 2 ? Token::ClockHour2 : Token::Literal;
        field = kClockHour;
        break;
      case 'm':
        t = run == 2 ? Token::Minute2 : Token::Literal;
        field = kMinute;
        break;
      case 's':
        t = run == 2 ? Token::Second2 : Token::Literal;
        field = kSecond;
        break;
      case 'S':
        t = run <= 9 ? Token::Fraction : Token::Literal;
        field = kFraction;
        break;
      case 'A':
      case 'a':
        t = run == 1 ? Token::AmPm : Token::Literal;
        field = kAmPm;
        break;
      case 'Z':
        t = run == 1 ? Token::Offset : Token::Literal;
        field = kOffset;
        break;
      default: break;
    }
    if (t == Token::Literal) return formatError("unknown token " + quoteCode(token), text);
    if (seen[field] || (field == kHour && seen[kClockHour]) || (field == kClockHour && seen[kHour])) {
      return formatError("the " + std::string(kFieldNames[field]) + " appears twice", text);
    }
    seen[field] = true;
    format.items.push_back({t, 0, static_cast<std::uint8_t>(t == Token::Fraction ? run : 0)});
  }
  if (!seen[kYear] || !seen[kMonth] || !seen[kDay]) {
    return formatError("a format needs a year (YYYY or YY), a month (MM, M or MMM) and a day (DD or D)", text);
  }
  const bool any_time = seen[kHour] || seen[kClockHour] || seen[kMinute] || seen[kSecond] || seen[kFraction] ||
                        seen[kAmPm] || seen[kOffset];
  if (!with_time && any_time) {
    return formatError("$date formats have no time fields; use $dateTime for values with a time", text);
  }
  if (with_time) {
    if ((!seen[kHour] && !seen[kClockHour]) || !seen[kMinute]) {
      return formatError("a $dateTime format needs hours (HH, H, or hh/h with A) and minutes (mm); use $date for dates",
                         text);
    }
    if (seen[kClockHour] != seen[kAmPm]) {
      return formatError(
          seen[kAmPm] ? "A (AM/PM) needs a 12-hour clock hour, hh or h" : "hh and h (12-hour clock) need A (AM/PM)", text);
    }
    if (seen[kFraction] && !seen[kSecond]) return formatError("fractions of a second (S) need seconds (ss)", text);
  }
  // "MD" cannot tell where one number ends: a one-or-two-digit token must be followed by a
  // separator, a month name, AM/PM, an offset, or the end.
  for (std::size_t i = 0; i + 1 < format.items.size(); ++i) {
    const Token t = format.items[i].token;
    if (t != Token::Month12 && t != Token::Day12 && t != Token::Hour12 && t != Token::ClockHour12) continue;
    const auto& next = format.items[i + 1];
    if (isNumeric(next.token) || (next.token == Token::Literal && isDigit(next.literal))) {
      return formatError("a one-or-two-digit token (M, D, H, h) must be followed by a separator", text);
    }
  }
  format.has_offset = seen[kOffset];
  return format;
}

void describeDateSpec(DateSpec& spec) {
  std::string text;
  for (std::size_t i = 0; i < spec.formats.size(); ++i) {
    const auto& f = spec.formats[i];
    if (i > 0) text += i + 1 == spec.formats.size() ? " or " : ", ";
    if (!f.iso) {
      text += f.text;
    } else if (!spec.with_time) {
      text += "YYYY-MM-DD";
    } else {
      text += spec.zone ? "RFC 3339 such as 2026-11-20T09:00:00 (offset optional)"
                        : "RFC 3339 with an offset such as 2026-11-20T09:00:00-05:00";
    }
  }
  if (spec.with_time && spec.zone) text += ", local times in " + spec.zone->name();
  text += spec.with_time ? " naming a real day and time" : " naming a real day";
  spec.expectation = std::move(text);
}

DateParse parseDate(const DateSpec& spec, std::string_view text, char* out) {
  DateParse result;
  bool found = false;
  bool no_offset = false;
  char other[kMaxDateText];
  for (std::size_t i = 0; i < spec.formats.size(); ++i) {
    Fields f;
    if (!matchFormat(spec.formats[i], text, spec.with_time, spec.zone != nullptr, f)) continue;
    if (spec.with_time && !f.has_offset) {
      if (!spec.zone) continue;                        // compileDateFormat's caller requires a zone for offset-less formats
      const auto placed = placeInZone(*spec.zone, f);  // compile ensured a zone for offset-less formats
      if (placed == DateParse::Status::NoFhirOffset) no_offset = true;
      if (placed != DateParse::Status::Ok) continue;
    }
    if (!found) {
      result.size = render(f, spec.with_time, out);
      result.first = i;
      found = true;
      continue;
    }
    // Every format is tried: a value two formats read differently (03/04 as March or April) is
    // an error rather than a silent guess.
    const std::size_t size = render(f, spec.with_time, other);
    if (size != result.size || std::memcmp(other, out, size) != 0) {
      result.status = DateParse::Status::Ambiguous;
      result.second = i;
      return result;
    }
  }
  result.status = found ? DateParse::Status::Ok : no_offset ? DateParse::Status::NoFhirOffset : DateParse::Status::Invalid;
  return result;
}

}  // namespace gw::mapping

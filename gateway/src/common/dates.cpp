#include "common/dates.hpp"

namespace gw::dates {
namespace {

std::int64_t floorDiv(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

}  // namespace

std::int64_t daysFromCivil(std::int64_t y, unsigned month, unsigned day) {
  // Signed throughout, so a day 00 the validator's comparison reads still gives a day number.
  const std::int64_t m = month;
  const std::int64_t d = day;
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = floorDiv(y, 400);
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

CivilDate civilFromDays(std::int64_t z) {
  z += 719468;
  const std::int64_t era = floorDiv(z, 146097);
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0), m, d};
}

std::optional<CivilDate> readCalendarDate(std::string_view s) {
  int year = 0;
  int month = 0;
  int day = 0;
  if (!readDigits(s, 0, 4, year) || s.size() < 5 || s[4] != '-' || !readDigits(s, 5, 2, month) || s.size() < 8 ||
      s[7] != '-' || !readDigits(s, 8, 2, day) || year < 1 || month < 1 || month > 12 || day < 1 ||
      day > daysInMonth(year, month)) {
    return std::nullopt;
  }
  return CivilDate{year, static_cast<unsigned>(month), static_cast<unsigned>(day)};
}

Rfc3339Status readRfc3339(std::string_view s, DateTime& t, const Rfc3339Rules& rules) {
  using enum Rfc3339Status;
  if (!readDigits(s, 0, 4, t.year) || s.size() < 5 || s[4] != '-' || !readDigits(s, 5, 2, t.month) || s.size() < 8 ||
      s[7] != '-' || !readDigits(s, 8, 2, t.day)) {
    return DateSyntax;
  }
  if (s.size() < 11 || (s[10] != 'T' && s[10] != 't' && !(rules.url_spaces && s[10] == ' '))) return NoTime;
  if (!readDigits(s, 11, 2, t.hour) || s.size() < 14 || s[13] != ':' || !readDigits(s, 14, 2, t.minute) || s.size() < 17 ||
      s[16] != ':' || !readDigits(s, 17, 2, t.second)) {
    return TimeSyntax;
  }
  if (t.month < 1 || t.month > 12) return MonthRange;
  if (t.day < 1 || t.day > daysInMonth(t.year, t.month) || (t.year == 0 && !rules.year_zero)) return DayRange;
  if (t.hour > 23 || t.minute > 59 || t.second > 60) return TimeRange;
  std::size_t pos = 19;
  t.fraction = {};
  if (pos < s.size() && s[pos] == '.') {
    const std::size_t start = ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    if (pos == start) return EmptyFraction;
    if (pos - start > rules.max_fraction_digits) return LongFraction;
    t.fraction = s.substr(start, pos - start);
  }
  if (pos >= s.size()) return NoZone;
  t.offset_minutes = 0;
  const char sign = s[pos];
  if (sign == 'Z' || sign == 'z') {
    ++pos;
  } else if (sign == '+' || sign == '-' || (rules.url_spaces && sign == ' ')) {
    int hours = 0;
    int minutes = 0;
    if (!readDigits(s, pos + 1, 2, hours) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !readDigits(s, pos + 4, 2, minutes)) {
      return OffsetSyntax;
    }
    if (minutes > 59 || hours * 60 + minutes > rules.max_offset_minutes) return OffsetRange;
    t.offset_minutes = (hours * 60 + minutes) * (sign == '-' ? -1 : 1);
    pos += 6;
  } else {
    return ZoneSyntax;
  }
  return pos == s.size() ? Ok : TrailingText;
}

std::int64_t unixMillis(const DateTime& t) {
  int millis = 0;
  for (std::size_t i = 0; i < 3; ++i) millis = millis * 10 + (i < t.fraction.size() ? t.fraction[i] - '0' : 0);
  const std::int64_t days = daysFromCivil(t.year, static_cast<unsigned>(t.month), static_cast<unsigned>(t.day));
  const std::int64_t seconds = days * 86400 + t.hour * 3600 + t.minute * 60 + t.second - t.offset_minutes * 60LL;
  return seconds * 1000 + millis;
}

}  // namespace gw::dates

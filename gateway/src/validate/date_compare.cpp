#include "validate/date_compare.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "common/dates.hpp"

namespace gw::validate {
namespace {

struct DateTimeParts {
  int precision = 0;  // 1 year, 2 month, 3 day, 4 time
  int year = 0, month = 0, day = 0;
  std::int64_t utc_seconds = 0;  // precision 4 only
  double fraction = 0;           // precision 4 only
};

using dates::readDigits;

// Parses a (format-checked) date/dateTime/instant; false when it is not one.
bool parseDateTime(std::string_view s, DateTimeParts& out) {
  if (!readDigits(s, 0, 4, out.year)) return false;
  out.precision = 1;
  if (s.size() == 4) return true;
  if (s[4] != '-' || !readDigits(s, 5, 2, out.month)) return false;
  out.precision = 2;
  if (s.size() == 7) return true;
  if (s[7] != '-' || !readDigits(s, 8, 2, out.day)) return false;
  out.precision = 3;
  if (s.size() == 10) return true;
  int h = 0, mi = 0, sec = 0;
  if (s[10] != 'T' || !readDigits(s, 11, 2, h) || s.size() < 19 || s[13] != ':' || !readDigits(s, 14, 2, mi) ||
      s[16] != ':' || !readDigits(s, 17, 2, sec)) {
    return false;
  }
  std::size_t p = 19;
  double scale = 0.1;
  if (p < s.size() && s[p] == '.') {
    for (++p; p < s.size() && s[p] >= '0' && s[p] <= '9'; ++p) {
      out.fraction += (s[p] - '0') * scale;
      scale /= 10;
    }
  }
  int offset_minutes = 0;
  if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int oh = 0, om = 0;
    if (!readDigits(s, p + 1, 2, oh) || p + 3 >= s.size() || !readDigits(s, p + 4, 2, om)) return false;
    offset_minutes = (oh * 60 + om) * (s[p] == '-' ? -1 : 1);
  } else if (p >= s.size() || s[p] != 'Z') {
    return false;  // FHIR requires a time zone with a time
  }
  out.precision = 4;
  const std::int64_t days = dates::daysFromCivil(out.year, static_cast<unsigned>(out.month), static_cast<unsigned>(out.day));
  out.utc_seconds = days * 86400 + h * 3600 + mi * 60 + sec - static_cast<std::int64_t>(offset_minutes) * 60;
  return true;
}

}  // namespace

int compareDateTimes(std::string_view a, std::string_view b) {
  DateTimeParts x, y;
  if (!parseDateTime(a, x) || !parseDateTime(b, y)) return 2;
  if (x.precision == 4 && y.precision == 4) {
    if (x.utc_seconds != y.utc_seconds) return x.utc_seconds < y.utc_seconds ? -1 : 1;
    if (x.fraction != y.fraction) return x.fraction < y.fraction ? -1 : 1;
    return 0;
  }
  const int common = std::min(x.precision, y.precision);
  const std::array<std::pair<int, int>, 3> fields{{{x.year, y.year}, {x.month, y.month}, {x.day, y.day}}};
  for (int i = 0; i < common && i < 3; ++i) {
    const auto [l, r] = fields[static_cast<std::size_t>(i)];
    if (l != r) return l < r ? -1 : 1;
  }
  return x.precision == y.precision ? 0 : 2;
}

}  // namespace gw::validate

#include "mapping/dates.hpp"

namespace gw::mapping {
namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t count, int& value) {
  if (pos + count > s.size()) return false;
  value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    value = value * 10 + (s[i] - '0');
  }
  return true;
}

int daysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return 29;
  return kDays[month - 1];
}

// The first ten characters as a calendar date.
bool datePart(std::string_view s) {
  int year = 0;
  int month = 0;
  int day = 0;
  return s.size() >= 10 && digits(s, 0, 4, year) && s[4] == '-' && digits(s, 5, 2, month) && s[7] == '-' &&
         digits(s, 8, 2, day) && year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

}  // namespace

bool isCalendarDate(std::string_view text) { return text.size() == 10 && datePart(text); }

bool normaliseDateTime(std::string_view s, std::string& out) {
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!datePart(s) || s.size() < 20 || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, hour) || s[13] != ':' ||
      !digits(s, 14, 2, minute) || s[16] != ':' || !digits(s, 17, 2, second) || hour > 23 || minute > 59 ||
      second > 60) {
    return false;
  }
  std::size_t p = 19;
  if (s[p] == '.') {
    const std::size_t start = ++p;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    if (p == start || p - start > 9) return false;
  }
  if (p >= s.size()) return false;  // FHIR needs the offset when a time is given
  if (s[p] == 'Z' || s[p] == 'z') {
    if (p + 1 != s.size()) return false;
  } else if (s[p] == '+' || s[p] == '-') {
    int offset_hour = 0;
    int offset_minute = 0;
    if (p + 6 != s.size() || !digits(s, p + 1, 2, offset_hour) || s[p + 3] != ':' ||
        !digits(s, p + 4, 2, offset_minute) || offset_minute > 59 || offset_hour > 14 ||
        (offset_hour == 14 && offset_minute != 0)) {
      return false;
    }
  } else {
    return false;
  }
  out.assign(s.data(), s.size());
  out[10] = 'T';
  if (out.back() == 'z') out.back() = 'Z';
  return true;
}

}  // namespace gw::mapping

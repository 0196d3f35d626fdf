#include "validate/primitives.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "common/dates.hpp"
#include "common/json.hpp"

namespace gw::validate {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

using dates::daysInMonth;
using dates::readDigits;

// YYYY, YYYY-MM or YYYY-MM-DD (a real calendar day); returns the number of characters consumed
// (0 on error) and whether a full date was read.
std::size_t parseDate(std::string_view s, bool& full) {
  full = false;
  int year = 0, month = 0, day = 0;
  if (!readDigits(s, 0, 4, year) || year == 0) return 0;
  if (s.size() == 4 || s[4] != '-') return 4;
  if (!readDigits(s, 5, 2, month) || month < 1 || month > 12) return 0;
  if (s.size() == 7 || s[7] != '-') return 7;
  if (!readDigits(s, 8, 2, day) || day < 1 || day > daysInMonth(year, month)) return 0;
  full = true;
  return 10;
}

// hh:mm:ss(.fraction)? at `pos`; returns the end position or npos.
std::size_t parseTime(std::string_view s, std::size_t pos) {
  int h = 0, m = 0, sec = 0;
  if (!readDigits(s, pos, 2, h) || h > 23) return std::string_view::npos;
  if (pos + 2 >= s.size() || s[pos + 2] != ':') return std::string_view::npos;
  if (!readDigits(s, pos + 3, 2, m) || m > 59) return std::string_view::npos;
  if (pos + 5 >= s.size() || s[pos + 5] != ':') return std::string_view::npos;
  if (!readDigits(s, pos + 6, 2, sec) || sec > 60) return std::string_view::npos;
  std::size_t p = pos + 8;
  if (p < s.size() && s[p] == '.') {
    ++p;
    const std::size_t start = p;
    while (p < s.size() && isDigit(s[p])) ++p;
    if (p == start) return std::string_view::npos;
  }
  return p;
}

// Z or (+|-)hh:mm (up to 14:00) exactly at the end.
bool isTimezoneAtEnd(std::string_view s, std::size_t pos) {
  if (pos >= s.size()) return false;
  if (s[pos] == 'Z') return pos + 1 == s.size();
  if (s[pos] != '+' && s[pos] != '-') return false;
  int h = 0, m = 0;
  if (pos + 6 != s.size() || s[pos + 3] != ':') return false;
  if (!readDigits(s, pos + 1, 2, h) || !readDigits(s, pos + 4, 2, m) || m > 59) return false;
  return h < 14 || (h == 14 && m == 0);
}

bool hasWhitespace(std::string_view s) {
  // Eight bytes at a time: a word with no byte below 0x21 has no whitespace (the common case for
  // URIs); a flagged word is checked byte by byte.
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (((w - 0x2121212121212121ULL) & ~w & 0x8080808080808080ULL) == 0) continue;
    for (std::size_t k = i; k < i + 8; ++k) {
      if (isSpace(s[k])) return true;
    }
  }
  for (; i < s.size(); ++i) {
    if (isSpace(s[i])) return true;
  }
  return false;
}

// FHIR code: [^\s]+( [^\s]+)* — no leading, trailing or repeated whitespace.
bool isValidCode(std::string_view s) {
  if (s.empty() || isSpace(s.front()) || isSpace(s.back())) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (isSpace(s[i]) && (s[i] != ' ' || isSpace(s[i + 1]))) return false;
  }
  return true;
}

bool isValidOidUrn(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:oid:";
  if (s.substr(0, kPrefix.size()) != kPrefix) return false;
  s.remove_prefix(kPrefix.size());
  if (s.empty() || s[0] < '0' || s[0] > '2') return false;
  bool expect_digit = false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (expect_digit) return false;
      expect_digit = true;
    } else if (isDigit(s[i])) {
      if (expect_digit && s[i] == '0' && i + 1 < s.size() && isDigit(s[i + 1])) return false;
      expect_digit = false;
    } else {
      return false;
    }
  }
  return !expect_digit && s.size() > 1;
}

bool isValidBase64(std::string_view s) {
  std::size_t n = 0, padding = 0;
  for (char c : s) {
    if (isSpace(c)) continue;
    if (c == '=') {
      ++padding;
    } else if (padding > 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '+' || c == '/')) {
      return false;
    }
    ++n;
  }
  return n % 4 == 0 && padding <= 2;
}

bool isValidXhtmlDiv(std::string_view s) {
  return s.substr(0, 4) == "<div" && s.find("xmlns=\"http://www.w3.org/1999/xhtml\"") != std::string_view::npos &&
         s.size() >= 10 && s.substr(s.size() - 6) == "</div>";
}

}  // namespace

bool isValidDate(std::string_view s) {
  bool full = false;
  const std::size_t n = parseDate(s, full);
  return n != 0 && n == s.size();
}

bool isValidDateTime(std::string_view s) {
  bool full = false;
  const std::size_t n = parseDate(s, full);
  if (n == 0) return false;
  if (n == s.size()) return true;
  if (!full || s[n] != 'T') return false;
  const std::size_t end = parseTime(s, n + 1);
  return end != std::string_view::npos && isTimezoneAtEnd(s, end);
}

bool isValidInstant(std::string_view s) {
  bool full = false;
  const std::size_t n = parseDate(s, full);
  return full && n < s.size() && isValidDateTime(s);
}

bool isValidId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c) || c == '-' || c == '.')) return false;
  }
  return true;
}

bool isValidUuidUrn(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:uuid:";
  if (s.size() != kPrefix.size() + 36 || s.substr(0, kPrefix.size()) != kPrefix) return false;
  s.remove_prefix(kPrefix.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isHex(s[i])) return false;
  }
  return true;
}

Primitive primitiveFor(std::string_view t) {
  static constexpr std::array<std::pair<std::string_view, Primitive>, 20> kTypes{{
      {"boolean", Primitive::Boolean},
      {"integer", Primitive::Integer},
      {"unsignedInt", Primitive::UnsignedInt},
      {"positiveInt", Primitive::PositiveInt},
      {"decimal", Primitive::Decimal},
      {"string", Primitive::String},
      {"markdown", Primitive::Markdown},
      {"code", Primitive::Code},
      {"id", Primitive::Id},
      {"uri", Primitive::Uri},
      {"url", Primitive::Url},
      {"canonical", Primitive::Canonical},
      {"oid", Primitive::Oid},
      {"uuid", Primitive::Uuid},
      {"base64Binary", Primitive::Base64Binary},
      {"date", Primitive::Date},
      {"dateTime", Primitive::DateTime},
      {"instant", Primitive::Instant},
      {"time", Primitive::Time},
      {"xhtml", Primitive::Xhtml},
  }};
  for (const auto& [name, p] : kTypes) {
    if (name == t) return p;
  }
  return Primitive::None;
}

std::string_view primitiveProblem(Primitive type, const rapidjson::Value& v) {
  switch (type) {
    case Primitive::None: return {};
    case Primitive::Boolean: return v.IsBool() ? std::string_view{} : "must be a JSON boolean (true or false)";
    case Primitive::Integer:
      return v.IsInt() ? std::string_view{} : "must be a JSON integer between -2147483648 and 2147483647";
    case Primitive::UnsignedInt:
      return v.IsInt() && v.GetInt() >= 0 ? std::string_view{} : "must be a JSON integer of 0 or more (unsignedInt)";
    case Primitive::PositiveInt:
      return v.IsInt() && v.GetInt() >= 1 ? std::string_view{} : "must be a JSON integer of 1 or more (positiveInt)";
    case Primitive::Decimal: return v.IsNumber() ? std::string_view{} : "must be a JSON number (decimal), not a string";
    default: break;
  }
  if (!v.IsString()) return "must be a JSON string";
  const std::string_view s = json::view(v);
  if (s.empty()) return "must not be an empty string (ele-1: leave the element out instead)";
  switch (type) {
    case Primitive::String:
    case Primitive::Markdown: return {};
    case Primitive::Code:
      return isValidCode(s) ? std::string_view{} : "is not a valid code (no leading, trailing or repeated whitespace)";
    case Primitive::Id:
      return isValidId(s) ? std::string_view{} : "is not a valid id (1-64 characters A-Z, a-z, 0-9, '-' or '.')";
    case Primitive::Uri:
    case Primitive::Url:
    case Primitive::Canonical: return hasWhitespace(s) ? "is not a valid URI (it contains whitespace)" : std::string_view{};
    case Primitive::Oid: return isValidOidUrn(s) ? std::string_view{} : "is not a valid OID (urn:oid:1.2.3...)";
    case Primitive::Uuid:
      return isValidUuidUrn(s) ? std::string_view{} : "is not a valid UUID URN (urn:uuid: and 36 hex digits with dashes)";
    case Primitive::Base64Binary: return isValidBase64(s) ? std::string_view{} : "is not valid base64";
    case Primitive::Date:
      return isValidDate(s) ? std::string_view{} : "is not a valid date (YYYY, YYYY-MM or YYYY-MM-DD, a real calendar day)";
    case Primitive::DateTime:
      return isValidDateTime(s) ? std::string_view{}
                                : "is not a valid dateTime (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a "
                                  "time zone, Z or +hh:mm)";
    case Primitive::Instant:
      return isValidInstant(s) ? std::string_view{}
                               : "is not a valid instant (YYYY-MM-DDThh:mm:ss[.fff] with a time zone, Z or +hh:mm)";
    case Primitive::Time: {
      const std::size_t end = parseTime(s, 0);
      return end == s.size() ? std::string_view{} : "is not a valid time (hh:mm:ss)";
    }
    case Primitive::Xhtml:
      return isValidXhtmlDiv(s) ? std::string_view{}
                                : "is not a narrative div (<div xmlns=\"http://www.w3.org/1999/xhtml\">...</div>)";
    default: return {};
  }
}

}  // namespace gw::validate

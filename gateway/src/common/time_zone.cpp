#include "common/time_zone.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/dates.hpp"

namespace gw::tz {
namespace {

constexpr std::int64_t kDay = 86400;
constexpr std::int32_t kMaxFhirOffset = 14 * 3600;

std::int64_t floorDiv(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

using dates::civilFromDays;
using dates::daysFromCivil;
using dates::daysInMonth;
using dates::isLeapYear;

// The name as written, quoted, cut at 64 bytes, control characters shown as '?' (it comes from
// configuration files and mappers, and ends up in logs).
std::string quoteName(std::string_view name) {
  std::string out = "'";
  for (std::size_t i = 0; i < name.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    out += (c < 0x20 || c >= 0x7f) ? '?' : static_cast<char>(c);
  }
  return out + (name.size() > 64 ? "...'" : "'");
}

Error zoneError(std::string message, std::string_view name, std::string hint = {}) {
  if (hint.empty()) {
    hint = "use an IANA zone name such as America/New_York (from the tzdata package) or a fixed offset such as -05:00";
  }
  return makeError(ErrorCode::Config, std::move(message) + " (time zone " + quoteName(name) + ")", "", std::move(hint));
}

// Big-endian reader over TZif bytes; every read is bounds-checked by the caller via `fits`.
struct Reader {
  std::string_view bytes;
  std::size_t pos = 0;
  bool fits(std::size_t n) const { return pos <= bytes.size() && bytes.size() - pos >= n; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[pos++]);
    return v;
  }
  std::int64_t i64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[pos++]);
    return static_cast<std::int64_t>(v);
  }
};

struct TzifCounts {
  std::uint32_t isut, isstd, leap, time, type, chars;
};

}  // namespace

bool parseFixedOffset(std::string_view s, std::int32_t& seconds) {
  int hours = 0;
  int minutes = 0;
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || !dates::readDigits(s, 1, 2, hours) || s[3] != ':' ||
      !dates::readDigits(s, 4, 2, minutes)) {
    return false;
  }
  const std::int32_t value = hours * 3600 + minutes * 60;
  if (minutes > 59 || value > kMaxFhirOffset) return false;
  seconds = s[0] == '-' ? -value : value;
  return true;
}

// The POSIX TZ string of a TZif footer, e.g. "EST5EDT,M3.2.0,M11.1.0" or "<+0530>-5:30".
struct TimeZone::PosixRule {
  struct When {
    char kind = 'M';  // 'J': Julian day 1-365 without Feb 29; 'N': day 0-365; 'M': month.week.weekday
    int a = 0;
    int b = 0;
    int c = 0;
    std::int32_t time = 7200;  // local seconds after midnight (may be negative or beyond 24h)
  };
  std::int32_t std_offset = 0;  // seconds east of UTC
  bool has_dst = false;
  std::int32_t dst_offset = 0;
  When start;
  When end;

  // Midnight (local) of the rule's day in `year`, as days since the epoch.
  static std::int64_t day(const When& w, std::int64_t year) {
    const std::int64_t jan1 = daysFromCivil(year, 1, 1);
    if (w.kind == 'J') return jan1 + w.a - 1 + (isLeapYear(year) && w.a >= 60 ? 1 : 0);
    if (w.kind == 'N') return jan1 + w.a;
    const auto month = static_cast<unsigned>(w.a);
    const std::int64_t first = daysFromCivil(year, month, 1);
    const auto first_weekday = static_cast<int>(((first % 7) + 11) % 7);  // 1970-01-01 was a Thursday (4)
    int dom = 1 + ((w.c - first_weekday) % 7 + 7) % 7 + (w.b - 1) * 7;
    while (dom > daysInMonth(year, static_cast<int>(month))) dom -= 7;  // week 5 = the last one
    return first + dom - 1;
  }

  std::int32_t offsetAt(std::int64_t utc) const {
    if (!has_dst) return std_offset;
    const std::int64_t year = civilFromDays(floorDiv(utc + std_offset, kDay)).year;
    const std::int64_t begins = day(start, year) * kDay + start.time - std_offset;  // given in standard time
    const std::int64_t ends = day(end, year) * kDay + end.time - dst_offset;        // given in daylight time
    const bool dst = begins < ends ? (utc >= begins && utc < ends) : !(utc >= ends && utc < begins);
    return dst ? dst_offset : std_offset;
  }
};

namespace {

// Parsers for the POSIX TZ grammar (RFC 8536 section 3.3.1).
struct PosixParser {
  std::string_view s;
  std::size_t i = 0;

  bool name() {
    if (i < s.size() && s[i] == '<') {
      const std::size_t close = s.find('>', i);
      if (close == std::string_view::npos || close == i + 1) return false;
      i = close + 1;
      return true;
    }
    const std::size_t start = i;
    while (i < s.size() && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) ++i;
    return i - start >= 3;
  }
  bool number(int& out, int max) {
    const std::size_t start = i;
    out = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 3) out = out * 10 + (s[i++] - '0');
    return i > start && out <= max;
  }
  // [+-]hh[:mm[:ss]] in seconds.
  bool hms(std::int32_t& out, int max_hours) {
    int sign = 1;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) sign = s[i++] == '-' ? -1 : 1;
    int h = 0;
    int m = 0;
    int sec = 0;
    if (!number(h, max_hours)) return false;
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!number(m, 59)) return false;
      if (i < s.size() && s[i] == ':') {
        ++i;
        if (!number(sec, 59)) return false;
      }
    }
    out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool when(TimeZone::PosixRule::When& w) {
    if (i < s.size() && s[i] == 'M') {
      ++i;
      w.kind = 'M';
      if (!number(w.a, 12) || w.a < 1 || i >= s.size() || s[i++] != '.' || !number(w.b, 5) || w.b < 1 || i >= s.size() ||
          s[i++] != '.' || !number(w.c, 6)) {
        return false;
      }
    } else if (i < s.size() && s[i] == 'J') {
      ++i;
      w.kind = 'J';
      if (!number(w.a, 365) || w.a < 1) return false;
    } else {
      w.kind = 'N';
      if (!number(w.a, 365)) return false;
    }
    w.time = 7200;
    if (i < s.size() && s[i] == '/') {
      ++i;
      if (!hms(w.time, 167)) return false;
    }
    return true;
  }
};

// Empty footer: nullptr rule. False when the footer cannot be read.
bool parsePosixRule(std::string_view text, std::shared_ptr<const TimeZone::PosixRule>& out) {
  if (text.empty()) return true;
  auto rule = std::make_shared<TimeZone::PosixRule>();
  PosixParser p{text};
  std::int32_t west = 0;
  if (!p.name() || !p.hms(west, 24)) return false;
  rule->std_offset = -west;
  if (p.i < text.size()) {
    if (!p.name()) return false;
    rule->has_dst = true;
    rule->dst_offset = rule->std_offset + 3600;
    if (p.i < text.size() && text[p.i] != ',') {
      if (!p.hms(west, 24)) return false;
      rule->dst_offset = -west;
    }
    if (p.i < text.size()) {
      if (text[p.i++] != ',' || !p.when(rule->start) || p.i >= text.size() || text[p.i++] != ',' || !p.when(rule->end)) {
        return false;
      }
    } else {
      rule->start = {'M', 3, 2, 0, 7200};  // POSIX leaves the default open; US rules, as glibc does
      rule->end = {'M', 11, 1, 0, 7200};
    }
  }
  if (p.i != text.size()) return false;
  out = std::move(rule);
  return true;
}

bool isZoneName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' || name.back() == '/') return false;
  std::size_t segment_start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '/') {
      const std::string_view segment = name.substr(segment_start, i - segment_start);
      if (segment.empty() || segment == "." || segment == "..") return false;
      segment_start = i + 1;
      continue;
    }
    const char c = name[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '+')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::shared_ptr<const TimeZone> TimeZone::fixed(std::string name, std::int32_t offset_seconds) {
  std::shared_ptr<TimeZone> zone(new TimeZone());
  zone->name_ = std::move(name);
  zone->initial_offset_ = offset_seconds;
  return zone;
}

Result<std::shared_ptr<const TimeZone>> TimeZone::fromTzif(std::string_view name, std::string_view bytes) {
  const auto bad = [&](std::string why) {
    return zoneError("the zone file is not a readable TZif file: " + std::move(why), name,
                     "reinstall the tzdata package, or use a fixed offset such as -05:00");
  };
  Reader r{bytes};
  const auto header = [&](TzifCounts& c) -> bool {
    if (!r.fits(44) || bytes.substr(r.pos, 4) != "TZif") return false;
    r.pos += 20;  // magic, version, reserved
    c = {r.u32(), r.u32(), r.u32(), r.u32(), r.u32(), r.u32()};
    return c.type >= 1 && c.type <= 256 && c.time <= 1'000'000 && c.chars <= 65536 && c.leap <= 100'000 && c.isut <= 256 &&
           c.isstd <= 256;
  };
  TzifCounts c{};
  if (!header(c)) return bad("bad header");
  const char version = bytes[4];
  std::size_t time_size = 4;
  if (version >= '2') {
    // Skip the 32-bit block: the 64-bit one that follows covers every year.
    const std::size_t v1 = std::size_t{c.time} * 5 + std::size_t{c.type} * 6 + c.chars + std::size_t{c.leap} * 8 + c.isstd +
                           c.isut;
    if (!r.fits(v1)) return bad("truncated");
    r.pos += v1;
    if (!header(c)) return bad("bad second header");
    time_size = 8;
  }
  if (c.leap != 0) {
    return zoneError("zones that count leap seconds (\"right/...\") are not supported", name,
                     "use the zone without the right/ prefix, e.g. America/New_York");
  }
  const std::size_t block = std::size_t{c.time} * (time_size + 1) + std::size_t{c.type} * 6 + c.chars + c.isstd + c.isut;
  if (!r.fits(block)) return bad("truncated");

  std::shared_ptr<TimeZone> zone(new TimeZone());
  zone->name_ = std::string(name);
  zone->transitions_.reserve(c.time);
  for (std::uint32_t i = 0; i < c.time; ++i) {
    const std::int64_t t = time_size == 8 ? r.i64() : static_cast<std::int32_t>(r.u32());
    if (!zone->transitions_.empty() && t <= zone->transitions_.back()) return bad("transitions out of order");
    zone->transitions_.push_back(t);
  }
  std::vector<std::uint8_t> indexes(c.time);
  for (auto& index : indexes) {
    index = static_cast<std::uint8_t>(bytes[r.pos++]);
    if (index >= c.type) return bad("bad local time type index");
  }
  std::vector<std::int32_t> type_offsets(c.type);
  for (auto& offset : type_offsets) {
    offset = static_cast<std::int32_t>(r.u32());
    r.pos += 2;  // isdst, designation index
    if (offset < -25 * 3600 || offset > 26 * 3600) return bad("offset out of range");
  }
  r.pos += c.chars + c.isstd + c.isut;
  zone->offsets_.reserve(c.time);
  for (const auto index : indexes) zone->offsets_.push_back(type_offsets[index]);
  zone->initial_offset_ = type_offsets[0];

  if (time_size == 8) {
    // Footer: "\n" POSIX-TZ "\n", the rule after the last transition.
    if (!r.fits(2) || bytes[r.pos] != '\n') return bad("missing footer");
    const std::size_t end = bytes.find('\n', r.pos + 1);
    if (end == std::string_view::npos) return bad("unterminated footer");
    if (!parsePosixRule(bytes.substr(r.pos + 1, end - r.pos - 1), zone->rule_)) return bad("unsupported footer rule");
  }
  return std::shared_ptr<const TimeZone>(std::move(zone));
}

Result<std::shared_ptr<const TimeZone>> TimeZone::load(std::string_view name) {
  if (!name.empty() && (name.front() == '+' || name.front() == '-')) {
    std::int32_t offset = 0;
    if (!parseFixedOffset(name, offset)) {
      return zoneError("a fixed offset is written +hh:mm or -hh:mm, within -14:00..+14:00", name,
                       "for example \"-05:00\" or \"+05:30\"; or use an IANA zone name such as America/New_York");
    }
    return fixed(std::string(name), offset);
  }
  if (!isZoneName(name)) return zoneError("not a time zone name", name);
  const char* env = std::getenv("TZDIR");
  const std::filesystem::path dir = env != nullptr && *env != '\0' ? env : "/usr/share/zoneinfo";
  const std::filesystem::path file = dir / std::string(name);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return zoneError("unknown time zone: no zone file " + file.string(), name,
                     "check the spelling (IANA names such as America/New_York, Europe/Berlin, UTC), or install tzdata "
                     "(gateway/scripts/install-deps.sh)");
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) return zoneError("cannot read the zone file " + file.string(), name);
  return fromTzif(name, bytes.str());
}

std::int32_t TimeZone::ruleOffsetAt(std::int64_t utc) const { return rule_->offsetAt(utc); }

std::int32_t TimeZone::offsetAt(std::int64_t utc) const {
  if (transitions_.empty()) return rule_ ? ruleOffsetAt(utc) : initial_offset_;
  if (utc < transitions_.front()) return initial_offset_;
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), utc);
  const auto index = static_cast<std::size_t>(it - transitions_.begin()) - 1;
  if (index + 1 == transitions_.size() && rule_) return ruleOffsetAt(utc);
  return offsets_[index];
}

std::int64_t TimeZone::localDay(std::int64_t utc) const { return floorDiv(utc + offsetAt(utc), kDay); }

ResolvedLocalTime TimeZone::resolveLocal(std::int64_t local) const {
  // The offsets in force around this time (zones change at most once within two days in practice):
  // each is a candidate; it holds when the instant it gives has that very offset.
  std::int32_t candidates[3] = {offsetAt(local - kDay), offsetAt(local), offsetAt(local + kDay)};
  std::sort(std::begin(candidates), std::end(candidates));
  ResolvedLocalTime out;
  int valid = 0;
  for (int i = 2; i >= 0; --i) {  // largest offset first: the earliest instant
    if (i < 2 && candidates[i] == candidates[i + 1]) continue;
    const std::int64_t utc = local - candidates[i];
    if (offsetAt(utc) != candidates[i]) continue;
    if (valid++ == 0) {
      out.utc = utc;
      out.offset = candidates[i];
    }
  }
  if (valid > 0) {
    out.kind = valid > 1 ? LocalTimeKind::Overlap : LocalTimeKind::Unique;
    return out;
  }
  // A gap: read the time with the offset before the change, i.e. the one whose instant already
  // lies after the change (and so has a larger offset).
  std::int32_t before = candidates[0];
  for (const auto candidate : candidates) {
    if (offsetAt(local - candidate) > candidate) {
      before = candidate;
      break;
    }
  }
  out.utc = local - before;
  out.offset = offsetAt(out.utc);
  out.kind = LocalTimeKind::Gap;
  return out;
}

}  // namespace gw::tz

// TimeZone: offsets read from the system's TZif files (checked against known instants, including
// years only the POSIX footer rule covers), the DST rule for local times, fixed offsets and
// the errors for names that are not zones.
#include "common/time_zone.hpp"

#include <gtest/gtest.h>

#include "common/dates.hpp"
#include "support/test_files.hpp"

namespace gw::tz {
namespace {

constexpr std::int32_t kHour = 3600;

std::int64_t utc(int y, unsigned m, unsigned d, int hh, int mm) {
  return dates::daysFromCivil(y, m, d) * 86400 + hh * 3600 + mm * 60;
}

std::shared_ptr<const TimeZone> zone(const std::string& name) {
  auto z = TimeZone::load(name);
  EXPECT_TRUE(z) << z.error().describe();
  return z ? z.value() : TimeZone::fixed("UTC", 0);
}

TEST(TimeZoneOffsets, NewYorkStandardAndDaylightTime) {
  const auto ny = zone("America/New_York");
  EXPECT_EQ(ny->name(), "America/New_York");
  EXPECT_EQ(ny->offsetAt(utc(2026, 1, 15, 12, 0)), -5 * kHour);
  EXPECT_EQ(ny->offsetAt(utc(2026, 7, 15, 12, 0)), -4 * kHour);
  // 2026-03-08 02:00 EST = 07:00Z; 2026-11-01 02:00 EDT = 06:00Z.
  EXPECT_EQ(ny->offsetAt(utc(2026, 3, 8, 6, 59)), -5 * kHour);
  EXPECT_EQ(ny->offsetAt(utc(2026, 3, 8, 7, 0)), -4 * kHour);
  EXPECT_EQ(ny->offsetAt(utc(2026, 11, 1, 5, 59)), -4 * kHour);
  EXPECT_EQ(ny->offsetAt(utc(2026, 11, 1, 6, 0)), -5 * kHour);
  // Beyond the file's transitions the footer (EST5EDT,M3.2.0,M11.1.0) applies: 2300-03-11 is the
  // second Sunday of March 2300.
  EXPECT_EQ(ny->offsetAt(utc(2300, 3, 11, 6, 59)), -5 * kHour);
  EXPECT_EQ(ny->offsetAt(utc(2300, 3, 11, 7, 0)), -4 * kHour);
  // Before 1883 New York kept local mean time, -4:56:02.
  EXPECT_EQ(ny->offsetAt(utc(1850, 1, 1, 0, 0)), -(4 * kHour + 56 * 60 + 2));
}

TEST(TimeZoneOffsets, SouthernHemisphereNegativeDstAndPlusFourteen) {
  EXPECT_EQ(zone("Australia/Sydney")->offsetAt(utc(2026, 1, 15, 0, 0)), 11 * kHour);
  EXPECT_EQ(zone("Australia/Sydney")->offsetAt(utc(2026, 7, 15, 0, 0)), 10 * kHour);
  EXPECT_EQ(zone("Australia/Sydney")->offsetAt(utc(2250, 1, 15, 0, 0)), 11 * kHour);  // footer, across the new year
  // Ireland's winter time is the "daylight" one (negative DST): IST-1GMT0,M10.5.0,M3.5.0/1.
  EXPECT_EQ(zone("Europe/Dublin")->offsetAt(utc(2026, 1, 15, 0, 0)), 0);
  EXPECT_EQ(zone("Europe/Dublin")->offsetAt(utc(2026, 7, 15, 0, 0)), 1 * kHour);
  EXPECT_EQ(zone("Europe/Dublin")->offsetAt(utc(2200, 7, 15, 0, 0)), 1 * kHour);
  EXPECT_EQ(zone("Pacific/Kiritimati")->offsetAt(utc(2026, 7, 15, 0, 0)), 14 * kHour);
  EXPECT_EQ(zone("Asia/Kolkata")->offsetAt(utc(2026, 7, 15, 0, 0)), 5 * kHour + 30 * 60);
  EXPECT_EQ(zone("UTC")->offsetAt(utc(2026, 7, 15, 0, 0)), 0);
}

TEST(TimeZoneLocal, SpringForwardGapUsesTheOffsetBeforeTheGap) {
  const auto ny = zone("America/New_York");
  // 2026-03-08 02:30 does not exist in New York: read as EST, i.e. 07:30Z (03:30 EDT).
  const auto gap = ny->resolveLocal(utc(2026, 3, 8, 2, 30));
  EXPECT_EQ(gap.kind, LocalTimeKind::Gap);
  EXPECT_EQ(gap.utc, utc(2026, 3, 8, 7, 30));
  EXPECT_EQ(gap.offset, -4 * kHour);
  const auto before = ny->resolveLocal(utc(2026, 3, 8, 1, 59));
  EXPECT_EQ(before.kind, LocalTimeKind::Unique);
  EXPECT_EQ(before.offset, -5 * kHour);
  const auto after = ny->resolveLocal(utc(2026, 3, 8, 3, 0));
  EXPECT_EQ(after.kind, LocalTimeKind::Unique);
  EXPECT_EQ(after.utc, utc(2026, 3, 8, 7, 0));
}

TEST(TimeZoneLocal, FallBackOverlapTakesTheEarlierInstant) {
  const auto ny = zone("America/New_York");
  // 2026-11-01 01:30 happens twice (EDT, then EST): the first one, 05:30Z.
  const auto overlap = ny->resolveLocal(utc(2026, 11, 1, 1, 30));
  EXPECT_EQ(overlap.kind, LocalTimeKind::Overlap);
  EXPECT_EQ(overlap.utc, utc(2026, 11, 1, 5, 30));
  EXPECT_EQ(overlap.offset, -4 * kHour);
  const auto later = ny->resolveLocal(utc(2026, 11, 1, 2, 0));
  EXPECT_EQ(later.kind, LocalTimeKind::Unique);
  EXPECT_EQ(later.offset, -5 * kHour);
  // Southern hemisphere: Sydney's clocks go back at 03:00 on 2026-04-05.
  const auto sydney = zone("Australia/Sydney")->resolveLocal(utc(2026, 4, 5, 2, 30));
  EXPECT_EQ(sydney.kind, LocalTimeKind::Overlap);
  EXPECT_EQ(sydney.offset, 11 * kHour);
}

TEST(TimeZoneLoad, FixedOffsets) {
  const auto plus14 = zone("+14:00");
  EXPECT_EQ(plus14->offsetAt(0), 14 * kHour);
  EXPECT_EQ(plus14->resolveLocal(1000).utc, 1000 - 14 * kHour);
  EXPECT_EQ(zone("+05:30")->offsetAt(0), 5 * kHour + 30 * 60);
  EXPECT_EQ(zone("-03:00")->offsetAt(0), -3 * kHour);
  for (const char* bad : {"+14:30", "+15:00", "+5:30", "+0530", "-03:60", "+05:30x"}) {
    auto z = TimeZone::load(bad);
    ASSERT_FALSE(z) << bad;
    EXPECT_EQ(z.error().code, ErrorCode::Config);
    EXPECT_NE(z.error().message.find("+hh:mm"), std::string::npos) << z.error().describe();
  }
}

TEST(TimeZoneLoad, NamesThatAreNotZonesAreRefused) {
  for (const char* bad :
       {"America/New_Yrok", "America", "../../etc/passwd", "/etc/localtime", "America//New_York", "New York", ""}) {
    auto z = TimeZone::load(bad);
    ASSERT_FALSE(z) << bad;
    EXPECT_EQ(z.error().code, ErrorCode::Config);
    EXPECT_NE(z.error().hint.find("America/New_York"), std::string::npos) << z.error().describe();
  }
}

TEST(TimeZoneLoad, BrokenTzifIsRefused) {
  const std::string real = gw::test::readFile("/usr/share/zoneinfo/America/New_York");
  ASSERT_GT(real.size(), 100u);
  EXPECT_TRUE(TimeZone::fromTzif("x", real));
  EXPECT_FALSE(TimeZone::fromTzif("x", "not a tzif file"));
  EXPECT_FALSE(TimeZone::fromTzif("x", real.substr(0, 60)));
  EXPECT_FALSE(TimeZone::fromTzif("x", real.substr(0, real.size() - 5)));  // footer cut
  std::string bad_footer = real;
  bad_footer.replace(bad_footer.rfind("EST5EDT"), 7, "EST?EDT");
  EXPECT_FALSE(TimeZone::fromTzif("x", bad_footer));
}

// --- local days, as the consent engine reads date-only bounds (docs/privacy.md §5.5) -------

std::int64_t dayNumber(int y, unsigned m, unsigned d) { return dates::daysFromCivil(y, m, d); }

TEST(TimeZoneLocalDay, NewYorkDaysStartAtLocalMidnightAcrossBothChanges) {
  const auto ny = zone("America/New_York");
  // Winter EST -05:00, summer EDT -04:00. DST begins 2026-03-08 02:00 and ends 2026-11-01 02:00,
  // both after midnight: those days start in the offset of the day before.
  EXPECT_EQ(ny->startOfLocalDay(dayNumber(2026, 1, 15)), utc(2026, 1, 15, 5, 0));
  EXPECT_EQ(ny->startOfLocalDay(dayNumber(2026, 3, 8)), utc(2026, 3, 8, 5, 0));
  EXPECT_EQ(ny->startOfLocalDay(dayNumber(2026, 3, 9)), utc(2026, 3, 9, 4, 0));
  EXPECT_EQ(ny->startOfLocalDay(dayNumber(2026, 11, 1)), utc(2026, 11, 1, 4, 0));
  EXPECT_EQ(ny->startOfLocalDay(dayNumber(2026, 11, 2)), utc(2026, 11, 2, 5, 0));
  EXPECT_EQ(ny->localDay(utc(2026, 11, 2, 4, 59)), dayNumber(2026, 11, 1));  // 23:59 EST the day before
  EXPECT_EQ(ny->localDay(utc(2026, 11, 2, 5, 0)), dayNumber(2026, 11, 2));
  // Past Debian's table (2037) the footer rule keeps summers in EDT.
  EXPECT_EQ(ny->startOfLocalDay(dayNumber(2040, 7, 1)), utc(2040, 7, 1, 4, 0));
}

TEST(TimeZoneLocalDay, LosAngelesAndHonolulu) {
  const auto la = zone("America/Los_Angeles");
  EXPECT_EQ(la->startOfLocalDay(dayNumber(2026, 3, 8)), utc(2026, 3, 8, 8, 0));
  EXPECT_EQ(la->startOfLocalDay(dayNumber(2026, 7, 4)), utc(2026, 7, 4, 7, 0));
  EXPECT_EQ(la->startOfLocalDay(dayNumber(2026, 11, 1)), utc(2026, 11, 1, 7, 0));
  EXPECT_EQ(la->startOfLocalDay(dayNumber(2026, 12, 1)), utc(2026, 12, 1, 8, 0));
  const auto hi = zone("Pacific/Honolulu");  // -10:00 all year
  EXPECT_EQ(hi->startOfLocalDay(dayNumber(2026, 3, 8)), utc(2026, 3, 8, 10, 0));
  EXPECT_EQ(hi->startOfLocalDay(dayNumber(2026, 7, 4)), utc(2026, 7, 4, 10, 0));
}

TEST(TimeZoneLocalDay, ASkippedMidnightStartsTheDayWhenTheClockJumps) {
  // America/Havana springs forward at 00:00 (2026-03-08): the day starts at 00:00 CST = 05:00Z,
  // read as 01:00 CDT.
  const auto havana = zone("America/Havana");
  const std::int64_t start = havana->startOfLocalDay(dayNumber(2026, 3, 8));
  EXPECT_EQ(havana->localDay(start), dayNumber(2026, 3, 8));
  EXPECT_EQ(havana->localDay(start - 1), dayNumber(2026, 3, 7));
}

}  // namespace
}  // namespace gw::tz

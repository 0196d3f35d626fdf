// The shared date reading: calendar arithmetic, YYYY-MM-DD, and the RFC 3339 reader with the
// rules each caller (mapping, consent, audit filters) sets.
#include "common/dates.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace gw::dates {
namespace {

TEST(CivilDays, RoundTripAndKnownDays) {
  EXPECT_EQ(daysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(daysFromCivil(2000, 3, 1), 11017);
  EXPECT_EQ(daysFromCivil(1, 1, 1), -719162);
  for (std::int64_t d : {-719162LL, -1LL, 0LL, 11016LL, 20513LL, 2932896LL}) {
    const auto c = civilFromDays(d);
    EXPECT_EQ(daysFromCivil(c.year, c.month, c.day), d);
  }
  const auto leap = civilFromDays(daysFromCivil(2024, 2, 29));
  EXPECT_EQ(leap.month, 2u);
  EXPECT_EQ(leap.day, 29u);
}

TEST(ReadDigits, ExactlyCountDigitsInsideTheText) {
  int v = 0;
  EXPECT_TRUE(readDigits("x2026", 1, 4, v));
  EXPECT_EQ(v, 2026);
  EXPECT_FALSE(readDigits("202", 0, 4, v));
  EXPECT_FALSE(readDigits("20a6", 0, 4, v));
  EXPECT_FALSE(readDigits("12", 5, 1, v));  // past the end
}

TEST(CalendarDate, RealDaysOfYearsOneToNineThousand) {
  const auto d = readCalendarDate("2024-02-29T10:00");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->year, 2024);
  EXPECT_EQ(d->month, 2u);
  EXPECT_EQ(d->day, 29u);
  EXPECT_FALSE(readCalendarDate("2023-02-29"));
  EXPECT_FALSE(readCalendarDate("1900-02-29"));
  EXPECT_TRUE(readCalendarDate("2000-02-29"));
  EXPECT_FALSE(readCalendarDate("0000-01-01"));
  EXPECT_FALSE(readCalendarDate("2026-13-01"));
  EXPECT_FALSE(readCalendarDate("2026-1-01"));
  EXPECT_FALSE(readCalendarDate("2026-01"));
}

Rfc3339Status status(std::string_view text, const Rfc3339Rules& rules = {}) {
  DateTime t;
  return readRfc3339(text, t, rules);
}

TEST(Rfc3339, ReadsMillisecondsWithOffsets) {
  DateTime t;
  ASSERT_EQ(readRfc3339("2026-03-01T10:00:00.250-05:00", t), Rfc3339Status::Ok);
  EXPECT_EQ(t.fraction, "250");
  EXPECT_EQ(t.offset_minutes, -300);
  EXPECT_EQ(unixMillis(t), 1772377200250);  // 15:00:00.250Z
  ASSERT_EQ(readRfc3339("1970-01-01t00:00:00.1234z", t), Rfc3339Status::Ok);
  EXPECT_EQ(unixMillis(t), 123);
  ASSERT_EQ(readRfc3339("1970-01-01T00:00:00.5Z", t), Rfc3339Status::Ok);
  EXPECT_EQ(unixMillis(t), 500);
}

TEST(Rfc3339, NamesTheFirstFault) {
  EXPECT_EQ(status("2026-3-01T10:00:00Z"), Rfc3339Status::DateSyntax);
  EXPECT_EQ(status("2026-03-01"), Rfc3339Status::NoTime);
  EXPECT_EQ(status("2026-03-01T10:00Z"), Rfc3339Status::TimeSyntax);
  EXPECT_EQ(status("2026-13-01T10:00:00Z"), Rfc3339Status::MonthRange);
  EXPECT_EQ(status("2026-02-29T10:00:00Z"), Rfc3339Status::DayRange);
  EXPECT_EQ(status("2026-02-28T24:00:00Z"), Rfc3339Status::TimeRange);
  EXPECT_EQ(status("2026-02-28T23:59:60Z"), Rfc3339Status::Ok);  // a leap second
  EXPECT_EQ(status("2026-02-28T10:00:00.Z"), Rfc3339Status::EmptyFraction);
  EXPECT_EQ(status("2026-02-28T10:00:00.1234567890Z"), Rfc3339Status::LongFraction);
  EXPECT_EQ(status("2026-02-28T10:00:00"), Rfc3339Status::NoZone);
  EXPECT_EQ(status("2026-02-28T10:00:00+0500"), Rfc3339Status::OffsetSyntax);
  EXPECT_EQ(status("2026-02-28T10:00:00+05:60"), Rfc3339Status::OffsetRange);
  EXPECT_EQ(status("2026-02-28T10:00:00+24:00"), Rfc3339Status::OffsetRange);
  EXPECT_EQ(status("2026-02-28T10:00:00 05:00"), Rfc3339Status::ZoneSyntax);
  EXPECT_EQ(status("2026-02-28T10:00:00ZZ"), Rfc3339Status::TrailingText);
  EXPECT_EQ(status("2026-02-28T10:00:00+05:00x"), Rfc3339Status::TrailingText);
}

TEST(Rfc3339, RulesWidenOrNarrowWhatIsAccepted) {
  const Rfc3339Rules fhir{.max_offset_minutes = 14 * 60};
  EXPECT_EQ(status("2026-02-28T10:00:00+14:00", fhir), Rfc3339Status::Ok);
  EXPECT_EQ(status("2026-02-28T10:00:00+14:01", fhir), Rfc3339Status::OffsetRange);
  EXPECT_EQ(status("2026-02-28T10:00:00+23:59"), Rfc3339Status::Ok);

  const Rfc3339Rules query{.year_zero = true,
                           .max_fraction_digits = std::numeric_limits<std::size_t>::max(),
                           .url_spaces = true};
  EXPECT_EQ(status("0000-02-29T10:00:00Z"), Rfc3339Status::DayRange);
  EXPECT_EQ(status("0000-02-29T10:00:00Z", query), Rfc3339Status::Ok);
  EXPECT_EQ(status("2026-02-28 10:00:00 05:00"), Rfc3339Status::NoTime);
  DateTime t;
  ASSERT_EQ(readRfc3339("2026-02-28 10:00:00 05:00", t, query), Rfc3339Status::Ok);
  EXPECT_EQ(t.offset_minutes, 300);  // the space was a '+'
  EXPECT_EQ(status("2026-02-28T10:00:00.1234567890Z", query), Rfc3339Status::Ok);
}

}  // namespace
}  // namespace gw::dates

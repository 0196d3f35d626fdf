#include "mapping/dates.hpp"

#include <gtest/gtest.h>

namespace gw::mapping {
namespace {

TEST(CalendarDate, AcceptsRealDaysOnly) {
  EXPECT_TRUE(isCalendarDate("1988-04-02"));
  EXPECT_TRUE(isCalendarDate("2000-02-29"));  // divisible by 400
  EXPECT_TRUE(isCalendarDate("2024-02-29"));
  EXPECT_FALSE(isCalendarDate("1900-02-29"));  // divisible by 100
  EXPECT_FALSE(isCalendarDate("1990-02-30"));
  EXPECT_FALSE(isCalendarDate("2026-04-31"));
  EXPECT_FALSE(isCalendarDate("2026-13-01"));
  EXPECT_FALSE(isCalendarDate("2026-00-10"));
  EXPECT_FALSE(isCalendarDate("0000-01-01"));
  EXPECT_FALSE(isCalendarDate("2026-1-01"));
  EXPECT_FALSE(isCalendarDate("2026-01-01T00:00:00Z"));
  EXPECT_FALSE(isCalendarDate(""));
}

TEST(DateTime, NormalisesToFhir) {
  std::string out;
  ASSERT_TRUE(normaliseDateTime("2026-11-20T09:00:00-05:00", out));
  EXPECT_EQ(out, "2026-11-20T09:00:00-05:00");
  ASSERT_TRUE(normaliseDateTime("2026-11-20t09:00:00.123456789z", out));
  EXPECT_EQ(out, "2026-11-20T09:00:00.123456789Z");
  EXPECT_TRUE(normaliseDateTime("2026-11-20T23:59:60+14:00", out));  // leap second, largest offset
}

TEST(DateTime, RejectsWhatFhirWouldReject) {
  std::string out;
  for (const char* bad : {"2026-11-20", "2026-11-20T09:00:00", "2026-11-20T09:00Z", "2026-02-30T09:00:00Z",
                          "2026-11-20T24:00:00Z", "2026-11-20T09:60:00Z", "2026-11-20T09:00:61Z",
                          "2026-11-20T09:00:00.Z", "2026-11-20T09:00:00.1234567890Z", "2026-11-20T09:00:00+14:30",
                          "2026-11-20T09:00:00+15:00", "2026-11-20T09:00:00+0500", "2026-11-20 09:00:00Z",
                          "2026-11-20T09:00:00Zjunk"}) {
    EXPECT_FALSE(normaliseDateTime(bad, out)) << bad;
  }
}

}  // namespace
}  // namespace gw::mapping

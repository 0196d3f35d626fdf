#include "mapping/dates.hpp"

#include <gtest/gtest.h>

#include <initializer_list>

#include "common/time_zone.hpp"

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
                          "2026-11-20T24:00:00Z", "2026-11-20T09:60:00Z", "2026-11-20T09:00:61Z", "2026-11-20T09:00:00.Z",
                          "2026-11-20T09:00:00.1234567890Z", "2026-11-20T09:00:00+14:30", "2026-11-20T09:00:00+15:00",
                          "2026-11-20T09:00:00+0500", "2026-11-20 09:00:00Z", "2026-11-20T09:00:00Zjunk"}) {
    EXPECT_FALSE(normaliseDateTime(bad, out)) << bad;
  }
}

// ---- declared formats ("formats", "timezone") ----

DateSpec spec(std::initializer_list<const char*> formats, bool with_time, const char* zone = nullptr) {
  DateSpec s;
  s.with_time = with_time;
  if (zone != nullptr) {
    auto z = TimeZone::load(zone);
    EXPECT_TRUE(z) << z.error().describe();
    if (z) s.zone = z.value();
  }
  for (const char* f : formats) {
    auto compiled = compileDateFormat(f, with_time);
    EXPECT_TRUE(compiled) << f << ": " << compiled.error().describe();
    if (compiled) s.formats.push_back(std::move(compiled).value());
  }
  describeDateSpec(s);
  return s;
}

// The FHIR text, or <invalid>, <ambiguous i/j>, <no offset>.
std::string read(const DateSpec& s, std::string_view text) {
  char out[kMaxDateText];
  const auto r = parseDate(s, text, out);
  switch (r.status) {
    case DateParse::Status::Ok: return std::string(out, r.size);
    case DateParse::Status::Invalid: return "<invalid>";
    case DateParse::Status::Ambiguous: return "<ambiguous " + std::to_string(r.first) + "/" + std::to_string(r.second) + ">";
    case DateParse::Status::NoFhirOffset: return "<no offset>";
  }
  return "?";
}

TEST(DateFormats, DateTokens) {
  EXPECT_EQ(read(spec({"YYYY-MM-DD"}, false), "2026-11-20"), "2026-11-20");
  EXPECT_EQ(read(spec({"MM/DD/YYYY"}, false), "11/20/2026"), "2026-11-20");
  EXPECT_EQ(read(spec({"MM/DD/YYYY"}, false), "1/20/2026"), "<invalid>");  // MM is two digits
  const auto us = spec({"M/D/YYYY"}, false);
  EXPECT_EQ(read(us, "1/5/2026"), "2026-01-05");
  EXPECT_EQ(read(us, "01/05/2026"), "2026-01-05");
  EXPECT_EQ(read(us, "11/20/2026"), "2026-11-20");
  EXPECT_EQ(read(us, "111/20/2026"), "<invalid>");
  EXPECT_EQ(read(spec({"DD.MM.YYYY"}, false), "20.11.2026"), "2026-11-20");
  EXPECT_EQ(read(spec({"YYYYMMDD"}, false), "20261120"), "2026-11-20");
  const auto named = spec({"D MMM YYYY"}, false);
  EXPECT_EQ(read(named, "5 Nov 2026"), "2026-11-05");
  EXPECT_EQ(read(named, "5 nov 2026"), "2026-11-05");
  EXPECT_EQ(read(named, "05 NOV 2026"), "2026-11-05");
  EXPECT_EQ(read(named, "5 Nox 2026"), "<invalid>");
  EXPECT_EQ(read(named, "5 November 2026"), "<invalid>");
}

TEST(DateFormats, TwoDigitYearsPivotAt69) {
  const auto yy = spec({"DD-MMM-YY"}, false);
  EXPECT_EQ(read(yy, "20-Nov-26"), "2026-11-20");
  EXPECT_EQ(read(yy, "01-Jan-00"), "2000-01-01");
  EXPECT_EQ(read(yy, "31-Dec-68"), "2068-12-31");
  EXPECT_EQ(read(yy, "01-Jan-69"), "1969-01-01");
  EXPECT_EQ(read(yy, "31-Dec-99"), "1999-12-31");
  EXPECT_EQ(read(yy, "20-Nov-2026"), "<invalid>");
  EXPECT_EQ(read(spec({"MM/DD/YYYY"}, false), "11/20/26"), "<invalid>");  // YYYY is four digits
}

TEST(DateFormats, February29OnlyInLeapYears) {
  const auto us = spec({"M/D/YYYY"}, false);
  EXPECT_EQ(read(us, "2/29/2024"), "2024-02-29");
  EXPECT_EQ(read(us, "2/29/2000"), "2000-02-29");
  EXPECT_EQ(read(us, "2/29/2026"), "<invalid>");
  EXPECT_EQ(read(us, "2/29/1900"), "<invalid>");
  EXPECT_EQ(read(spec({"MM/DD/YY"}, false), "02/29/00"), "2000-02-29");
  EXPECT_EQ(read(spec({"MM/DD/YYYY HH:mm"}, true, "America/New_York"), "02/29/2028 10:00"), "2028-02-29T10:00:00-05:00");
  EXPECT_EQ(read(spec({"MM/DD/YYYY HH:mm"}, true, "America/New_York"), "02/29/2027 10:00"), "<invalid>");
}

TEST(DateFormats, BadDatesAreInvalid) {
  const auto us = spec({"M/D/YYYY", "YYYY-MM-DD"}, false);
  for (const char* bad :
       {"13/1/2026", "0/10/2026", "11/31/2026", "11/0/2026", "11/20/2026 ", " 11/20/2026", "11-20-2026", "", "11/20/20266",
        "2026-11-31", "2026-11-20T00:00:00Z", "0000-01-01", "11/20/0000", "1l/20/2026"}) {
    EXPECT_EQ(read(us, bad), "<invalid>") << bad;
  }
}

TEST(DateFormats, TimeTokensAndOffsets) {
  EXPECT_EQ(read(spec({"MM/DD/YYYY HH:mm"}, true, "+05:30"), "11/20/2026 09:05"), "2026-11-20T09:05:00+05:30");
  EXPECT_EQ(read(spec({"M/D/YYYY H:mm:ss"}, true, "-03:00"), "1/2/2026 7:08:09"), "2026-01-02T07:08:09-03:00");
  EXPECT_EQ(read(spec({"YYYY-MM-DDTHH:mm"}, true, "UTC"), "2026-01-02T07:08"), "2026-01-02T07:08:00+00:00");
  const auto clock = spec({"M/D/YYYY h:mm A"}, true, "America/New_York");
  EXPECT_EQ(read(clock, "11/20/2026 12:05 AM"), "2026-11-20T00:05:00-05:00");
  EXPECT_EQ(read(clock, "11/20/2026 12:05 PM"), "2026-11-20T12:05:00-05:00");
  EXPECT_EQ(read(clock, "11/20/2026 1:30 pm"), "2026-11-20T13:30:00-05:00");
  EXPECT_EQ(read(clock, "11/20/2026 11:59 am"), "2026-11-20T11:59:00-05:00");
  EXPECT_EQ(read(clock, "11/20/2026 13:30 PM"), "<invalid>");
  EXPECT_EQ(read(clock, "11/20/2026 0:30 AM"), "<invalid>");
  EXPECT_EQ(read(clock, "11/20/2026 1:30 XM"), "<invalid>");
  const auto stamped = spec({"YYYY-MM-DD HH:mm:ss.SSS Z"}, true);
  EXPECT_EQ(read(stamped, "2026-11-20 09:00:00.123 +0530"), "2026-11-20T09:00:00.123+05:30");
  EXPECT_EQ(read(stamped, "2026-11-20 09:00:00.123 -05:00"), "2026-11-20T09:00:00.123-05:00");
  EXPECT_EQ(read(stamped, "2026-11-20 09:00:00.123 Z"), "2026-11-20T09:00:00.123Z");
  EXPECT_EQ(read(stamped, "2026-11-20 09:00:00.123 +14:00"), "2026-11-20T09:00:00.123+14:00");
  for (const char* bad : {"2026-11-20 09:00:00.123 +14:01", "2026-11-20 09:00:00.12 Z", "2026-11-20 09:00:00.1234 Z",
                          "2026-11-20 24:00:00.000 Z", "2026-11-20 09:60:00.000 Z", "2026-11-20 09:00:61.000 Z",
                          "2026-11-20 09:00:00.123", "2026-11-20 09:00:00.123 +5:00"}) {
    EXPECT_EQ(read(stamped, bad), "<invalid>") << bad;
  }
}

TEST(DateFormats, IsoIsTheDefaultAndAZoneMakesItsOffsetOptional) {
  const auto date = spec({"ISO"}, false);
  EXPECT_EQ(read(date, "2026-07-01"), "2026-07-01");
  EXPECT_EQ(read(date, "07/01/2026"), "<invalid>");
  const auto strict = spec({"ISO"}, true);
  EXPECT_EQ(read(strict, "2026-07-01t09:00:00.5z"), "2026-07-01T09:00:00.5Z");
  EXPECT_EQ(read(strict, "2026-07-01T09:00:00"), "<invalid>");
  const auto local = spec({"ISO"}, true, "America/New_York");
  EXPECT_EQ(read(local, "2026-07-01T09:00:00"), "2026-07-01T09:00:00-04:00");
  EXPECT_EQ(read(local, "2026-01-01T09:00:00"), "2026-01-01T09:00:00-05:00");
  EXPECT_EQ(read(local, "2026-07-01T09:00:00-07:00"), "2026-07-01T09:00:00-07:00");  // a given offset wins
  EXPECT_EQ(read(local, "2026-07-01T09:00"), "<invalid>");
}

TEST(DateFormats, NewYorkSpringForwardAndFallBack) {
  const auto ny = spec({"MM/DD/YYYY HH:mm"}, true, "America/New_York");
  EXPECT_EQ(read(ny, "03/08/2026 01:59"), "2026-03-08T01:59:00-05:00");
  // 02:30 does not exist that night: read with the offset before the gap (EST), the same instant
  // as 03:30 EDT, which is what is written.
  EXPECT_EQ(read(ny, "03/08/2026 02:30"), "2026-03-08T03:30:00-04:00");
  EXPECT_EQ(read(ny, "03/08/2026 03:00"), "2026-03-08T03:00:00-04:00");
  // 01:30 happens twice on 2026-11-01: the first (EDT) is taken.
  EXPECT_EQ(read(ny, "11/01/2026 00:59"), "2026-11-01T00:59:00-04:00");
  EXPECT_EQ(read(ny, "11/01/2026 01:30"), "2026-11-01T01:30:00-04:00");
  EXPECT_EQ(read(ny, "11/01/2026 02:00"), "2026-11-01T02:00:00-05:00");
  // Before 1883 New York kept local mean time (-4:56:02), which FHIR cannot write.
  EXPECT_EQ(read(ny, "01/01/1850 12:00"), "<no offset>");
}

TEST(DateFormats, PlusFourteen) {
  EXPECT_EQ(read(spec({"MM/DD/YYYY HH:mm"}, true, "Pacific/Kiritimati"), "11/20/2026 23:30"), "2026-11-20T23:30:00+14:00");
  EXPECT_EQ(read(spec({"MM/DD/YYYY HH:mm"}, true, "+14:00"), "12/31/2026 23:59"), "2026-12-31T23:59:00+14:00");
}

TEST(DateFormats, ValuesTwoFormatsReadDifferentlyAreAmbiguous) {
  const auto both = spec({"MM/DD/YYYY", "DD/MM/YYYY"}, false);
  EXPECT_EQ(read(both, "03/04/2026"), "<ambiguous 0/1>");
  EXPECT_EQ(read(both, "04/04/2026"), "2026-04-04");  // same day either way
  EXPECT_EQ(read(both, "13/04/2026"), "2026-04-13");  // only DD/MM reads it
  EXPECT_EQ(read(spec({"M/D/YYYY", "YYYY-MM-DD"}, false), "2026-04-03"), "2026-04-03");
}

TEST(DateFormats, ExpectationNamesTheFormats) {
  EXPECT_EQ(spec({"M/D/YYYY", "YYYY-MM-DD"}, false).expectation, "M/D/YYYY or YYYY-MM-DD naming a real day");
  EXPECT_EQ(spec({"MM/DD/YYYY HH:mm", "ISO", "YYYYMMDDHHmm"}, true, "America/New_York").expectation,
            "MM/DD/YYYY HH:mm, RFC 3339 such as 2026-11-20T09:00:00 (offset optional) or YYYYMMDDHHmm, local times in "
            "America/New_York naming a real day and time");
}

TEST(DateFormats, BadFormatsAreLoadErrors) {
  struct Case {
    const char* format;
    bool with_time;
    const char* message;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"YYY-MM-DD", false, "unknown token 'YYY'"},
           {"YYYY-MM-DD Q", false, "unknown token 'Q'"},
           {"YYYY-MM-DD-YYYY", false, "year appears twice"},
           {"MM/YYYY", false, "needs a year"},
           {"", false, "1 to 64"},
           {"YYYY-MM-DD HH:mm", false, "$date formats have no time fields"},
           {"YYYY-MM-DD", true, "needs hours"},
           {"YYYY-MM-DD HH", true, "needs hours"},
           {"MM/DD/YYYY hh:mm", true, "need A"},
           {"MM/DD/YYYY HH:mm A", true, "needs a 12-hour clock hour"},
           {"MM/DD/YYYY HH:mm hh", true, "hour appears twice"},
           {"MDYYYY", false, "followed by a separator"},
           {"YYYY-MM-DD H0:mm", true, "followed by a separator"},
           {"YYYY-MM-DD HH:mm.SSS", true, "need seconds"},
           {"YYYY-MM-DD HH:m", true, "unknown token 'm'"},
           {"YYYY-MM-DD HH:mm:ss.SSSSSSSSSS", true, "unknown token"},
       }) {
    auto f = compileDateFormat(c.format, c.with_time);
    ASSERT_FALSE(f) << c.format;
    EXPECT_EQ(f.error().code, ErrorCode::Config);
    EXPECT_NE(f.error().message.find(c.message), std::string::npos) << c.format << ": " << f.error().describe();
    EXPECT_NE(f.error().hint.find("YYYY, YY"), std::string::npos);
  }
  EXPECT_TRUE(compileDateFormat("ISO", true));
  EXPECT_TRUE(compileDateFormat("DD/MM/YYYYTHH:mm", true));
}

}  // namespace
}  // namespace gw::mapping

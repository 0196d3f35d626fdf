// "formats" and "timezone" on $date / $dateTime in mapper files: compiled at load (bad formats
// and unknown zones fail with file:line:column), applied per record (errors name the field, the
// expected formats and the mapper position, never the value).
#include <gmock/gmock.h>

#include "mapping/csv_input_mapper.hpp"
#include "mapping/mapper_set.hpp"
#include "test_support.hpp"

namespace gw::mapping {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::parseJson;
using testing::ScratchDir;

const MappingContext kContext{"c1", "https://ids.clinic-c1.example/"};

std::string mapperWith(const std::string& members) {
  return R"({
  "format": "gw-mapper/1",
  "recordType": "demo",
  "resources": [{
    "resourceType": "Basic",
    "sourceId": "$.item.id",
    "identifierKind": "item",
    "template": {
      "identifier": [{"system": "$identifierSystem", "value": "$sourceId"}],
      )" +
         members + R"(
    }
  }]
})";
}

// file:line:column of the first occurrence of `needle` in the file's text.
std::string positionOf(const ScratchDir& dir, const std::string& text, const std::string& needle) {
  const std::size_t offset = text.find(needle);
  EXPECT_NE(offset, std::string::npos) << needle;
  const std::size_t line_start = text.rfind('\n', offset);
  const auto line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
  const std::size_t column = offset - (line_start == std::string::npos ? 0 : line_start + 1) + 1;
  return (dir.path() / "demo.mapper.json").string() + ":" + std::to_string(line) + ":" + std::to_string(column);
}

rapidjson::Document record(const char* day, const char* at) {
  auto r = parseJson(R"({"record_type":"demo","clinic":"c1","item":{"id":"I-1"}})");
  auto& a = r.GetAllocator();
  r["item"].AddMember("day", rapidjson::Value(day, a), a);
  r["item"].AddMember("at", rapidjson::Value(at, a), a);
  return r;
}

constexpr const char* kMembers =
    R"("day": {"$date": "$.item.day", "formats": ["MM/DD/YYYY", "YYYY-MM-DD"]},
      "at": {"$dateTime": "$.item.at", "formats": ["M/D/YYYY h:mm A", "ISO"], "timezone": "America/New_York"})";

TEST(DateFormatsInMappers, DeclaredFormatsAndZoneGiveFhirDatesWithOffsets) {
  ScratchDir dir;
  dir.write("demo.mapper.json", mapperWith(kMembers));
  auto set = MapperSet::loadDirectory(dir.path());
  ASSERT_TRUE(set) << set.error().describe();
  const auto summer = set.value().map(record("07/04/2026", "7/4/2026 9:15 PM"), kContext);
  ASSERT_TRUE(summer) << summer.error().describe();
  const auto& r = summer.value().resources[0].resource;
  EXPECT_EQ(json::getString(r, "day"), "2026-07-04");
  EXPECT_EQ(json::getString(r, "at"), "2026-07-04T21:15:00-04:00");
  const auto winter = set.value().map(record("2026-12-24", "2026-12-24T08:00:00"), kContext);
  ASSERT_TRUE(winter) << winter.error().describe();
  EXPECT_EQ(json::getString(winter.value().resources[0].resource, "day"), "2026-12-24");
  EXPECT_EQ(json::getString(winter.value().resources[0].resource, "at"), "2026-12-24T08:00:00-05:00");
}

TEST(DateFormatsInMappers, BadValuesNameFieldFormatsAndMapperPositionButNotTheValue) {
  ScratchDir dir;
  const std::string text = mapperWith(kMembers);
  dir.write("demo.mapper.json", text);
  auto set = MapperSet::loadDirectory(dir.path());
  ASSERT_TRUE(set) << set.error().describe();

  const auto bad_day = set.value().map(record("02/30/1984", "7/4/2026 9:15 PM"), kContext);
  ASSERT_FALSE(bad_day);
  EXPECT_EQ(bad_day.error().code, ErrorCode::InvalidInput);
  EXPECT_EQ(bad_day.error().where, "item.day");
  EXPECT_THAT(bad_day.error().message,
              HasSubstr("'item.day' is not a valid date; expected MM/DD/YYYY or YYYY-MM-DD naming a real day"));
  EXPECT_THAT(bad_day.error().message, HasSubstr(positionOf(dir, text, R"({"$date")")));
  EXPECT_THAT(bad_day.error().describe(), Not(HasSubstr("1984")));

  const auto bad_time = set.value().map(record("07/04/2026", "7/4/2026 21:15"), kContext);
  ASSERT_FALSE(bad_time);
  EXPECT_EQ(bad_time.error().where, "item.at");
  EXPECT_THAT(bad_time.error().message, HasSubstr("is not a valid date-time; expected M/D/YYYY h:mm A or RFC 3339"));
  EXPECT_THAT(bad_time.error().message, HasSubstr("local times in America/New_York"));
  EXPECT_THAT(bad_time.error().message, HasSubstr(positionOf(dir, text, R"({"$dateTime")")));
  EXPECT_THAT(bad_time.error().describe(), Not(HasSubstr("21:15")));
}

TEST(DateFormatsInMappers, AmbiguousValuesAreErrors) {
  ScratchDir dir;
  dir.write("demo.mapper.json", mapperWith(R"("day": {"$date": "$.item.day", "formats": ["MM/DD/YYYY", "DD/MM/YYYY"]})"));
  auto set = MapperSet::loadDirectory(dir.path());
  ASSERT_TRUE(set) << set.error().describe();
  const auto ambiguous = set.value().map(record("03/04/2026", ""), kContext);
  ASSERT_FALSE(ambiguous);
  EXPECT_EQ(ambiguous.error().where, "item.day");
  EXPECT_THAT(ambiguous.error().message, HasSubstr("ambiguous: formats 'MM/DD/YYYY' and 'DD/MM/YYYY'"));
  EXPECT_THAT(ambiguous.error().hint, HasSubstr("one unambiguous format"));
  EXPECT_TRUE(set.value().map(record("13/04/2026", ""), kContext));
}

struct LoadCase {
  const char* name;
  const char* members;
  const char* at;       // the text the error points at (its first occurrence in the file)
  const char* message;  // part of the message
};

class DateFormatLoadErrorTest : public ::testing::TestWithParam<LoadCase> {};

TEST_P(DateFormatLoadErrorTest, PointsAtTheMistake) {
  ScratchDir dir;
  const std::string text = mapperWith(GetParam().members);
  dir.write("demo.mapper.json", text);
  auto set = MapperSet::loadDirectory(dir.path());
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, ErrorCode::Config);
  EXPECT_EQ(set.error().where, positionOf(dir, text, GetParam().at)) << set.error().describe();
  EXPECT_THAT(set.error().message, HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, DateFormatLoadErrorTest,
    ::testing::Values(
        LoadCase{"UnknownToken", R"("day": {"$date": "$.item.day", "formats": ["YYYY-MM-DD", "MM/DD/YYY"]})",
                 "\"MM/DD/YYY\"", "unknown token 'YYY' in date format 'MM/DD/YYY'"},
        LoadCase{"TimeInDate", R"("day": {"$date": "$.item.day", "formats": ["MM/DD/YYYY HH:mm"]})", "\"MM/DD/YYYY HH:mm\"",
                 "$date formats have no time fields"},
        LoadCase{"UnknownZone", R"("at": {"$dateTime": "$.item.at", "formats": ["ISO"], "timezone": "America/New_Yrok"})",
                 "\"America/New_Yrok\"", "unknown time zone"},
        LoadCase{"BadFixedOffset", R"("at": {"$dateTime": "$.item.at", "timezone": "+5:30"})", "\"+5:30\"", "+hh:mm"},
        LoadCase{"LocalFormatWithoutZone", R"("at": {"$dateTime": "$.item.at", "formats": ["MM/DD/YYYY HH:mm"]})",
                 "\"MM/DD/YYYY HH:mm\"", "has no offset (Z), so it reads local times: add \"timezone\""},
        LoadCase{"ZoneOnADate", R"("day": {"$date": "$.item.day", "timezone": "UTC"})", "\"timezone\"",
                 "a date has no time zone"},
        LoadCase{"FormatsNotAnArray", R"("day": {"$date": "$.item.day", "formats": "MM/DD/YYYY"})", "\"MM/DD/YYYY\"",
                 "non-empty array"},
        LoadCase{"FormatListedTwice", R"("day": {"$date": "$.item.day", "formats": ["MM/DD/YYYY", "MM/DD/YYYY"]})",
                 "\"MM/DD/YYYY\"]", "listed twice"},
        LoadCase{"MisspeltKey", R"("at": {"$dateTime": "$.item.at", "timezon": "UTC"})", "\"timezon\"",
                 "unknown key 'timezon' in $dateTime; allowed: $dateTime, formats, timezone"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(DateFormatsInCsvMappers, RowErrorsNameLineAndHeader) {
  ScratchDir dir;
  dir.write("m.csv-mapper.json", R"({"format": "gw-csv-mapper/1",
    "columns": {"id": "Id", "day": "Visit Date", "at": "Seen At"},
    "record": {"record_id": "$.id",
               "day": {"$date": "$.day", "formats": ["M/D/YYYY"]},
               "at": {"$dateTime": "$.at", "formats": ["M/D/YYYY H:mm"], "timezone": "America/New_York"}}})");
  auto m = CsvInputMapper::loadFile(dir.path() / "m.csv-mapper.json");
  ASSERT_TRUE(m) << m.error().describe();
  auto rows = m.value().rowsToRecords("Id,Visit Date,Seen At\na,3/8/2026,3/8/2026 2:30\nb,2/29/2026,\nc,,3/8/2026 25:00\n");
  ASSERT_TRUE(rows) << rows.error().describe();
  ASSERT_EQ(rows.value().size(), 3u);
  ASSERT_FALSE(rows.value()[0].error) << rows.value()[0].error->describe();
  EXPECT_EQ(json::toString(rows.value()[0].record),
            R"({"record_id":"a","day":"2026-03-08","at":"2026-03-08T03:30:00-04:00"})");
  ASSERT_TRUE(rows.value()[1].error);
  EXPECT_EQ(rows.value()[1].error->where, "line 3, column 'Visit Date'");
  EXPECT_THAT(rows.value()[1].error->message, HasSubstr("expected M/D/YYYY naming a real day"));
  ASSERT_TRUE(rows.value()[2].error);
  EXPECT_EQ(rows.value()[2].error->where, "line 4, column 'Seen At'");
}

}  // namespace
}  // namespace gw::mapping

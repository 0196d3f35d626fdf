// CSV input mappers: golden cases (CSV in -> records out) for every *.csv-mapper.json directory,
// load errors with file:line:column, per-row errors with the CSV line and header, and the
// records going through the same schema + mapper as JSON records.
#include <algorithm>
#include <cctype>

#include "mapping/csv_input_mapper.hpp"
#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"
#include "test_support.hpp"

namespace gw::mapping {
namespace {

using testing::parseJson;
using testing::readFile;
using testing::repoPath;
using testing::ScratchDir;

const std::filesystem::path kWeeklyDir = repoPath("mappers/harm-reduction-weekly");

CsvInputMapper loadWeekly() {
  auto m = CsvInputMapper::loadFile(kWeeklyDir / "weekly-export.csv-mapper.json");
  EXPECT_TRUE(m) << m.error().describe();
  return std::move(m).value();
}

// Every golden/<case>.csv beside a CSV input mapper (a directory of mappers/ holding exactly one
// *.csv-mapper.json), as "<dir>/<case>".
std::vector<std::string> goldenCases() {
  std::vector<std::string> names;
  for (const auto& dir : std::filesystem::directory_iterator(repoPath("mappers"))) {
    if (!dir.is_directory() || !std::filesystem::is_directory(dir.path() / "golden")) continue;
    std::size_t mappers = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
      mappers += f.path().filename().string().ends_with(CsvInputMapper::kSuffix) ? 1 : 0;
    }
    if (mappers != 1) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "golden")) {
      const std::string file = entry.path().filename().string();
      if (file.ends_with(".csv")) names.push_back(dir.path().filename().string() + "/" + file.substr(0, file.size() - 4));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

class CsvGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CsvGoldenTest, RowsBecomeExpectedRecords) {
  const auto slash = GetParam().find('/');
  const auto dir = repoPath("mappers/" + GetParam().substr(0, slash));
  const std::string name = GetParam().substr(slash + 1);
  std::filesystem::path mapper_file;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().filename().string().ends_with(CsvInputMapper::kSuffix)) mapper_file = f.path();
  }
  auto mapper = CsvInputMapper::loadFile(mapper_file);
  ASSERT_TRUE(mapper) << mapper.error().describe();
  const std::string csv = readFile(dir / "golden" / (name + ".csv"));
  const auto expected = parseJson(readFile(dir / "golden" / (name + ".records.json")));
  ASSERT_TRUE(expected.IsArray());
  auto records = mapper.value().rowsToRecords(csv);
  ASSERT_TRUE(records) << records.error().describe();
  ASSERT_EQ(records.value().size(), expected.Size());
  for (rapidjson::SizeType i = 0; i < expected.Size(); ++i) {
    const auto& want = expected[i];
    const auto& got = records.value()[i];
    EXPECT_EQ(got.line, want["line"].GetUint64()) << "row " << i;
    if (const auto* record = json::find(want, "record"); record != nullptr) {
      ASSERT_FALSE(got.error) << "row " << i << ": " << got.error->describe();
      EXPECT_TRUE(got.record == *record) << "row " << i << "\nexpected: " << json::toString(*record)
                                         << "\nactual:   " << json::toString(got.record);
    } else {
      ASSERT_TRUE(got.error) << "row " << i << " converted: " << json::toString(got.record);
      EXPECT_EQ(got.error->where, json::getString(want, "error_where")) << got.error->describe();
    }
  }
}

TEST(CsvGoldenCasesTest, TheShippedExampleHasGoldenCases) {
  const auto cases = goldenCases();
  EXPECT_GE(std::count_if(cases.begin(), cases.end(), [](const auto& c) { return c.starts_with("harm-reduction-weekly/"); }),
            3);
}

INSTANTIATE_TEST_SUITE_P(CsvMappers, CsvGoldenTest, ::testing::ValuesIn(goldenCases()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n) c = (std::isalnum(static_cast<unsigned char>(c)) != 0) ? c : '_';
  return n;
});

TEST(CsvInputMapperTest, ExampleRowsPassTheSchemaAndMapToObservations) {
  auto schemas = RecordSchemas::loadDirectory(repoPath("mappers/clinic-v1/schemas"));
  ASSERT_TRUE(schemas) << schemas.error().describe();
  auto mappers = MapperSet::loadDirectory(repoPath("mappers/clinic-v1"), &schemas.value());
  ASSERT_TRUE(mappers) << mappers.error().describe();
  auto records = loadWeekly().rowsToRecords(readFile(kWeeklyDir / "examples/weekly.csv"));
  ASSERT_TRUE(records) << records.error().describe();
  ASSERT_EQ(records.value().size(), 3u);
  std::size_t observations = 0;
  for (const auto& r : records.value()) {
    ASSERT_FALSE(r.error) << r.error->describe();
    const auto errors = schemas.value().validate(r.record);
    ASSERT_TRUE(errors.empty()) << errors[0].path << ": " << errors[0].reason;
    auto mapped = mappers.value().map(r.record, {"c1", "https://ids.clinic-c1.example/"});
    ASSERT_TRUE(mapped) << mapped.error().describe();
    for (const auto& res : mapped.value().resources) observations += res.resource_type == "Observation" ? 1 : 0;
  }
  EXPECT_EQ(observations, 4u + 2u + 2u);
}

TEST(CsvInputMapperTest, RowWithoutItemsIsRejectedByTheRecordSchema) {
  // A CSV row is exactly as checked as a JSON record: nothing given -> no valid record.
  auto schemas = RecordSchemas::loadDirectory(repoPath("mappers/clinic-v1/schemas"));
  ASSERT_TRUE(schemas);
  auto records = loadWeekly().rowsToRecords(
      "Visit ID,Client ID,Visit Date,Site,Naloxone Kits,Syringes,FTS,Education,Referral\nV1,C1,2026-11-20,,0,,,N,N\n");
  ASSERT_TRUE(records);
  ASSERT_FALSE(records.value()[0].error);
  const auto errors = schemas.value().validate(records.value()[0].record);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].path, "service.items");
}

TEST(CsvInputMapperTest, MissingDeclaredColumnFailsTheWholeFile) {
  auto records = loadWeekly().rowsToRecords("Visit ID,Client ID,Site,Naloxone Kits,Syringes,FTS,Education\nV1,C1,x,1,,,Y\n");
  ASSERT_FALSE(records);
  EXPECT_EQ(records.error().code, ErrorCode::BadRequest);
  EXPECT_EQ(records.error().where, "line 1");
  EXPECT_NE(records.error().message.find("'Visit Date'"), std::string::npos) << records.error().message;
  EXPECT_NE(records.error().message.find("'Referral'"), std::string::npos) << records.error().message;
}

TEST(CsvInputMapperTest, DuplicateHeaderFailsTheWholeFile) {
  auto records = loadWeekly().rowsToRecords(
      "Visit ID,Client ID,Visit Date,Site,Naloxone Kits,Syringes,FTS,Education,Referral,client id\n");
  ASSERT_FALSE(records);
  EXPECT_NE(records.error().message.find("appears twice"), std::string::npos);
}

TEST(CsvInputMapperTest, RowErrorsNeverQuoteCellValues) {
  auto records = loadWeekly().rowsToRecords(
      "Visit ID,Client ID,Visit Date,Site,Naloxone Kits,Syringes,FTS,Education,Referral\n"
      "V1,SECRET-MRN,1990-13-45,Secret Site,SECRET12,,,,\n");
  ASSERT_TRUE(records);
  ASSERT_TRUE(records.value()[0].error);
  const std::string text = records.value()[0].error->describe();
  EXPECT_EQ(text.find("SECRET"), std::string::npos) << text;
  EXPECT_EQ(text.find("1990"), std::string::npos) << text;
  EXPECT_NE(text.find("line 2"), std::string::npos) << text;
}

TEST(CsvInputMapperTest, RowsOfBareDelimitersAreSkippedLikeBlankLines) {
  auto records = loadWeekly().rowsToRecords(
      "Visit ID,Client ID,Visit Date,Site,Naloxone Kits,Syringes,FTS,Education,Referral\n"
      "V1,C1,2026-11-25,Park,1,,,,\n"
      ",,,,,,,,\n"
      " , ,,,,,,,\n");
  ASSERT_TRUE(records);
  ASSERT_EQ(records.value().size(), 1u);
  EXPECT_FALSE(records.value()[0].error);
}

TEST(CsvInputMapperTest, UnknownCodesInCellsAreNotEchoed) {
  // A value-map miss names the code for JSON records; for a spreadsheet cell it must not.
  auto records = loadWeekly().rowsToRecords(
      "Visit ID,Client ID,Visit Date,Site,Naloxone Kits,Syringes,FTS,Education,Referral\n"
      "V1,C1,2026-11-25,Park,1,,,SECRETCODE,\n");
  ASSERT_TRUE(records);
  ASSERT_TRUE(records.value()[0].error);
  const std::string text = records.value()[0].error->describe();
  EXPECT_EQ(text.find("SECRETCODE"), std::string::npos) << text;
  EXPECT_NE(text.find("column 'Education'"), std::string::npos) << text;
}

TEST(CsvInputMapperTest, SemicolonDialectAndExactHeaders) {
  ScratchDir dir;
  dir.write("m.csv-mapper.json", R"({"format": "gw-csv-mapper/1",
    "dialect": {"delimiter": ";", "headerMatch": "exact", "trimCells": false},
    "columns": {"id": "Id", "n": "N"},
    "record": {"record_id": "$.id", "count": {"$number": "$.n"}, "kind": "x"}})");
  auto m = CsvInputMapper::loadFile(dir.path() / "m.csv-mapper.json");
  ASSERT_TRUE(m) << m.error().describe();
  auto ok_rows = m.value().rowsToRecords("Id;N\n\"a;b\";-2.5\n");
  ASSERT_TRUE(ok_rows) << ok_rows.error().describe();
  EXPECT_EQ(json::toString(ok_rows.value()[0].record), R"({"record_id":"a;b","count":-2.5,"kind":"x"})");
  auto exact = m.value().rowsToRecords("id;n\nx;1\n");
  ASSERT_FALSE(exact) << "exact matching must not accept other case";
  auto untrimmed = m.value().rowsToRecords("Id;N\nx; 1\n");
  ASSERT_TRUE(untrimmed);
  ASSERT_TRUE(untrimmed.value()[0].error) << "' 1' is not a number when cells are not trimmed";
  EXPECT_EQ(untrimmed.value()[0].error->where, "line 2, column 'N'");
}

struct LoadCase {
  const char* name;
  const char* text;
  const char* where;    // expected file:line:column suffix
  const char* message;  // part of the message
};

class CsvMapperLoadErrorTest : public ::testing::TestWithParam<LoadCase> {};

TEST_P(CsvMapperLoadErrorTest, ReportsWhereAndWhat) {
  ScratchDir dir;
  dir.write("bad.csv-mapper.json", GetParam().text);
  auto m = CsvInputMapper::loadFile(dir.path() / "bad.csv-mapper.json");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ErrorCode::Config);
  EXPECT_TRUE(m.error().where.ends_with(GetParam().where)) << m.error().describe();
  EXPECT_NE(m.error().message.find(GetParam().message), std::string::npos) << m.error().describe();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CsvMapperLoadErrorTest,
    ::testing::Values(
        LoadCase{"WrongFormat", "{\"format\": \"gw-mapper/1\"}", "bad.csv-mapper.json:1:12", "gw-csv-mapper/1"},
        LoadCase{"UnknownKey", "{\"format\": \"gw-csv-mapper/1\",\n \"colums\": {}}", ":2:2", "unknown key 'colums'"},
        LoadCase{"LongDelimiter",
                 "{\"format\": \"gw-csv-mapper/1\",\n \"dialect\": {\"delimiter\": \";;\"}, \"columns\": {\"a\": \"A\"}, "
                 "\"record\": {\"x\": \"$.a\"}}",
                 ":2:27", "one ASCII character"},
        LoadCase{"OtherEncoding",
                 "{\"format\": \"gw-csv-mapper/1\", \"dialect\": {\"encoding\": \"latin1\"}, \"columns\": {\"a\": \"A\"}, "
                 "\"record\": {\"x\": \"$.a\"}}",
                 ":1:55", "UTF-8"},
        LoadCase{"NoHeader",
                 "{\"format\": \"gw-csv-mapper/1\", \"dialect\": {\"header\": false}, \"columns\": {\"a\": \"A\"}, "
                 "\"record\": {\"x\": \"$.a\"}}",
                 ":1:53", "header must be true"},
        LoadCase{"BadColumnName",
                 "{\"format\": \"gw-csv-mapper/1\", \"columns\": {\"Client ID\": \"Client ID\"}, \"record\": {\"x\": 1}}",
                 ":1:43", "letters, digits"},
        LoadCase{"SameHeaderTwice",
                 "{\"format\": \"gw-csv-mapper/1\", \"columns\": {\"a\": \"Client ID\", \"b\": \" client  id\"}, "
                 "\"record\": {\"x\": \"$.a\"}}",
                 ":1:66", "same header"},
        LoadCase{"UndeclaredColumnInTemplate",
                 "{\"format\": \"gw-csv-mapper/1\", \"columns\": {\"client_id\": \"Client ID\"},\n \"record\": "
                 "{\"patient\": {\"mrn\": \"$.clinet_id\"}}}",
                 ":2:32", "'$.clinet_id' is not one"},
        LoadCase{"NestedPath",
                 "{\"format\": \"gw-csv-mapper/1\", \"columns\": {\"a\": \"A\"},\n \"record\": {\"x\": \"$.a.b\"}}", ":2:18",
                 "is not one"},
        LoadCase{"RuleVariable",
                 "{\"format\": \"gw-csv-mapper/1\", \"columns\": {\"a\": \"A\"},\n \"record\": {\"x\": \"$sourceId\"}}",
                 ":2:18", "not available in a record template"},
        LoadCase{"ResourceFunction",
                 "{\"format\": \"gw-csv-mapper/1\", \"columns\": {\"a\": \"A\"},\n \"record\": {\"x\": {\"$reference\": "
                 "\"Patient\", \"sourceId\": \"$.a\"}}}",
                 ":2:19", "not available in a record template"},
        LoadCase{"UnknownValueMap",
                 "{\"format\": \"gw-csv-mapper/1\", \"columns\": {\"a\": \"A\"},\n \"record\": {\"x\": {\"$lookup\": "
                 "\"nope\", \"value\": \"$.a\"}}}",
                 ":2:30", "unknown value map 'nope'"},
        LoadCase{"NoRecord", "{\"format\": \"gw-csv-mapper/1\", \"columns\": {\"a\": \"A\"}}", ":1:1", "missing \"record\""},
        LoadCase{"JsonSyntax", "{\"format\": \"gw-csv-mapper/1\",\n  \"columns\": {\"a\" \"A\"}}", ":2:19", ""}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(CsvMapperSetTest, NamesAreRelativePathsWithoutSuffix) {
  auto set = CsvMapperSet::loadDirectory(repoPath("mappers"));
  ASSERT_TRUE(set) << set.error().describe();
  EXPECT_NE(set.value().find("harm-reduction-weekly/weekly-export"), nullptr);
  EXPECT_EQ(set.value().find("weekly-export"), nullptr);
  const auto names = set.value().names();
  EXPECT_NE(std::find(names.begin(), names.end(), "harm-reduction-weekly/weekly-export"), names.end());
}

TEST(CsvMapperSetTest, BrokenFileFailsTheSetAndMissingDirIsAnError) {
  ScratchDir dir;
  dir.write("x.csv-mapper.json", "{\"format\": \"gw-csv-mapper/1\"}");
  auto set = CsvMapperSet::loadDirectory(dir.path());
  ASSERT_FALSE(set);
  EXPECT_NE(set.error().where.find("x.csv-mapper.json:1:1"), std::string::npos) << set.error().describe();
  EXPECT_FALSE(CsvMapperSet::loadDirectory(dir.path() / "missing"));
}

}  // namespace
}  // namespace gw::mapping

// The engineer tools over the shipped mapper set: dry-run mapping, golden runs, JSON diffs and
// the $test endpoint's answer.
#include "app/engineer_tools.hpp"
#include "app/golden_cases.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "support/test_files.hpp"

namespace gw::app {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

const fs::path kRepo(GW_REPO_DIR);

rapidjson::Document parse(std::string_view text) {
  rapidjson::Document d;
  EXPECT_TRUE(json::parse(text, d)) << text;
  return d;
}

using gw::test::readFile;

class EngineerTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto loaded = loadMappingSnapshot(kRepo / "mappers/clinic-v1", kRepo / "fhir-profiles");
    ASSERT_TRUE(loaded) << loaded.error().describe();
    snapshot_ = new std::shared_ptr<const MappingSnapshot>(std::move(loaded).value());
  }
  static void TearDownTestSuite() {
    delete snapshot_;
    snapshot_ = nullptr;
  }
  static const MappingSnapshot& snapshot() { return **snapshot_; }
  static std::shared_ptr<const MappingSnapshot>* snapshot_;
};
std::shared_ptr<const MappingSnapshot>* EngineerTools::snapshot_ = nullptr;

TEST(JsonDifferences, IgnoreMemberOrderAndNameEachDifferenceByPath) {
  auto expected = parse(R"([{"a":1,"b":{"c":"x","d":[1,2]},"gone":true}])");
  auto reordered = parse(R"([{"b":{"d":[1,2],"c":"x"},"gone":true,"a":1.0}])");
  EXPECT_TRUE(jsonDifferences(expected, reordered).empty());

  auto actual = parse(R"([{"a":2,"b":{"c":"x","d":[1]},"extra":"e","my-key":0}])");
  auto diffs = jsonDifferences(expected, actual);
  ASSERT_EQ(diffs.size(), 5u);
  EXPECT_EQ(diffs[0].path, "$[0].a");
  EXPECT_EQ(diffs[0].expected, "1");
  EXPECT_EQ(diffs[0].actual, "2");
  EXPECT_EQ(diffs[1].path, "$[0].b.d[1]");
  EXPECT_EQ(diffs[1].actual, "(absent)");
  EXPECT_EQ(diffs[2].path, "$[0].gone");
  EXPECT_EQ(diffs[2].expected, "true");
  EXPECT_EQ(diffs[3].path, "$[0].extra");
  EXPECT_EQ(diffs[3].actual, "\"e\"");
  EXPECT_EQ(diffs[4].path, "$[0][\"my-key\"]");
  EXPECT_EQ(jsonDifferences(expected, actual, 2).size(), 2u);
}

TEST_F(EngineerTools, MapsAndValidatesAnExampleRecord) {
  auto input = parse(readFile(kRepo / "mappers/clinic-v1/golden/lab_quantity.input.json"));
  auto mapped = mapRecord(snapshot(), input, "lab_result");
  ASSERT_TRUE(mapped.errors.empty()) << mapped.errors[0].describe();
  ASSERT_EQ(mapped.resources.Size(), 1u);
  EXPECT_EQ(json::getString(mapped.resources[0], "resourceType"), "Observation");
  ASSERT_EQ(mapped.outcomes.size(), 1u);
  EXPECT_TRUE(mapped.valid());
  EXPECT_THAT(formatMappedRecord(mapped), HasSubstr("validation Observation/"));
}

TEST_F(EngineerTools, ReportsSchemaErrorsAtTheRecordFieldAndAWrongRecordType) {
  auto input = parse(readFile(kRepo / "mappers/clinic-v1/golden/lab_quantity.input.json"));
  input["result"].RemoveMember("loinc");
  auto mapped = mapRecord(snapshot(), input);
  ASSERT_FALSE(mapped.errors.empty());
  EXPECT_FALSE(mapped.valid());
  EXPECT_THAT(formatMappedRecord(mapped), HasSubstr("result"));

  auto wrong = mapRecord(snapshot(), parse(readFile(kRepo / "mappers/clinic-v1/golden/lab_quantity.input.json")), "patient");
  ASSERT_EQ(wrong.errors.size(), 1u);
  EXPECT_EQ(wrong.errors[0].where, "record_type");
}

TEST_F(EngineerTools, ShippedGoldenCasesAllPass) {
  auto results = runGoldenCases(snapshot(), kRepo / "mappers/clinic-v1/golden");
  ASSERT_GE(results.size(), 16u);
  const std::string report = formatGoldenResults(results);
  EXPECT_THAT(report, HasSubstr(std::to_string(results.size()) + " passed, 0 failed")) << report;
}

TEST_F(EngineerTools, AGoldenMismatchIsReportedWithPathAndBothValues) {
  const fs::path dir = fs::temp_directory_path() / ("gw-golden-" + ids::randomHex(6));
  fs::create_directories(dir);
  const fs::path src = kRepo / "mappers/clinic-v1/golden";
  fs::copy_file(src / "lab_quantity.input.json", dir / "lab_quantity.input.json");
  auto expected = parse(readFile(src / "lab_quantity.expected.json"));
  auto& resource = expected.IsArray() ? expected[0] : static_cast<rapidjson::Value&>(expected);
  resource["status"].SetString("preliminary");
  std::ofstream(dir / "lab_quantity.expected.json") << json::toString(resource);  // one object, not an array
  std::ofstream(dir / "broken.input.json") << "{";
  std::ofstream(dir / "broken.expected.json") << "[]";

  auto results = runGoldenCases(snapshot(), dir);
  fs::remove_all(dir);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].name, "broken");
  EXPECT_TRUE(results[0].unreadable.has_value());
  EXPECT_FALSE(results[1].passed());
  ASSERT_EQ(results[1].differences.size(), 1u);
  EXPECT_EQ(results[1].differences[0].path, "$[0].status");
  EXPECT_EQ(results[1].differences[0].expected, "\"preliminary\"");
  const std::string report = formatGoldenResults(results);
  EXPECT_THAT(report, HasSubstr("FAIL lab_quantity"));
  EXPECT_THAT(report, HasSubstr("$[0].status"));
  EXPECT_THAT(report, HasSubstr("0 passed, 2 failed"));
}

TEST_F(EngineerTools, TestRequestAnswersOutputOutcomesAndDifferences) {
  const std::string input = readFile(kRepo / "mappers/clinic-v1/golden/lab_quantity.input.json");
  const std::string expected = readFile(kRepo / "mappers/clinic-v1/golden/lab_quantity.expected.json");

  auto single = testMappingRequest(snapshot(), "lab_result", input);
  EXPECT_EQ(single.status, 200);
  auto one = parse(single.body);
  EXPECT_EQ(one["passed"].GetUint(), 1u);
  EXPECT_EQ(json::getString(one["results"][0]["resources"][0], "resourceType"), "Observation");
  EXPECT_TRUE(one["results"][0]["outcomes"][0].IsObject());
  EXPECT_FALSE(one["results"][0].HasMember("differences"));

  std::string wrong_expected = expected;
  wrong_expected.replace(wrong_expected.find("\"corrected\""), 11, "\"final\"");
  auto cases = testMappingRequest(snapshot(), "lab_result",
                                  "[{\"input\":" + input + ",\"expected\":" + expected + "},{\"input\":" + input +
                                      ",\"expected\":" + wrong_expected + "}]");
  EXPECT_EQ(cases.status, 200);
  auto two = parse(cases.body);
  EXPECT_EQ(two["passed"].GetUint(), 1u);
  EXPECT_EQ(two["failed"].GetUint(), 1u);
  const auto& diffs = two["results"][1]["differences"];
  ASSERT_EQ(diffs.Size(), 1u);
  EXPECT_EQ(json::getString(diffs[0], "path"), "$[0].status");

  EXPECT_EQ(testMappingRequest(snapshot(), "no_such_type", input).status, 404);
  EXPECT_EQ(testMappingRequest(snapshot(), "lab_result", "{").status, 400);
  EXPECT_EQ(testMappingRequest(snapshot(), "lab_result", "[{\"expected\":[]}]").status, 400);
  // Read as strictly as POST /v1/records reads records (issue 9, defect 6).
  const auto twice = testMappingRequest(snapshot(), "lab_result", R"({"clinic":"c1","clinic":"c2"})");
  EXPECT_EQ(twice.status, 400);
  EXPECT_THAT(twice.body, HasSubstr("$.clinic"));
  EXPECT_EQ(testMappingRequest(snapshot(), "lab_result", "{\"clinic\":\"\xff\"}").status, 400);
}

// ---- CSV input mappers ----

const fs::path kWeeklyDir = kRepo / "mappers/harm-reduction-weekly";

mapping::CsvInputMapper weeklyMapper() {
  auto m = mapping::CsvInputMapper::loadFile(kWeeklyDir / "weekly-export.csv-mapper.json");
  EXPECT_TRUE(m) << m.error().describe();
  return std::move(m).value();
}

// A scratch copy of the weekly mapper and its golden cases: <dir>/weekly/...
struct CsvScratch {
  CsvScratch() : dir(fs::temp_directory_path() / ("gw-csv-golden-" + ids::randomHex(6))) {
    fs::create_directories(dir / "weekly/golden");
    fs::copy_file(kWeeklyDir / "weekly-export.csv-mapper.json", dir / "weekly/weekly-export.csv-mapper.json");
  }
  ~CsvScratch() { fs::remove_all(dir); }
  void copyCase(const std::string& name, bool with_fhir) const {
    for (const std::string ext : {".csv", ".records.json"}) {
      fs::copy_file(kWeeklyDir / "golden" / (name + ext), dir / "weekly/golden" / (name + ext));
    }
    if (with_fhir)
      fs::copy_file(kWeeklyDir / "golden" / (name + ".fhir.json"), dir / "weekly/golden" / (name + ".fhir.json"));
  }
  void replaceIn(const std::string& file, const std::string& from, const std::string& to) const {
    std::string text = readFile(dir / "weekly/golden" / file);
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    std::ofstream(dir / "weekly/golden" / file, std::ios::binary) << text;
  }
  fs::path dir;
};

TEST_F(EngineerTools, ShippedCsvGoldenCasesAllPassWithTheirFhirOutput) {
  auto results = runCsvGoldenCases(snapshot(), kRepo / "mappers");
  ASSERT_GE(results.size(), 3u);
  std::vector<std::string> names;
  for (const auto& r : results) names.push_back(r.name);
  EXPECT_THAT(names, ::testing::IsSupersetOf({"harm-reduction-weekly/weekly-export/weekly_example.csv",
                                              "harm-reduction-weekly/weekly-export/quoted_multiline_site.csv",
                                              "harm-reduction-weekly/weekly-export/edge_cases.csv"}));
  const std::string report = formatGoldenResults(results);
  EXPECT_THAT(report, HasSubstr(std::to_string(results.size()) + " passed, 0 failed")) << report;
  // Every shipped case also pins the FHIR output.
  for (const auto& r : results) {
    const std::string file = r.name.substr(r.name.rfind('/') + 1);
    EXPECT_TRUE(fs::exists(kWeeklyDir / "golden" / (file.substr(0, file.size() - 4) + ".fhir.json"))) << r.name;
  }
}

TEST_F(EngineerTools, ACsvGoldenMismatchShowsRecordAndFhirDifferencesByLine) {
  CsvScratch scratch;
  scratch.copyCase("weekly_example", true);
  scratch.copyCase("edge_cases", false);
  scratch.replaceIn("weekly_example.records.json", "\"quantity\": 50", "\"quantity\": 5");
  scratch.replaceIn("weekly_example.fhir.json", "\"final\"", "\"preliminary\"");
  scratch.replaceIn("edge_cases.records.json", "line 4, column 'Naloxone Kits'", "line 4, column 'Syringes'");
  std::ofstream(scratch.dir / "weekly/golden/unreadable.csv") << "Visit ID\n";
  std::ofstream(scratch.dir / "weekly/golden/unreadable.records.json") << "{\"line\": 2}";

  auto results = runCsvGoldenCases(snapshot(), scratch.dir);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].name, "weekly/weekly-export/edge_cases.csv");
  EXPECT_EQ(results[1].name, "weekly/weekly-export/unreadable.csv");
  EXPECT_EQ(results[2].name, "weekly/weekly-export/weekly_example.csv");

  ASSERT_EQ(results[0].differences.size(), 1u);
  EXPECT_EQ(results[0].differences[0].path, "records $[\"line 4\"].error_where");
  EXPECT_EQ(results[0].differences[0].expected, "\"line 4, column 'Syringes'\"");
  EXPECT_EQ(results[0].differences[0].actual, "\"line 4, column 'Naloxone Kits'\"");
  EXPECT_TRUE(results[1].unreadable.has_value());
  EXPECT_THAT(results[1].unreadable->message, HasSubstr("JSON array"));
  ASSERT_EQ(results[2].differences.size(), 2u);
  EXPECT_EQ(results[2].differences[0].path, "records $[\"line 2\"].record.service.items[1].quantity");
  EXPECT_EQ(results[2].differences[1].path, "fhir $[\"line 2\"].resources[0].status");
  EXPECT_EQ(results[2].differences[1].actual, "\"final\"");

  const std::string report = formatGoldenResults(results);
  EXPECT_THAT(report, HasSubstr("FAIL weekly/weekly-export/edge_cases.csv"));
  EXPECT_THAT(report, HasSubstr("row error, line 4: line 4, column 'Naloxone Kits'"));  // explains the diff
  EXPECT_THAT(report, HasSubstr("expected: \"preliminary\"\n    actual:   \"final\""));
  EXPECT_THAT(report, HasSubstr("0 passed, 3 failed"));
}

TEST_F(EngineerTools, ACsvGoldenWithInvalidFhirOrABrokenMapperFails) {
  CsvScratch scratch;
  scratch.copyCase("weekly_example", true);
  // The FHIR expectation no longer lists line 3's resources: the actual output has them.
  std::string fhir = readFile(scratch.dir / "weekly/golden/weekly_example.fhir.json");
  auto doc = parse(fhir);
  doc.Erase(doc.Begin() + 1);
  std::ofstream(scratch.dir / "weekly/golden/weekly_example.fhir.json") << json::toString(doc);
  auto results = runCsvGoldenCases(snapshot(), scratch.dir);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_FALSE(results[0].passed());
  ASSERT_EQ(results[0].differences.size(), 1u);
  EXPECT_EQ(results[0].differences[0].path, "fhir $[\"line 3\"]");
  EXPECT_EQ(results[0].differences[0].expected, "(absent)");

  std::ofstream(scratch.dir / "weekly/weekly-export.csv-mapper.json") << "{\n  \"format\": \"gw-csv-mapper/1\",\n  oops\n}";
  auto broken = runCsvGoldenCases(snapshot(), scratch.dir);
  ASSERT_EQ(broken.size(), 1u);
  EXPECT_EQ(broken[0].name, "weekly/weekly-export.csv-mapper.json");
  ASSERT_TRUE(broken[0].unreadable.has_value());
  EXPECT_THAT(broken[0].unreadable->where, HasSubstr("weekly-export.csv-mapper.json:3:"));
  EXPECT_TRUE(runCsvGoldenCases(snapshot(), scratch.dir / "missing").empty());
}

TEST_F(EngineerTools, MapCsvConvertsMapsAndValidatesEveryRow) {
  auto mapped = mapCsv(snapshot(), weeklyMapper(), readFile(kWeeklyDir / "golden/edge_cases.csv"));
  ASSERT_FALSE(mapped.error);
  ASSERT_EQ(mapped.rows.size(), 6u);
  EXPECT_EQ(mapped.failed(), 5u);
  EXPECT_FALSE(mapped.valid());
  const auto& first = mapped.rows[0];
  EXPECT_EQ(first.line, 2u);
  ASSERT_TRUE(first.valid()) << formatMappedCsv(mapped);
  EXPECT_EQ(json::getString(first.record, "record_id"), "hrw:W48-001");
  EXPECT_EQ(first.mapped.resources.Size(), 1u);
  ASSERT_TRUE(mapped.rows[1].row_error.has_value());
  EXPECT_EQ(mapped.rows[1].row_error->where, "line 4, column 'Naloxone Kits'");
  ASSERT_EQ(mapped.rows[5].mapped.errors.size(), 1u);  // converts, but the schema wants an item
  EXPECT_EQ(mapped.rows[5].mapped.errors[0].where, "service.items");

  const std::string report = formatMappedCsv(mapped);
  EXPECT_THAT(report, HasSubstr("# line 2: valid\nrecord:\n{"));
  EXPECT_THAT(report, HasSubstr("validation Observation/"));
  EXPECT_THAT(report, HasSubstr("# line 4: FAILED\nerror: line 4, column 'Naloxone Kits'"));
  EXPECT_THAT(report, HasSubstr("error: service.items"));
  EXPECT_THAT(report, HasSubstr("6 rows: 1 valid, 5 failed"));
  EXPECT_THAT(report, Not(HasSubstr("two")));  // the bad cell is not echoed

  auto good = mapCsv(snapshot(), weeklyMapper(), readFile(kWeeklyDir / "examples/weekly.csv"));
  EXPECT_TRUE(good.valid()) << formatMappedCsv(good);
  EXPECT_THAT(formatMappedCsv(good), HasSubstr("3 rows: 3 valid, 0 failed"));

  auto unreadable = mapCsv(snapshot(), weeklyMapper(), "Visit ID,Client ID\n\"open");
  ASSERT_TRUE(unreadable.error.has_value());
  EXPECT_FALSE(unreadable.valid());
  EXPECT_THAT(formatMappedCsv(unreadable), HasSubstr("error: line"));
}

TEST_F(EngineerTools, TestRequestTakesACsvExportForACsvMapper) {
  auto set = mapping::CsvMapperSet::loadDirectory(kRepo / "mappers");
  ASSERT_TRUE(set) << set.error().describe();
  const auto* csv = &set.value();
  const std::string weekly = "harm-reduction-weekly/weekly-export";
  const std::string edge = readFile(kWeeklyDir / "golden/edge_cases.csv");

  auto answer = testMappingRequest(snapshot(), weekly, edge, csv, "Text/CSV; charset=utf-8");
  ASSERT_EQ(answer.status, 200) << answer.body;
  auto doc = parse(answer.body);
  EXPECT_EQ(json::getString(doc, "mapper"), weekly);
  EXPECT_EQ(doc["passed"].GetUint(), 1u);
  EXPECT_EQ(doc["failed"].GetUint(), 5u);
  const auto& results = doc["results"];
  ASSERT_EQ(results.Size(), 6u);
  EXPECT_EQ(results[0]["line"].GetUint(), 2u);
  EXPECT_TRUE(results[0]["passed"].GetBool());
  EXPECT_EQ(json::getString(results[0]["record"], "record_id"), "hrw:W48-001");
  EXPECT_EQ(json::getString(results[0]["resources"][0], "resourceType"), "Observation");
  EXPECT_TRUE(results[0]["outcomes"][0].IsObject());
  EXPECT_EQ(results[1]["line"].GetUint(), 4u);
  EXPECT_FALSE(results[1]["valid"].GetBool());
  EXPECT_FALSE(results[1].HasMember("record"));
  EXPECT_EQ(json::getString(results[1]["errors"][0], "where"), "line 4, column 'Naloxone Kits'");
  EXPECT_EQ(json::getString(results[5]["errors"][0], "where"), "service.items");
  EXPECT_THAT(answer.body, Not(HasSubstr("two")));

  EXPECT_EQ(testMappingRequest(snapshot(), "nope/weekly", edge, csv, "text/csv").status, 404);
  EXPECT_EQ(testMappingRequest(snapshot(), weekly, edge, nullptr, "text/csv").status, 404);
  EXPECT_EQ(testMappingRequest(snapshot(), weekly, "Visit ID\n\"open", csv, "text/csv").status, 400);
  // A CSV mapper's name with a JSON body: 404, with a hint to send text/csv.
  auto json_body = testMappingRequest(snapshot(), weekly, "{}", csv, "application/json");
  EXPECT_EQ(json_body.status, 404);
  EXPECT_THAT(json_body.body, HasSubstr("text/csv"));
  // A record type with a CSV body: there is no CSV mapper of that name.
  EXPECT_EQ(testMappingRequest(snapshot(), "lab_result", edge, csv, "text/csv").status, 404);
}

TEST(MappingSnapshot, ABrokenMapperFailsWithFileLineAndColumn) {
  const fs::path dir = fs::temp_directory_path() / ("gw-mappers-" + ids::randomHex(6));
  fs::create_directories(dir);
  fs::copy(kRepo / "mappers/clinic-v1/schemas", dir / "schemas");
  std::ofstream(dir / "patient.mapper.json") << "{\n  \"record_type\": \"patient\",\n  oops\n}\n";
  auto loaded = loadMappingSnapshot(dir, kRepo / "fhir-profiles");
  fs::remove_all(dir);
  ASSERT_FALSE(loaded);
  EXPECT_THAT(loaded.error().where, HasSubstr("patient.mapper.json:3:"));
}

}  // namespace
}  // namespace gw::app

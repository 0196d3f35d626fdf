// The engineer tools over the shipped mapper set: dry-run mapping, golden runs, JSON diffs and
// the $test endpoint's answer.
#include "app/engineer_tools.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/ids.hpp"
#include "common/json.hpp"

namespace gw::app {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

const fs::path kRepo(GW_REPO_DIR);

rapidjson::Document parse(std::string_view text) {
  rapidjson::Document d;
  EXPECT_TRUE(json::parse(text, d)) << text;
  return d;
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

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

  auto wrong = mapRecord(snapshot(), parse(readFile(kRepo / "mappers/clinic-v1/golden/lab_quantity.input.json")),
                         "patient");
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

// Runs every golden case in mappers/clinic-v1/golden: <name>.input.json is mapped with a fixed
// context and must equal <name>.expected.json (a JSON array of the resources, in output order).
// The expected files are written by hand (ids computed independently with Python's uuid5), so
// a change in the engine or a mapper that alters output shows up here.
#include <algorithm>

#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"
#include "support/mapper_output.hpp"
#include "test_support.hpp"

namespace gw::mapping {
namespace {

using testing::mappersDir;
using testing::parseJson;
using testing::readFile;
using testing::schemasDir;

std::vector<std::string> goldenCases() {
  std::vector<std::string> names;
  constexpr std::string_view kSuffix = ".input.json";
  for (const auto& entry : std::filesystem::directory_iterator(mappersDir() / "golden")) {
    const std::string file = entry.path().filename().string();
    if (file.size() > kSuffix.size() && file.ends_with(kSuffix))
      names.push_back(file.substr(0, file.size() - kSuffix.size()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

MappingContext goldenContext() { return {"c1", "https://ids.clinic-c1.example/"}; }

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    auto schemas = RecordSchemas::loadDirectory(schemasDir());
    ASSERT_TRUE(schemas) << schemas.error().describe();
    schemas_ = new RecordSchemas(std::move(schemas).value());
    auto mappers = MapperSet::loadDirectory(mappersDir(), schemas_);
    ASSERT_TRUE(mappers) << mappers.error().describe();
    mappers_ = new MapperSet(std::move(mappers).value());
  }
  static void TearDownTestSuite() {
    delete mappers_;
    delete schemas_;
    mappers_ = nullptr;
    schemas_ = nullptr;
  }
  static RecordSchemas* schemas_;
  static MapperSet* mappers_;
};

RecordSchemas* GoldenTest::schemas_ = nullptr;
MapperSet* GoldenTest::mappers_ = nullptr;

TEST_P(GoldenTest, MapsToExpectedFhir) {
  ASSERT_NE(mappers_, nullptr);
  const std::string name = GetParam();
  const auto input = parseJson(readFile(mappersDir() / "golden" / (name + ".input.json")));
  auto expected = parseJson(readFile(mappersDir() / "golden" / (name + ".expected.json")));
  ASSERT_TRUE(expected.IsArray()) << name << ".expected.json must be an array of resources";
  // The file holds what ingest stores (labelled); the mapper alone emits it without labels.
  test::stripSecurityLabelsFromAll(expected);

  // A golden input must be a record ingest would accept.
  for (const auto& e : schemas_->validate(input)) ADD_FAILURE() << name << ": schema: " << e.path << ": " << e.reason;

  auto output = mappers_->map(input, goldenContext());
  ASSERT_TRUE(output) << output.error().describe();
  rapidjson::Document actual(rapidjson::kArrayType);
  for (auto& resource : output.value().resources) {
    rapidjson::Value copy(resource.resource, actual.GetAllocator());
    actual.PushBack(copy, actual.GetAllocator());
  }
  EXPECT_TRUE(actual == expected) << "golden case " << name << " differs\n--- expected ---\n"
                                  << json::toPrettyString(expected) << "\n--- actual ---\n"
                                  << json::toPrettyString(actual);

  // The side fields agree with the resource.
  for (const auto& resource : output.value().resources) {
    EXPECT_EQ(json::getString(resource.resource, "resourceType"), resource.resource_type);
    EXPECT_EQ(json::getString(resource.resource, "id"), resource.id);
    bool found = false;
    for (const auto& identifier : resource.resource["identifier"].GetArray()) {
      found = found || (json::getString(identifier, "system") == resource.identifier_system &&
                        json::getString(identifier, "value") == resource.identifier_value);
    }
    EXPECT_TRUE(found) << "business identifier missing from " << resource.resource_type;
  }
}

INSTANTIATE_TEST_SUITE_P(ClinicV1, GoldenTest, ::testing::ValuesIn(goldenCases()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(GoldenCases, RequiredCasesExist) {
  const auto cases = goldenCases();
  for (const char* required : {"patient_full", "patient_minimal", "patient_non_ascii", "prescription_full",
                               "prescription_minimal", "prescription_without_rxnorm", "prescription_spec_example"}) {
    EXPECT_NE(std::find(cases.begin(), cases.end(), required), cases.end()) << "missing golden case " << required;
    EXPECT_TRUE(std::filesystem::exists(mappersDir() / "golden" / (std::string(required) + ".expected.json"))) << required;
  }
}

}  // namespace
}  // namespace gw::mapping

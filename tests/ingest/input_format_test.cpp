#include "ingest/input_format.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace gw::ingest {
namespace {

using ::testing::HasSubstr;

TEST(InputFormatRegistry, FindsTheBuiltinFormatsByMediaTypeWhateverItsCaseAndParameters) {
  const auto registry = InputFormatRegistry::builtins();
  for (const char* type : {"application/json", "Application/JSON; charset=utf-8", "application/fhir+json",
                           "application/x-ndjson", "application/ndjson", "text/csv", "TEXT/CSV;header=present", ""}) {
    EXPECT_TRUE(registry.find(type)) << type;
  }
  const auto json = registry.find("application/json");
  const auto ndjson = registry.find("application/x-ndjson");
  ASSERT_TRUE(json && ndjson);
  EXPECT_NE(json.value(), ndjson.value());
}

TEST(InputFormatRegistry, AnUnknownMediaTypeIs400NamingTheAcceptedOnes) {
  const auto registry = InputFormatRegistry::builtins();
  auto found = registry.find("application/xml");
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, ErrorCode::BadRequest);
  EXPECT_EQ(found.error().where, "Content-Type");
  EXPECT_THAT(found.error().message, HasSubstr("application/xml"));
  EXPECT_THAT(found.error().hint, HasSubstr("application/x-ndjson"));
  EXPECT_THAT(found.error().hint, HasSubstr("text/csv"));
}

TEST(InputFormatRegistry, JsonArraysAndNdjsonBecomeRecordsInOrder) {
  const auto registry = InputFormatRegistry::builtins();
  auto batch = registry.find("application/json").value()->read(R"([{"a":1},{"a":2}])", {});
  ASSERT_TRUE(batch);
  ASSERT_EQ(batch.value().records.size(), 2u);
  EXPECT_EQ((*batch.value().records[1].record)["a"].GetInt(), 2);
  auto lines = registry.find("application/x-ndjson").value()->read("{\"a\":1}\n\n{\"a\":3}\n", {});
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines.value().records.size(), 2u);
  EXPECT_EQ((*lines.value().records[1].record)["a"].GetInt(), 3);
  InputOptions few;
  few.max_records = 1;
  auto too_many = registry.find("application/json").value()->read(R"([{"a":1},{"a":2}])", few);
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code, ErrorCode::PayloadTooLarge);
}

// A new format is one class and one registration: here, records one per line as key=value pairs.
class KeyValueFormat final : public InputFormat {
 public:
  std::vector<std::string> mediaTypes() const override { return {"text/x-key-value"}; }
  Result<InputBatch> read(std::string_view body, const InputOptions&) const override {
    auto doc = std::make_shared<rapidjson::Document>(rapidjson::kArrayType);
    rapidjson::Value record(rapidjson::kObjectType);
    const auto eq = body.find('=');
    if (eq == std::string_view::npos) return makeError(ErrorCode::BadRequest, "no '='", "body");
    record.AddMember(rapidjson::Value(std::string(body.substr(0, eq)).c_str(), doc->GetAllocator()),
                     rapidjson::Value(std::string(body.substr(eq + 1)).c_str(), doc->GetAllocator()), doc->GetAllocator());
    doc->PushBack(record, doc->GetAllocator());
    InputBatch batch;
    batch.records.push_back({&(*doc)[0], 0, std::nullopt});
    batch.storage = doc;
    return batch;
  }
};

TEST(InputFormatRegistry, ANewFormatPlugsInAndAMediaTypeIsTakenOnce) {
  auto registry = InputFormatRegistry::builtins();
  ASSERT_TRUE(registry.add(std::make_unique<KeyValueFormat>()));
  auto format = registry.find("text/x-key-value");
  ASSERT_TRUE(format);
  auto batch = format.value()->read("record_type=patient", {});
  ASSERT_TRUE(batch);
  EXPECT_STREQ((*batch.value().records[0].record)["record_type"].GetString(), "patient");
  auto twice = registry.add(std::make_unique<KeyValueFormat>());
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::Config);
  EXPECT_THAT(registry.mediaTypes(), ::testing::Contains("text/x-key-value"));
}

TEST(InputFormatRegistry, CsvNeedsANamedKnownMapper) {
  const auto registry = InputFormatRegistry::builtins();
  const auto* csv = registry.find("text/csv").value();
  RuleSet rules;
  rules.csv_mappers = std::make_shared<const mapping::CsvMapperSet>();
  InputOptions options;
  options.rules = &rules;
  auto none = csv->read("a,b\n1,2\n", options);
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, HasSubstr("no CSV mappers"));
}

}  // namespace
}  // namespace gw::ingest

// mappers/csv-mapper.schema.json (the editor schema of CSV input mappers) checked with RapidJSON's
// validator: every pattern compiles in RapidJSON's regex dialect (else RapidJSON would ignore
// it), every shipped *.csv-mapper.json conforms, and typical mistakes are rejected. The schema
// uses only keywords draft-04 validators check, so this test sees everything it says; the
// draft-07 check with Ajv is in mapper_schema.test.js.
#include <rapidjson/internal/regex.h>
#include <rapidjson/pointer.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

#include <functional>

#include "mapping/csv_input_mapper.hpp"
#include "mapping/support.hpp"
#include "test_support.hpp"

namespace gw::mapping {
namespace {

using testing::repoPath;

rapidjson::Document loadSchema() {
  auto text = readTextFile(repoPath("mappers/csv-mapper.schema.json"));
  EXPECT_TRUE(text);
  rapidjson::Document doc;
  EXPECT_TRUE(parseJsonFile("csv-mapper.schema.json", text.value(), doc, false));
  return doc;
}

// Mapper files may hold comments and trailing commas, as the gateway reads them.
rapidjson::Document loadMapper(const std::filesystem::path& file) {
  auto text = readTextFile(file);
  EXPECT_TRUE(text) << file;
  rapidjson::Document doc;
  auto parsed = parseJsonFile(file.string(), text.value(), doc, true);
  EXPECT_TRUE(parsed) << parsed.error().describe();
  return doc;
}

std::vector<std::filesystem::path> shippedCsvMappers() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(repoPath("mappers"))) {
    if (entry.path().filename().string().ends_with(CsvInputMapper::kSuffix)) files.push_back(entry.path());
  }
  return files;
}

// Empty when valid; else the failing schema keyword and the document path.
std::string validate(const rapidjson::SchemaDocument& schema, const rapidjson::Value& doc) {
  rapidjson::SchemaValidator validator(schema);
  if (doc.Accept(validator)) return {};
  rapidjson::StringBuffer where;
  validator.GetInvalidDocumentPointer().StringifyUriFragment(where);
  return std::string(validator.GetInvalidSchemaKeyword()) + " at " + where.GetString();
}

TEST(CsvMapperSchema, EveryPatternCompilesAndEveryRefResolves) {
  const auto schema = loadSchema();
  std::size_t patterns = 0;
  std::function<void(const rapidjson::Value&)> walk = [&](const rapidjson::Value& v) {
    if (v.IsArray()) {
      for (const auto& item : v.GetArray()) walk(item);
    }
    if (!v.IsObject()) return;
    for (const auto& m : v.GetObject()) {
      const std::string_view key(m.name.GetString(), m.name.GetStringLength());
      if (key == "pattern" || key == "patternProperties") {
        const auto check = [&](const char* pattern) {
          rapidjson::internal::GenericRegex<rapidjson::UTF8<>> regex(pattern);
          EXPECT_TRUE(regex.IsValid()) << "RapidJSON cannot compile " << pattern;
          ++patterns;
        };
        if (m.value.IsString()) check(m.value.GetString());
        if (key == "patternProperties") {
          for (const auto& p : m.value.GetObject()) check(p.name.GetString());
        }
      }
      if (key == "$ref") {
        const std::string_view ref(m.value.GetString(), m.value.GetStringLength());
        ASSERT_TRUE(ref.starts_with("#/"));
        EXPECT_NE(rapidjson::Pointer(ref.data() + 1, ref.size() - 1).Get(schema), nullptr) << ref;
      }
      walk(m.value);
    }
  };
  walk(schema);
  EXPECT_GE(patterns, 5u);
}

TEST(CsvMapperSchema, ShippedCsvMappersConformAndPointAtTheSchema) {
  const rapidjson::SchemaDocument schema(loadSchema());
  const auto files = shippedCsvMappers();
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) {
    const auto mapper = loadMapper(file);
    EXPECT_EQ(validate(schema, mapper), "") << file;
    const auto target = file.parent_path() / json::getString(mapper, "$schema");
    EXPECT_TRUE(std::filesystem::equivalent(target, repoPath("mappers/csv-mapper.schema.json"))) << file << ": $schema";
  }
}

TEST(CsvMapperSchema, RejectsTypicalMistakes) {
  const rapidjson::SchemaDocument schema(loadSchema());
  const auto base = [] { return loadMapper(repoPath("mappers/harm-reduction-weekly/weekly-export.csv-mapper.json")); };
  const auto set = [](rapidjson::Document& d, const char* pointer, const char* json_value) {
    rapidjson::Document v(&d.GetAllocator());
    v.Parse(json_value);
    ASSERT_FALSE(v.HasParseError()) << json_value;
    rapidjson::Pointer(pointer).Set(d, v);
  };
  struct Mistake {
    const char* pointer;
    const char* value;
  };
  for (const Mistake& m : std::initializer_list<Mistake>{
           {"/format", "\"gw-mapper/1\""},
           {"/colums", "{}"},
           {"/dialect/delimiter", "\";;\""},
           {"/dialect/delimiter", "\"\\n\""},
           {"/dialect/header", "false"},
           {"/dialect/encoding", "\"latin1\""},
           {"/columns/Client ID", "\"Client ID\""},
           {"/columns/client_id", "\"\""},
           {"/record/patient/mrn", "\"$.client_id.x\""},
           {"/record/patient/mrn", "\"$sourceId\""},
           {"/record/patient/ref", "{\"$reference\": \"Patient\", \"sourceId\": \"$.client_id\"}"},
           {"/record/service/site", "{\"$lowercase\": \"$.site\"}"},
           {"/record/service/site", "{\"$lookup\": \"yes\", \"valeu\": \"$.site\"}"},
           {"/record/service/date", "{\"$date\": \"$.visit_date\", \"timezone\": \"UTC\"}"},
           {"/record/service/date", "{\"$date\": \"$.visit_date\", \"formats\": []}"},
           {"/record/service/date", "{\"$date\": \"$.visit_date\", \"formats\": [\"M/D/YYYY\", \"M/D/YYYY\"]}"},
           {"/record/recorded_at/timezone", "\"+5:30\""},
           {"/record/recorded_at/timezone", "\"+14:30\""},
           {"/record/recorded_at/formats", "\"M/D/YYYY HH:mm\""},
           {"/record/program", "null"},
           {"/record/program", "\"\""},
           {"/record", "{}"},
           {"/valueMaps/yes/entires", "{}"},
       }) {
    auto doc = base();
    set(doc, m.pointer, m.value);
    EXPECT_NE(validate(schema, doc), "") << m.pointer << " = " << m.value << " was accepted";
  }
  // And what the language allows passes.
  auto fine = base();
  set(fine, "/record/recorded_at/timezone", "\"+05:30\"");
  set(fine, "/record/service/date", "{\"$date\": \"$.visit_date\", \"formats\": [\"DD-MMM-YY\", \"ISO\"]}");
  set(fine, "/dialect/delimiter", "\";\"");
  EXPECT_EQ(validate(schema, fine), "");
}

}  // namespace
}  // namespace gw::mapping

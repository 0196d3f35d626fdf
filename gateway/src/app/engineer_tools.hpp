#pragma once
// What an integration engineer runs against a mapper set without posting real data:
// `fhir-gateway map`, `fhir-gateway mappers test` and POST /v1/mappings/{name}/$test all call
// these functions, so the CLI and the endpoint answer alike. Nothing here stores anything.
#include <rapidjson/document.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"
#include "validate/profile_set.hpp"

namespace gw::app {

/// One loaded, immutable set of record schemas, mappers and profiles. The gateway holds the
/// running one by shared_ptr and swaps it on reload; requests keep the one they started with.
struct MappingSnapshot {
  std::unique_ptr<mapping::RecordSchemas> schemas;
  std::unique_ptr<mapping::MapperSet> mappers;  // compiled against *schemas
  std::unique_ptr<validate::ProfileSet> profiles;
};

/// Loads <format_dir>/schemas, <format_dir>/*.mapper.json and `profiles_dir`. Errors carry
/// where = "file:line:column" (ErrorCode::Config).
Result<std::shared_ptr<const MappingSnapshot>> loadMappingSnapshot(const std::filesystem::path& format_dir,
                                                                   const std::filesystem::path& profiles_dir);

/// The context of a dry run: the record's own clinic and identifier systems under
/// "https://ids.clinic-<clinic>.example/", the convention the golden cases are written in.
mapping::MappingContext dryRunContext(const rapidjson::Value& record);

/// One difference between two JSON values. `path` is JSONPath-like ("$[0].code.coding[1].system");
/// `expected` / `actual` are compact JSON, or "(absent)".
struct JsonDifference {
  std::string path;
  std::string expected;
  std::string actual;
};

/// Object members compare by name whatever their order; arrays compare element by element.
/// Stops after `max_differences`.
std::vector<JsonDifference> jsonDifferences(const rapidjson::Value& expected, const rapidjson::Value& actual,
                                            std::size_t max_differences = 50);

/// The outcome of mapping and validating one record.
struct MappedRecord {
  std::vector<Error> errors;  // schema or mapping failures; where = record field path
  rapidjson::Document resources{rapidjson::kArrayType};  // the mapped FHIR resources, in order
  std::vector<validate::ValidationResult> outcomes;      // one per resource
  /// No error, and no resource with an error-severity validation issue.
  bool valid() const;
};

/// Schema check, mapping and profile validation of `record`, as ingest does it. With a non-empty
/// `record_type`, the record's record_type must be that one.
MappedRecord mapRecord(const MappingSnapshot& snapshot, const rapidjson::Value& record,
                       std::string_view record_type = {});

struct GoldenCaseResult {
  std::string name;  // file name without ".input.json"
  std::optional<Error> unreadable;  // the input or expected file could not be read or parsed
  MappedRecord mapped;
  std::vector<JsonDifference> differences;  // expected vs actual
  bool passed() const;
};

/// Runs <golden_dir>/<name>.input.json against <name>.expected.json (one resource or an array of
/// them), sorted by name. A missing directory is an empty list.
std::vector<GoldenCaseResult> runGoldenCases(const MappingSnapshot& snapshot, const std::filesystem::path& golden_dir);

/// Human-readable text for the CLI.
std::string formatMappedRecord(const MappedRecord& mapped);       // pretty resources + outcomes
std::string formatGoldenResults(const std::vector<GoldenCaseResult>& results);  // ends "N passed, N failed"

struct TestAnswer {
  int status = 200;
  std::string body;  // JSON
};

/// POST /v1/mappings/{name}/$test. `body` is one record, or an array of cases
/// {"input": record, "expected": resource or [resources]} (expected optional). Answers
/// {"mapper": name, "passed": n, "failed": n, "results": [{"index", "valid", "errors",
/// "resources", "outcomes", "differences"}]}; 404 for an unknown mapper, 400 for an unreadable body.
TestAnswer testMappingRequest(const MappingSnapshot& snapshot, std::string_view record_type, std::string_view body);

}  // namespace gw::app

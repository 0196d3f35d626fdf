#pragma once
// What an integration engineer runs against a mapper set without posting real data:
// `fhir-gateway map`, `fhir-gateway mappers test` (golden_cases.hpp) and
// POST /v1/mappings/{name}/$test all call these functions, so the CLI and the endpoint answer
// alike, and each record goes through the record pipeline exactly as ingest runs it. Nothing
// here stores anything. CSV input mappers get the same tools: a CSV file is converted row by row
// into clinic records, each then goes through the same pipeline.
#include <rapidjson/document.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "ingest/record_pipeline.hpp"
#include "mapping/csv_input_mapper.hpp"

namespace gw::app {

/// What a dry run maps with: the rule set (schemas, mappers, profiles, sensitivity value sets, CSV
/// input mappers) and the clinic settings the pipeline reads. Without a gateway config the
/// clinics are the golden cases' convention (identifier systems under
/// "https://ids.clinic-<clinic>.example/", no Part 2 program); with one (`map --config`), the
/// configured clinics, programs and partners, exactly as ingest sees them.
struct MappingSnapshot {
  std::shared_ptr<const ingest::RuleSet> rules;
  ingest::PipelineSettings settings{.clinics = {}, .partner_ids = {}, .dry_run = true};
};

/// Loads <format_dir>/schemas, <format_dir>/*.mapper.json, `profiles_dir` (with its sensitivity
/// value sets) and, when given, the CSV mappers of `csv_mappers_dir`. Errors carry
/// where = "file:line:column" (ErrorCode::Config).
Result<std::shared_ptr<const MappingSnapshot>> loadMappingSnapshot(const std::filesystem::path& format_dir,
                                                                   const std::filesystem::path& profiles_dir,
                                                                   const std::filesystem::path& csv_mappers_dir = {});

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

/// The outcome of one record through the record pipeline, as ingest would store it.
struct MappedRecord {
  std::vector<Error> errors;                             // schema or mapping failures; where = record field path
  rapidjson::Document resources{rapidjson::kArrayType};  // the mapped, labelled FHIR resources, in order
  std::vector<validate::ValidationResult> outcomes;      // one per resource
  std::vector<privacy::ClassSet> classes;                // one per resource: its privacy classes
  std::string state;  // "mapped", "invalid" or "unmapped", as ingest would keep the record
  /// No error, and no resource with an error-severity validation issue.
  bool valid() const;
};

/// The record pipeline (schema, mapping, classification and labels, validation) on `record`,
/// exactly as ingest runs it. With a non-empty `record_type`, the record's record_type must be
/// that one.
MappedRecord mapRecord(const MappingSnapshot& snapshot, const rapidjson::Value& record, std::string_view record_type = {});

/// One CSV data row: its clinic record (or the error that kept it from being one) and the outcome
/// of that record's schema check, mapping and validation.
struct MappedCsvRow {
  std::size_t line = 0;            // CSV line where the row starts
  std::optional<Error> row_error;  // conversion failed: where = "line N, column 'Header'"
  rapidjson::Document record;      // when no row_error
  MappedRecord mapped;             // when no row_error
  bool valid() const { return !row_error && mapped.valid(); }
};

struct MappedCsv {
  std::optional<Error> error;  // the whole text is unreadable (encoding, quoting, header): no rows
  std::vector<MappedCsvRow> rows;
  std::size_t failed() const;  // rows that are not valid
  bool valid() const { return !error && failed() == 0; }
};

/// Converts `csv_text` with `mapper` and maps and validates every record, as POST /v1/records
/// with text/csv does, storing nothing. At most `max_rows` data rows (else `error`).
MappedCsv mapCsv(const MappingSnapshot& snapshot, const mapping::CsvInputMapper& mapper, std::string_view csv_text,
                 std::size_t max_rows = static_cast<std::size_t>(-1));

/// Human-readable text for the CLI.
std::string formatMappedRecord(const MappedRecord& mapped);  // pretty resources + outcomes
/// Per row: "line N:" then the record, its resources and outcomes as formatMappedRecord prints
/// them, or the row's error; ends "N rows: N valid, N failed".
std::string formatMappedCsv(const MappedCsv& mapped);

struct TestAnswer {
  int status = 200;
  std::string body;  // JSON
};

/// POST /v1/mappings/{name}/$test. `body` is one record, or an array of cases
/// {"input": record, "expected": resource or [resources]} (expected optional). Answers
/// {"mapper": name, "passed": n, "failed": n, "results": [{"index", "valid", "errors",
/// "resources", "outcomes", "differences"}]}; 404 for an unknown mapper, 400 for an unreadable body.
/// With a text/csv `content_type`, `name` is a CSV input mapper of `csv_mappers`
/// ("harm-reduction-weekly/weekly-export", percent-encoded as harm-reduction-weekly%2Fweekly-export
/// in the path) and `body` a CSV export: one result per data row, with its "line" and "record"
/// (a row that cannot be converted has only its error); 400 for an unreadable CSV text, 413 for
/// more rows than POST /v1/records takes.
TestAnswer testMappingRequest(const MappingSnapshot& snapshot, std::string_view record_type, std::string_view body,
                              const mapping::CsvMapperSet* csv_mappers = nullptr, std::string_view content_type = {});

}  // namespace gw::app

#pragma once
// Golden cases: the examples that pin what the mappers produce. Each case is a record (or a CSV
// export) beside the resources the record pipeline must make from it, labels included. Run by
// `fhir-gateway mappers test` and, before a new rule set is put in place, by every reload.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "app/engineer_tools.hpp"

namespace gw::app {

struct GoldenCaseResult {
  std::string name;                 // file name without ".input.json"; CSV: "<mapper name>/<case>.csv"
  std::optional<Error> unreadable;  // the input or expected file (CSV: or the mapper) could not be read or parsed
  MappedRecord mapped;              // record cases
  // Expected vs actual. CSV cases prefix the path with the file compared, "records" or "fhir",
  // and key rows by CSV line: records $["line 4"].error_where.
  std::vector<JsonDifference> differences;
  std::vector<std::string> invalid;     // CSV: resources that fail profile validation ("line 2 Observation/...: ...")
  std::vector<std::string> row_errors;  // CSV: every row's error, expected or not ("line 4: ..."), to explain a failure
  bool passed() const;
};

/// Check compares with the expected files; Update rewrites them from what the mappers produce now
/// (after a reviewed change), and the case passes when it maps and validates.
enum class GoldenMode { Check, Update };

/// Runs <golden_dir>/<name>.input.json against <name>.expected.json (one resource or an array of
/// them), sorted by name. A missing directory is an empty list; an expected file without its
/// input (or the reverse, in Check mode) is a failed case.
std::vector<GoldenCaseResult> runGoldenCases(const MappingSnapshot& snapshot, const std::filesystem::path& golden_dir,
                                             GoldenMode mode = GoldenMode::Check);

/// Golden cases of every *.csv-mapper.json under `csv_dir` (recursively): golden/<case>.csv beside
/// the mapper (golden/<mapper file stem>/<case>.csv when its directory holds several mappers) must
/// convert to golden/<case>.records.json, [{"line": N, "record": {...}} or {"line": N,
/// "error_where": "line N, column 'X'"}], one entry per data row. Where golden/<case>.fhir.json
/// exists, every converted row must also map as it says, [{"line": N, "resources": [...]} or
/// {"line": N, "error_where": "service.items"}], and its resources must pass validation. A mapper
/// that does not load is one failed case, and so is a "golden" folder no mapper reads (cases put
/// where they would be silently skipped). A missing directory is an empty list.
std::vector<GoldenCaseResult> runCsvGoldenCases(const MappingSnapshot& snapshot, const std::filesystem::path& csv_dir,
                                                GoldenMode mode = GoldenMode::Check);

/// Human-readable results for the CLI; ends "N passed, N failed".
std::string formatGoldenResults(const std::vector<GoldenCaseResult>& results);

}  // namespace gw::app

#pragma once
// CSV input mappers: a *.csv-mapper.json file (format "gw-csv-mapper/1", see mappers/README.md)
// declares a spreadsheet export's dialect and columns and a record template in the mapping
// language that turns ONE row into ONE clinic record in the reference format. The record then
// goes through the normal pipeline (schema, record-type mapper, profile validation), so a CSV
// row is exactly as checked as a JSON record. Compiled once at load; rowsToRecords() is const.
#include <rapidjson/document.h>

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::mapping {

struct CompiledMapper;
struct Node;

/// One data row turned into a record, or the reason it could not be.
struct CsvRecord {
  std::size_t line = 0;        // CSV line where the row starts (the header is usually line 1)
  rapidjson::Document record;  // the clinic record, when `error` is empty
  std::optional<Error> error;  // where = "line N, column 'Header'" (or "line N"); never quotes cell values
};

class CsvInputMapper {
 public:
  static constexpr std::string_view kSuffix = ".csv-mapper.json";

  /// Loads and compiles one file; errors carry where = "file:line:column".
  static Result<CsvInputMapper> loadFile(const std::filesystem::path& file);

  CsvInputMapper(CsvInputMapper&&) noexcept;
  CsvInputMapper& operator=(CsvInputMapper&&) noexcept;
  ~CsvInputMapper();

  /// Whole-text problems (not UTF-8, a broken quoted field, a declared column missing from the
  /// header, too many rows) fail the call: nothing of a file we cannot read is used. Problems
  /// with one row (wrong field count, a bad number or date, a code missing from a value map) are
  /// that row's error, and the other rows still convert.
  Result<std::vector<CsvRecord>> rowsToRecords(std::string_view csv_text,
                                               std::size_t max_rows = static_cast<std::size_t>(-1)) const;

  const std::string& file() const;

  struct Impl;

 private:
  CsvInputMapper();
  std::unique_ptr<Impl> impl_;
};

/// Every *.csv-mapper.json under a directory (recursively), named by its path relative to that
/// directory without the suffix: "harm-reduction-weekly/weekly-export".
class CsvMapperSet {
 public:
  static Result<CsvMapperSet> loadDirectory(const std::filesystem::path& dir);
  CsvMapperSet() = default;

  const CsvInputMapper* find(std::string_view name) const;
  std::vector<std::string> names() const;
  bool empty() const { return mappers_.empty(); }

 private:
  std::map<std::string, CsvInputMapper, std::less<>> mappers_;
};

}  // namespace gw::mapping

#pragma once
// RFC 4180 CSV reader for spreadsheet exports: a header row, a configurable delimiter and quote,
// quoted fields with "" escapes and embedded line breaks, CRLF or LF, an optional UTF-8 BOM.
// Strict on purpose: a stray quote or an unterminated field fails the whole text with its line,
// because guessing could shift cells into the wrong columns. Errors never quote cell values.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::mapping {

struct CsvDialect {
  char delimiter = ',';
  char quote = '"';
};

struct CsvRow {
  std::size_t line = 0;             // 1-based line where the row starts (rows may span lines)
  std::vector<std::string> fields;  // as written, quotes removed
};

struct CsvTable {
  std::vector<std::string> header;  // the first non-blank row
  std::size_t header_line = 0;
  std::vector<CsvRow> rows;  // data rows in order; blank lines are skipped
};

/// Parses `text` (UTF-8). Errors (ErrorCode::BadRequest, where = "line N"): invalid UTF-8, an
/// unterminated quoted field, text after a closing quote, a quote inside an unquoted field, no
/// header row, more than `max_rows` data rows (ErrorCode::PayloadTooLarge).
Result<CsvTable> parseCsv(std::string_view text, const CsvDialect& dialect = {},
                          std::size_t max_rows = static_cast<std::size_t>(-1));

}  // namespace gw::mapping

#include "mapping/csv.hpp"

namespace gw::mapping {
namespace {

Error csvError(std::size_t line, std::string message, std::string hint = {}) {
  return makeError(ErrorCode::BadRequest, std::move(message), "line " + std::to_string(line), std::move(hint));
}

// Line of the first invalid UTF-8 sequence, or 0 when the text is valid.
std::size_t firstInvalidUtf8Line(std::string_view s) {
  std::size_t line = 1;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') ++line;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t min = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      length = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return line;
    }
    if (i + length > s.size()) return line;
    for (std::size_t k = 1; k < length; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return line;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return line;
    i += length;
  }
  return 0;
}

}  // namespace

Result<CsvTable> parseCsv(std::string_view text, const CsvDialect& dialect, std::size_t max_rows) {
  if (dialect.delimiter == dialect.quote || dialect.delimiter == '\n' || dialect.delimiter == '\r' ||
      dialect.quote == '\n' || dialect.quote == '\r') {
    return makeError(ErrorCode::Config, "the CSV delimiter and quote must be two different characters, not line breaks");
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // spreadsheet programs write a BOM
  if (const std::size_t bad = firstInvalidUtf8Line(text); bad != 0) {
    return csvError(bad, "the CSV text is not valid UTF-8", "export the spreadsheet as \"CSV UTF-8\"");
  }

  CsvTable table;
  bool have_header = false;
  std::size_t line = 1;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    CsvRow row;
    row.line = line;
    std::string field;
    bool row_done = false;
    bool blank = true;  // nothing at all on this row (an empty line)
    while (!row_done) {
      field.clear();
      if (i < n && text[i] == dialect.quote) {
        blank = false;
        const std::size_t open_line = line;
        ++i;
        for (;;) {
          if (i >= n) {
            return csvError(open_line, "a quoted field that starts here is never closed",
                            "check for a missing closing quote character");
          }
          const char c = text[i];
          if (c == dialect.quote) {
            if (i + 1 < n && text[i + 1] == dialect.quote) {
              field += c;
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        if (i < n && text[i] != dialect.delimiter && text[i] != '\n' &&
            !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') && text[i] != '\r') {
          return csvError(line, "text after the closing quote of a field",
                          "quote the whole field and write quotes inside it twice");
        }
      } else {
        while (i < n && text[i] != dialect.delimiter && text[i] != '\n' && text[i] != '\r') {
          if (text[i] == dialect.quote) {
            return csvError(line, "a quote character inside an unquoted field",
                            "quote the whole field and write quotes inside it twice");
          }
          field += text[i++];
        }
        if (!field.empty()) blank = false;
      }
      row.fields.push_back(field);
      if (i < n && text[i] == dialect.delimiter) {
        blank = false;
        ++i;
        continue;
      }
      // End of the row: CRLF, LF, a lone CR (old spreadsheet exports) or the end of the text.
      if (i < n && text[i] == '\r') ++i;
      if (i < n && text[i] == '\n') ++i;
      ++line;
      row_done = true;
    }
    if (blank) continue;
    if (!have_header) {
      table.header = std::move(row.fields);
      table.header_line = row.line;
      have_header = true;
      continue;
    }
    if (table.rows.size() >= max_rows) {
      return makeError(ErrorCode::PayloadTooLarge, "more than " + std::to_string(max_rows) + " data rows",
                       "line " + std::to_string(row.line), "split the export into smaller files");
    }
    table.rows.push_back(std::move(row));
  }
  if (!have_header) {
    return makeError(ErrorCode::BadRequest, "the CSV text has no header row", "line 1",
                     "export the spreadsheet with its column names in the first row");
  }
  return table;
}

}  // namespace gw::mapping

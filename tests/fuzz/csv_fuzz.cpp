// Fuzzes the CSV reader and the CSV input mapper (POST /v1/records with text/csv, `import`):
// any bytes must give rows or an error naming a line, never a crash, and rows must hold what the
// reader promised (every row starts on a line at or after the header's).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mapping/csv.hpp"
#include "mapping/csv_input_mapper.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto* weekly = [] {
    auto m = gw::mapping::CsvInputMapper::loadFile(std::string(GW_REPO_DIR) +
                                                   "/mappers/harm-reduction-weekly/weekly-export.csv-mapper.json");
    if (!m) std::abort();
    return new gw::mapping::CsvInputMapper(std::move(m).value());
  }();
  if (size == 0) return 0;
  // The first byte picks the dialect, so delimiter/quote handling is explored too.
  static constexpr gw::mapping::CsvDialect kDialects[] = {{',', '"'}, {';', '"'}, {'\t', '"'}, {',', '\''}};
  const auto& dialect = kDialects[data[0] % 4];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  auto table = gw::mapping::parseCsv(text, dialect, 1000);
  if (table) {
    for (const auto& row : table.value().rows) {
      if (row.line <= table.value().header_line) std::abort();
    }
  } else {
    (void)table.error().describe();
  }
  auto records = weekly->rowsToRecords(text, 1000);
  if (records) {
    for (const auto& r : records.value()) {
      if (r.error) (void)r.error->describe();
    }
  }
  return 0;
}

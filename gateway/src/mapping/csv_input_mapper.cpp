#include "mapping/csv_input_mapper.hpp"

#include <algorithm>

#include <initializer_list>

#include "common/json.hpp"
#include "common/json_locations.hpp"
#include "mapping/compiled_mapper.hpp"
#include "mapping/csv.hpp"
#include "mapping/support.hpp"

namespace gw::mapping {
namespace {

constexpr std::string_view kFormat = "gw-csv-mapper/1";

bool isSpace(char c) { return c == ' ' || c == '\t'; }

std::string trimmed(std::string_view s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && isSpace(s[b])) ++b;
  while (e > b && isSpace(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// "loose" header matching: spreadsheets drift in case and spacing ("Visit  date ").
std::string looseKey(std::string_view s) {
  std::string out;
  bool pending_space = false;
  for (const char c : trimmed(s)) {
    if (isSpace(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space && !out.empty()) out += ' ';
    pending_space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

bool isColumnName(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

struct CsvInputMapper::Impl {
  CompiledMapper compiled;  // source document, value maps; record_type unused
  Node record;
  CsvDialect dialect;
  bool loose_headers = true;
  bool trim_cells = true;
  std::vector<std::string> empty_values;
  std::vector<std::string> names;    // template names, in declaration order
  std::vector<std::string> headers;  // header text per name
};

CsvInputMapper::CsvInputMapper() : impl_(std::make_unique<Impl>()) {}
CsvInputMapper::CsvInputMapper(CsvInputMapper&&) noexcept = default;
CsvInputMapper& CsvInputMapper::operator=(CsvInputMapper&&) noexcept = default;
CsvInputMapper::~CsvInputMapper() = default;

const std::string& CsvInputMapper::file() const { return impl_->compiled.file; }

Result<CsvInputMapper> CsvInputMapper::loadFile(const std::filesystem::path& path) {
  CsvInputMapper mapper;
  Impl& m = *mapper.impl_;
  m.compiled.file = path.string();
  GW_TRY(auto text, readTextFile(path));
  GW_TRY(parseJsonFile(m.compiled.file, text, m.compiled.source, true));
  const auto locations = json::JsonLocations::build(text, true);
  const auto error = [&](std::string message, std::string_view pointer, std::string hint = {}) {
    return makeError(ErrorCode::Config, std::move(message),
                     json::JsonLocations::position(m.compiled.file, text, locations.valueOffset(pointer)), std::move(hint));
  };
  const auto key_error = [&](std::string message, std::string_view pointer) {
    return makeError(ErrorCode::Config, std::move(message),
                     json::JsonLocations::position(m.compiled.file, text, locations.keyOffset(pointer)));
  };
  const auto only_keys = [&](const rapidjson::Value& object, const std::string& pointer,
                             std::initializer_list<std::string_view> allowed, std::string_view what) -> Status {
    for (const auto& member : object.GetObject()) {
      bool known = false;
      std::string list;
      for (const auto key : allowed) {
        known = known || json::view(member.name) == key;
        list += (list.empty() ? "" : ", ") + std::string(key);
      }
      if (!known) {
        std::string child = pointer;
        json::appendPointerToken(child, json::view(member.name));
        return key_error(
            "unknown key " + quoteCode(json::view(member.name)) + " in " + std::string(what) + "; allowed: " + list, child);
      }
    }
    return ok();
  };

  const rapidjson::Value& root = m.compiled.source;
  if (!root.IsObject()) return error("a CSV mapper file must be a JSON object", "");
  GW_TRY(only_keys(root, "", {"$schema", "format", "description", "dialect", "columns", "valueMaps", "record"},
                   "the CSV mapper file"));
  const auto* format = json::find(root, "format");
  if (format == nullptr || !format->IsString() || json::view(*format) != kFormat) {
    return error("\"format\" must be \"" + std::string(kFormat) + "\"", format == nullptr ? "" : "/format");
  }
  if (const auto* d = json::find(root, "description"); d != nullptr && !d->IsString()) {
    return error("description must be a string", "/description");
  }

  if (const auto* dialect = json::find(root, "dialect"); dialect != nullptr) {
    if (!dialect->IsObject()) return error("dialect must be an object", "/dialect");
    GW_TRY(only_keys(*dialect, "/dialect",
                     {"delimiter", "quote", "encoding", "header", "headerMatch", "trimCells", "emptyValues"}, "dialect"));
    const auto single_char = [&](const char* key, char& out) -> Status {
      const auto* v = json::find(*dialect, key);
      if (v == nullptr) return ok();
      if (!v->IsString() || v->GetStringLength() != 1 || v->GetString()[0] == '\n' || v->GetString()[0] == '\r' ||
          static_cast<unsigned char>(v->GetString()[0]) >= 0x80) {
        return error(std::string(key) + " must be one ASCII character such as \",\" \";\" or \"\\t\" (not a line break)",
                     "/dialect/" + std::string(key));
      }
      out = v->GetString()[0];
      return ok();
    };
    GW_TRY(single_char("delimiter", m.dialect.delimiter));
    GW_TRY(single_char("quote", m.dialect.quote));
    if (m.dialect.delimiter == m.dialect.quote) return error("delimiter and quote must differ", "/dialect");
    if (const auto* v = json::find(*dialect, "encoding"); v != nullptr && (!v->IsString() || json::view(*v) != "UTF-8")) {
      return error("encoding must be \"UTF-8\" (the only encoding read)", "/dialect/encoding",
                   "export the spreadsheet as \"CSV UTF-8\"");
    }
    if (const auto* v = json::find(*dialect, "header"); v != nullptr && !v->IsTrue()) {
      return error("header must be true: columns are found by their header, never by position", "/dialect/header");
    }
    if (const auto* v = json::find(*dialect, "headerMatch"); v != nullptr) {
      if (!v->IsString() || (json::view(*v) != "exact" && json::view(*v) != "loose")) {
        return error("headerMatch must be \"exact\" or \"loose\" (ignore case and extra spaces)", "/dialect/headerMatch");
      }
      m.loose_headers = json::view(*v) == "loose";
    }
    if (const auto* v = json::find(*dialect, "trimCells"); v != nullptr) {
      if (!v->IsBool()) return error("trimCells must be true or false", "/dialect/trimCells");
      m.trim_cells = v->IsTrue();
    }
    if (const auto* v = json::find(*dialect, "emptyValues"); v != nullptr) {
      if (!v->IsArray())
        return error("emptyValues must be an array of strings such as [\"N/A\", \"0\"]", "/dialect/emptyValues");
      for (const auto& e : v->GetArray()) {
        if (!e.IsString()) return error("emptyValues must be an array of strings", "/dialect/emptyValues");
        m.empty_values.emplace_back(json::view(e));
      }
    }
  }

  const auto* columns = json::find(root, "columns");
  if (columns == nullptr || !columns->IsObject() || columns->MemberCount() == 0) {
    return error("\"columns\" must be a non-empty object {\"name_in_template\": \"Header text\", ...}",
                 columns == nullptr ? "" : "/columns");
  }
  for (const auto& member : columns->GetObject()) {
    std::string pointer = "/columns";
    json::appendPointerToken(pointer, json::view(member.name));
    if (!isColumnName(json::view(member.name))) {
      return key_error(
          "column names used in the template take letters, digits, '_' and '-' (write the header text as the value)",
          pointer);
    }
    if (!member.value.IsString() || member.value.GetStringLength() == 0) {
      return error("the value is the column's header text, e.g. \"Client ID\"", pointer);
    }
    const std::string header = m.loose_headers ? looseKey(json::view(member.value)) : std::string(json::view(member.value));
    for (const auto& other : m.headers) {
      if ((m.loose_headers ? looseKey(other) : other) == header) {
        return error("two names map to the same header " + quoteCode(json::view(member.value)), pointer);
      }
    }
    m.names.emplace_back(json::view(member.name));
    m.headers.emplace_back(json::view(member.value));
  }

  if (json::find(root, "record") == nullptr) {
    return error("missing \"record\": the template of one clinic record, reading columns as $.<name>", "");
  }
  GW_TRY(auto node, compileRecordTemplate(m.compiled, text, "/record", m.names));
  m.record = std::move(node);
  return mapper;
}

Result<std::vector<CsvRecord>> CsvInputMapper::rowsToRecords(std::string_view csv_text, std::size_t max_rows) const {
  const Impl& m = *impl_;
  GW_TRY(auto table, parseCsv(csv_text, m.dialect, max_rows));

  // Header position of each declared column.
  std::vector<std::size_t> positions(m.names.size(), static_cast<std::size_t>(-1));
  std::string missing;
  for (std::size_t c = 0; c < m.names.size(); ++c) {
    const std::string wanted = m.loose_headers ? looseKey(m.headers[c]) : m.headers[c];
    for (std::size_t h = 0; h < table.header.size(); ++h) {
      const std::string got = m.loose_headers ? looseKey(table.header[h]) : table.header[h];
      if (got != wanted) continue;
      if (positions[c] != static_cast<std::size_t>(-1)) {
        return makeError(ErrorCode::BadRequest, "column " + quoteCode(m.headers[c]) + " appears twice in the header",
                         "line " + std::to_string(table.header_line), "remove or rename one of them");
      }
      positions[c] = h;
    }
    if (positions[c] == static_cast<std::size_t>(-1)) missing += (missing.empty() ? "" : ", ") + quoteCode(m.headers[c]);
  }
  if (!missing.empty()) {
    return makeError(ErrorCode::BadRequest,
                     "the header lacks column(s) " + missing + " that mapper " + m.compiled.file + " reads",
                     "line " + std::to_string(table.header_line),
                     "export every column the mapper declares, or fix the mapper");
  }

  std::vector<CsvRecord> out;
  out.reserve(table.rows.size());
  for (const auto& row : table.rows) {
    CsvRecord r;
    r.line = row.line;
    // Spreadsheets pad exports with rows of bare delimiters (",,,,"): those are blank lines.
    if (std::all_of(row.fields.begin(), row.fields.end(), [](const std::string& f) { return trimmed(f).empty(); })) {
      continue;
    }
    const std::string at_line = "line " + std::to_string(row.line);
    if (row.fields.size() != table.header.size()) {
      r.error = makeError(ErrorCode::InvalidInput,
                          "the row has " + std::to_string(row.fields.size()) + " fields; the header has " +
                              std::to_string(table.header.size()),
                          at_line, "check for a missing or extra delimiter, or an unquoted delimiter inside a cell");
      out.push_back(std::move(r));
      continue;
    }
    rapidjson::Document cells(rapidjson::kObjectType);
    auto& a = cells.GetAllocator();
    for (std::size_t c = 0; c < m.names.size(); ++c) {
      const std::string& raw = row.fields[positions[c]];
      const std::string cell = m.trim_cells ? trimmed(raw) : raw;
      if (cell.empty()) continue;  // absent, so template members reading it are left out
      bool is_empty_value = false;
      for (const auto& e : m.empty_values) is_empty_value = is_empty_value || cell == e;
      if (is_empty_value) continue;
      cells.AddMember(json::str(m.names[c], a), json::str(cell, a), a);
    }
    auto converted = evaluateRecordTemplate(m.compiled, m.record, cells, r.record);
    if (!converted) {
      Error e = converted.error();
      // The engine names the template column; users know the spreadsheet's header text.
      std::string where = at_line;
      for (std::size_t c = 0; c < m.names.size(); ++c) {
        if (e.where == m.names[c]) where += ", column " + quoteCode(m.headers[c]);
      }
      e.where = std::move(where);
      // Cells may hold PHI: the engine quotes an unknown code, which is fine for a JSON record's
      // coded field but not for a spreadsheet cell, so no cell text of this row is echoed back.
      for (const auto& [name, value] : cells.GetObject()) {
        const std::string quoted = quoteCode(json::view(value));
        for (std::string* text : {&e.message, &e.hint}) {
          for (std::size_t p; (p = text->find(quoted)) != std::string::npos;)
            text->replace(p, quoted.size(), "(cell value)");
        }
        (void)name;
      }
      r.error = std::move(e);
    }
    out.push_back(std::move(r));
  }
  return out;
}

Result<CsvMapperSet> CsvMapperSet::loadDirectory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return makeError(ErrorCode::Config, "the CSV mappers directory does not exist or is not a directory", dir.string(),
                     "set mapping.csv_mappers_dir to a directory holding *.csv-mapper.json files");
  }
  std::vector<std::filesystem::path> files;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file(ec) && name.size() > CsvInputMapper::kSuffix.size() &&
        name.compare(name.size() - CsvInputMapper::kSuffix.size(), CsvInputMapper::kSuffix.size(),
                     CsvInputMapper::kSuffix) == 0) {
      files.push_back(it->path());
    }
  }
  if (ec) return makeError(ErrorCode::Config, "cannot list the CSV mappers directory: " + ec.message(), dir.string());
  CsvMapperSet set;
  for (const auto& file : files) {
    std::string name = std::filesystem::relative(file, dir).generic_string();
    name.resize(name.size() - CsvInputMapper::kSuffix.size());
    GW_TRY(auto mapper, CsvInputMapper::loadFile(file));
    set.mappers_.emplace(std::move(name), std::move(mapper));
  }
  return set;
}

const CsvInputMapper* CsvMapperSet::find(std::string_view name) const {
  const auto it = mappers_.find(name);
  return it == mappers_.end() ? nullptr : &it->second;
}

std::vector<std::string> CsvMapperSet::names() const {
  std::vector<std::string> out;
  for (const auto& [name, mapper] : mappers_) out.push_back(name);
  return out;
}

}  // namespace gw::mapping

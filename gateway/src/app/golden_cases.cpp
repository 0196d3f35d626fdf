#include "app/golden_cases.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "common/json.hpp"
#include "mapping/support.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;

Status parseFile(const fs::path& path, rapidjson::Document& doc) {
  GW_TRY(auto text, mapping::readTextFile(path));
  return json::parseStrictFile(path.string(), text, doc);
}

// An expected file holds one resource or an array of them: one stands for an array of one.
rapidjson::Document& asArray(rapidjson::Document& expected) {
  if (expected.IsObject()) {
    rapidjson::Value one(std::move(static_cast<rapidjson::Value&>(expected)));
    expected.SetArray();
    expected.PushBack(one, expected.GetAllocator());
  }
  return expected;
}

Status writeTextFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) {
    return makeError(ErrorCode::BadRequest, "cannot write the file", path.string(),
                     "check that the golden folder is writable");
  }
  return ok();
}

// {"line N": {...rest}} -> [{"line": N, ...rest}], in line order (the golden files' own shape).
std::string unkeyByLine(const rapidjson::Value& keyed) {
  std::vector<std::pair<std::uint64_t, const rapidjson::Value*>> rows;
  for (const auto& m : keyed.GetObject()) {
    rows.emplace_back(std::stoull(std::string(json::view(m.name)).substr(5)), &m.value);
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  rapidjson::Document out(rapidjson::kArrayType);
  auto& a = out.GetAllocator();
  for (const auto& [line, rest] : rows) {
    rapidjson::Value entry(rapidjson::kObjectType);
    entry.AddMember("line", line, a);
    for (const auto& m : rest->GetObject()) entry.AddMember(rapidjson::Value(m.name, a), rapidjson::Value(m.value, a), a);
    out.PushBack(entry, a);
  }
  return json::toPrettyString(out) + "\n";
}

// CSV golden files are keyed by CSV line, so a diff path names the row: $["line 4"].error_where.
std::string lineKey(std::uint64_t line) { return "line " + std::to_string(line); }

// [{"line": N, ...rest}] -> {"line N": {...rest}}; an error names the file when an entry is not
// of that shape or a line repeats.
Status keyByLine(const rapidjson::Value& entries, const fs::path& file, rapidjson::Document& out) {
  out.SetObject();
  auto& a = out.GetAllocator();
  const auto bad = [&](std::string why) {
    return makeError(ErrorCode::BadRequest, std::move(why), file.string(),
                     "write [{\"line\": N, ...}, ...] with one entry per CSV data row (see mappers/README.md)");
  };
  if (!entries.IsArray()) return bad("the file must hold a JSON array");
  for (const auto& entry : entries.GetArray()) {
    const auto* line = entry.IsObject() ? json::find(entry, "line") : nullptr;
    if (line == nullptr || !line->IsUint64()) return bad("every entry needs \"line\": the CSV line where its row starts");
    const std::string key = lineKey(line->GetUint64());
    if (json::find(out, key) != nullptr) return bad("line " + std::to_string(line->GetUint64()) + " is listed twice");
    rapidjson::Value rest(rapidjson::kObjectType);
    for (const auto& m : entry.GetObject()) {
      if (std::string_view(m.name.GetString(), m.name.GetStringLength()) == "line") continue;
      rest.AddMember(rapidjson::Value(m.name, a), rapidjson::Value(m.value, a), a);
    }
    out.AddMember(json::str(key, a), rest, a);
  }
  return ok();
}

void addDifferences(std::string_view file, const rapidjson::Value& expected, const rapidjson::Value& actual,
                    std::vector<JsonDifference>& out) {
  for (auto& d : jsonDifferences(expected, actual)) {
    d.path = std::string(file) + " " + d.path;
    out.push_back(std::move(d));
  }
}

void runCsvCase(const MappingSnapshot& snapshot, const mapping::CsvInputMapper& mapper, const fs::path& golden,
                const std::string& name, GoldenMode mode, GoldenCaseResult& r) {
  auto text = mapping::readTextFile(golden / (name + ".csv"));
  if (!text) {
    r.unreadable = text.error();
    return;
  }
  rapidjson::Document records_file;
  rapidjson::Document expected_records;
  const fs::path records_path = golden / (name + ".records.json");
  const bool update = mode == GoldenMode::Update;
  if (auto s = parseFile(records_path, records_file); !s && !update) {
    r.unreadable = s.error();
    return;
  }
  if (auto s = keyByLine(records_file, records_path, expected_records); !s && !update) {
    r.unreadable = s.error();
    return;
  }
  const fs::path fhir_path = golden / (name + ".fhir.json");
  std::error_code ec;
  const bool check_fhir = fs::exists(fhir_path, ec);
  rapidjson::Document fhir_file;
  rapidjson::Document expected_fhir;
  if (check_fhir) {
    // Update mode rewrites files it cannot read; check mode reports them.
    if (auto s = parseFile(fhir_path, fhir_file); !s && !update) {
      r.unreadable = s.error();
      return;
    }
    if (auto s = keyByLine(fhir_file, fhir_path, expected_fhir); !s && !update) {
      r.unreadable = s.error();
      return;
    }
  }

  auto rows = mapper.rowsToRecords(text.value());
  if (!rows) {
    Error e = rows.error();
    e.message = "the CSV text cannot be read: " + e.message;
    r.unreadable = std::move(e);
    return;
  }
  rapidjson::Document actual_records(rapidjson::kObjectType);
  rapidjson::Document actual_fhir(rapidjson::kObjectType);
  auto& ra = actual_records.GetAllocator();
  auto& fa = actual_fhir.GetAllocator();
  for (const auto& row : rows.value()) {
    const std::string key = lineKey(row.line);
    rapidjson::Value entry(rapidjson::kObjectType);
    if (row.error) {
      entry.AddMember("error_where", json::str(row.error->where, ra), ra);
      r.row_errors.push_back(key + ": " + row.error->describe());
      actual_records.AddMember(json::str(key, ra), entry, ra);
      continue;
    }
    entry.AddMember("record", rapidjson::Value(row.record, ra), ra);
    actual_records.AddMember(json::str(key, ra), entry, ra);
    if (!check_fhir) continue;
    const MappedRecord mapped = mapRecord(snapshot, row.record);
    rapidjson::Value fhir(rapidjson::kObjectType);
    if (!mapped.errors.empty()) {
      fhir.AddMember("error_where", json::str(mapped.errors[0].where, fa), fa);
      for (const auto& e : mapped.errors) r.row_errors.push_back(key + ": " + e.describe());
    } else {
      fhir.AddMember("resources", rapidjson::Value(mapped.resources, fa), fa);
      for (std::size_t i = 0; i < mapped.outcomes.size(); ++i) {
        const auto& res = mapped.resources[static_cast<rapidjson::SizeType>(i)];
        for (const auto& issue : mapped.outcomes[i].issues) {
          if (issue.severity != validate::Severity::Error) continue;
          r.invalid.push_back(key + " " + std::string(json::getString(res, "resourceType")) + "/" +
                              std::string(json::getString(res, "id")) + " at " + issue.expression + ": " +
                              issue.diagnostics);
        }
      }
    }
    actual_fhir.AddMember(json::str(key, fa), fhir, fa);
  }
  if (update) {
    // Only files whose content changes are rewritten, so a reviewer sees just those.
    std::vector<JsonDifference> changed;
    if (expected_records.IsObject()) addDifferences("records", expected_records, actual_records, changed);
    if (!changed.empty() || !expected_records.IsObject()) {
      if (auto written = writeTextFile(records_path, unkeyByLine(actual_records)); !written) r.unreadable = written.error();
    }
    changed.clear();
    if (check_fhir) {
      if (expected_fhir.IsObject()) addDifferences("fhir", expected_fhir, actual_fhir, changed);
      if (!changed.empty() || !expected_fhir.IsObject()) {
        if (auto written = writeTextFile(fhir_path, unkeyByLine(actual_fhir)); !written) r.unreadable = written.error();
      }
    }
    return;
  }
  addDifferences("records", expected_records, actual_records, r.differences);
  if (check_fhir) addDifferences("fhir", expected_fhir, actual_fhir, r.differences);
}

}  // namespace

bool GoldenCaseResult::passed() const { return !unreadable && mapped.valid() && differences.empty() && invalid.empty(); }

std::vector<GoldenCaseResult> runGoldenCases(const MappingSnapshot& snapshot, const fs::path& golden_dir, GoldenMode mode) {
  constexpr std::string_view kInput = ".input.json";
  constexpr std::string_view kExpected = ".expected.json";
  std::set<std::string> inputs;
  std::set<std::string> expectations;
  std::error_code ec;
  for (fs::directory_iterator it(golden_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (file.size() > kInput.size() && file.ends_with(kInput)) inputs.insert(file.substr(0, file.size() - kInput.size()));
    if (file.size() > kExpected.size() && file.ends_with(kExpected)) {
      expectations.insert(file.substr(0, file.size() - kExpected.size()));
    }
  }

  std::vector<GoldenCaseResult> results;
  for (const auto& name : expectations) {
    if (inputs.count(name) != 0) continue;
    GoldenCaseResult r;
    r.name = name;
    r.unreadable = makeError(ErrorCode::BadRequest, "an expected file without its input",
                             (golden_dir / (name + std::string(kExpected))).string(),
                             "add " + name + std::string(kInput) + " beside it, or remove it");
    results.push_back(std::move(r));
  }
  for (const auto& name : inputs) {
    GoldenCaseResult r;
    r.name = name;
    rapidjson::Document input;
    rapidjson::Document expected;
    const fs::path expected_path = golden_dir / (name + std::string(kExpected));
    if (auto s = parseFile(golden_dir / (name + std::string(kInput)), input); !s) {
      r.unreadable = s.error();
    } else if (mode == GoldenMode::Update) {
      r.mapped = mapRecord(snapshot, input);
      // Only files whose content changes are rewritten, so a reviewer sees just those.
      const bool same = parseFile(expected_path, expected) && jsonDifferences(asArray(expected), r.mapped.resources).empty();
      if (r.mapped.errors.empty() && !same) {
        if (auto written = writeTextFile(expected_path, json::toPrettyString(r.mapped.resources) + "\n"); !written) {
          r.unreadable = written.error();
        }
      }
    } else if (auto s2 = parseFile(expected_path, expected); !s2) {
      r.unreadable = s2.error();
    } else {
      r.mapped = mapRecord(snapshot, input);
      if (r.mapped.errors.empty()) r.differences = jsonDifferences(asArray(expected), r.mapped.resources);
    }
    results.push_back(std::move(r));
  }
  std::sort(results.begin(), results.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
  return results;
}

std::vector<GoldenCaseResult> runCsvGoldenCases(const MappingSnapshot& snapshot, const fs::path& csv_dir, GoldenMode mode) {
  constexpr std::string_view kSuffix = mapping::CsvInputMapper::kSuffix;
  const auto isMapper = [&](const fs::directory_entry& e, std::error_code& ec) {
    const std::string file = e.path().filename().string();
    return file.size() > kSuffix.size() && file.ends_with(kSuffix) && e.is_regular_file(ec);
  };
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(csv_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (isMapper(*it, ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());

  std::vector<GoldenCaseResult> results;
  std::set<fs::path> used_golden;
  for (const auto& file : files) {
    std::string mapper_name = fs::relative(file, csv_dir, ec).generic_string();
    mapper_name.resize(mapper_name.size() - kSuffix.size());
    const std::string stem = file.filename().string().substr(0, file.filename().string().size() - kSuffix.size());
    // The golden directory beside the mapper is its own unless other mappers share the directory.
    std::size_t siblings = 0;
    for (fs::directory_iterator it(file.parent_path(), ec), end; !ec && it != end; it.increment(ec)) {
      siblings += isMapper(*it, ec) ? 1 : 0;
    }
    const fs::path golden = siblings > 1 ? file.parent_path() / "golden" / stem : file.parent_path() / "golden";
    used_golden.insert(golden.lexically_normal());
    std::vector<std::string> cases;
    for (fs::directory_iterator it(golden, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() > 4 && name.ends_with(".csv")) cases.push_back(name.substr(0, name.size() - 4));
    }
    if (cases.empty()) continue;
    std::sort(cases.begin(), cases.end());
    auto mapper = mapping::CsvInputMapper::loadFile(file);
    if (!mapper) {
      GoldenCaseResult r;
      r.name = mapper_name + kSuffix.data();
      r.unreadable = mapper.error();
      results.push_back(std::move(r));
      continue;
    }
    for (const auto& name : cases) {
      GoldenCaseResult r;
      r.name = mapper_name + "/" + name + ".csv";
      runCsvCase(snapshot, mapper.value(), golden, name, mode, r);
      results.push_back(std::move(r));
    }
  }
  // CSV cases in a folder no mapper reads would never run: report them instead of skipping them.
  for (fs::recursive_directory_iterator it(csv_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->path().extension() != ".csv") continue;
    const fs::path folder = it->path().parent_path().lexically_normal();
    bool in_golden = false;
    for (auto p = folder; !p.empty() && p != p.parent_path(); p = p.parent_path()) {
      if (p.filename() == "golden") in_golden = true;
    }
    if (!in_golden || used_golden.count(folder) != 0) continue;
    GoldenCaseResult r;
    r.name = fs::relative(it->path(), csv_dir, ec).generic_string();
    std::string expected;
    for (const auto& g : used_golden)
      expected += (expected.empty() ? "" : ", ") + fs::relative(g, csv_dir, ec).generic_string();
    r.unreadable = makeError(ErrorCode::BadRequest, "a CSV golden case in a folder no CSV mapper reads, so it never runs",
                             it->path().string(),
                             "put it in golden/ beside its mapper (golden/<mapper file stem>/ when the folder holds "
                             "several mappers)" +
                                 (expected.empty() ? std::string() : "; folders read: " + expected));
    results.push_back(std::move(r));
  }
  return results;
}

std::string formatGoldenResults(const std::vector<GoldenCaseResult>& results) {
  std::string out;
  std::size_t passed = 0;
  for (const auto& r : results) {
    if (r.passed()) {
      ++passed;
      out += "PASS " + r.name + "\n";
      continue;
    }
    out += "FAIL " + r.name + "\n";
    if (r.unreadable) out += "  cannot read: " + r.unreadable->describe() + "\n";
    for (const auto& e : r.mapped.errors) out += "  mapping error: " + e.describe() + "\n";
    for (const auto& d : r.differences) {
      out += "  " + d.path + "\n    expected: " + d.expected + "\n    actual:   " + d.actual + "\n";
    }
    for (const auto& i : r.invalid) out += "  invalid resource, " + i + "\n";
    for (const auto& e : r.row_errors) out += "  row error, " + e + "\n";
    for (std::size_t i = 0; i < r.mapped.outcomes.size(); ++i) {
      for (const auto& issue : r.mapped.outcomes[i].issues) {
        if (issue.severity != validate::Severity::Error) continue;
        out += "  invalid resource [" + std::to_string(i) + "] at " + issue.expression + ": " + issue.diagnostics + "\n";
      }
    }
  }
  out += std::to_string(passed) + " passed, " + std::to_string(results.size() - passed) + " failed\n";
  return out;
}

}  // namespace gw::app

#include "app/engineer_tools.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "common/json.hpp"
#include "mapping/support.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using json::writeString;

constexpr std::string_view kAbsent = "(absent)";

std::string compact(const rapidjson::Value& v) {
  std::string s = json::toString(v);
  // Long values (a whole resource) would drown the diff; the path says where to look.
  if (s.size() > 200) s = s.substr(0, 197) + "...";
  return s;
}

bool isIdentifier(std::string_view key) {
  if (key.empty() || (key.front() >= '0' && key.front() <= '9')) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string memberPath(const std::string& base, std::string_view key) {
  if (isIdentifier(key)) return base + "." + std::string(key);
  return base + "[\"" + std::string(key) + "\"]";
}

void diff(const rapidjson::Value& e, const rapidjson::Value& a, const std::string& path,
          std::vector<JsonDifference>& out, std::size_t max) {
  if (out.size() >= max) return;
  if (e.IsObject() && a.IsObject()) {
    for (const auto& m : e.GetObject()) {
      const std::string_view key(m.name.GetString(), m.name.GetStringLength());
      const auto* other = json::find(a, key);
      if (other == nullptr) {
        if (out.size() < max) out.push_back({memberPath(path, key), compact(m.value), std::string(kAbsent)});
      } else {
        diff(m.value, *other, memberPath(path, key), out, max);
      }
    }
    for (const auto& m : a.GetObject()) {
      const std::string_view key(m.name.GetString(), m.name.GetStringLength());
      if (json::find(e, key) == nullptr && out.size() < max) {
        out.push_back({memberPath(path, key), std::string(kAbsent), compact(m.value)});
      }
    }
    return;
  }
  if (e.IsArray() && a.IsArray()) {
    const rapidjson::SizeType n = std::max(e.Size(), a.Size());
    for (rapidjson::SizeType i = 0; i < n && out.size() < max; ++i) {
      const std::string p = path + "[" + std::to_string(i) + "]";
      if (i >= a.Size()) {
        out.push_back({p, compact(e[i]), std::string(kAbsent)});
      } else if (i >= e.Size()) {
        out.push_back({p, std::string(kAbsent), compact(a[i])});
      } else {
        diff(e[i], a[i], p, out, max);
      }
    }
    return;
  }
  // RapidJSON's == compares numbers by value (1 == 1.0) and objects order-insensitively.
  if (!(e == a)) out.push_back({path, compact(e), compact(a)});
}

Status parseFile(const fs::path& path, rapidjson::Document& doc) {
  GW_TRY(auto text, mapping::readTextFile(path));
  auto parsed = json::parse(text, doc);
  if (!parsed) {
    Error e = parsed.error();
    e.where = path.string() + (e.where.empty() ? "" : ": " + e.where);
    return e;
  }
  return ok();
}

void writeError(Writer& w, const Error& e) {
  w.StartObject();
  w.Key("where");
  writeString(w, e.where);
  w.Key("message");
  writeString(w, e.message);
  if (!e.hint.empty()) {
    w.Key("hint");
    writeString(w, e.hint);
  }
  w.EndObject();
}

void writeMapped(Writer& w, const MappedRecord& m) {
  w.Key("valid");
  w.Bool(m.valid());
  w.Key("errors");
  w.StartArray();
  for (const auto& e : m.errors) writeError(w, e);
  w.EndArray();
  w.Key("resources");
  m.resources.Accept(w);
  w.Key("outcomes");
  w.StartArray();
  for (const auto& o : m.outcomes) o.operationOutcome().Accept(w);
  w.EndArray();
}

}  // namespace

Result<std::shared_ptr<const MappingSnapshot>> loadMappingSnapshot(const fs::path& format_dir,
                                                                   const fs::path& profiles_dir) {
  auto snapshot = std::make_shared<MappingSnapshot>();
  GW_TRY(auto schemas, mapping::RecordSchemas::loadDirectory(format_dir / "schemas"));
  snapshot->schemas = std::make_unique<mapping::RecordSchemas>(std::move(schemas));
  GW_TRY(auto mappers, mapping::MapperSet::loadDirectory(format_dir, snapshot->schemas.get()));
  snapshot->mappers = std::make_unique<mapping::MapperSet>(std::move(mappers));
  GW_TRY(auto profiles, validate::ProfileSet::loadDirectory(profiles_dir));
  snapshot->profiles = std::make_unique<validate::ProfileSet>(std::move(profiles));
  return std::shared_ptr<const MappingSnapshot>(std::move(snapshot));
}

mapping::MappingContext dryRunContext(const rapidjson::Value& record) {
  std::string clinic(record.IsObject() ? json::getString(record, "clinic") : std::string_view{});
  if (clinic.empty()) clinic = "unknown";
  return {clinic, "https://ids.clinic-" + clinic + ".example/"};
}

std::vector<JsonDifference> jsonDifferences(const rapidjson::Value& expected, const rapidjson::Value& actual,
                                            std::size_t max_differences) {
  std::vector<JsonDifference> out;
  diff(expected, actual, "$", out, max_differences);
  return out;
}

bool MappedRecord::valid() const {
  return errors.empty() &&
         std::all_of(outcomes.begin(), outcomes.end(), [](const validate::ValidationResult& r) { return r.valid(); });
}

MappedRecord mapRecord(const MappingSnapshot& snapshot, const rapidjson::Value& record, std::string_view record_type) {
  MappedRecord out;
  if (!record.IsObject()) {
    out.errors.push_back(makeError(ErrorCode::InvalidInput, "a record must be a JSON object", "",
                                   "send one record as in mappers/<format>/examples/"));
    return out;
  }
  const std::string_view type = json::getString(record, "record_type");
  if (!record_type.empty() && type != record_type) {
    out.errors.push_back(makeError(ErrorCode::InvalidInput,
                                   "record_type '" + std::string(type) + "' is not the mapper's '" +
                                       std::string(record_type) + "'",
                                   "record_type", "use a record of that type, or the mapper for this record"));
    return out;
  }
  for (auto& e : snapshot.schemas->validate(record)) {
    out.errors.push_back(makeError(ErrorCode::InvalidInput, std::move(e.reason), std::move(e.path),
                                   "fix the record to match mappers/<format>/schemas/" + std::string(type) +
                                       ".schema.json"));
  }
  if (!out.errors.empty()) return out;
  auto mapped = snapshot.mappers->map(record, dryRunContext(record));
  if (!mapped) {
    out.errors.push_back(mapped.error());
    return out;
  }
  auto& a = out.resources.GetAllocator();
  for (const auto& r : mapped.value().resources) {
    out.outcomes.push_back(snapshot.profiles->validate(r.resource));
    rapidjson::Value copy(r.resource, a);
    out.resources.PushBack(copy, a);
  }
  return out;
}

bool GoldenCaseResult::passed() const { return !unreadable && mapped.valid() && differences.empty(); }

std::vector<GoldenCaseResult> runGoldenCases(const MappingSnapshot& snapshot, const fs::path& golden_dir) {
  constexpr std::string_view kSuffix = ".input.json";
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(golden_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (file.size() > kSuffix.size() && file.ends_with(kSuffix)) names.push_back(file.substr(0, file.size() - kSuffix.size()));
  }
  std::sort(names.begin(), names.end());

  std::vector<GoldenCaseResult> results;
  for (const auto& name : names) {
    GoldenCaseResult r;
    r.name = name;
    rapidjson::Document input;
    rapidjson::Document expected;
    if (auto s = parseFile(golden_dir / (name + ".input.json"), input); !s) {
      r.unreadable = s.error();
    } else if (auto s2 = parseFile(golden_dir / (name + ".expected.json"), expected); !s2) {
      r.unreadable = s2.error();
    } else {
      r.mapped = mapRecord(snapshot, input);
      if (expected.IsObject()) {  // one resource stands for an array of one
        rapidjson::Value one(std::move(static_cast<rapidjson::Value&>(expected)));
        expected.SetArray();
        expected.PushBack(one, expected.GetAllocator());
      }
      if (r.mapped.errors.empty()) r.differences = jsonDifferences(expected, r.mapped.resources);
    }
    results.push_back(std::move(r));
  }
  return results;
}

std::string formatMappedRecord(const MappedRecord& mapped) {
  std::string out;
  for (const auto& e : mapped.errors) out += "error: " + e.describe() + "\n";
  if (!mapped.errors.empty()) return out;
  out += json::toPrettyString(mapped.resources) + "\n";
  for (std::size_t i = 0; i < mapped.outcomes.size(); ++i) {
    const auto& o = mapped.outcomes[i];
    const auto& res = mapped.resources[static_cast<rapidjson::SizeType>(i)];
    out += "validation " + std::string(json::getString(res, "resourceType")) + "/" +
           std::string(json::getString(res, "id")) + ": " + (o.valid() ? "valid" : "INVALID") +
           (o.profile.empty() ? "" : " (" + o.profile + ")") + "\n";
    for (const auto& issue : o.issues) {
      out += "  " + std::string(validate::severityName(issue.severity)) + " " + issue.code + " at " +
             issue.expression + ": " + issue.diagnostics + "\n";
    }
  }
  return out;
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

TestAnswer testMappingRequest(const MappingSnapshot& snapshot, std::string_view record_type, std::string_view body) {
  if (!snapshot.mappers->has(record_type)) {
    return {404, json::operationOutcome(makeError(ErrorCode::NotFound,
                                                  "no mapper for record type '" + std::string(record_type) + "'",
                                                  "name", "use one of the loaded record types"))};
  }
  rapidjson::Document doc;
  if (auto parsed = json::parse(body, doc); !parsed) return {400, json::operationOutcome(parsed.error())};
  if (!doc.IsObject() && !doc.IsArray()) {
    return {400, json::operationOutcome(makeError(ErrorCode::BadRequest, "the body must be a record or an array of cases",
                                                  "body", "send {...record...} or [{\"input\": ..., \"expected\": ...}]"))};
  }

  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  std::size_t passed = 0;
  std::size_t failed = 0;
  w.StartObject();
  w.Key("mapper");
  writeString(w, record_type);
  w.Key("results");
  w.StartArray();
  auto run_one = [&](const rapidjson::Value& input, const rapidjson::Value* expected, std::size_t index) {
    MappedRecord m = mapRecord(snapshot, input, record_type);
    std::vector<JsonDifference> differences;
    if (expected != nullptr && m.errors.empty()) {
      if (expected->IsArray()) {
        differences = jsonDifferences(*expected, m.resources);
      } else {
        rapidjson::Document wrapped(rapidjson::kArrayType);
        rapidjson::Value copy(*expected, wrapped.GetAllocator());
        wrapped.PushBack(copy, wrapped.GetAllocator());
        differences = jsonDifferences(wrapped, m.resources);
      }
    }
    const bool ok_case = m.valid() && differences.empty();
    if (ok_case) {
      ++passed;
    } else {
      ++failed;
    }
    w.StartObject();
    w.Key("index");
    w.Uint64(index);
    w.Key("passed");
    w.Bool(ok_case);
    writeMapped(w, m);
    if (expected != nullptr) {
      w.Key("differences");
      w.StartArray();
      for (const auto& d : differences) {
        w.StartObject();
        w.Key("path");
        writeString(w, d.path);
        w.Key("expected");
        writeString(w, d.expected);
        w.Key("actual");
        writeString(w, d.actual);
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  };
  if (doc.IsObject()) {
    run_one(doc, nullptr, 0);
  } else {
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
      const auto& c = doc[i];
      const auto* input = c.IsObject() ? json::find(c, "input") : nullptr;
      if (input == nullptr) {
        return {400, json::operationOutcome(makeError(ErrorCode::BadRequest, "a case needs an \"input\" record",
                                                      "[" + std::to_string(i) + "]",
                                                      "send [{\"input\": record, \"expected\": resources}]"))};
      }
      run_one(*input, json::find(c, "expected"), i);
    }
  }
  w.EndArray();
  w.Key("passed");
  w.Uint64(passed);
  w.Key("failed");
  w.Uint64(failed);
  w.EndObject();
  return {200, std::string(buffer.GetString(), buffer.GetSize())};
}

}  // namespace gw::app

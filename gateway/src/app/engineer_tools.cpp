#include "app/engineer_tools.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "common/json.hpp"
#include "ingest/payload.hpp"
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

void diff(const rapidjson::Value& e, const rapidjson::Value& a, const std::string& path, std::vector<JsonDifference>& out,
          std::size_t max) {
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

// The security label codes on a resource's meta, "R,SUD,42CFRPart2" (what a partner sees).
std::string labelCodes(const rapidjson::Value& resource) {
  std::string out;
  const auto* meta = json::find(resource, "meta");
  const auto* security = meta != nullptr ? json::find(*meta, "security") : nullptr;
  if (security == nullptr || !security->IsArray()) return out;
  for (const auto& coding : security->GetArray()) {
    if (!coding.IsObject()) continue;
    out += (out.empty() ? "" : ",") + std::string(json::getString(coding, "code"));
  }
  return out;
}

void writeMapped(Writer& w, const MappedRecord& m) {
  w.Key("valid");
  w.Bool(m.valid());
  if (!m.state.empty()) {
    w.Key("state");
    writeString(w, m.state);
  }
  w.Key("privacy");
  w.StartArray();
  for (std::size_t i = 0; i < m.classes.size(); ++i) {
    const auto& res = m.resources[static_cast<rapidjson::SizeType>(i)];
    w.StartObject();
    w.Key("resource");
    writeString(w, std::string(json::getString(res, "resourceType")) + "/" + std::string(json::getString(res, "id")));
    w.Key("classes");
    writeString(w, privacy::classSetName(m.classes[i]));
    w.Key("labels");
    writeString(w, labelCodes(res));
    w.EndObject();
  }
  w.EndArray();
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

void writeErrors(Writer& w, const std::vector<Error>& errors) {
  w.Key("errors");
  w.StartArray();
  for (const auto& e : errors) writeError(w, e);
  w.EndArray();
}

// POST /v1/mappings/{name}/$test with a text/csv body.
TestAnswer testCsvRequest(const MappingSnapshot& snapshot, const mapping::CsvMapperSet* csv_mappers, std::string_view name,
                          std::string_view body) {
  const mapping::CsvInputMapper* mapper = csv_mappers != nullptr ? csv_mappers->find(name) : nullptr;
  if (mapper == nullptr) {
    std::string available;
    if (csv_mappers != nullptr) {
      for (const auto& n : csv_mappers->names()) available += (available.empty() ? "" : ", ") + n;
    }
    return {404, json::operationOutcome(makeError(
                     ErrorCode::NotFound, "no CSV input mapper named " + mapping::quoteCode(name), "name",
                     available.empty() ? "the gateway loads CSV input mappers from mapping.csv_mappers_dir"
                                       : "use one of " + available + " (a '/' in the name is written %2F in the path)"))};
  }
  // As many rows as POST /v1/records takes in one request.
  constexpr std::size_t kMaxRows = 10000;
  const MappedCsv mapped = mapCsv(snapshot, *mapper, body, kMaxRows);
  if (mapped.error) return {httpStatusFor(mapped.error->code), json::operationOutcome(*mapped.error)};

  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("mapper");
  writeString(w, name);
  w.Key("results");
  w.StartArray();
  for (std::size_t i = 0; i < mapped.rows.size(); ++i) {
    const auto& row = mapped.rows[i];
    w.StartObject();
    w.Key("index");
    w.Uint64(i);
    w.Key("line");
    w.Uint64(row.line);
    w.Key("passed");
    w.Bool(row.valid());
    if (row.row_error) {
      w.Key("valid");
      w.Bool(false);
      writeErrors(w, {*row.row_error});
    } else {
      w.Key("record");
      row.record.Accept(w);
      writeMapped(w, row.mapped);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("passed");
  w.Uint64(mapped.rows.size() - mapped.failed());
  w.Key("failed");
  w.Uint64(mapped.failed());
  w.EndObject();
  return {200, std::string(buffer.GetString(), buffer.GetSize())};
}

}  // namespace

Result<std::shared_ptr<const MappingSnapshot>> loadMappingSnapshot(const fs::path& format_dir, const fs::path& profiles_dir,
                                                                   const fs::path& csv_mappers_dir) {
  GW_TRY(auto rules, ingest::loadRuleSet({format_dir, profiles_dir, csv_mappers_dir}));
  auto snapshot = std::make_shared<MappingSnapshot>();
  snapshot->rules = std::move(rules);
  return std::shared_ptr<const MappingSnapshot>(std::move(snapshot));
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
  const ingest::RecordPipeline pipeline(*snapshot.rules, snapshot.settings);
  ingest::ProcessedRecord processed = pipeline.process(record, record_type);
  for (auto& e : processed.errors) {
    out.errors.push_back(makeError(ErrorCode::InvalidInput, std::move(e.reason), std::move(e.path), std::move(e.hint)));
  }
  if (!out.errors.empty()) return out;
  out.state = std::string(store::recordStateName(processed.state));
  auto& a = out.resources.GetAllocator();
  for (std::size_t i = 0; i < processed.resources.size(); ++i) {
    out.outcomes.push_back(std::move(processed.outcomes[i]));
    out.classes.push_back(processed.classified[i].classification.classes);
    rapidjson::Value copy(processed.resources[i].resource, a);
    out.resources.PushBack(copy, a);
  }
  return out;
}

std::size_t MappedCsv::failed() const {
  return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [](const MappedCsvRow& r) { return !r.valid(); }));
}

MappedCsv mapCsv(const MappingSnapshot& snapshot, const mapping::CsvInputMapper& mapper, std::string_view csv_text,
                 std::size_t max_rows) {
  MappedCsv out;
  auto rows = mapper.rowsToRecords(csv_text, max_rows);
  if (!rows) {
    out.error = rows.error();
    return out;
  }
  out.rows.reserve(rows.value().size());
  for (auto& row : rows.value()) {
    MappedCsvRow r;
    r.line = row.line;
    if (row.error) {
      r.row_error = std::move(row.error);
    } else {
      r.record = std::move(row.record);
      r.mapped = mapRecord(snapshot, r.record);
    }
    out.rows.push_back(std::move(r));
  }
  return out;
}

std::string formatMappedRecord(const MappedRecord& mapped) {
  std::string out;
  for (const auto& e : mapped.errors) out += "error: " + e.describe() + "\n";
  if (!mapped.errors.empty()) return out;
  out += json::toPrettyString(mapped.resources) + "\n";
  for (std::size_t i = 0; i < mapped.outcomes.size(); ++i) {
    const auto& o = mapped.outcomes[i];
    const auto& res = mapped.resources[static_cast<rapidjson::SizeType>(i)];
    const std::string ref = std::string(json::getString(res, "resourceType")) + "/" +
                            std::string(json::getString(res, "id"));
    if (i < mapped.classes.size()) {
      out += "privacy " + ref + ": class " + privacy::classSetName(mapped.classes[i]) + ", labels " + labelCodes(res) + "\n";
    }
    out += "validation " + ref + ": " + (o.valid() ? "valid" : "INVALID") +
           (o.profile.empty() ? "" : " (" + o.profile + ")") + "\n";
    for (const auto& issue : o.issues) {
      out += "  " + std::string(validate::severityName(issue.severity)) + " " + issue.code + " at " + issue.expression +
             ": " + issue.diagnostics + "\n";
    }
  }
  return out;
}

std::string formatMappedCsv(const MappedCsv& mapped) {
  if (mapped.error) return "error: " + mapped.error->describe() + "\n";
  std::string out;
  for (const auto& row : mapped.rows) {
    out += "# line " + std::to_string(row.line) + ": " + (row.valid() ? "valid" : "FAILED") + "\n";
    if (row.row_error) {
      out += "error: " + row.row_error->describe() + "\n";
      continue;
    }
    out += "record:\n" + json::toPrettyString(row.record) + "\n";
    out += "FHIR:\n" + formatMappedRecord(row.mapped);
  }
  out += std::to_string(mapped.rows.size()) + (mapped.rows.size() == 1 ? " row: " : " rows: ") +
         std::to_string(mapped.rows.size() - mapped.failed()) + " valid, " + std::to_string(mapped.failed()) + " failed\n";
  return out;
}

TestAnswer testMappingRequest(const MappingSnapshot& snapshot, std::string_view record_type, std::string_view body,
                              const mapping::CsvMapperSet* csv_mappers, std::string_view content_type) {
  if (!content_type.empty() && ingest::mediaType(content_type) == "text/csv") {
    return testCsvRequest(snapshot, csv_mappers, record_type, body);
  }
  if (!snapshot.rules->mappers->has(record_type)) {
    const bool is_csv = csv_mappers != nullptr && csv_mappers->find(record_type) != nullptr;
    return {404, json::operationOutcome(makeError(ErrorCode::NotFound,
                                                  "no mapper for record type '" + std::string(record_type) + "'", "name",
                                                  is_csv ? "this is a CSV input mapper: send a CSV export with "
                                                           "Content-Type: text/csv"
                                                         : "use one of the loaded record types"))};
  }
  rapidjson::Document doc;
  if (auto parsed = json::parseStrict(body, doc); !parsed) return {400, json::operationOutcome(parsed.error())};
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

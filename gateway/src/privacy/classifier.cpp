#include "privacy/classifier.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "common/json.hpp"
#include "common/json_locations.hpp"

namespace gw::privacy {
namespace {

namespace fs = std::filesystem;

// Role bits stored per code. Opioid implies sud and psy implies mh: set together at load time so
// the hot path needs no rule.
constexpr std::uint8_t kSud = 1;
constexpr std::uint8_t kOpioid = 2;
constexpr std::uint8_t kMh = 4;
constexpr std::uint8_t kPsy = 8;
constexpr std::uint8_t kHiv = 16;

// Transparent hashing: lookups take the string_view of a RapidJSON string, so classifying
// allocates nothing.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct SystemEntry {
  std::uint8_t whole = 0;  // roles of every code of the system (whole-system include)
  StringMap<std::uint8_t> codes;
};

struct Entry {
  std::string system;
  std::string code;  // empty: the whole system
};

struct IncludedSet {
  std::string url;
  std::string where;  // file:line:column (JSON path) of the reference, for errors
};

struct ParsedValueSet {
  std::string file;
  std::string url;
  std::uint8_t roles = 0;
  std::vector<Entry> entries;
  std::vector<IncludedSet> includes;
  std::size_t unverified = 0;
};

class FileReader {
 public:
  FileReader(std::string file, std::string text) : file_(std::move(file)), text_(std::move(text)) {}

  const std::string& text() const { return text_; }

  /// "file:line:column (compose.include[2].concept[0].code)" for a JSON pointer.
  std::string where(const std::string& pointer) {
    if (!locations_) locations_ = json::JsonLocations::build(text_, false);
    std::string out = json::JsonLocations::position(file_, text_, locations_->valueOffset(pointer));
    if (!pointer.empty()) out += " (" + json::pointerToPath(pointer) + ")";
    return out;
  }
  Error error(const std::string& pointer, std::string message, std::string hint) {
    return makeError(ErrorCode::Config, std::move(message), where(pointer), std::move(hint));
  }

 private:
  std::string file_;
  std::string text_;
  std::optional<json::JsonLocations> locations_;
};

bool isUnverified(const rapidjson::Value& item) {
  const auto* designations = json::find(item, "designation");
  if (designations == nullptr || !designations->IsArray()) return false;
  for (const auto& d : designations->GetArray()) {
    if (json::getString(d, "value").starts_with("UNVERIFIED")) return true;
  }
  return false;
}

Result<ParsedValueSet> parseValueSet(const fs::path& path, std::uint8_t roles, std::string_view role_name) {
  ParsedValueSet out;
  out.file = path.string();
  out.roles = roles;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return makeError(ErrorCode::Config, "cannot read the " + std::string(role_name) + " value set file", out.file,
                     "check the path; the shipped value sets are fhir-profiles/ValueSet/gw-sensitivity-*.json");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  FileReader reader(out.file, buffer.str());
  const std::string& text = reader.text();
  rapidjson::Document doc;
  if (auto parsed = json::parseStrictFile(out.file, text, doc); !parsed) {
    Error e = parsed.error();
    e.code = ErrorCode::Config;
    return e;
  }
  if (!doc.IsObject() || json::getString(doc, "resourceType") != "ValueSet") {
    return reader.error("/resourceType", "expected a FHIR ValueSet", "set resourceType to \"ValueSet\"");
  }
  out.url = std::string(json::getString(doc, "url"));
  if (out.url.empty()) return reader.error("", "the ValueSet has no url", "add its canonical url");
  const auto* compose = json::find(doc, "compose");
  if (compose == nullptr || !compose->IsObject()) {
    return reader.error("", "the ValueSet has no compose object", "list the codes in compose.include");
  }
  if (json::find(*compose, "exclude") != nullptr) {
    return reader.error("/compose/exclude", "compose.exclude is not supported", "list only the codes to include");
  }
  const auto* includes = json::find(*compose, "include");
  if (includes == nullptr || !includes->IsArray() || includes->Empty()) {
    return reader.error("/compose", "compose.include must be a non-empty array", "add at least one include");
  }
  for (rapidjson::SizeType i = 0; i < includes->Size(); ++i) {
    const auto& inc = (*includes)[i];
    const std::string at = "/compose/include/" + std::to_string(i);
    if (!inc.IsObject()) return reader.error(at, "an include must be an object", "");
    if (json::find(inc, "filter") != nullptr) {
      return reader.error(at + "/filter", "include with a filter is not supported",
                          "list the codes in concept[] or include the whole system");
    }
    const auto* value_sets = json::find(inc, "valueSet");
    if (value_sets != nullptr) {
      if (!value_sets->IsArray() || value_sets->Empty()) {
        return reader.error(at + "/valueSet", "valueSet must be a non-empty array of canonical urls", "");
      }
      for (rapidjson::SizeType v = 0; v < value_sets->Size(); ++v) {
        const auto& url = (*value_sets)[v];
        const std::string vat = at + "/valueSet/" + std::to_string(v);
        if (!url.IsString() || url.GetStringLength() == 0) return reader.error(vat, "a valueSet entry must be a url", "");
        out.includes.push_back({std::string(json::view(url)), reader.where(vat)});
      }
    }
    const auto* system = json::find(inc, "system");
    const auto* concepts = json::find(inc, "concept");
    if (system == nullptr) {
      if (value_sets == nullptr) {
        return reader.error(at, "an include needs a system or a valueSet", "add the code system url");
      }
      if (concepts != nullptr) return reader.error(at + "/concept", "concepts need a system", "add the code system url");
      continue;
    }
    if (!system->IsString() || system->GetStringLength() == 0) {
      return reader.error(at + "/system", "system must be a non-empty string (a code system url)", "");
    }
    const std::string system_url(json::view(*system));
    if (concepts == nullptr) {
      out.entries.push_back({system_url, {}});  // the whole system
      continue;
    }
    if (!concepts->IsArray() || concepts->Empty()) {
      return reader.error(at + "/concept", "concept must be a non-empty array",
                          "list the codes, or drop concept to include the whole system");
    }
    for (rapidjson::SizeType c = 0; c < concepts->Size(); ++c) {
      const auto& item = (*concepts)[c];
      const std::string cat = at + "/concept/" + std::to_string(c);
      const auto* code = item.IsObject() ? json::find(item, "code") : nullptr;
      if (code == nullptr || !code->IsString() || code->GetStringLength() == 0) {
        return reader.error(cat, "a concept needs a non-empty code", "");
      }
      out.entries.push_back({system_url, std::string(json::view(*code))});
      if (isUnverified(item)) ++out.unverified;
    }
  }
  return out;
}

// A member name test the compiler turns into a compare or two (no library call): the scanner
// asks it of every member of every object.
template <std::size_t N>
bool is(std::string_view name, const char (&literal)[N]) {
  return name.size() == N - 1 && std::memcmp(name.data(), literal, N - 1) == 0;
}

// The last (up to) eight bytes of a string as a number: code system URLs share their beginnings.
std::uint64_t tailBytes(std::string_view s) {
  std::uint64_t out = 0;
  if (s.size() >= 8) {
    std::memcpy(&out, s.data() + s.size() - 8, 8);
  } else if (!s.empty()) {
    std::memcpy(&out, s.data(), s.size());
  }
  return out;
}

// The value sets name a handful of code systems, so finding a Coding's system compares lengths
// and last bytes, then the text, instead of hashing a long URL for every Coding met.
struct SystemSlot {
  std::uint64_t tail = 0;
  std::string_view name;  // the key in the systems map
  const SystemEntry* entry = nullptr;
};
// More systems than this: the hash map is quicker than comparing them one by one.
constexpr std::size_t kMaxSystemSlots = 16;

struct SystemIndex {
  SystemIndex() = default;
  SystemIndex(const SystemIndex&) = delete;  // slots point into `systems`
  SystemIndex& operator=(const SystemIndex&) = delete;

  StringMap<SystemEntry> systems;
  std::vector<SystemSlot> slots;  // one per system; empty when there are more than kMaxSystemSlots

  void buildSlots() {
    slots.clear();
    if (systems.size() > kMaxSystemSlots) return;
    for (const auto& [name, entry] : systems) slots.push_back({tailBytes(name), name, &entry});
  }

  const SystemEntry* find(std::string_view system) const {
    if (slots.size() != systems.size()) {  // too many systems, or slots not built
      const auto it = systems.find(system);
      return it == systems.end() ? nullptr : &it->second;
    }
    const std::uint64_t tail = tailBytes(system);
    for (const auto& slot : slots) {
      if (slot.tail == tail && slot.name == system) return slot.entry;
    }
    return nullptr;
  }
};

// Walks a resource and ORs the role bits of every Coding it meets.
class Scanner {
 public:
  explicit Scanner(const SystemIndex& systems) : systems_(systems) {}

  std::uint8_t flags() const { return flags_; }

  void value(const rapidjson::Value& v) {
    if (v.IsObject()) {
      object(v, {});
    } else if (v.IsArray()) {
      for (const auto& item : v.GetArray()) value(item);
    }
  }

  /// `also_skip`: one more member name to leave out (CarePlan "activity" for the plan's own classes).
  void object(const rapidjson::Value& o, std::string_view also_skip) {
    const rapidjson::Value* system = nullptr;
    const rapidjson::Value* code = nullptr;
    for (auto m = o.MemberBegin(); m != o.MemberEnd(); ++m) {
      const std::string_view name = json::view(m->name);
      const auto& v = m->value;
      if (v.IsString()) {
        if (is(name, "system")) {
          system = &v;
        } else if (is(name, "code")) {
          code = &v;
        }
        continue;
      }
      if (!v.IsObject() && !v.IsArray()) continue;
      // meta holds labels and profiles, identifier types say what an id is (MR), the narrative
      // holds no Codings: none of them is clinical content to classify.
      if (is(name, "meta") || is(name, "identifier") || is(name, "text") || (!also_skip.empty() && name == also_skip))
        continue;
      value(v);
    }
    if (system != nullptr && code != nullptr) lookup(json::view(*system), json::view(*code));
  }

 private:
  void lookup(std::string_view system, std::string_view code) {
    const SystemEntry* s = systems_.find(system);
    if (s == nullptr) return;
    flags_ |= s->whole;
    if (s->codes.empty()) return;
    const auto c = s->codes.find(code);
    if (c != s->codes.end()) flags_ |= c->second;
  }

  const SystemIndex& systems_;
  std::uint8_t flags_ = 0;
};

ClassSet classesOf(std::uint8_t flags, bool part2_program) {
  ClassSet out;
  if ((flags & kSud) != 0 || part2_program) out.add(DataClass::Sud);
  if ((flags & kMh) != 0) out.add(DataClass::Mh);
  if (out.empty()) out.add(DataClass::General);
  return out;
}

}  // namespace

struct Classifier::Tables {
  SystemIndex systems;
  Stats stats;
};

ValueSetFiles ValueSetFiles::inProfilesDir(const std::filesystem::path& profiles_dir) {
  const auto dir = profiles_dir / "ValueSet";
  return ValueSetFiles{dir / "gw-sensitivity-sud.json", dir / "gw-sensitivity-opioid.json", dir / "gw-sensitivity-mh.json",
                       dir / "gw-sensitivity-psy.json", dir / "gw-sensitivity-hiv.json"};
}

Result<Classifier> Classifier::load(const ValueSetFiles& files) {
  struct Role {
    const fs::path* path;
    std::uint8_t bits;
    std::string_view name;
  };
  const Role roles[] = {
      {&files.sud, kSud, "sud"}, {&files.opioid, kSud | kOpioid, "opioid"},
      {&files.mh, kMh, "mh"},    {&files.psy, kMh | kPsy, "psy"},
      {&files.hiv, kHiv, "hiv"},
  };
  std::vector<ParsedValueSet> parsed;
  std::unordered_map<std::string, std::size_t> by_url;
  for (const auto& role : roles) {
    GW_TRY(auto vs, parseValueSet(*role.path, role.bits, role.name));
    if (const auto [it, added] = by_url.emplace(vs.url, parsed.size()); !added) {
      return makeError(ErrorCode::Config,
                       "the " + std::string(role.name) + " value set has the same url as " + parsed[it->second].file,
                       vs.file, "give each sensitivity value set its own file and url");
    }
    parsed.push_back(std::move(vs));
  }

  auto tables = std::make_shared<Tables>();
  for (std::size_t r = 0; r < parsed.size(); ++r) {
    // The root's roles apply to the codes of every value set it includes, transitively.
    const auto& root = parsed[r];
    std::vector<bool> seen(parsed.size(), false);
    std::vector<std::size_t> pending{r};
    while (!pending.empty()) {
      const std::size_t i = pending.back();
      pending.pop_back();
      if (seen[i]) continue;
      seen[i] = true;
      for (const auto& e : parsed[i].entries) {
        auto& system = tables->systems.systems[e.system];
        if (e.code.empty()) {
          system.whole |= root.roles;
        } else {
          system.codes[e.code] |= root.roles;
        }
      }
      for (const auto& inc : parsed[i].includes) {
        const auto it = by_url.find(inc.url);
        if (it == by_url.end()) {
          return makeError(ErrorCode::Config,
                           "the included value set " + inc.url + " is not one of the sensitivity value sets", inc.where,
                           "include only gw-sensitivity-* value sets, or list the codes here");
        }
        pending.push_back(it->second);
      }
    }
  }
  tables->systems.buildSlots();
  for (const auto& [url, system] : tables->systems.systems) {
    tables->stats.codes += system.codes.size();
    if (system.whole != 0) ++tables->stats.whole_systems;
  }
  for (const auto& vs : parsed) tables->stats.unverified += vs.unverified;
  return Classifier(std::move(tables));
}

Classification Classifier::classify(const rapidjson::Value& resource, bool part2_program) const {
  Scanner scanner(tables_->systems);
  scanner.value(resource);
  const std::uint8_t f = scanner.flags();
  Classification out;
  out.classes = classesOf(f, part2_program);
  out.part2 = part2_program;
  out.opioid = (f & kOpioid) != 0;
  out.hiv = (f & kHiv) != 0;
  out.psych = (f & kPsy) != 0;
  return out;
}

std::vector<ClassSet> Classifier::classifyCarePlanActivities(const rapidjson::Value& careplan, bool part2_program) const {
  std::vector<ClassSet> out;
  const auto* activities = careplan.IsObject() ? json::find(careplan, "activity") : nullptr;
  if (activities == nullptr || !activities->IsArray()) return out;
  out.reserve(activities->Size());
  for (const auto& activity : activities->GetArray()) {
    Scanner scanner(tables_->systems);
    scanner.value(activity);
    out.push_back(classesOf(scanner.flags(), part2_program));
  }
  return out;
}

ClassSet Classifier::classifyCarePlanOwn(const rapidjson::Value& careplan, bool part2_program) const {
  Scanner scanner(tables_->systems);
  if (careplan.IsObject()) scanner.object(careplan, "activity");
  return classesOf(scanner.flags(), part2_program);
}

Classifier::Stats Classifier::stats() const { return tables_->stats; }

}  // namespace gw::privacy

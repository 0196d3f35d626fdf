#include "validate/terminology.hpp"

#include <algorithm>

#include "common/json.hpp"

namespace gw::validate {
namespace {

Status collectConcepts(const ProfileFile& src, const rapidjson::Value& concepts, const std::string& pointer,
                       std::vector<std::string>& out) {
  for (rapidjson::SizeType i = 0; i < concepts.Size(); ++i) {
    const auto& c = concepts[i];
    const std::string ptr = pointer + "/" + std::to_string(i);
    const auto code = json::getString(c, "code");
    if (code.empty()) return src.error(ptr, "concept without a code");
    out.emplace_back(code);
    if (const auto* nested = json::find(c, "concept"); nested != nullptr && nested->IsArray()) {
      GW_TRY(collectConcepts(src, *nested, ptr + "/concept", out));
    }
  }
  return ok();
}

void add(CodeSet& set, const std::string& system, const std::string& code) {
  set.by_system[system].insert(code);
  set.codes.insert(code);
}

}  // namespace

Status Terminology::loadCodeSystem(const ProfileFile& src) {
  const auto& doc = src.doc;
  if (json::getString(doc, "resourceType") != "CodeSystem") {
    return src.error("/resourceType", "expected a CodeSystem in CodeSystem/", "move the file or fix resourceType");
  }
  const std::string url(json::getString(doc, "url"));
  if (url.empty()) return src.error("", "CodeSystem has no url", "add its canonical url");
  if (code_systems_.count(url) != 0) return src.error("/url", "another CodeSystem already has this url");
  auto& codes = code_systems_[url];
  codes.file = src.file;
  if (const auto* concepts = json::find(doc, "concept")) {
    if (!concepts->IsArray()) return src.error("/concept", "concept must be an array");
    GW_TRY(collectConcepts(src, *concepts, "/concept", codes.codes));
    codes.enumerable = json::getString(doc, "content") != "not-present" && json::getString(doc, "content") != "example" &&
                       json::getString(doc, "content") != "fragment";
  }
  return ok();
}

Status Terminology::loadValueSet(const ProfileFile& src) {
  if (json::getString(src.doc, "resourceType") != "ValueSet") {
    return src.error("/resourceType", "expected a ValueSet in ValueSet/", "move the file or fix resourceType");
  }
  const std::string url(json::getString(src.doc, "url"));
  if (url.empty()) return src.error("", "ValueSet has no url", "add its canonical url");
  if (value_sets_.count(url) != 0) return src.error("/url", "another ValueSet already has this url");
  value_sets_[url] = &src;
  return ok();
}

/// Expansion of a shipped value set from shipped code systems (null with `why` set otherwise).
const CodeSet* Terminology::expand(const std::string& url, std::string& why, int depth) {
  if (const auto it = expanded_.find(url); it != expanded_.end()) return it->second;
  const auto vs = value_sets_.find(url);
  if (vs == value_sets_.end()) {
    why = "value set " + url + " is not in fhir-profiles/ValueSet";
    return nullptr;
  }
  if (depth > 8) {
    why = "value set " + url + " includes itself";
    return nullptr;
  }
  const ProfileFile& src = *vs->second;
  const auto* compose = json::find(src.doc, "compose");
  if (compose == nullptr || !compose->IsObject()) {
    why = src.where("") + ": value set " + url + " has no compose";
    return nullptr;
  }
  if (json::find(*compose, "exclude") != nullptr) {
    why = src.where("/compose/exclude") + ": compose.exclude is not supported";
    return nullptr;
  }
  CodeSet set;
  set.url = url;
  const auto* includes = json::find(*compose, "include");
  if (includes == nullptr || !includes->IsArray()) {
    why = src.where("/compose") + ": compose.include must be an array";
    return nullptr;
  }
  for (rapidjson::SizeType i = 0; i < includes->Size(); ++i) {
    const auto& inc = (*includes)[i];
    const std::string at = src.where("/compose/include/" + std::to_string(i));
    if (!inc.IsObject() || json::find(inc, "filter") != nullptr) {
      why = at + ": include with a filter is not supported (list the concepts or include the whole system)";
      return nullptr;
    }
    if (const auto* nested = json::find(inc, "valueSet"); nested != nullptr && nested->IsArray()) {
      for (const auto& n : nested->GetArray()) {
        if (!n.IsString()) continue;
        const CodeSet* inner = expand(std::string(n.GetString(), n.GetStringLength()), why, depth + 1);
        if (inner == nullptr) return nullptr;
        for (const auto& [system, codes] : inner->by_system) {
          for (const auto& code : codes) add(set, system, code);
        }
      }
    }
    const std::string system(json::getString(inc, "system"));
    if (system.empty()) continue;
    if (const auto* concepts = json::find(inc, "concept"); concepts != nullptr && concepts->IsArray()) {
      for (const auto& c : concepts->GetArray()) {
        const auto code = json::getString(c, "code");
        if (!code.empty()) add(set, system, std::string(code));
      }
      continue;
    }
    const auto cs = code_systems_.find(system);
    if (cs == code_systems_.end() || !cs->second.enumerable) {
      why = at + ": code system " + system + " is not shipped in fhir-profiles/CodeSystem (or lists no concepts)";
      return nullptr;
    }
    for (const auto& code : cs->second.codes) add(set, system, code);
  }
  std::vector<std::string> sorted(set.codes.begin(), set.codes.end());
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size() && i < 12; ++i) set.sample += (i ? ", " : "") + sorted[i];
  if (sorted.size() > 12) set.sample += ", ...";
  set.freeze();
  const CodeSet* stored = &code_sets_.emplace_back(std::move(set));
  expanded_[url] = stored;
  return stored;
}

const std::vector<std::string>* Terminology::codeSystemCodes(std::string_view url) const {
  const auto it = code_systems_.find(url);
  return it == code_systems_.end() ? nullptr : &it->second.codes;
}

}  // namespace gw::validate

// The C++ checks behind the FHIR invariants listed in fhir-profiles/. Each check mirrors its
// FHIRPath expression (kept beside it in kInvariants, so a changed profile is caught at load).
// FHIRPath semantics that matter here: `x.exists()` is true for a primitive that has only an
// extension ("_x"); a comparison with an empty operand is empty, and an invariant that evaluates
// to empty is not a failure (we only report rules that are definitely broken).
#include "validate/invariants.hpp"

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

#include "common/json.hpp"
#include "validate/date_compare.hpp"
#include "validate/model.hpp"
#include "validate/xhtml_scanner.hpp"

namespace gw::validate {
namespace {

using rapidjson::Value;

constexpr std::string_view kUcum = "http://unitsofmeasure.org";

// FHIRPath `name.exists()`: the member, or its "_name" extension companion, is present.
bool sameChars(const char* a, std::string_view b) {  // inline: names are a few bytes
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

bool exists(const Value& focus, std::string_view name) {
  if (!focus.IsObject()) return false;
  for (const auto& m : focus.GetObject()) {
    const std::size_t size = m.name.GetStringLength();
    const char* key = m.name.GetString();
    if (m.value.IsNull()) continue;
    if ((size == name.size() && sameChars(key, name)) ||
        (size == name.size() + 1 && key[0] == '_' && sameChars(key + 1, name))) {
      return true;
    }
  }
  return false;
}

// `choice.exists()` for a choice element "choice[x]": valueQuantity, _valueString, ...
bool choiceExists(const Value& focus, std::string_view stem) {
  if (!focus.IsObject()) return false;
  for (const auto& m : focus.GetObject()) {
    std::string_view key = json::view(m.name);
    if (m.value.IsNull()) continue;
    if (!key.empty() && key[0] == '_') key.remove_prefix(1);
    if (key.size() > stem.size() && key.substr(0, stem.size()) == stem && key[stem.size()] >= 'A' &&
        key[stem.size()] <= 'Z') {
      return true;
    }
  }
  return false;
}

// The primitive value itself (`hasValue()`), not just an extension.
const Value* primitiveValue(const Value& focus, std::string_view name) {
  const Value* v = findMember(focus, name);
  return v != nullptr && !v->IsNull() ? v : nullptr;
}

std::string_view stringValue(const Value& focus, std::string_view name) { return memberString(focus, name); }

// Items of a repeating element (an array), or the single value, as a range of pointers.
template <class Fn>
bool anyItem(const Value* v, Fn&& fn) {
  if (v == nullptr) return false;
  if (v->IsArray()) {
    for (const auto& item : v->GetArray()) {
      if (fn(item)) return true;
    }
    return false;
  }
  return fn(*v);
}

// Whitespace between FHIRPath tokens (sameExpression).
bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// ---- the checks -------------------------------------------------------------------------------

bool checkExt1(const Value& f, const InvariantContext&) { return exists(f, "extension") != choiceExists(f, "value"); }

bool checkPer1(const Value& f, const InvariantContext&) {
  const Value* start = primitiveValue(f, "start");
  const Value* end = primitiveValue(f, "end");
  if (start == nullptr || end == nullptr || !start->IsString() || !end->IsString()) return true;
  return compareDateTimes(json::view(*start), json::view(*end)) != 1;
}

bool checkQty3(const Value& f, const InvariantContext&) { return !exists(f, "code") || exists(f, "system"); }

bool checkRef1(const Value& f, const InvariantContext& context) {
  const std::string_view reference = stringValue(f, "reference");
  if (reference.empty() || reference[0] != '#') return true;
  const std::string_view id = reference.substr(1);
  const Value* root = context.root_resource;
  return root != nullptr &&
         anyItem(findMember(*root, "contained"), [&](const Value& r) { return memberString(r, "id") == id && !id.empty(); });
}

bool checkCpt2(const Value& f, const InvariantContext&) { return !exists(f, "value") || exists(f, "system"); }

bool checkTim1(const Value& f, const InvariantContext&) { return !exists(f, "duration") || exists(f, "durationUnit"); }
bool checkTim2(const Value& f, const InvariantContext&) { return !exists(f, "period") || exists(f, "periodUnit"); }
bool checkTim4(const Value& f, const InvariantContext&) {
  const Value* v = primitiveValue(f, "duration");
  return v == nullptr || !v->IsNumber() || v->GetDouble() >= 0;
}
bool checkTim5(const Value& f, const InvariantContext&) {
  const Value* v = primitiveValue(f, "period");
  return v == nullptr || !v->IsNumber() || v->GetDouble() >= 0;
}
bool checkTim6(const Value& f, const InvariantContext&) { return !exists(f, "periodMax") || exists(f, "period"); }
bool checkTim7(const Value& f, const InvariantContext&) { return !exists(f, "durationMax") || exists(f, "duration"); }
bool checkTim8(const Value& f, const InvariantContext&) { return !exists(f, "countMax") || exists(f, "count"); }
bool checkTim9(const Value& f, const InvariantContext&) {
  if (!exists(f, "offset")) return true;
  if (!exists(f, "when")) return false;
  // `when.select($this in ('C' | 'CM' | 'CD' | 'CV')).allFalse()`: no meal-relative "C*" code.
  return !anyItem(findMember(f, "when"), [](const Value& w) {
    if (!w.IsString()) return false;
    const std::string_view code = json::view(w);
    return code == "C" || code == "CM" || code == "CD" || code == "CV";
  });
}
bool checkTim10(const Value& f, const InvariantContext&) { return !exists(f, "timeOfDay") || !exists(f, "when"); }

// txt-1 and txt-2 read the same scan: it is kept in the validation's context, keyed by the
// string's address (the resource is not modified while it is validated).
XhtmlVerdict narrativeVerdict(const Value& f, const InvariantContext& context) {
  if (context.scratch_key != f.GetString()) {
    const XhtmlVerdict verdict = scanNarrative(json::view(f));
    context.scratch_key = f.GetString();
    context.scratch_value = (verdict.allowed ? 1U : 0U) | (verdict.content ? 2U : 0U);
  }
  return XhtmlVerdict{(context.scratch_value & 1U) != 0, (context.scratch_value & 2U) != 0};
}
bool checkTxt1(const Value& f, const InvariantContext& context) {
  return !f.IsString() || narrativeVerdict(f, context).allowed;
}
bool checkTxt2(const Value& f, const InvariantContext& context) {
  if (!f.IsString()) return true;
  const XhtmlVerdict verdict = narrativeVerdict(f, context);
  return !verdict.allowed || verdict.content;  // a malformed div is txt-1's finding
}

// DomainResource rules on contained resources.
bool checkDom2(const Value& f, const InvariantContext&) {
  return !anyItem(findMember(f, "contained"), [](const Value& r) { return exists(r, "contained"); });
}
bool checkDom4(const Value& f, const InvariantContext&) {
  return !anyItem(findMember(f, "contained"), [](const Value& r) {
    const Value* meta = findMember(r, "meta");
    return meta != nullptr && (exists(*meta, "versionId") || exists(*meta, "lastUpdated"));
  });
}
bool checkDom5(const Value& f, const InvariantContext&) {
  return !anyItem(findMember(f, "contained"), [](const Value& r) {
    const Value* meta = findMember(r, "meta");
    return meta != nullptr && exists(*meta, "security");
  });
}

// Any string anywhere in `v` for which `match` is true (member names are not values).
template <class Fn>
bool anyString(const Value& v, Fn&& match) {
  if (v.IsString()) return match(json::view(v));
  if (v.IsArray()) {
    for (const auto& item : v.GetArray()) {
      if (anyString(item, match)) return true;
    }
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      if (anyString(m.value, match)) return true;
    }
  }
  return false;
}

// dom-3: every contained resource is referenced ("#id") from somewhere in the resource, or itself
// refers to its container ("#"). Approximation: any string value equal to "#id" counts, not only
// those typed Reference.reference/canonical/uri/url (the gateway never writes such strings elsewhere).
bool checkDom3(const Value& f, const InvariantContext&) {
  const Value* contained = findMember(f, "contained");
  if (contained == nullptr || !contained->IsArray()) return true;
  for (const auto& r : contained->GetArray()) {
    const std::string_view id = memberString(r, "id");
    if (id.empty()) continue;  // '#' + {} is empty: FHIRPath does not flag it
    const bool referenced =
        anyString(f, [&](std::string_view s) { return s.size() == id.size() + 1 && s[0] == '#' && s.substr(1) == id; }) ||
        anyString(r, [](std::string_view s) { return s == "#"; });
    if (!referenced) return false;
  }
  return true;
}

bool checkObs3(const Value& f, const InvariantContext&) {
  return exists(f, "low") || exists(f, "high") || exists(f, "text");
}
bool checkObs6(const Value& f, const InvariantContext&) {
  return !exists(f, "dataAbsentReason") || !choiceExists(f, "value");
}
bool checkObs7(const Value& f, const InvariantContext& context) {
  if (!choiceExists(f, "value")) return true;
  const Value* resource = context.resource != nullptr ? context.resource : &f;
  const Value* code = findMember(*resource, "code");
  const Value* codings = code != nullptr ? findMember(*code, "coding") : nullptr;
  if (codings == nullptr || !codings->IsArray()) return true;
  // A component whose code shares a Coding (FHIRPath equality: all members equal) with Observation.code.
  return !anyItem(findMember(f, "component"), [&](const Value& component) {
    const Value* ccode = findMember(component, "code");
    const Value* ccodings = ccode != nullptr ? findMember(*ccode, "coding") : nullptr;
    return anyItem(ccodings, [&](const Value& c) {
      return std::any_of(codings->Begin(), codings->End(), [&](const Value& rc) { return rc == c; });
    });
  });
}

bool checkPat1(const Value& f, const InvariantContext&) {
  return exists(f, "name") || exists(f, "telecom") || exists(f, "address") || exists(f, "organization");
}
bool checkCpl3(const Value& f, const InvariantContext&) { return !exists(f, "detail") || !exists(f, "reference"); }

bool checkPpc1(const Value& f, const InvariantContext&) { return exists(f, "policy") || exists(f, "policyRule"); }

// ppc-2..5 in R4 compare scope.coding.system with the placeholder 'something', so as written
// they can never fail. The gateway checks what they mean: a Consent whose scope is this
// consentscope code needs a patient.
bool consentScopeNeedsPatient(const Value& f, std::string_view scope_code) {
  if (exists(f, "patient")) return true;
  const Value* scope = findMember(f, "scope");
  return !anyItem(scope != nullptr ? findMember(*scope, "coding") : nullptr, [&](const Value& c) {
    return memberString(c, "system") == "http://terminology.hl7.org/CodeSystem/consentscope" &&
           memberString(c, "code") == scope_code;
  });
}
bool checkPpc2(const Value& f, const InvariantContext&) { return consentScopeNeedsPatient(f, "patient-privacy"); }
bool checkPpc3(const Value& f, const InvariantContext&) { return consentScopeNeedsPatient(f, "research"); }
bool checkPpc4(const Value& f, const InvariantContext&) { return consentScopeNeedsPatient(f, "adr"); }
bool checkPpc5(const Value& f, const InvariantContext&) { return consentScopeNeedsPatient(f, "treatment"); }

bool checkAtt1(const Value& f, const InvariantContext&) { return !exists(f, "data") || exists(f, "contentType"); }

bool systemIsUcumOrAbsent(const Value& f) {
  const Value* system = primitiveValue(f, "system");
  return system == nullptr || !system->IsString() || json::view(*system) == kUcum;
}
bool checkAge1(const Value& f, const InvariantContext&) {
  const Value* value = primitiveValue(f, "value");
  return (exists(f, "code") || !exists(f, "value")) && systemIsUcumOrAbsent(f) &&
         (value == nullptr || !value->IsNumber() || value->GetDouble() > 0);
}
bool checkCnt3(const Value& f, const InvariantContext&) {
  const Value* value = primitiveValue(f, "value");
  const Value* code = primitiveValue(f, "code");
  return (exists(f, "code") || !exists(f, "value")) && systemIsUcumOrAbsent(f) &&
         (code == nullptr || !code->IsString() || json::view(*code) == "1") &&
         (value == nullptr || !value->IsNumber() || !value->IsDouble());  // a JSON number with '.' or exponent
}
bool checkDis1(const Value& f, const InvariantContext&) {
  return (exists(f, "code") || !exists(f, "value")) && systemIsUcumOrAbsent(f);
}
bool checkDrt1(const Value& f, const InvariantContext&) {
  if (!exists(f, "code")) return true;
  return memberString(f, "system") == kUcum && exists(f, "value");
}

// rng-2 `low <= high`: decided only when both values are present and in the same unit
// (FHIRPath converts UCUM units; without a UCUM engine other pairs are left undecided).
bool checkRng2(const Value& f, const InvariantContext&) {
  const Value* low = findMember(f, "low");
  const Value* high = findMember(f, "high");
  if (low == nullptr || high == nullptr) return true;
  const Value* lv = primitiveValue(*low, "value");
  const Value* hv = primitiveValue(*high, "value");
  if (lv == nullptr || hv == nullptr || !lv->IsNumber() || !hv->IsNumber()) return true;
  const bool same_unit = memberString(*low, "code").empty() && memberString(*high, "code").empty()
                             ? memberString(*low, "unit") == memberString(*high, "unit")
                             : memberString(*low, "code") == memberString(*high, "code") &&
                                   memberString(*low, "system") == memberString(*high, "system");
  return !same_unit || lv->GetDouble() <= hv->GetDouble();
}
bool checkRat1(const Value& f, const InvariantContext&) {
  const bool numerator = exists(f, "numerator");
  return (!numerator != exists(f, "denominator")) && (numerator || exists(f, "extension"));
}
bool checkDrq(const Value& f, const InvariantContext&) { return exists(f, "path") != exists(f, "searchParam"); }
bool checkExp1(const Value& f, const InvariantContext&) { return exists(f, "expression") || exists(f, "reference"); }
bool checkTrd1(const Value& f, const InvariantContext&) { return !exists(f, "data") || !choiceExists(f, "timing"); }
bool checkTrd2(const Value& f, const InvariantContext&) { return !exists(f, "condition") || exists(f, "data"); }
bool checkTrd3(const Value& f, const InvariantContext&) {
  const std::string_view type = memberString(f, "type");
  if (type == "named-event" && !exists(f, "name")) return false;
  if (type == "periodic" && !choiceExists(f, "timing")) return false;
  if (type.substr(0, 5) == "data-" && !exists(f, "data")) return false;
  return true;
}

// US Core 6.1 rules restated in the project profiles.
bool checkUsCore2(const Value& f, const InvariantContext&) {
  if (exists(f, "component") || exists(f, "hasMember")) return true;
  return exists(f, "dataAbsentReason") || choiceExists(f, "value");
}
bool checkUsCore6(const Value& f, const InvariantContext&) {
  const bool named = exists(f, "family") || exists(f, "given");
  const bool absent = anyItem(findMember(f, "extension"), [](const Value& e) {
    return memberString(e, "url") == "http://hl7.org/fhir/StructureDefinition/data-absent-reason";
  });
  return named != absent;
}

constexpr InvariantDefinition kInvariants[] = {
    // clang-format off
    {"age-1", R"((code.exists() or value.empty()) and (system.empty() or system = %ucum) and (value.empty() or value.hasValue().not() or value > 0))", &checkAge1},
    {"att-1", R"(data.empty() or contentType.exists())", &checkAtt1},
    {"cnt-3", R"((code.exists() or value.empty()) and (system.empty() or system = %ucum) and (code.empty() or code = '1') and (value.empty() or value.hasValue().not() or value.toString().contains('.').not()))", &checkCnt3},
    {"cpl-3", R"(detail.empty() or reference.empty())", &checkCpl3},
    {"cpt-2", R"(value.empty() or system.exists())", &checkCpt2},
    {"dis-1", R"((code.exists() or value.empty()) and (system.empty() or system = %ucum))", &checkDis1},
    {"dom-2", R"(contained.contained.empty())", &checkDom2},
    {"dom-3", R"(contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | %resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty())", &checkDom3},
    {"dom-4", R"(contained.meta.versionId.empty() and contained.meta.lastUpdated.empty())", &checkDom4},
    {"dom-5", R"(contained.meta.security.empty())", &checkDom5},
    {"drq-1", R"(path.exists() xor searchParam.exists())", &checkDrq},
    {"drq-2", R"(path.exists() xor searchParam.exists())", &checkDrq},
    {"drt-1", R"(code.exists() implies ((system = %ucum) and value.exists()))", &checkDrt1},
    {"exp-1", R"(expression.exists() or reference.exists())", &checkExp1},
    {"ext-1", R"(extension.exists() != value.exists())", &checkExt1},
    {"obs-3", R"(low.exists() or high.exists() or text.exists())", &checkObs3},
    {"obs-6", R"(dataAbsentReason.empty() or value.empty())", &checkObs6},
    {"obs-7", R"(value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty())", &checkObs7},
    {"pat-1", R"(name.exists() or telecom.exists() or address.exists() or organization.exists())", &checkPat1},
    {"per-1", R"(start.hasValue().not() or end.hasValue().not() or (start <= end))", &checkPer1},
    {"ppc-1", R"(policy.exists() or policyRule.exists())", &checkPpc1},
    {"ppc-2", R"(patient.exists() or scope.coding.where(system='something' and code='patient-privacy').exists().not())", &checkPpc2},
    {"ppc-3", R"(patient.exists() or scope.coding.where(system='something' and code='research').exists().not())", &checkPpc3},
    {"ppc-4", R"(patient.exists() or scope.coding.where(system='something' and code='adr').exists().not())", &checkPpc4},
    {"ppc-5", R"(patient.exists() or scope.coding.where(system='something' and code='treatment').exists().not())", &checkPpc5},
    {"qty-3", R"(code.empty() or system.exists())", &checkQty3},
    {"rat-1", R"((numerator.empty() xor denominator.exists()) and (numerator.exists() or extension.exists()))", &checkRat1},
    {"ref-1", R"(reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids')))", &checkRef1},
    {"rng-2", R"(low.empty() or high.empty() or (low <= high))", &checkRng2},
    {"tim-1", R"(duration.empty() or durationUnit.exists())", &checkTim1},
    {"tim-10", R"(timeOfDay.empty() or when.empty())", &checkTim10},
    {"tim-2", R"(period.empty() or periodUnit.exists())", &checkTim2},
    {"tim-4", R"(duration.exists() implies duration >= 0)", &checkTim4},
    {"tim-5", R"(period.exists() implies period >= 0)", &checkTim5},
    {"tim-6", R"(periodMax.empty() or period.exists())", &checkTim6},
    {"tim-7", R"(durationMax.empty() or duration.exists())", &checkTim7},
    {"tim-8", R"(countMax.empty() or count.exists())", &checkTim8},
    {"tim-9", R"(offset.empty() or (when.exists() and when.select($this in ('C' | 'CM' | 'CD' | 'CV')).allFalse()))", &checkTim9},
    {"trd-1", R"(data.empty() or timing.empty())", &checkTrd1},
    {"trd-2", R"(condition.exists() implies data.exists())", &checkTrd2},
    {"trd-3", R"((type = 'named-event' implies name.exists()) and (type = 'periodic' implies timing.exists()) and (type.startsWith('data-') implies data.exists()))", &checkTrd3},
    {"txt-1", R"(htmlChecks())", &checkTxt1},
    {"txt-2", R"(htmlChecks())", &checkTxt2},
    {"us-core-2", R"((component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists()))", &checkUsCore2},
    {"us-core-6", R"((family.exists() or given.exists()) xor extension.where(url='http://hl7.org/fhir/StructureDefinition/data-absent-reason').exists())", &checkUsCore6},
    // clang-format on
};

// Error-severity constraints the gateway deliberately does not evaluate, with the reason. A key
// here must not be one the gateway's own output could break unnoticed; each is also listed in
// fhir-profiles/README.md. Empty today: every error constraint in fhir-profiles/ has a check.
constexpr std::array<std::pair<std::string_view, std::string_view>, 0> kSkippedInvariants{};

}  // namespace

const InvariantDefinition* findInvariant(std::string_view key) {
  const auto it = std::find_if(std::begin(kInvariants), std::end(kInvariants), [&](const auto& d) { return d.key == key; });
  return it == std::end(kInvariants) ? nullptr : &*it;
}

std::string_view skippedInvariantReason(std::string_view key) {
  for (const auto& [k, reason] : kSkippedInvariants) {
    if (k == key) return reason;
  }
  return {};
}

bool sameExpression(std::string_view a, std::string_view b) {
  // Compare with whitespace removed outside '...' literals.
  auto next = [](std::string_view s, std::size_t& i, bool& quoted) -> int {
    while (i < s.size()) {
      const char c = s[i++];
      if (c == '\'') quoted = !quoted;
      if (!quoted && isSpace(c)) continue;
      return static_cast<unsigned char>(c);
    }
    return -1;
  };
  std::size_t i = 0, j = 0;
  bool qa = false, qb = false;
  for (;;) {
    const int x = next(a, i, qa);
    const int y = next(b, j, qb);
    if (x != y) return false;
    if (x < 0) return true;
  }
}

std::vector<std::string_view> invariantKeys() {
  std::vector<std::string_view> keys;
  for (const auto& d : kInvariants) keys.push_back(d.key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

}  // namespace gw::validate

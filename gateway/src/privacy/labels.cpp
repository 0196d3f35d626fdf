#include "privacy/labels.hpp"

#include <algorithm>
#include <iterator>

#include "common/json.hpp"

namespace gw::privacy {
namespace {

using Allocator = rapidjson::Document::AllocatorType;

struct LabelDef {
  Label label;
  std::string_view system;
  std::string_view code;
  std::string_view display;
};

// Displays as in HL7 terminology (v3-ActCode, v3-ObservationValue).
constexpr LabelDef kLabels[] = {
    {Label::Sud, kActCodeSystem, "SUD", "substance use disorder information sensitivity"},
    {Label::OpioidUd, kActCodeSystem, "OPIOIDUD", "opioid use disorder information sensitivity"},
    {Label::Mh, kActCodeSystem, "MH", "mental health information sensitivity"},
    {Label::Psy, kActCodeSystem, "PSY", "psychiatry disorder information sensitivity"},
    {Label::Hiv, kActCodeSystem, "HIV", "HIV/AIDS information sensitivity"},
    {Label::Part2Policy, kActCodeSystem, "42CFRPart2", "42 CFR Part2"},
    {Label::NoRedisclosure, kActCodeSystem, "NORDSCLCD", "no redisclosure without consent directive"},
    {Label::ComplyWithConsent, kActCodeSystem, "CPLYCD", "comply with consent directive"},
    {Label::EmergencyTreatment, kActReasonSystem, "ETREAT", "Emergency Treatment"},
    {Label::Redacted, kObservationValueSystem, "REDACTED", "redacted"},
};

struct ConfidentialityDef {
  std::string_view code;
  std::string_view display;
};

constexpr ConfidentialityDef kConfidentiality[] = {
    {"U", "unrestricted"}, {"L", "low"}, {"M", "moderate"}, {"N", "normal"}, {"R", "restricted"}, {"V", "very restricted"},
};

// Label strings are static, so the JSON refers to them instead of copying.
rapidjson::Value ref(std::string_view s) { return rapidjson::Value(rapidjson::StringRef(s.data(), s.size())); }

rapidjson::Value coding(const SecurityCoding& c, Allocator& a) {
  rapidjson::Value out(rapidjson::kObjectType);
  out.AddMember(ref("system"), ref(c.system), a);
  out.AddMember(ref("code"), ref(c.code), a);
  out.AddMember(ref("display"), ref(c.display), a);
  return out;
}

const LabelDef* findLabel(std::string_view system, std::string_view code) {
  for (const auto& def : kLabels) {
    if (def.code == code && def.system == system) return &def;
  }
  return nullptr;
}

/// True for a Coding whose system and code the gateway owns (any v3-Confidentiality code).
bool isOwned(const rapidjson::Value& c) {
  if (!c.IsObject()) return false;
  const auto system = json::getString(c, "system");
  if (system == kConfidentialitySystem) return true;
  return findLabel(system, json::getString(c, "code")) != nullptr;
}

Error notAResource(std::string_view what) {
  return makeError(ErrorCode::Internal, std::string(what) + " needs a FHIR resource (a JSON object)", "",
                   "pass the resource object, not a Bundle entry or array");
}

/// resource.meta, created after id (FHIR element order) when absent.
Result<rapidjson::Value*> ensureMeta(rapidjson::Value& resource, Allocator& a) {
  if (!resource.IsObject()) return notAResource("labelling");
  if (const auto m = resource.FindMember("meta"); m != resource.MemberEnd()) {
    if (!m->value.IsObject()) {
      return makeError(ErrorCode::Internal, "meta is not an object", "meta", "fix the mapper template that writes meta");
    }
    return &m->value;
  }
  const std::string_view anchor = resource.HasMember("id") ? "id" : "resourceType";
  rapidjson::Value rebuilt(rapidjson::kObjectType);
  bool placed = false;
  for (auto m = resource.MemberBegin(); m != resource.MemberEnd(); ++m) {
    const bool is_anchor = json::view(m->name) == anchor;
    rebuilt.AddMember(m->name, m->value, a);  // moves: no copy of the resource
    if (is_anchor && !placed) {
      rebuilt.AddMember(ref("meta"), rapidjson::Value(rapidjson::kObjectType), a);
      placed = true;
    }
  }
  if (!placed) rebuilt.AddMember(ref("meta"), rapidjson::Value(rapidjson::kObjectType), a);
  resource.Swap(rebuilt);
  return &resource.FindMember("meta")->value;
}

/// meta[member], created as an empty array when absent.
Result<rapidjson::Value*> ensureArray(rapidjson::Value& meta, std::string_view member, Allocator& a) {
  auto it = meta.FindMember(rapidjson::StringRef(member.data(), member.size()));
  if (it == meta.MemberEnd()) {
    meta.AddMember(ref(member), rapidjson::Value(rapidjson::kArrayType), a);
    it = meta.FindMember(rapidjson::StringRef(member.data(), member.size()));
  } else if (!it->value.IsArray()) {
    return makeError(ErrorCode::Internal, "meta." + std::string(member) + " is not an array", "meta." + std::string(member),
                     "fix the mapper template that writes meta");
  }
  return &it->value;
}

}  // namespace

std::string_view confidentialityCode(Confidentiality c) { return kConfidentiality[static_cast<std::size_t>(c)].code; }

std::optional<Confidentiality> parseConfidentiality(std::string_view code) {
  for (std::size_t i = 0; i < std::size(kConfidentiality); ++i) {
    if (kConfidentiality[i].code == code) return static_cast<Confidentiality>(i);
  }
  return std::nullopt;
}

LabelSet& LabelSet::merge(const LabelSet& other) {
  confidentiality = std::max(confidentiality, other.confidentiality);
  bits |= other.bits;
  return *this;
}

std::vector<SecurityCoding> LabelSet::codings() const {
  std::vector<SecurityCoding> out;
  out.reserve(4);
  const auto& conf = kConfidentiality[static_cast<std::size_t>(confidentiality)];
  out.push_back({kConfidentialitySystem, conf.code, conf.display});
  for (const auto& def : kLabels) {
    if (has(def.label)) out.push_back({def.system, def.code, def.display});
  }
  return out;
}

std::string LabelSet::names() const {
  std::string out(confidentialityCode(confidentiality));
  for (const auto& def : kLabels) {
    if (!has(def.label)) continue;
    out += ',';
    out += def.code;
  }
  return out;
}

LabelSet labelsFor(const Classification& c) {
  LabelSet out;
  const bool sud = c.classes.has(DataClass::Sud) || c.part2;
  const bool mh = c.classes.has(DataClass::Mh);
  // An empty class set is "not classified": label it restricted rather than normal.
  out.confidentiality = (sud || mh || c.classes.empty()) ? Confidentiality::R : Confidentiality::N;
  if (sud) {
    out.add(Label::Sud);
    if (c.opioid) out.add(Label::OpioidUd);
    if (c.part2) out.add(Label::Part2Policy).add(Label::NoRedisclosure).add(Label::ComplyWithConsent);
  }
  if (mh) {
    out.add(Label::Mh);
    if (c.psych) out.add(Label::Psy);
  }
  if (c.hiv) out.add(Label::Hiv);
  return out;
}

LabelSet readLabels(const rapidjson::Value& resource) {
  LabelSet out;
  std::optional<Confidentiality> confidentiality;
  const auto* meta = resource.IsObject() ? json::find(resource, "meta") : nullptr;
  const auto* security = meta != nullptr && meta->IsObject() ? json::find(*meta, "security") : nullptr;
  if (security != nullptr && security->IsArray()) {
    for (const auto& c : security->GetArray()) {
      if (!c.IsObject()) continue;
      const auto system = json::getString(c, "system");
      const auto code = json::getString(c, "code");
      if (system == kConfidentialitySystem) {
        if (const auto parsed = parseConfidentiality(code)) {
          confidentiality = confidentiality ? std::max(*confidentiality, *parsed) : *parsed;
        }
      } else if (const auto* def = findLabel(system, code)) {
        out.add(def->label);
      }
    }
  }
  out.confidentiality = confidentiality.value_or(Confidentiality::R);
  return out;
}

LabelSet bundleLabels(std::span<const Classification> entries) {
  LabelSet out;
  if (entries.empty()) return out;
  out.confidentiality = Confidentiality::U;
  for (const auto& c : entries) out.merge(labelsFor(c));
  out.bits &= static_cast<std::uint16_t>(~static_cast<std::uint16_t>(Label::Redacted));
  return out;
}

LabelSet bundleLabels(std::span<const rapidjson::Value* const> resources) {
  LabelSet out;
  if (resources.empty()) return out;
  out.confidentiality = Confidentiality::U;
  for (const auto* r : resources) out.merge(r != nullptr ? readLabels(*r) : LabelSet{Confidentiality::R, 0});
  out.bits &= static_cast<std::uint16_t>(~static_cast<std::uint16_t>(Label::Redacted));
  return out;
}

rapidjson::Value securityCodings(const LabelSet& labels, Allocator& allocator) {
  // The same Codings as labels.codings(), without building that vector: every resource is labelled.
  rapidjson::Value out(rapidjson::kArrayType);
  rapidjson::SizeType count = 1;
  for (const auto& def : kLabels) count += labels.has(def.label) ? 1 : 0;
  out.Reserve(count, allocator);
  const auto& conf = kConfidentiality[static_cast<std::size_t>(labels.confidentiality)];
  out.PushBack(coding({kConfidentialitySystem, conf.code, conf.display}, allocator), allocator);
  for (const auto& def : kLabels) {
    if (labels.has(def.label)) out.PushBack(coding({def.system, def.code, def.display}, allocator), allocator);
  }
  return out;
}

Status writeLabels(rapidjson::Value& resource, const LabelSet& labels, Allocator& allocator) {
  GW_TRY(auto* meta, ensureMeta(resource, allocator));
  GW_TRY(auto* security, ensureArray(*meta, "security", allocator));
  // Ours first (confidentiality leads), then whatever else was there, in its order.
  rapidjson::Value rebuilt = securityCodings(labels, allocator);
  for (auto& c : security->GetArray()) {
    if (!isOwned(c)) rebuilt.PushBack(c, allocator);  // moves
  }
  security->Swap(rebuilt);
  return ok();
}

Status writeLabels(rapidjson::Document& resource, const LabelSet& labels) {
  return writeLabels(resource, labels, resource.GetAllocator());
}

Status applyLabels(rapidjson::Value& resource, const Classification& c, Allocator& allocator) {
  LabelSet labels = labelsFor(c);
  if (readLabels(resource).has(Label::Redacted)) labels.add(Label::Redacted);
  return writeLabels(resource, labels, allocator);
}

Status applyLabels(rapidjson::Document& resource, const Classification& c) {
  return applyLabels(resource, c, resource.GetAllocator());
}

Status attachPart2Notice(rapidjson::Value& resource, std::string_view text, Allocator& allocator) {
  if (text.empty()) {
    return makeError(ErrorCode::Config, "the Part 2 notice text is empty", "",
                     "configure the notice text, or use the default short statement of 42 CFR 2.32");
  }
  GW_TRY(auto* meta, ensureMeta(resource, allocator));
  GW_TRY(auto* extensions, ensureArray(*meta, "extension", allocator));
  rapidjson::Value annotation(rapidjson::kObjectType);
  annotation.AddMember(ref("text"), json::str(text, allocator), allocator);
  for (auto& e : extensions->GetArray()) {
    if (!e.IsObject() || json::getString(e, "url") != kDs4pDisplayExtension) continue;
    e.EraseMember("valueAnnotation");
    e.AddMember(ref("valueAnnotation"), annotation, allocator);
    return ok();
  }
  rapidjson::Value extension(rapidjson::kObjectType);
  extension.AddMember(ref("url"), ref(kDs4pDisplayExtension), allocator);
  extension.AddMember(ref("valueAnnotation"), annotation, allocator);
  extensions->PushBack(extension, allocator);
  return ok();
}

Status attachPart2Notice(rapidjson::Document& resource, std::string_view text) {
  return attachPart2Notice(resource, text, resource.GetAllocator());
}

}  // namespace gw::privacy

// The per-resource walk. Hot path: one pass over the JSON, member lookups in precomputed hashes,
// the expression path built in one reused buffer; strings are only allocated for issues.
#include <algorithm>
#include <bitset>
#include <cmath>

#include "common/json.hpp"
#include "validate/model.hpp"

namespace gw::validate {
namespace {

std::string_view view(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

// Pattern semantics (R4 ElementDefinition.pattern[x]): every member of the pattern appears in the
// instance with a matching value; each pattern array item matches some instance item.
bool matchesPattern(const rapidjson::Value& pattern, const rapidjson::Value& value) {
  if (pattern.IsObject()) {
    if (!value.IsObject()) return false;
    for (const auto& m : pattern.GetObject()) {
      const auto it = value.FindMember(m.name);
      if (it == value.MemberEnd() || !matchesPattern(m.value, it->value)) return false;
    }
    return true;
  }
  if (pattern.IsArray()) {
    if (!value.IsArray()) return false;
    for (const auto& p : pattern.GetArray()) {
      if (std::none_of(value.Begin(), value.End(), [&](const rapidjson::Value& v) { return matchesPattern(p, v); })) {
        return false;
      }
    }
    return true;
  }
  if (pattern.IsNumber() && value.IsNumber()) return pattern.GetDouble() == value.GetDouble();
  return pattern == value;
}

bool matchesFixed(const rapidjson::Value& fixed, const rapidjson::Value& value) {
  if (fixed.IsNumber() && value.IsNumber()) return fixed.GetDouble() == value.GetDouble();
  return fixed == value;  // RapidJSON compares objects member-wise, independent of order
}

class Walker {
 public:
  Walker(const ProfileSet::Impl& impl, std::vector<ValidationIssue>& issues) : impl_(impl), issues_(issues) {}

  void resource(const rapidjson::Value& value, int model, std::string& path) {
    const Model& m = impl_.models[static_cast<std::size_t>(model)];
    object(value, m, path, true);
  }

  // Contained or nested resource: checked against its type's base rules.
  void anyResource(const rapidjson::Value& value, std::string& path) {
    if (!value.IsObject()) return issue("structure", path, "must be a JSON object (a resource)");
    const auto type = json::getString(value, "resourceType");
    const auto it = impl_.base.find(type);
    if (it == impl_.base.end() || !impl_.models[static_cast<std::size_t>(it->second)].resource) {
      return issue("not-supported", path, "resourceType is missing or not one the gateway validates");
    }
    object(value, impl_.models[static_cast<std::size_t>(it->second)], path, true);
  }

  void issue(std::string_view code, const std::string& path, std::string diagnostics,
             Severity severity = Severity::Error) {
    issues_.push_back(ValidationIssue{severity, std::string(code), std::move(diagnostics), path});
  }

 private:
  void object(const rapidjson::Value& value, const Model& model_in, std::string& path, bool is_resource) {
    if (!value.IsObject()) return issue("structure", path, "must be a JSON object (" + model_in.name + ")");
    if (value.MemberCount() == 0) {
      return issue("invalid", path, "is an empty object (ele-1: an element must have a value or children; leave it out)");
    }
    const Model* model = &model_in;
    // An extension with a URL the project defines is checked against that definition.
    if (&model_in == &impl_.models[static_cast<std::size_t>(impl_.extension_model)]) {
      if (const auto* url = json::find(value, "url"); url != nullptr && url->IsString()) {
        const auto it = impl_.extensions.find(view(*url));
        if (it != impl_.extensions.end()) {
          model = &impl_.models[static_cast<std::size_t>(it->second)];
        } else if (view(*url).rfind(impl_.own_extension_prefix, 0) == 0) {
          issue("structure", path, "extension URL is in the gateway's namespace but no StructureDefinition defines it");
        }
      }
    }
    constexpr std::size_t kMaxElements = 128;
    std::bitset<kMaxElements> seen;
    const std::size_t base_length = path.size();
    for (const auto& member : value.GetObject()) {
      const std::string_view key = view(member.name);
      if (is_resource && key == "resourceType") continue;
      path += '.';
      path.append(key);
      const auto found = model->members.find(key);
      if (found == model->members.end()) {
        issue("structure", path, "unknown element: " + model->name + " has no element of this name in FHIR R4");
        path.resize(base_length);
        continue;
      }
      const MemberRef ref = found->second;
      const Element& el = model->elements[ref.element];
      if (ref.primitive_extension) {
        primitiveExtensions(member.value, el, path);
        path.resize(base_length);
        continue;
      }
      if (seen.test(ref.element)) {
        issue("structure", path, "more than one type given for " + el.path + " (only one value[x] form is allowed)");
      }
      seen.set(ref.element);
      const TypeChoice& type = el.types[ref.type];
      if (el.array) {
        if (!member.value.IsArray()) {
          issue("structure", path, "must be a JSON array (" + el.path + " repeats), even for one item");
        } else if (member.value.Empty()) {
          issue("invalid", path, "is an empty array (ele-1: leave the element out instead)");
        } else {
          const std::size_t count = member.value.Size();
          if (count > el.max) issue("structure", path, cardinalityText(el, count));
          if (count < el.min) issue("required", path, cardinalityText(el, count));
          const std::size_t item_base = path.size();
          for (rapidjson::SizeType i = 0; i < member.value.Size(); ++i) {
            path += '[';
            path += std::to_string(i);
            path += ']';
            item(member.value[i], el, type, path);
            path.resize(item_base);
          }
          if (!el.slices.empty()) slices(member.value, el, path);
        }
      } else if (member.value.IsArray()) {
        issue("structure", path, "must be a single value, not an array (" + el.path + " has max 1)");
      } else {
        if (el.max == 0) issue("structure", path, el.path + " is not allowed by the profile (max 0)");
        item(member.value, el, type, path);
      }
      path.resize(base_length);
    }
    for (const std::uint16_t e : model->required) {
      if (seen.test(e)) continue;
      const Element& el = model->elements[e];
      path += '.';
      path += el.name;
      issue("required", path, "missing: " + el.path + " is required (min " + std::to_string(el.min) + ")");
      path.resize(base_length);
    }
    for (const std::uint16_t e : model->sliced) {
      if (seen.test(e)) continue;
      // The element is absent: only slices that need items can fail.
      const Element& el = model->elements[e];
      for (const Slice& s : el.slices) {
        if (s.min == 0) continue;
        path += '.';
        path += el.name;
        issue("required", path, "missing: " + el.path + " needs an item matching slice '" + s.name + "'");
        path.resize(base_length);
      }
    }
  }

  static std::string cardinalityText(const Element& el, std::size_t count) {
    return "has " + std::to_string(count) + " item(s); " + el.path + " allows " + std::to_string(el.min) + ".." +
           (el.max == kUnbounded ? std::string("*") : std::to_string(el.max));
  }

  void primitiveExtensions(const rapidjson::Value& value, const Element& el, std::string& path) {
    const Model& element_model = impl_.models[static_cast<std::size_t>(impl_.element_model)];
    if (el.array) {
      if (!value.IsArray()) return issue("structure", path, "must be a JSON array matching " + el.name);
      for (const auto& v : value.GetArray()) {
        if (!v.IsNull()) object(v, element_model, path, false);
      }
    } else {
      object(value, element_model, path, false);
    }
  }

  void item(const rapidjson::Value& value, const Element& el, const TypeChoice& type, std::string& path) {
    if (value.IsNull()) return issue("invalid", path, "is null (FHIR JSON has no nulls here; leave the element out)");
    if (type.primitive != Primitive::None) {
      const std::string_view problem = primitiveProblem(type.primitive, value);
      if (!problem.empty()) return issue("value", path, "value " + std::string(problem) + " (type " + type.code + ")");
      if (el.required_codes != nullptr && value.IsString() && !el.required_codes->contains(view(value))) {
        issue("code-invalid", path, "code is not in the required value set " + el.required_codes->url +
                                        " (allowed: " + el.required_codes->sample + ")");
      }
    } else if (type.code == "Resource") {
      anyResource(value, path);
      return;
    } else {
      object(value, impl_.models[static_cast<std::size_t>(type.model)], path, false);
      if (!value.IsObject()) return;
      if (el.required_codes != nullptr) binding(value, el, type, path);
      if (type.code == "Reference") reference(value, type, path);
    }
    if (el.fixed != nullptr && !matchesFixed(*el.fixed, value)) {
      issue("value", path, "value does not equal the fixed value the profile requires for " + el.path + ": " +
                               json::toString(*el.fixed));
    }
    if (el.pattern != nullptr && !matchesPattern(*el.pattern, value)) {
      issue("value", path, "value does not match the pattern the profile requires for " + el.path + ": " +
                               json::toString(*el.pattern));
    }
  }

  void binding(const rapidjson::Value& value, const Element& el, const TypeChoice& type, std::string& path) {
    const CodeSet& codes = *el.required_codes;
    auto codingOk = [&](const rapidjson::Value& coding) {
      const auto system = json::getString(coding, "system");
      const auto code = json::getString(coding, "code");
      return !code.empty() && codes.contains(system, code);
    };
    if (type.code == "Coding") {
      if (!codingOk(value)) {
        issue("code-invalid", path, "system and code are not in the required value set " + codes.url +
                                        " (allowed codes: " + codes.sample + ")");
      }
    } else if (type.code == "CodeableConcept") {
      const auto* codings = json::find(value, "coding");
      const bool any = codings != nullptr && codings->IsArray() &&
                       std::any_of(codings->Begin(), codings->End(), codingOk);
      if (!any) {
        issue("code-invalid", path, "no coding from the required value set " + codes.url + " (allowed codes: " +
                                        codes.sample + ")");
      }
    } else if (type.code == "Quantity") {
      const auto code = json::getString(value, "code");
      if (!code.empty() && !codes.contains(json::getString(value, "system"), code)) {
        issue("code-invalid", path, "unit code is not in the required value set " + codes.url);
      }
    }
  }

  void reference(const rapidjson::Value& value, const TypeChoice& type, std::string& path) {
    const auto allowed = [&](std::string_view t) {
      return type.targets.empty() || std::find(type.targets.begin(), type.targets.end(), t) != type.targets.end();
    };
    const std::string targets_text = [&] {
      std::string s;
      for (const auto& t : type.targets) s += (s.empty() ? "" : ", ") + t;
      return s;
    }();
    const std::size_t base_length = path.size();
    std::string_view declared = json::getString(value, "type");
    if (!declared.empty() && !allowed(declared)) {
      path += ".type";
      issue("structure", path, "reference type is not allowed here; allowed: " + targets_text);
      path.resize(base_length);
    }
    const auto* ref = json::find(value, "reference");
    if (ref == nullptr || !ref->IsString()) return;
    const std::string_view r = view(*ref);
    path += ".reference";
    if (r.empty() || r[0] == '#') {
      // local (contained) reference: its target is checked where it is contained
    } else if (r.rfind("urn:uuid:", 0) == 0) {
      if (!isValidUuidUrn(r)) issue("value", path, "reference is not a valid urn:uuid (36 hex digits with dashes)");
    } else if (r.rfind("urn:oid:", 0) == 0) {
      // a logical id inside a bundle; nothing more to check
    } else {
      // [base/]Type/id[/_history/version]
      std::string_view rest = r;
      if (const auto h = rest.find("/_history/"); h != std::string_view::npos) rest = rest.substr(0, h);
      const auto slash = rest.rfind('/');
      const std::string_view id = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
      const std::string_view head = slash == std::string_view::npos ? rest : rest.substr(0, slash);
      const auto slash2 = head.rfind('/');
      const std::string_view resource_type = slash2 == std::string_view::npos ? head : head.substr(slash2 + 1);
      const bool known_type = impl_.resource_types.empty() ? !resource_type.empty()
                                                           : impl_.resource_types.count(resource_type) != 0;
      if (!known_type || !isValidId(id)) {
        issue("value", path, "reference must be \"<ResourceType>/<id>\", an absolute URL ending so, or urn:uuid:<uuid>");
      } else if (!allowed(resource_type)) {
        issue("structure", path, "reference points at a " + std::string(resource_type) + "; allowed: " + targets_text);
      } else if (!declared.empty() && declared != resource_type) {
        issue("structure", path, "reference and Reference.type name different resource types");
      }
    }
    path.resize(base_length);
  }

  void slices(const rapidjson::Value& items, const Element& el, std::string& path) {
    for (const Slice& s : el.slices) {
      std::uint32_t matched = 0;
      for (const auto& v : items.GetArray()) {
        if (s.exact ? matchesFixed(*s.pattern, v) : matchesPattern(*s.pattern, v)) ++matched;
      }
      if (matched < s.min) {
        issue("required", path, "no item matches slice '" + s.name + "' of " + el.path + " (needs " +
                                    std::to_string(s.min) + "): " + json::toString(*s.pattern));
      } else if (matched > s.max) {
        issue("structure", path, std::to_string(matched) + " items match slice '" + s.name + "' of " + el.path +
                                     "; at most " + std::to_string(s.max) + " allowed");
      }
    }
  }

  const ProfileSet::Impl& impl_;
  std::vector<ValidationIssue>& issues_;
};

}  // namespace

namespace {

// Shared by validate() and validateAgainst(): `forced` (may be empty) overrides meta.profile.
ValidationResult run(const ProfileSet::Impl& impl, const rapidjson::Value& resource, std::string_view forced) {
  ValidationResult result;
  Walker walker(impl, result.issues);
  if (!resource.IsObject()) {
    walker.issue("structure", "", "a resource must be a JSON object");
    return result;
  }
  const std::string_view type = json::getString(resource, "resourceType");
  std::string path(type.empty() ? "Resource" : type);
  const auto base = impl.base.find(type);
  if (base == impl.base.end() || !impl.models[static_cast<std::size_t>(base->second)].resource) {
    walker.issue("not-supported", path.append(".resourceType"),
                 "resourceType is missing or not one the gateway validates (Patient, MedicationRequest, Observation, "
                 "CarePlan, Consent)");
    return result;
  }
  int model = base->second;
  auto select = [&](std::string_view url) {
    if (const auto alias = impl.aliases.find(url); alias != impl.aliases.end()) url = alias->second;
    const auto it = impl.profiles.find(url);
    if (it == impl.profiles.end() || it->second.type != type) return false;
    model = it->second.model;
    result.profile = it->second.url;
    return true;
  };
  if (!forced.empty()) {
    if (!select(forced)) {
      walker.issue("not-supported", path, "profile " + std::string(forced) + " is not loaded for " + std::string(type) +
                                              "; check the profile URL against fhir-profiles/StructureDefinition");
      return result;
    }
  } else {
    // The first profile this set knows wins; a US Core URL selects the project profile built on it.
    bool claimed = false;
    const auto* meta = json::find(resource, "meta");
    const auto* profiles = meta != nullptr && meta->IsObject() ? json::find(*meta, "profile") : nullptr;
    if (profiles != nullptr && profiles->IsArray()) {
      for (const auto& p : profiles->GetArray()) {
        if (!p.IsString()) continue;
        claimed = true;
        if (select(view(p))) break;
      }
    }
    if (claimed && result.profile.empty()) {
      walker.issue("not-supported", path + ".meta.profile",
                   "none of the claimed profiles is loaded from fhir-profiles/; checked against the R4 base rules only",
                   Severity::Warning);
    }
  }
  walker.resource(resource, model, path);
  return result;
}

}  // namespace

ValidationResult ProfileSet::validate(const rapidjson::Value& resource) const { return run(*impl_, resource, {}); }

ValidationResult ProfileSet::validateAgainst(const rapidjson::Value& resource, std::string_view profile_url) const {
  if (profile_url.empty()) return validate(resource);
  return run(*impl_, resource, profile_url);
}

}  // namespace gw::validate

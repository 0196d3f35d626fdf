// The per-resource walk. Hot path: one pass over the JSON, member lookups in precomputed hash
// tables, the location kept as a fixed stack of references and rendered only for an issue; no
// allocation unless there is a problem (besides copying the profile URL into the result).
#include <algorithm>
#include <array>
#include <bitset>
#include <cmath>

#include "common/json.hpp"
#include "validate/model.hpp"

namespace gw::validate {
namespace {

// Pattern semantics (R4 ElementDefinition.pattern[x]): every member of the pattern appears in the
// instance with a matching value; each pattern array item matches some instance item.
bool matchesPattern(const rapidjson::Value& pattern, const rapidjson::Value& value) {
  if (pattern.IsObject()) {
    if (!value.IsObject()) return false;
    for (const auto& m : pattern.GetObject()) {
      const rapidjson::Value* member = findMember(value, json::view(m.name));
      if (member == nullptr || !matchesPattern(m.value, *member)) return false;
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

// The FHIRPath-like location of the value being checked ("CarePlan.activity[2].detail.status"):
// a stack of member names (views into the resource or the model, alive for the whole walk) and
// array indexes, rendered only when an issue needs it.
class Location {
 public:
  explicit Location(std::string_view root) : root_(root) {}
  void member(std::string_view name) { push(Frame{name.data(), name.size(), 0}); }
  void index(std::size_t i) { push(Frame{nullptr, 0, i}); }
  std::size_t size() const { return depth_; }
  void resize(std::size_t depth) { depth_ = depth; }
  std::string str() const {
    std::string out(root_);
    for (std::size_t d = 0; d < depth_ && d < kFrames; ++d) {
      const Frame& f = frames_[d];
      if (f.name != nullptr) {
        out += '.';
        out.append(f.name, f.size);
      } else {
        out += '[';
        out += std::to_string(f.index);
        out += ']';
      }
    }
    if (depth_ > kFrames) out += "...";
    return out;
  }

 private:
  struct Frame {
    const char* name;  // nullptr: an array index
    std::size_t size;
    std::size_t index;
  };
  // Far deeper than any resource the gateway validates (JSON input is limited to 64 levels);
  // frames past it are counted but not kept.
  static constexpr std::size_t kFrames = 160;
  void push(const Frame& f) {
    if (depth_ < kFrames) frames_[depth_] = f;
    ++depth_;
  }
  std::string_view root_;
  std::size_t depth_ = 0;
  std::array<Frame, kFrames> frames_;
};

class Walker {
 public:
  Walker(const ProfileSet::Impl& impl, std::vector<ValidationIssue>& issues) : impl_(impl), issues_(issues) {}

  void resource(const rapidjson::Value& value, int model, Location& path) {
    const Model& m = impl_.models[static_cast<std::size_t>(model)];
    context_.resource = &value;
    context_.root_resource = &value;
    object(value, m, path, true);
  }

  // Contained or nested resource: checked against its type's base rules.
  void anyResource(const rapidjson::Value& value, Location& path) {
    if (!value.IsObject()) return issue("structure", path, "must be a JSON object (a resource)");
    const auto type = memberString(value, "resourceType");
    const int* base = impl_.base_index.find(type);
    if (base == nullptr || !impl_.models[static_cast<std::size_t>(*base)].resource) {
      return issue("not-supported", path, "resourceType is missing or not one the gateway validates");
    }
    const rapidjson::Value* outer = context_.resource;
    context_.resource = &value;  // %resource inside a contained resource is that resource
    object(value, impl_.models[static_cast<std::size_t>(*base)], path, true);
    context_.resource = outer;
  }

  void issue(std::string_view code, const Location& path, std::string diagnostics, Severity severity = Severity::Error) {
    issues_.push_back(ValidationIssue{severity, std::string(code), std::move(diagnostics), path.str()});
  }

 private:
  void invariants(const std::vector<const Invariant*>& list, const rapidjson::Value& value, const Location& path) {
    for (const Invariant* inv : list) {
      if (!inv->check(value, context_)) issue("invariant", path, inv->diagnostics);
    }
  }

  void object(const rapidjson::Value& value, const Model& model_in, Location& path, bool is_resource) {
    if (!value.IsObject()) return issue("structure", path, "must be a JSON object (" + model_in.name + ")");
    if (value.MemberCount() == 0) {
      return issue("invalid", path, "is an empty object (ele-1: an element must have a value or children; leave it out)");
    }
    const Model* model = &model_in;
    // An extension with a URL the project defines is checked against that definition.
    if (&model_in == &impl_.models[static_cast<std::size_t>(impl_.extension_model)]) {
      if (const auto* url = findMember(value, "url"); url != nullptr && url->IsString()) {
        const auto it = impl_.extensions.find(json::view(*url));
        if (it != impl_.extensions.end()) {
          model = &impl_.models[static_cast<std::size_t>(it->second)];
        } else if (json::view(*url).rfind(impl_.own_extension_prefix, 0) == 0) {
          issue("structure", path, "extension URL is in the gateway's namespace but no StructureDefinition defines it");
        }
      }
    }
    std::bitset<kMaxModelElements> seen;  // indexes are below the size: the loader checks it
    const std::size_t base_length = path.size();
    for (const auto& member : value.GetObject()) {
      const std::string_view key = json::view(member.name);
      if (is_resource && key == "resourceType") continue;
      path.member(key);
      const MemberRef* found = model->members.find(key);
      if (found == nullptr) {
        issue("structure", path, "unknown element: " + model->name + " has no element of this name in FHIR R4");
        path.resize(base_length);
        continue;
      }
      const MemberRef ref = *found;
      const Element& el = model->elements[ref.element];
      if (ref.primitive_extension) {
        primitiveExtensions(member.value, el, path);
        path.resize(base_length);
        continue;
      }
      if (seen[ref.element]) {
        issue("structure", path, "more than one type given for " + el.path + " (only one value[x] form is allowed)");
      }
      seen[ref.element] = true;
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
            path.index(i);
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
      if (seen[e]) continue;
      const Element& el = model->elements[e];
      path.member(el.name);
      issue("required", path, "missing: " + el.path + " is required (min " + std::to_string(el.min) + ")");
      path.resize(base_length);
    }
    for (const std::uint16_t e : model->sliced) {
      if (seen[e]) continue;
      // The element is absent: only slices that need items can fail.
      const Element& el = model->elements[e];
      for (const Slice& s : el.slices) {
        if (s.min == 0) continue;
        path.member(el.name);
        issue("required", path, "missing: " + el.path + " needs an item matching slice '" + s.name + "'");
        path.resize(base_length);
      }
    }
    if (!model->invariants.empty()) invariants(model->invariants, value, path);
  }

  static std::string cardinalityText(const Element& el, std::size_t count) {
    return "has " + std::to_string(count) + " item(s); " + el.path + " allows " + std::to_string(el.min) + ".." +
           (el.max == kUnbounded ? std::string("*") : std::to_string(el.max));
  }

  void primitiveExtensions(const rapidjson::Value& value, const Element& el, Location& path) {
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

  void item(const rapidjson::Value& value, const Element& el, const TypeChoice& type, Location& path) {
    if (value.IsNull()) return issue("invalid", path, "is null (FHIR JSON has no nulls here; leave the element out)");
    if (type.primitive != Primitive::None) {
      const std::string_view problem = primitiveProblem(type.primitive, value);
      if (!problem.empty()) return issue("value", path, "value " + std::string(problem) + " (type " + type.code + ")");
      if (el.required_codes != nullptr && value.IsString() && !el.required_codes->contains(json::view(value))) {
        issue("code-invalid", path,
              "code is not in the required value set " + el.required_codes->url + " (allowed: " + el.required_codes->sample +
                  ")");
      }
    } else if (type.kind == TypeKind::Resource) {
      anyResource(value, path);
      return;
    } else {
      object(value, impl_.models[static_cast<std::size_t>(type.model)], path, false);
      if (!value.IsObject()) return;
      if (el.required_codes != nullptr) binding(value, el, type, path);
      if (type.kind == TypeKind::Reference) reference(value, type, path);
    }
    if (!el.invariants.empty()) invariants(el.invariants, value, path);
    if (el.fixed != nullptr && !matchesFixed(*el.fixed, value)) {
      issue("value", path,
            "value does not equal the fixed value the profile requires for " + el.path + ": " + json::toString(*el.fixed));
    }
    if (el.pattern != nullptr && !matchesPattern(*el.pattern, value)) {
      issue("value", path,
            "value does not match the pattern the profile requires for " + el.path + ": " + json::toString(*el.pattern));
    }
  }

  void binding(const rapidjson::Value& value, const Element& el, const TypeChoice& type, Location& path) {
    const CodeSet& codes = *el.required_codes;
    auto codingOk = [&](const rapidjson::Value& coding) {
      const auto system = memberString(coding, "system");
      const auto code = memberString(coding, "code");
      return !code.empty() && codes.contains(system, code);
    };
    if (type.kind == TypeKind::Coding) {
      if (!codingOk(value)) {
        issue("code-invalid", path,
              "system and code are not in the required value set " + codes.url + " (allowed codes: " + codes.sample + ")");
      }
    } else if (type.kind == TypeKind::CodeableConcept) {
      const auto* codings = findMember(value, "coding");
      const bool any = codings != nullptr && codings->IsArray() && std::any_of(codings->Begin(), codings->End(), codingOk);
      if (!any) {
        issue("code-invalid", path,
              "no coding from the required value set " + codes.url + " (allowed codes: " + codes.sample + ")");
      }
    } else if (type.kind == TypeKind::Quantity) {
      const auto code = memberString(value, "code");
      if (!code.empty() && !codes.contains(memberString(value, "system"), code)) {
        issue("code-invalid", path, "unit code is not in the required value set " + codes.url);
      }
    }
  }

  void reference(const rapidjson::Value& value, const TypeChoice& type, Location& path) {
    const auto allowed = [&](std::string_view t) {
      return type.targets.empty() || std::find(type.targets.begin(), type.targets.end(), t) != type.targets.end();
    };
    const auto targets_text = [&] {  // only built for an issue
      std::string s;
      for (const auto& t : type.targets) s += (s.empty() ? "" : ", ") + t;
      return s;
    };
    const std::size_t base_length = path.size();
    std::string_view declared = memberString(value, "type");
    if (!declared.empty() && !allowed(declared)) {
      path.member("type");
      issue("structure", path, "reference type is not allowed here; allowed: " + targets_text());
      path.resize(base_length);
    }
    const auto* ref = findMember(value, "reference");
    if (ref == nullptr || !ref->IsString()) return;
    const std::string_view r = json::view(*ref);
    path.member("reference");
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
      const bool known_type = impl_.resource_types.size() == 0 ? !resource_type.empty()
                                                               : impl_.resource_types.find(resource_type) != nullptr;
      if (!known_type || !isValidId(id)) {
        issue("value", path, "reference must be \"<ResourceType>/<id>\", an absolute URL ending so, or urn:uuid:<uuid>");
      } else if (!allowed(resource_type)) {
        issue("structure", path, "reference points at a " + std::string(resource_type) + "; allowed: " + targets_text());
      } else if (!declared.empty() && declared != resource_type) {
        issue("structure", path, "reference and Reference.type name different resource types");
      }
    }
    path.resize(base_length);
  }

  void slices(const rapidjson::Value& items, const Element& el, Location& path) {
    for (const Slice& s : el.slices) {
      std::uint32_t matched = 0;
      for (const auto& v : items.GetArray()) {
        if (s.exact ? matchesFixed(*s.pattern, v) : matchesPattern(*s.pattern, v)) ++matched;
      }
      if (matched < s.min) {
        issue("required", path,
              "no item matches slice '" + s.name + "' of " + el.path + " (needs " + std::to_string(s.min) +
                  "): " + json::toString(*s.pattern));
      } else if (matched > s.max) {
        issue("structure", path,
              std::to_string(matched) + " items match slice '" + s.name + "' of " + el.path + "; at most " +
                  std::to_string(s.max) + " allowed");
      }
    }
  }

  const ProfileSet::Impl& impl_;
  std::vector<ValidationIssue>& issues_;
  InvariantContext context_;
};

}  // namespace

namespace {

// Shared by validate() and validateAgainst(): `forced` (may be empty) overrides meta.profile.
ValidationResult run(const ProfileSet::Impl& impl, const rapidjson::Value& resource, std::string_view forced) {
  ValidationResult result;
  Walker walker(impl, result.issues);
  if (!resource.IsObject()) {
    walker.issue("structure", Location(""), "a resource must be a JSON object");
    return result;
  }
  const std::string_view type = memberString(resource, "resourceType");
  Location path(type.empty() ? std::string_view("Resource") : type);
  const int* base = impl.base_index.find(type);
  if (base == nullptr || !impl.models[static_cast<std::size_t>(*base)].resource) {
    path.member("resourceType");
    walker.issue("not-supported", path,
                 "resourceType is missing or not one the gateway validates (Patient, MedicationRequest, Observation, "
                 "CarePlan, Consent)");
    return result;
  }
  int model = *base;
  auto select = [&](std::string_view url) {
    // A project profile's URL, or a US Core URL one is based on (profile_index holds both).
    const Profile* const* found = impl.profile_index.find(url);
    if (found == nullptr || (*found)->type != type) return false;
    model = (*found)->model;
    result.profile = (*found)->url;
    return true;
  };
  if (!forced.empty()) {
    if (!select(forced)) {
      walker.issue("not-supported", path,
                   "profile " + std::string(forced) + " is not loaded for " + std::string(type) +
                       "; check the profile URL against fhir-profiles/StructureDefinition");
      return result;
    }
  } else {
    // The first profile this set knows wins; a US Core URL selects the project profile built on it.
    bool claimed = false;
    const auto* meta = findMember(resource, "meta");
    const auto* profiles = meta != nullptr && meta->IsObject() ? findMember(*meta, "profile") : nullptr;
    if (profiles != nullptr && profiles->IsArray()) {
      for (const auto& p : profiles->GetArray()) {
        if (!p.IsString()) continue;
        claimed = true;
        if (select(json::view(p))) break;
      }
    }
    if (claimed && result.profile.empty()) {
      path.member("meta");
      path.member("profile");
      walker.issue("not-supported", path,
                   "none of the claimed profiles is loaded from fhir-profiles/; checked against the R4 base rules only",
                   Severity::Warning);
      path.resize(0);
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

// Loading and compiling fhir-profiles/: the base definitions and the StructureDefinitions (the
// code systems and value sets they bind to are terminology.cpp's). Runs once at start-up; every
// problem in a profile file is reported as "file:line:column: message" so the engineer can fix it.
#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "common/json.hpp"
#include "validate/model.hpp"
#include "validate/profile_file.hpp"
#include "validate/terminology.hpp"

namespace gw::validate {
namespace {

namespace fs = std::filesystem;

std::string_view lastSegment(std::string_view path) {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

std::string upperFirst(std::string_view s) {
  std::string out(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

std::string pointerTo(std::string_view base, std::string_view key) {
  std::string p(base);
  json::appendPointerToken(p, key);
  return p;
}

std::uint32_t parseMax(std::string_view max, bool& ok) {
  ok = true;
  if (max == "*") return kUnbounded;
  std::uint32_t n = 0;
  if (max.empty()) ok = false;
  for (char c : max) {
    if (c < '0' || c > '9') {
      ok = false;
      return 0;
    }
    n = n * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return n;
}

// Resource type a Reference/canonical targetProfile points at: base definitions end in the type
// name; project profiles are looked up by URL.
constexpr std::string_view kBaseSd = "http://hl7.org/fhir/StructureDefinition/";

void indexModel(Model& m) {
  m.members.clear();
  m.required.clear();
  m.sliced.clear();
  for (std::size_t e = 0; e < m.elements.size(); ++e) {
    const Element& el = m.elements[e];
    const bool choice = el.name.size() > 3 && el.name.compare(el.name.size() - 3, 3, "[x]") == 0;
    const std::string stem = choice ? el.name.substr(0, el.name.size() - 3) : el.name;
    for (std::size_t t = 0; t < el.types.size(); ++t) {
      const std::string json_name = choice ? stem + upperFirst(el.types[t].code) : stem;
      const MemberRef ref{static_cast<std::uint16_t>(e), static_cast<std::uint16_t>(t), false};
      m.members.emplace(json_name, ref);
      if (el.types[t].primitive != Primitive::None) {
        m.members.emplace("_" + json_name, MemberRef{ref.element, ref.type, true});
      }
    }
    if (el.min > 0) m.required.push_back(static_cast<std::uint16_t>(e));
    if (!el.slices.empty()) m.sliced.push_back(static_cast<std::uint16_t>(e));
  }
}

class Builder {
 public:
  explicit Builder(ProfileSet::Impl& impl) : impl_(impl), terminology_(impl.code_sets) {}

  Terminology& terminology() { return terminology_; }

  Status loadBase(const ProfileFile& src) {
    const auto* types = json::find(src.doc, "types");
    if (types == nullptr || !types->IsObject()) return src.error("", "base definitions need a \"types\" object");
    // Element: what a primitive's "_name" companion holds (id and extensions).
    impl_.element_model = newModel("Element", false);
    for (const auto& t : types->GetObject()) {
      const std::string name(t.name.GetString(), t.name.GetStringLength());
      impl_.base[name] = newModel(name, json::getString(t.value, "kind") == "resource");
    }
    struct Deferred {
      int model;
      std::size_t element;
      std::string target;
      std::string pointer;
    };
    std::vector<Deferred> deferred;
    for (const auto& t : types->GetObject()) {
      const std::string type_name(t.name.GetString(), t.name.GetStringLength());
      const std::string type_pointer = pointerTo("/types", type_name);
      StringMap<int> path_models{{type_name, impl_.base[type_name]}};
      // The type's own invariants (per-1 on Period, dom-2 on every resource) apply wherever it is used.
      GW_TRY(compileConstraints(src, t.value, type_pointer,
                                impl_.models[static_cast<std::size_t>(impl_.base[type_name])].invariants));
      const auto* elements = json::find(t.value, "elements");
      if (elements == nullptr || !elements->IsArray()) return src.error(type_pointer, "type needs an elements array");
      for (rapidjson::SizeType i = 0; i < elements->Size(); ++i) {
        const auto& e = (*elements)[i];
        const std::string ptr = type_pointer + "/elements/" + std::to_string(i);
        const std::string path(json::getString(e, "path"));
        const auto dot = path.rfind('.');
        if (dot == std::string::npos) return src.error(ptr, "element path must be Type.name");
        const auto parent = path_models.find(std::string_view(path).substr(0, dot));
        if (parent == path_models.end()) return src.error(ptr, "element listed before its parent");
        Element el;
        el.name = std::string(lastSegment(path));
        el.path = path;
        const auto* min = json::find(e, "min");
        el.min = min != nullptr && min->IsUint() ? min->GetUint() : 0;
        bool max_ok = true;
        el.max = parseMax(json::getString(e, "max"), max_ok);
        if (!max_ok) return src.error(ptr + "/max", "max must be a number or *");
        el.array = el.max != 1;
        if (const auto* types_value = json::find(e, "type"); types_value != nullptr && types_value->IsArray()) {
          for (const auto& tv : types_value->GetArray()) {
            TypeChoice choice;
            choice.code = std::string(json::getString(tv, "code"));
            choice.primitive = primitiveFor(choice.code);
            choice.kind = typeKindFor(choice.code);
            if (choice.code == "BackboneElement" || choice.code == "Element") {
              choice.model = newModel(path, false);
              path_models[path] = choice.model;
            } else if (choice.primitive == Primitive::None && choice.code != "Resource") {
              const auto it = impl_.base.find(choice.code);
              if (it == impl_.base.end()) return src.error(ptr, "type " + choice.code + " is not defined in this file");
              choice.model = it->second;
            }
            GW_TRY(readTargets(src, tv, ptr, choice.targets));
            el.types.push_back(std::move(choice));
          }
        }
        if (const auto* binding = json::find(e, "binding");
            binding != nullptr && json::getString(*binding, "strength") == "required") {
          std::string why;  // base bindings to value sets we do not ship are simply not checked
          el.required_codes = terminology_.expand(std::string(json::getString(*binding, "valueSet")), why);
        }
        {
          // A backbone element's invariants go on its model, so contentReference uses get them too.
          const bool backbone = el.types.size() == 1 &&
                                (el.types[0].code == "BackboneElement" || el.types[0].code == "Element");
          GW_TRY(compileConstraints(
              src, e, ptr, backbone ? impl_.models[static_cast<std::size_t>(el.types[0].model)].invariants : el.invariants));
        }
        const int parent_model = parent->second;
        const std::string content_ref(json::getString(e, "contentReference"));
        impl_.models[static_cast<std::size_t>(parent_model)].elements.push_back(std::move(el));
        if (!content_ref.empty()) {
          deferred.push_back(
              {parent_model, impl_.models[static_cast<std::size_t>(parent_model)].elements.size() - 1, content_ref, ptr});
        }
      }
      for (const auto& d : deferred) {
        const auto target = path_models.find(d.target);
        if (target == path_models.end()) return src.error(d.pointer, "contentReference to an unknown path");
        TypeChoice choice;
        choice.code = "BackboneElement";
        choice.model = target->second;
        impl_.models[static_cast<std::size_t>(d.model)].elements[d.element].types.push_back(std::move(choice));
      }
      deferred.clear();
    }
    const auto ext = impl_.base.find("Extension");
    if (ext == impl_.base.end()) return src.error("/types", "base definitions must define Extension");
    impl_.extension_model = ext->second;
    Model& element = impl_.models[static_cast<std::size_t>(impl_.element_model)];
    Element id;
    id.name = "id";
    id.path = "Element.id";
    id.max = 1;
    id.types.push_back(TypeChoice{Primitive::String, TypeKind::Other, -1, "string", {}});
    element.elements.push_back(std::move(id));
    Element extension;
    extension.name = "extension";
    extension.path = "Element.extension";
    extension.array = true;
    extension.types.push_back(TypeChoice{Primitive::None, TypeKind::Other, ext->second, "Extension", {}});
    element.elements.push_back(std::move(extension));
    for (auto& m : impl_.models) {
      if (m.elements.size() > kMaxModelElements) {
        return src.error(pointerTo("/types", m.name.substr(0, m.name.find('.'))),
                         m.name + " has more elements than the validator supports (" + std::to_string(kMaxModelElements) +
                             ")",
                         "raise kMaxModelElements in gateway/src/validate/model.hpp");
      }
      indexModel(m);
    }
    return ok();
  }

  Status loadStructureDefinition(const ProfileFile& src) {
    const auto& doc = src.doc;
    if (json::getString(doc, "resourceType") != "StructureDefinition") {
      return src.error("/resourceType", "expected a StructureDefinition in StructureDefinition/");
    }
    Profile profile;
    profile.url = std::string(json::getString(doc, "url"));
    profile.type = std::string(json::getString(doc, "type"));
    profile.file = src.file;
    if (profile.url.empty()) return src.error("", "StructureDefinition has no url", "add its canonical url");
    if (impl_.profiles.count(profile.url) != 0) return src.error("/url", "another StructureDefinition already has this url");
    if (json::getString(doc, "derivation") != "constraint") {
      return src.error("/derivation", "only profiles (derivation \"constraint\") can be loaded");
    }
    const auto base = impl_.base.find(profile.type);
    if (base == impl_.base.end()) {
      return src.error("/type", "type " + profile.type + " is not one of the base types in base/r4-core-elements.json",
                       "add the resource type to tools/generate-r4-base.mjs and regenerate");
    }
    const auto* differential = json::find(doc, "differential");
    const auto* elements = differential != nullptr ? json::find(*differential, "element") : nullptr;
    if (elements == nullptr || !elements->IsArray()) {
      return src.error("/differential", "StructureDefinition needs differential.element (an array)");
    }
    owned_.clear();
    profile.model = copyModel(base->second);
    for (rapidjson::SizeType i = 0; i < elements->Size(); ++i) {
      GW_TRY(applyElement(src, profile, (*elements)[i], "/differential/element/" + std::to_string(i)));
    }
    for (int m : owned_) indexModel(impl_.models[static_cast<std::size_t>(m)]);
    if (profile.type == "Extension") {
      impl_.extensions[profile.url] = profile.model;
    } else {
      const std::string base_url(json::getString(doc, "baseDefinition"));
      if (!base_url.empty() && base_url.rfind(kBaseSd, 0) != 0) {
        // A resource claiming a US Core profile is checked against the project profile built on it.
        if (!alias_owner_.emplace(base_url, profile.url).second) ambiguous_.insert(base_url);
      }
    }
    impl_.profiles.emplace(profile.url, std::move(profile));
    return ok();
  }

  void finish() {
    for (const auto& [alias, url] : alias_owner_) {
      if (ambiguous_.count(alias) == 0) impl_.aliases.emplace(alias, url);
    }
    if (const auto* types = terminology_.codeSystemCodes("http://hl7.org/fhir/resource-types")) {
      for (const auto& code : *types) impl_.resource_types.emplace(code, 0);
    }
    for (const auto& [name, model] : impl_.base) impl_.base_index.emplace(name, model);
    for (const auto& [url, profile] : impl_.profiles) impl_.profile_index.emplace(url, &profile);
    for (const auto& [alias, url] : impl_.aliases) {
      if (const auto it = impl_.profiles.find(url); it != impl_.profiles.end()) {
        impl_.profile_index.emplace(alias, &it->second);
      }
    }
  }

 private:
  // Reads `owner.constraint` (an ElementDefinition's, or a base type's) and appends the checks of
  // its error-severity invariants to `out`. Warnings are advice and not evaluated. An error
  // invariant without a C++ check (and not deliberately skipped), or whose expression is not the
  // one the check implements, fails the load: silently ignoring it would let broken resources out.
  Status compileConstraints(const ProfileFile& src, const rapidjson::Value& owner, const std::string& pointer,
                            std::vector<const Invariant*>& out) {
    const auto* list = json::find(owner, "constraint");
    if (list == nullptr) return ok();
    const std::string list_pointer = pointerTo(pointer, "constraint");
    if (!list->IsArray()) return src.error(list_pointer, "constraint must be an array");
    for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
      const auto& c = (*list)[i];
      const std::string ptr = list_pointer + "/" + std::to_string(i);
      const std::string key(json::getString(c, "key"));
      const std::string_view severity = json::getString(c, "severity");
      const std::string_view human = json::getString(c, "human");
      const std::string_view expression = json::getString(c, "expression");
      if (key.empty() || human.empty() || expression.empty() || (severity != "error" && severity != "warning")) {
        return src.error(ptr, "a constraint needs key, severity (error or warning), human and expression");
      }
      if (severity != "error") continue;
      const InvariantDefinition* definition = findInvariant(key);
      if (definition == nullptr) {
        if (!skippedInvariantReason(key).empty()) continue;
        return src.error(pointerTo(ptr, "key"),
                         "constraint " + key + " (severity error) has no C++ check in the gateway validator",
                         "implement it in gateway/src/validate/invariants.cpp (kInvariants), or list it in "
                         "kSkippedInvariants there with the reason it cannot be checked");
      }
      if (!sameExpression(definition->expression, expression)) {
        return src.error(pointerTo(ptr, "expression"),
                         "constraint " + key + " has another FHIRPath expression than the one its C++ check implements",
                         "if the rule changed, update the check and its expression in "
                         "gateway/src/validate/invariants.cpp; otherwise restore the expression");
      }
      const Invariant* invariant = nullptr;
      if (const auto it = impl_.invariant_by_key.find(key); it != impl_.invariant_by_key.end()) {
        invariant = it->second;
      } else {
        invariant = &impl_.invariants.emplace_back(Invariant{
            key, std::string(expression), "Constraint " + key + " not met: " + std::string(human), definition->check});
        impl_.invariant_by_key.emplace(key, invariant);
      }
      if (std::find(out.begin(), out.end(), invariant) == out.end()) out.push_back(invariant);
    }
    return ok();
  }

  int newModel(std::string name, bool resource) {
    Model m;
    m.name = std::move(name);
    m.resource = resource;
    impl_.models.push_back(std::move(m));
    return static_cast<int>(impl_.models.size() - 1);
  }

  int copyModel(int index) {
    Model copy = impl_.models[static_cast<std::size_t>(index)];
    impl_.models.push_back(std::move(copy));
    const int m = static_cast<int>(impl_.models.size() - 1);
    owned_.insert(m);
    return m;
  }

  Status readTargets(const ProfileFile& src, const rapidjson::Value& type, const std::string& pointer,
                     std::vector<std::string>& targets) {
    const auto* profiles = json::find(type, "targetProfile");
    if (profiles == nullptr) return ok();
    if (!profiles->IsArray()) return src.error(pointer, "targetProfile must be an array");
    for (const auto& p : profiles->GetArray()) {
      const std::string_view url = p.IsString() ? json::view(p) : "";
      if (url.rfind(kBaseSd, 0) == 0) {
        const std::string_view name = url.substr(kBaseSd.size());
        if (name == "Resource") {
          targets.clear();  // any resource
          return ok();
        }
        targets.emplace_back(name);
      } else if (const auto it = impl_.profiles.find(url); it != impl_.profiles.end()) {
        targets.push_back(it->second.type);
      } else {
        return src.error(pointer, "targetProfile " + std::string(url) + " is neither an R4 base type nor a loaded profile",
                         "use http://hl7.org/fhir/StructureDefinition/<Type>");
      }
    }
    return ok();
  }

  static int findElement(const Model& m, std::string_view name) {
    for (std::size_t i = 0; i < m.elements.size(); ++i) {
      if (m.elements[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }

  Status applyElement(const ProfileFile& src, Profile& profile, const rapidjson::Value& e, const std::string& ptr) {
    static const std::set<std::string_view> kIgnored{
        "id",           "path",    "short",       "definition", "comment",
        "requirements", "alias",   "mustSupport", "isModifier", "isModifierReason",
        "isSummary",    "label",   "code",        "example",    "meaningWhenMissing",
        "orderMeaning", "mapping", "condition",   "slicing",    "sliceName",
        "min",          "max",     "type",        "binding",    "extension",
        "constraint"};
    static const std::set<std::string_view> kUnsupported{"maxLength", "contentReference", "sliceIsConstraining", "base"};
    if (!e.IsObject()) return src.error(ptr, "differential element must be an object");
    std::string_view fixed_key, pattern_key;
    for (const auto& m : e.GetObject()) {
      const std::string_view key = json::view(m.name);
      if (key.rfind("fixed", 0) == 0) {
        fixed_key = key;
      } else if (key.rfind("pattern", 0) == 0) {
        pattern_key = key;
      } else if (kUnsupported.count(key) != 0 || key.rfind("minValue", 0) == 0 || key.rfind("maxValue", 0) == 0 ||
                 key.rfind("defaultValue", 0) == 0) {
        return src.error(pointerTo(ptr, key), "\"" + std::string(key) + "\" is not supported by the gateway validator",
                         "express the rule with cardinality, fixed/pattern values or a required binding");
      } else if (kIgnored.count(key) == 0) {
        return src.error(pointerTo(ptr, key), "unknown ElementDefinition member \"" + std::string(key) + "\"",
                         "check the spelling");
      }
    }
    const std::string path(json::getString(e, "path"));
    const std::string id(json::getString(e, "id"));
    const std::string slice_name(json::getString(e, "sliceName"));
    // Constraints inside a slice ("Observation.category:x.coding") would need per-slice models.
    if (const auto colon = id.find(':'); colon != std::string::npos && id.find('.', colon) != std::string::npos) {
      return src.error(pointerTo(ptr, "id"), "constraints below a slice are not supported",
                       "put a pattern on the slice itself");
    }
    std::vector<std::string_view> segments;
    for (std::size_t start = 0; start <= path.size();) {
      const auto dot = path.find('.', start);
      const auto end = dot == std::string::npos ? path.size() : dot;
      segments.push_back(std::string_view(path).substr(start, end - start));
      start = end + 1;
    }
    if (segments.empty() || segments[0] != profile.type) {
      return src.error(pointerTo(ptr, "path"), "path must start with the profile type " + profile.type);
    }
    if (segments.size() == 1) {
      // The root: only invariants (us-core-2 on Observation) mean something to the validator.
      return compileConstraints(src, e, ptr, impl_.models[static_cast<std::size_t>(profile.model)].invariants);
    }
    int current = profile.model;
    for (std::size_t s = 1; s + 1 < segments.size(); ++s) {
      const int index = findElement(impl_.models[static_cast<std::size_t>(current)], segments[s]);
      if (index < 0) return noSuchElement(src, ptr, segments[s], current);
      Element& el = impl_.models[static_cast<std::size_t>(current)].elements[static_cast<std::size_t>(index)];
      if (el.types.size() != 1 || el.types[0].model < 0) {
        return src.error(pointerTo(ptr, "path"), "cannot constrain below " + el.path + " (a primitive or a choice of types)",
                         "constrain the element itself");
      }
      int child = el.types[0].model;
      if (owned_.count(child) == 0) {
        const int copy = copyModel(child);
        impl_.models[static_cast<std::size_t>(current)].elements[static_cast<std::size_t>(index)].types[0].model = copy;
        child = copy;
      }
      current = child;
    }
    const int index = findElement(impl_.models[static_cast<std::size_t>(current)], segments.back());
    if (index < 0) return noSuchElement(src, ptr, segments.back(), current);
    Element& el = impl_.models[static_cast<std::size_t>(current)].elements[static_cast<std::size_t>(index)];

    std::optional<std::uint32_t> min, max;
    if (const auto* v = json::find(e, "min")) {
      if (!v->IsUint()) return src.error(pointerTo(ptr, "min"), "min must be a non-negative integer");
      min = v->GetUint();
    }
    if (const auto* v = json::find(e, "max")) {
      bool max_ok = v->IsString();
      const std::uint32_t parsed = max_ok ? parseMax(v->GetString(), max_ok) : 0;
      if (!max_ok) return src.error(pointerTo(ptr, "max"), "max must be a string: a number or \"*\"");
      max = parsed;
    }
    const rapidjson::Value* fixed = nullptr;
    const rapidjson::Value* pattern = nullptr;
    if (!fixed_key.empty()) {
      GW_TRY(storeValue(src, ptr, e, fixed_key, "fixed", el, fixed));
    }
    if (!pattern_key.empty()) {
      GW_TRY(storeValue(src, ptr, e, pattern_key, "pattern", el, pattern));
    }

    if (!slice_name.empty()) {
      if (fixed == nullptr && pattern == nullptr) {
        return src.error(ptr, "slice " + slice_name + " has no pattern or fixed value",
                         "the gateway validator tells slices apart by pattern only; add a pattern[x]");
      }
      if (json::find(e, "type") != nullptr || json::find(e, "binding") != nullptr ||
          json::find(e, "constraint") != nullptr) {
        return src.error(ptr, "type, binding or constraint on a slice is not supported",
                         "constrain the sliced element instead");
      }
      Slice slice;
      slice.name = slice_name;
      slice.min = min.value_or(0);
      slice.max = max.value_or(el.max);
      slice.pattern = fixed != nullptr ? fixed : pattern;
      slice.exact = fixed != nullptr;
      if (slice.max > el.max) return src.error(pointerTo(ptr, "max"), "slice max is above the element's max");
      el.slices.push_back(std::move(slice));
      return ok();
    }
    if (min) {
      if (*min < el.min) {
        return src.error(pointerTo(ptr, "min"),
                         "min " + std::to_string(*min) + " is below the base min " + std::to_string(el.min) + " of " +
                             el.path,
                         "a profile can only tighten cardinality");
      }
      el.min = *min;
    }
    if (max) {
      if (*max > el.max) {
        return src.error(pointerTo(ptr, "max"), "max is above the base max of " + el.path,
                         "a profile can only tighten cardinality");
      }
      el.max = *max;
    }
    if (el.min > el.max) return src.error(ptr, "min is greater than max");
    if (fixed != nullptr) el.fixed = fixed;
    if (pattern != nullptr) el.pattern = pattern;
    if (const auto* types = json::find(e, "type")) {
      GW_TRY(restrictTypes(src, pointerTo(ptr, "type"), *types, el));
    }
    if (const auto* binding = json::find(e, "binding")) {
      if (json::getString(*binding, "strength") == "required") {
        std::string why;
        const std::string url(json::getString(*binding, "valueSet"));
        const CodeSet* codes = terminology_.expand(url.substr(0, url.find('|')), why);
        if (codes == nullptr) {
          return src.error(pointerTo(ptr, "binding"), "required binding cannot be checked: " + why,
                           "ship the ValueSet and its CodeSystems in fhir-profiles/");
        }
        el.required_codes = codes;
      }
    }
    return compileConstraints(src, e, ptr, el.invariants);
  }

  Status noSuchElement(const ProfileFile& src, const std::string& ptr, std::string_view name, int model) {
    return src.error(pointerTo(ptr, "path"),
                     "no element \"" + std::string(name) + "\" in " + impl_.models[static_cast<std::size_t>(model)].name,
                     "check the path against the R4 definition (choice elements are written name[x])");
  }

  Status storeValue(const ProfileFile& src, const std::string& ptr, const rapidjson::Value& e, std::string_view key,
                    std::string_view prefix, const Element& el, const rapidjson::Value*& out) {
    const std::string_view type = key.substr(prefix.size());
    const bool known = std::any_of(el.types.begin(), el.types.end(),
                                   [&](const TypeChoice& t) { return upperFirst(t.code) == type; });
    if (!known) {
      return src.error(pointerTo(ptr, key), std::string(key) + " does not match the type of " + el.path,
                       "use " + std::string(prefix) + "<Type> with one of the element's types");
    }
    auto& stored = impl_.values.emplace_back();
    stored.CopyFrom(*json::find(e, key), stored.GetAllocator());
    out = &stored;
    return ok();
  }

  Status restrictTypes(const ProfileFile& src, const std::string& ptr, const rapidjson::Value& types, Element& el) {
    if (!types.IsArray() || types.Empty()) return src.error(ptr, "type must be a non-empty array");
    std::vector<TypeChoice> kept;
    for (rapidjson::SizeType i = 0; i < types.Size(); ++i) {
      const std::string item_ptr = ptr + "/" + std::to_string(i);
      const std::string_view code = json::getString(types[i], "code");
      const auto base = std::find_if(el.types.begin(), el.types.end(), [&](const TypeChoice& t) { return t.code == code; });
      if (base == el.types.end()) {
        return src.error(item_ptr, "type " + std::string(code) + " is not allowed for " + el.path + " in R4");
      }
      TypeChoice choice = *base;
      std::vector<std::string> targets;
      GW_TRY(readTargets(src, types[i], item_ptr, targets));
      if (!targets.empty()) {
        for (const auto& t : targets) {
          if (!choice.targets.empty() &&
              std::find(choice.targets.begin(), choice.targets.end(), t) == choice.targets.end()) {
            return src.error(item_ptr, "target " + t + " is not allowed for " + el.path + " in R4");
          }
        }
        choice.targets = std::move(targets);
      }
      kept.push_back(std::move(choice));
    }
    el.types = std::move(kept);
    return ok();
  }

  ProfileSet::Impl& impl_;
  Terminology terminology_;
  std::set<int> owned_;
  std::map<std::string, std::string> alias_owner_;
  std::set<std::string> ambiguous_;
};

}  // namespace

Result<ProfileSet> ProfileSet::loadDirectory(const std::filesystem::path& dir) {
  auto impl = std::make_shared<Impl>();
  Builder builder(*impl);
  std::vector<std::unique_ptr<ProfileFile>> sources;  // value sets are expanded lazily from these
  auto read = [&](const fs::path& path) -> Result<const ProfileFile*> {
    auto src = readProfileFile(path);
    if (!src) return src.error();
    sources.push_back(std::move(src).value());
    return sources.back().get();
  };
  const fs::path base_file = dir / "base" / "r4-core-elements.json";
  if (!fs::exists(base_file)) {
    return makeError(ErrorCode::Config, "FHIR base definitions not found", base_file.string(),
                     "point the gateway at the repository's fhir-profiles/ directory");
  }
  for (const auto& path : jsonFiles(dir / "CodeSystem")) {
    GW_TRY(auto src, read(path));
    GW_TRY(builder.terminology().loadCodeSystem(*src));
  }
  for (const auto& path : jsonFiles(dir / "ValueSet")) {
    GW_TRY(auto src, read(path));
    GW_TRY(builder.terminology().loadValueSet(*src));
  }
  {
    GW_TRY(auto src, read(base_file));
    GW_TRY(builder.loadBase(*src));
  }
  // Extensions first, so resource profiles may name them; otherwise file-name order.
  std::vector<const ProfileFile*> definitions;
  for (const auto& path : jsonFiles(dir / "StructureDefinition")) {
    GW_TRY(auto src, read(path));
    definitions.push_back(src);
  }
  std::stable_partition(definitions.begin(), definitions.end(),
                        [](const ProfileFile* s) { return json::getString(s->doc, "type") == "Extension"; });
  for (const ProfileFile* src : definitions) {
    GW_TRY(builder.loadStructureDefinition(*src));
  }
  builder.finish();
  return ProfileSet(std::move(impl));
}

std::vector<std::string> ProfileSet::profileUrls() const {
  std::vector<std::string> urls;
  for (const auto& [url, profile] : impl_->profiles) {
    if (profile.type != "Extension") urls.push_back(url);
  }
  std::sort(urls.begin(), urls.end());
  return urls;
}

std::vector<std::string_view> ProfileSet::supportedInvariants() { return invariantKeys(); }

bool ProfileSet::knowsProfile(std::string_view url) const {
  return impl_->profiles.find(url) != impl_->profiles.end() || impl_->aliases.find(url) != impl_->aliases.end();
}

}  // namespace gw::validate

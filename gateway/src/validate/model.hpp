#pragma once
// Compiled form of fhir-profiles/ (internal to gw_validate). Every JSON object shape (a resource,
// a data type, a backbone element, or a copy of one that a profile constrains) is a Model: its
// elements and a hash from JSON member name to (element, type). Models refer to each other by
// index, so a profile shares the base models it does not constrain and copies only the path down
// to what it changes.
#include <rapidjson/document.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "validate/primitives.hpp"
#include "validate/profile_set.hpp"

namespace gw::validate {

inline constexpr std::uint32_t kUnbounded = std::numeric_limits<std::uint32_t>::max();

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
using StringSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

/// The expansion of a value set: codes by system, plus all codes regardless of system (for `code`
/// elements, which carry no system).
struct CodeSet {
  std::string url;
  StringMap<StringSet> by_system;
  StringSet codes;
  std::string sample;  // "a, b, c" (up to a dozen codes) for diagnostics

  bool contains(std::string_view code) const { return codes.find(code) != codes.end(); }
  bool contains(std::string_view system, std::string_view code) const {
    const auto it = by_system.find(system);
    return it != by_system.end() && it->second.find(code) != it->second.end();
  }
};

struct TypeChoice {
  std::string code;              // "Quantity", "string", "Reference", "Resource"
  Primitive primitive = Primitive::None;
  int model = -1;                // complex types and backbone elements
  std::vector<std::string> targets;  // Reference: allowed resource types; empty = any
};

struct Slice {
  std::string name;
  std::uint32_t min = 0;
  std::uint32_t max = kUnbounded;
  const rapidjson::Value* pattern = nullptr;  // discriminator: items matching this pattern
  bool exact = false;                         // fixed[x] rather than pattern[x]
};

struct Element {
  std::string name;  // "status", "value[x]"
  std::string path;  // "Observation.value[x]" (definition path, for diagnostics)
  std::uint32_t min = 0;
  std::uint32_t max = kUnbounded;
  bool array = false;  // base max is not 1: JSON array
  std::vector<TypeChoice> types;
  const rapidjson::Value* fixed = nullptr;
  const rapidjson::Value* pattern = nullptr;
  const CodeSet* required_codes = nullptr;  // required binding that could be expanded
  std::vector<Slice> slices;
};

struct MemberRef {
  std::uint16_t element = 0;
  std::uint16_t type = 0;
  bool primitive_extension = false;  // "_birthDate"
};

struct Model {
  std::string name;  // "Dosage", "Timing.repeat", "Patient"
  bool resource = false;
  std::vector<Element> elements;
  StringMap<MemberRef> members;
  std::vector<std::uint16_t> required;  // elements with min >= 1
  std::vector<std::uint16_t> sliced;    // elements with slices
};

struct Profile {
  std::string url;
  std::string type;  // resource type, or "Extension"
  std::string file;
  int model = -1;
};

struct ProfileSet::Impl {
  std::vector<Model> models;
  StringMap<int> base;                   // type name -> model (resources and data types)
  StringMap<Profile> profiles;           // canonical URL -> profile (resources and extensions)
  StringMap<std::string> aliases;        // US Core URL -> project profile URL based on it
  StringMap<int> extensions;             // extension URL -> model
  std::deque<CodeSet> code_sets;         // stable addresses
  StringSet resource_types;              // every R4 resource type name (for reference checks)
  std::deque<rapidjson::Document> values;  // fixed/pattern values, owned here
  int extension_model = -1;
  int element_model = -1;  // "Element": what "_name" primitive extensions hold
  std::string own_extension_prefix = "https://fhir-gateway.dev/";
};

}  // namespace gw::validate

#pragma once
// Compiled form of fhir-profiles/ (internal to gw_validate). Every JSON object shape (a resource,
// a data type, a backbone element, or a copy of one that a profile constrains) is a Model: its
// elements and a hash from JSON member name to (element, type). Models refer to each other by
// index, so a profile shares the base models it does not constrain and copies only the path down
// to what it changes.
#include <rapidjson/document.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/json.hpp"
#include "validate/invariants.hpp"
#include "validate/primitives.hpp"
#include "validate/profile_set.hpp"

namespace gw::validate {

inline constexpr std::uint32_t kUnbounded = std::numeric_limits<std::uint32_t>::max();
/// Most elements one model may have: the walk tracks the elements it saw in a bitset of this size
/// (the loader rejects a larger type; R4's largest resources have about 50).
inline constexpr std::size_t kMaxModelElements = 128;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
using StringSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

/// The validation walk's hot lookups (JSON member names, codes): open addressing over a
/// power-of-two table. A key of up to 16 bytes is held in its slot as two words (with its
/// length), so a lookup is two word loads, a multiply-mix and usually one slot read: no modulo by
/// a prime, no node chasing and no byte loop, as std::unordered_map would need. Built at load,
/// then read only. Keys must not contain '\x1f' (it joins a system and a code in find2()).
template <class V>
class FlatStringMap {
 public:
  /// Inserts unless `key` is already there (like emplace); returns whether it inserted.
  bool emplace(std::string_view key, V value) {
    if (key.find(kSeparator) == std::string_view::npos ? find(key) != nullptr : findJoined(key) != nullptr) {
      return false;
    }
    entries_.emplace_back(std::string(key), std::move(value));
    if (entries_.size() * 2 > slots_.size()) {
      rebuild();
    } else {
      place(entries_.size() - 1);
    }
    return true;
  }
  const V* find(std::string_view key) const {
    if (slots_.empty()) return nullptr;
    const Words w = wordsOf(key);
    const std::uint32_t h = hashOf(w, key.size());
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.index == 0) return nullptr;
      if (slot.size != key.size() || slot.a != w.a || slot.b != w.b) continue;
      if (key.size() <= 16 || entries_[slot.index - 1].first == key) return &slot.value;
    }
  }
  /// find(joinedKey(a, b)) without building that string (a code set's system and code).
  const V* find2(std::string_view a, std::string_view b) const {
    if (slots_.empty()) return nullptr;
    const std::uint32_t h = combine(hashOf(wordsOf(a), a.size()), hashOf(wordsOf(b), b.size()));
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.index == 0) return nullptr;
      if (slot.size != kJoined || slot.a != h) continue;
      const std::string& stored = entries_[slot.index - 1].first;
      if (stored.size() == a.size() + 1 + b.size() && stored[a.size()] == kSeparator &&
          stored.compare(0, a.size(), a) == 0 && stored.compare(a.size() + 1, b.size(), b) == 0) {
        return &slot.value;
      }
    }
  }
  static std::string joinedKey(std::string_view a, std::string_view b) {
    std::string key(a);
    key += kSeparator;
    key.append(b);
    return key;
  }
  void clear() {
    entries_.clear();
    slots_.clear();
    mask_ = 0;
  }
  std::size_t size() const { return entries_.size(); }

 private:
  static constexpr char kSeparator = '\x1f';
  static constexpr std::uint32_t kJoined = 0xFFFFFFFFU;  // Slot::size of a joined (system, code) key
  struct Words {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
  };
  struct Slot {
    std::uint64_t a = 0;  // the key's words (for a joined key: a = its hash)
    std::uint64_t b = 0;
    std::uint32_t size = 0;
    std::uint32_t index = 0;  // entries_ index + 1; 0 = empty
    V value{};
  };

  static std::uint64_t load8(const char* p) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  static std::uint64_t load4(const char* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  static std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
    std::uint64_t h = (a ^ 0x9E3779B97F4A7C15ULL) * 0xFF51AFD7ED558CCDULL;
    h ^= b + (h >> 31);
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 33);
  }
  // Up to 16 bytes: two words that together hold every byte (with the length, an exact image of
  // the key). Longer: the words fold the rest in, and a match is confirmed on the stored key.
  static Words wordsOf(std::string_view s) {
    const char* p = s.data();
    const std::size_t n = s.size();
    Words w;
    if (n > 16) {
      std::uint64_t seed = n;
      for (std::size_t i = 0; i + 8 < n; i += 8) seed = mix(seed ^ load8(p + i), 0x2545F4914F6CDD1DULL);
      w.a = seed;
      w.b = load8(p + n - 8);
    } else if (n >= 8) {
      w.a = load8(p);
      w.b = load8(p + n - 8);
    } else if (n >= 4) {
      w.a = load4(p);
      w.b = load4(p + n - 4);
    } else if (n > 0) {
      w.a = (static_cast<std::uint64_t>(static_cast<unsigned char>(p[0])) << 16) |
            (static_cast<std::uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8) | static_cast<unsigned char>(p[n - 1]);
    }
    return w;
  }
  static std::uint32_t hashOf(const Words& w, std::size_t n) {
    const std::uint64_t h = mix(w.a ^ n, w.b);
    return static_cast<std::uint32_t>(h ^ (h >> 32));
  }
  static std::uint32_t combine(std::uint32_t a, std::uint32_t b) {
    const std::uint64_t h = mix(a, static_cast<std::uint64_t>(b) << 1 | 1U);
    return static_cast<std::uint32_t>(h ^ (h >> 32));
  }
  const V* findJoined(std::string_view key) const {
    const std::size_t sep = key.find(kSeparator);
    return find2(key.substr(0, sep), key.substr(sep + 1));
  }
  void rebuild() {
    std::size_t n = 8;
    while (n < entries_.size() * 2) n *= 2;
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    for (std::size_t e = 0; e < entries_.size(); ++e) place(e);
  }
  void place(std::size_t e) {
    const std::string_view key = entries_[e].first;
    Slot slot;
    std::uint32_t h = 0;
    if (const std::size_t sep = key.find(kSeparator); sep != std::string_view::npos) {
      const std::string_view a = key.substr(0, sep), b = key.substr(sep + 1);
      h = combine(hashOf(wordsOf(a), a.size()), hashOf(wordsOf(b), b.size()));
      slot.a = h;
      slot.size = kJoined;
    } else {
      const Words w = wordsOf(key);
      h = hashOf(w, key.size());
      slot.a = w.a;
      slot.b = w.b;
      slot.size = static_cast<std::uint32_t>(key.size());
    }
    slot.index = static_cast<std::uint32_t>(e + 1);
    slot.value = entries_[e].second;
    std::size_t i = h & mask_;
    while (slots_[i].index != 0) i = (i + 1) & mask_;
    slots_[i] = slot;
  }

  std::vector<std::pair<std::string, V>> entries_;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

/// json::find / json::getString for the walk's hot paths: the same lookups, with the member
/// names compared inline (RapidJSON's FindMember calls memcmp per member, which dominates on the
/// short names FHIR uses).
inline const rapidjson::Value* findMember(const rapidjson::Value& object, std::string_view name) {
  if (!object.IsObject()) return nullptr;
  for (const auto& m : object.GetObject()) {
    if (m.name.GetStringLength() != name.size()) continue;
    const char* key = m.name.GetString();
    std::size_t i = 0;
    while (i < name.size() && key[i] == name[i]) ++i;
    if (i == name.size()) return &m.value;
  }
  return nullptr;
}
inline std::string_view memberString(const rapidjson::Value& object, std::string_view name) {
  const rapidjson::Value* v = findMember(object, name);
  return v != nullptr && v->IsString() ? json::view(*v) : std::string_view{};
}

/// The expansion of a value set: codes by system, plus all codes regardless of system (for `code`
/// elements, which carry no system).
struct CodeSet {
  std::string url;
  StringMap<StringSet> by_system;
  StringSet codes;
  std::string sample;  // "a, b, c" (up to a dozen codes) for diagnostics
  // The same, for the validation walk (built by freeze() once the expansion is complete).
  FlatStringMap<char> flat_codes;
  FlatStringMap<char> flat_pairs;  // system \x1f code

  void freeze() {
    flat_codes.clear();
    flat_pairs.clear();
    for (const auto& code : codes) flat_codes.emplace(code, 0);
    for (const auto& [system, system_codes] : by_system) {
      for (const auto& code : system_codes) flat_pairs.emplace(FlatStringMap<char>::joinedKey(system, code), 0);
    }
  }
  bool contains(std::string_view code) const { return flat_codes.find(code) != nullptr; }
  bool contains(std::string_view system, std::string_view code) const { return flat_pairs.find2(system, code) != nullptr; }
};

/// The complex types the walk treats specially, decided once at load (not by string compares per value).
enum class TypeKind : std::uint8_t { Other, Resource, Reference, Coding, CodeableConcept, Quantity };

inline TypeKind typeKindFor(std::string_view code) {
  if (code == "Resource") return TypeKind::Resource;
  if (code == "Reference") return TypeKind::Reference;
  if (code == "Coding") return TypeKind::Coding;
  if (code == "CodeableConcept") return TypeKind::CodeableConcept;
  if (code == "Quantity") return TypeKind::Quantity;
  return TypeKind::Other;
}

struct TypeChoice {
  Primitive primitive = Primitive::None;
  TypeKind kind = TypeKind::Other;
  int model = -1;                    // complex types and backbone elements
  std::string code;                  // "Quantity", "string", "Reference", "Resource"
  std::vector<std::string> targets;  // Reference: allowed resource types; empty = any
};

struct Slice {
  std::string name;
  std::uint32_t min = 0;
  std::uint32_t max = kUnbounded;
  const rapidjson::Value* pattern = nullptr;  // discriminator: items matching this pattern
  bool exact = false;                         // fixed[x] rather than pattern[x]
};

// What the walk reads for every value comes first (one or two cache lines); names last.
struct Element {
  std::uint32_t min = 0;
  std::uint32_t max = kUnbounded;
  bool array = false;                       // base max is not 1: JSON array
  const CodeSet* required_codes = nullptr;  // required binding that could be expanded
  const rapidjson::Value* fixed = nullptr;
  const rapidjson::Value* pattern = nullptr;
  std::vector<TypeChoice> types;
  // Invariants on this element's values that its type does not carry (a profile's us-core-6 on
  // Patient.name, txt-1 on Narrative.div). Backbone elements keep theirs on their model instead.
  std::vector<const Invariant*> invariants;
  std::vector<Slice> slices;
  std::string name;  // "status", "value[x]"
  std::string path;  // "Observation.value[x]" (definition path, for diagnostics)
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
  FlatStringMap<MemberRef> members;
  std::vector<std::uint16_t> required;       // elements with min >= 1
  std::vector<std::uint16_t> sliced;         // elements with slices
  std::vector<const Invariant*> invariants;  // checked on every object of this model (per-1 on Period)
};

struct Profile {
  std::string url;
  std::string type;  // resource type, or "Extension"
  std::string file;
  int model = -1;
};

struct ProfileSet::Impl {
  std::vector<Model> models;
  StringMap<int> base;                 // type name -> model (resources and data types)
  StringMap<Profile> profiles;         // canonical URL -> profile (resources and extensions)
  StringMap<std::string> aliases;      // US Core URL -> project profile URL based on it
  StringMap<int> extensions;           // extension URL -> model
  std::deque<CodeSet> code_sets;       // stable addresses
  FlatStringMap<char> resource_types;  // every R4 resource type name (for reference checks)
  // Per-resource lookups of the walk: resource type -> base model, and canonical URL (a project
  // profile's, or the US Core one it is based on) -> profile. Built by the loader's finish().
  FlatStringMap<int> base_index;
  FlatStringMap<const Profile*> profile_index;
  std::deque<rapidjson::Document> values;  // fixed/pattern values, owned here
  std::deque<Invariant> invariants;        // compiled constraints (stable addresses), one per key
  StringMap<const Invariant*> invariant_by_key;
  int extension_model = -1;
  int element_model = -1;  // "Element": what "_name" primitive extensions hold
  std::string own_extension_prefix = "https://fhir-gateway.dev/";
};

}  // namespace gw::validate

#pragma once
// The privacy classes of docs/privacy.md §1. A resource may carry several (sud and mh);
// they decide its labels, the data key its payload is stored under, and what a consent must cover.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw::privacy {

enum class DataClass : std::uint8_t { General = 1, Sud = 2, Mh = 4 };

/// A set of classes as a bitmask. An empty set means "not classified": treat as the most
/// restrictive (deny when unsure).
class ClassSet {
 public:
  constexpr ClassSet() = default;
  constexpr explicit ClassSet(std::uint8_t bits) : bits_(bits) {}
  constexpr ClassSet(DataClass c) : bits_(static_cast<std::uint8_t>(c)) {}  // NOLINT: implicit on purpose

  constexpr bool has(DataClass c) const { return (bits_ & static_cast<std::uint8_t>(c)) != 0; }
  constexpr ClassSet& add(DataClass c) {
    bits_ |= static_cast<std::uint8_t>(c);
    return *this;
  }
  constexpr ClassSet& add(ClassSet o) {
    bits_ |= o.bits_;
    return *this;
  }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool sensitive() const { return has(DataClass::Sud) || has(DataClass::Mh); }
  /// Every class of `other` is in this set.
  constexpr bool covers(ClassSet other) const { return (other.bits_ & ~bits_) == 0; }
  constexpr std::uint8_t bits() const { return bits_; }
  friend constexpr bool operator==(ClassSet, ClassSet) = default;

 private:
  std::uint8_t bits_ = 0;
};

std::string_view className(DataClass c);  // "general", "sud", "mh"
std::optional<DataClass> parseClass(std::string_view s);
/// "general", "sud", "mh", "sud,mh" (fixed order), "" for the empty set.
std::string classSetName(ClassSet s);
/// Parses classSetName's form; nullopt on an unknown name.
std::optional<ClassSet> parseClassSet(std::string_view s);

/// The class whose data key protects a payload of these classes at rest: sud before mh before
/// general, and sud for an empty (unclassified) set, so a sensitive payload never sits under the
/// general key.
DataClass storageClass(ClassSet s);

}  // namespace gw::privacy

#pragma once
// Source positions for JSON that was already parsed into a DOM. RapidJSON's DOM forgets where a
// value came from, so errors found after parsing (an unknown function in a mapper, a bad regex in
// a schema) could not say file:line:column. One extra SAX pass at load time records the byte
// offset of every key and value by JSON pointer; nothing here runs per record.
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace gw::json {

class JsonLocations {
 public:
  /// Scans `text` (which must be valid JSON under the same flags it was parsed with).
  /// On a syntax error the result is empty and every lookup answers offset 0.
  static JsonLocations build(std::string_view text, bool allow_comments);

  /// Byte offset where the value at `pointer` ("/resources/0/template") starts. Falls back to the
  /// nearest ancestor that is known.
  std::size_t valueOffset(std::string_view pointer) const;
  /// Byte offset of the member name (the opening quote) for object members; the value offset for
  /// array elements and the root.
  std::size_t keyOffset(std::string_view pointer) const;

  /// "file:line:column" for a byte offset of `text`.
  static std::string position(const std::string& file, std::string_view text, std::size_t offset);

  struct Location {
    std::size_t key = 0;    // member name (opening quote), or the value for array elements
    std::size_t value = 0;  // first byte of the value
  };

 private:
  const Location* lookup(std::string_view pointer) const;

  std::unordered_map<std::string, Location> locations_;
};

/// Appends one JSON pointer token ("~" and "/" escaped) to `pointer`.
void appendPointerToken(std::string& pointer, std::string_view token);

}  // namespace gw::json

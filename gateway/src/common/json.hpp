#pragma once
// Small RapidJSON helpers shared by every module. All JSON in the gateway is RapidJSON.
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace gw::json {

/// Compact serialization.
std::string toString(const rapidjson::Value& value);
/// Indented serialization for humans (CLI output, examples).
std::string toPrettyString(const rapidjson::Value& value);

/// Deepest nesting of arrays and objects accepted. RapidJSON parses, validates, copies and frees
/// documents recursively, so an input of a million '[' would exhaust the stack.
inline constexpr std::size_t kMaxDepth = 64;

/// Byte offset where nesting first goes deeper than `max_depth`, if it does (strings skipped).
std::optional<std::size_t> findExcessiveNesting(std::string_view text, std::size_t max_depth = kMaxDepth);

/// Parses `text` into `doc` (rejecting nesting deeper than kMaxDepth). On failure: ErrorCode::MalformedJson with the byte
/// offset (relative to the text plus `base_offset`) and RapidJSON's reason. As lenient as RapidJSON: for JSON the
/// gateway wrote itself (rows it stored). Anything from outside the process goes through parseStrict.
Status parse(std::string_view text, rapidjson::Document& doc, std::size_t base_offset = 0, bool allow_comments = false);

/// Parses JSON from outside the process (request bodies, partner answers, files people write) and holds it to
/// RFC 8259 where RapidJSON alone is lenient. Besides what parse refuses, it refuses, as ErrorCode::MalformedJson:
///  - invalid UTF-8 anywhere in the text (stray or cut sequences, overlong forms, encoded surrogates, past U+10FFFF)
///    and a \u escape of a surrogate that is not half of a pair: where "byte N" of the bad sequence or escape;
///  - any byte after the value but whitespace (RapidJSON stops at a NUL byte and ignores what follows): "byte N";
///  - a key twice in one object (RapidJSON keeps both, and lookups see the first): where is the key's path
///    ("$.clinic", "$[3].patient.mrn"), and the message names the byte of the repeat.
/// Offsets count from the start of `text` plus `base_offset`; on failure `doc` is null. Costs one walk over the
/// document (keys compared pairwise in small objects, sorted in large ones).
Status parseStrict(std::string_view text, rapidjson::Document& doc, std::size_t base_offset = 0,
                   bool allow_comments = false);

/// parseStrict for the text of a file: where is "file:line:column" (for a key twice: of the repeat, and the message
/// names its path).
Status parseStrictFile(const std::string& file, std::string_view text, rapidjson::Document& doc,
                       bool allow_comments = false);

/// 1-based line and column of byte `offset` in `text` (for file:line:column messages).
std::pair<std::size_t, std::size_t> lineColumn(std::string_view text, std::size_t offset);

/// "/a/b/0" JSON pointer -> "a.b[0]" path used in user-facing messages.
std::string pointerToPath(std::string_view pointer);

/// Member lookup that returns nullptr when absent (avoids RapidJSON's assert on missing keys).
const rapidjson::Value* find(const rapidjson::Value& object, std::string_view key);
/// String member or empty view.
std::string_view getString(const rapidjson::Value& object, std::string_view key);
/// The characters of a string value (which must be a string), without copying.
inline std::string_view view(const rapidjson::Value& string_value) {
  return {string_value.GetString(), string_value.GetStringLength()};
}

/// A FHIR OperationOutcome with one error issue for `e`: code from fhirIssueTypeFor, diagnostics
/// "message (hint)", expression [where]. The one error body every API answer uses.
std::string operationOutcome(const Error& e);

/// Writes a string_view through any RapidJSON writer.
template <class Writer>
void writeString(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

/// Writes an object key through any RapidJSON writer.
template <class Writer>
void writeKey(Writer& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

/// "key": "value".
template <class Writer>
void writeMember(Writer& w, std::string_view key, std::string_view value) {
  writeKey(w, key);
  writeString(w, value);
}

/// "key": "value", or "key": null when value is empty.
template <class Writer>
void writeNullableMember(Writer& w, std::string_view key, std::string_view value) {
  writeKey(w, key);
  if (value.empty()) {
    w.Null();
  } else {
    writeString(w, value);
  }
}

/// "key": ["a","b"] from the comma-separated list "a,b" ("" -> []).
template <class Writer>
void writeListMember(Writer& w, std::string_view key, std::string_view list) {
  writeKey(w, key);
  w.StartArray();
  while (!list.empty()) {
    const auto comma = list.find(',');
    writeString(w, list.substr(0, comma));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  w.EndArray();
}

inline rapidjson::Value str(std::string_view s, rapidjson::Document::AllocatorType& a) {
  return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

}  // namespace gw::json

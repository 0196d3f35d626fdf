#pragma once
// FHIR R4 primitive data types: JSON representation and lexical format, checked without regex.
#include <rapidjson/document.h>

#include <cstdint>
#include <string_view>

namespace gw::validate {

enum class Primitive : std::uint8_t {
  None,  // not a primitive (complex type)
  Boolean,
  Integer,
  UnsignedInt,
  PositiveInt,
  Decimal,
  String,
  Markdown,
  Code,
  Id,
  Uri,
  Url,
  Canonical,
  Oid,
  Uuid,
  Base64Binary,
  Date,
  DateTime,
  Instant,
  Time,
  Xhtml,
};

/// Primitive for a FHIR type code ("dateTime"), or None.
Primitive primitiveFor(std::string_view type_code);

/// Why `value` is not a valid `type`, in plain words; empty when it is valid. Never quotes the value.
std::string_view primitiveProblem(Primitive type, const rapidjson::Value& value);

bool isValidDate(std::string_view s);
bool isValidDateTime(std::string_view s);
bool isValidInstant(std::string_view s);
bool isValidId(std::string_view s);
bool isValidUuidUrn(std::string_view s);

}  // namespace gw::validate

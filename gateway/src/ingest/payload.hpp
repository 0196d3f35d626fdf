#pragma once
// Splits a POST /v1/records body into records: one JSON object, a JSON array of objects, or
// NDJSON (one object per line). JSON is read strictly (json::parseStrict): malformed JSON, invalid
// UTF-8, bytes after a NUL or a key twice in one object fail the whole request with the byte offset
// or the key's path (and the line for NDJSON): nothing of a body we cannot read is stored.
#include <rapidjson/document.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::ingest {

enum class PayloadFormat { Auto, Json, Ndjson };

/// The media type of a Content-Type header: parameters dropped, trimmed, lower-cased
/// ("Text/CSV; charset=utf-8" -> "text/csv"); media types are case-insensitive (RFC 9110).
std::string mediaType(std::string_view content_type);

/// From the Content-Type header: application/x-ndjson or application/ndjson -> Ndjson,
/// application/json or application/fhir+json -> Json, empty -> Auto, other -> error (415-like 400).
Result<PayloadFormat> formatFromContentType(std::string_view content_type);

struct ParsedPayload {
  rapidjson::Document storage;                   // owns every record's memory
  std::vector<const rapidjson::Value*> records;  // in request order
};

/// Parses the body. Errors: MalformedJson with where "byte N" (offset in the whole body) or "$[3].clinic" (a key
/// twice), prefixed for NDJSON by the line ("line 2 (byte 40)", "line 2, $.clinic"); BadRequest when the body is
/// empty or holds something other than objects.
Result<std::unique_ptr<ParsedPayload>> parsePayload(std::string_view body, PayloadFormat format, std::size_t max_records);

}  // namespace gw::ingest

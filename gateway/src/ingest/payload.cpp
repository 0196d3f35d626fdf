#include "ingest/payload.hpp"

#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <memory>

#include "common/json.hpp"

namespace gw::ingest {
namespace {

bool isBlank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// Whether `body` holds two or more JSON values one after another: NDJSON sent without its
// Content-Type. Only syntax is looked at (each line is then parsed strictly); the iterative reader
// builds nothing and does not recurse, however deep the body.
bool isValueSequence(std::string_view body) {
  rapidjson::MemoryStream memory(body.data(), body.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(memory);
  rapidjson::BaseReaderHandler<> ignore;
  rapidjson::Reader reader;
  return reader.Parse<rapidjson::kParseIterativeFlag>(stream, ignore).Code() ==
         rapidjson::kParseErrorDocumentRootNotSingular;
}

Status tooMany(std::size_t max_records) {
  return makeError(ErrorCode::PayloadTooLarge, "more than " + std::to_string(max_records) + " records in one request",
                   "body", "split the batch into smaller requests");
}

Result<std::unique_ptr<ParsedPayload>> parseNdjson(std::string_view body, std::size_t max_records) {
  auto parsed = std::make_unique<ParsedPayload>();
  parsed->storage.SetArray();
  auto& alloc = parsed->storage.GetAllocator();
  std::size_t offset = 0;
  std::size_t line_no = 0;
  while (offset < body.size()) {
    std::size_t end = body.find('\n', offset);
    if (end == std::string_view::npos) end = body.size();
    const std::string_view line = body.substr(offset, end - offset);
    ++line_no;
    if (!isBlank(line)) {
      rapidjson::Document doc(&alloc);
      if (auto read = json::parseStrict(line, doc, offset); !read) {
        Error e = read.error();  // where: "byte N" or the path of a repeated key
        e.where = "line " + std::to_string(line_no) + (e.where.starts_with("$") ? ", " + e.where : " (" + e.where + ")");
        return e;
      }
      if (!doc.IsObject()) {
        return makeError(ErrorCode::BadRequest, "each NDJSON line must be one JSON object",
                         "line " + std::to_string(line_no) + " (byte " + std::to_string(offset) + ")");
      }
      if (parsed->storage.Size() >= max_records) return tooMany(max_records).error();
      // doc allocated from the shared allocator, so moving it in copies nothing.
      parsed->storage.PushBack(static_cast<rapidjson::Value&>(doc).Move(), alloc);
    }
    offset = end + 1;
  }
  for (const auto& v : parsed->storage.GetArray()) parsed->records.push_back(&v);
  return parsed;
}

}  // namespace

std::string mediaType(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && (content_type.back() == ' ' || content_type.back() == '\t')) content_type.remove_suffix(1);
  while (!content_type.empty() && (content_type.front() == ' ' || content_type.front() == '\t'))
    content_type.remove_prefix(1);
  std::string media(content_type);
  for (char& c : media) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return media;
}

Result<PayloadFormat> formatFromContentType(std::string_view content_type) {
  const std::string media = mediaType(content_type);
  if (media.empty()) return PayloadFormat::Auto;
  if (media == "application/x-ndjson" || media == "application/ndjson") return PayloadFormat::Ndjson;
  if (media == "application/json" || media == "application/fhir+json") return PayloadFormat::Json;
  return makeError(ErrorCode::BadRequest, "unsupported Content-Type '" + media + "'", "Content-Type",
                   "send application/json (an object or an array of records) or application/x-ndjson");
}

Result<std::unique_ptr<ParsedPayload>> parsePayload(std::string_view body, PayloadFormat format, std::size_t max_records) {
  if (isBlank(body)) {
    return makeError(ErrorCode::BadRequest, "the request body is empty", "body",
                     "send one record object, an array of records, or NDJSON");
  }
  if (format == PayloadFormat::Ndjson) return parseNdjson(body, max_records);

  auto parsed = std::make_unique<ParsedPayload>();
  auto& doc = parsed->storage;
  if (auto read = json::parseStrict(body, doc); !read) {
    if (format == PayloadFormat::Auto && isValueSequence(body)) return parseNdjson(body, max_records);
    return read.error();
  }
  if (doc.IsObject()) {
    parsed->records.push_back(&doc);
    return parsed;
  }
  if (!doc.IsArray()) {
    return makeError(ErrorCode::BadRequest, "expected a record object or an array of records", "body");
  }
  if (doc.Size() > max_records) return tooMany(max_records).error();
  if (doc.Empty()) return makeError(ErrorCode::BadRequest, "the array of records is empty", "body");
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    if (!doc[i].IsObject()) {
      return makeError(ErrorCode::BadRequest, "each array element must be a record object", "[" + std::to_string(i) + "]");
    }
    parsed->records.push_back(&doc[i]);
  }
  return parsed;
}

}  // namespace gw::ingest

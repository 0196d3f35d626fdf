#include "ingest/input_format.hpp"

#include <algorithm>

#include "ingest/payload.hpp"
#include "mapping/support.hpp"

namespace gw::ingest {
namespace {

// JSON and NDJSON: records are the objects of one parsed document.
class JsonRecordsFormat final : public InputFormat {
 public:
  JsonRecordsFormat(PayloadFormat format, std::vector<std::string> media_types)
      : format_(format), media_types_(std::move(media_types)) {}
  std::vector<std::string> mediaTypes() const override { return media_types_; }
  Result<InputBatch> read(std::string_view body, const InputOptions& options) const override {
    GW_TRY(auto parsed, parsePayload(body, format_, options.max_records));
    InputBatch batch;
    batch.records.reserve(parsed->records.size());
    for (const auto* record : parsed->records) batch.records.push_back({record, 0, std::nullopt});
    batch.storage = std::shared_ptr<const ParsedPayload>(std::move(parsed));
    return batch;
  }

 private:
  PayloadFormat format_;
  std::vector<std::string> media_types_;
};

// CSV exports, converted row by row by the CSV input mapper the request names (?mapper=NAME).
class CsvFormat final : public InputFormat {
 public:
  std::vector<std::string> mediaTypes() const override { return {"text/csv"}; }
  Result<InputBatch> read(std::string_view body, const InputOptions& options) const override {
    const mapping::CsvMapperSet* mappers = options.rules != nullptr ? options.rules->csv_mappers.get() : nullptr;
    std::string available;
    if (mappers != nullptr) {
      for (const auto& name : mappers->names()) available += (available.empty() ? "" : ", ") + name;
    }
    if (available.empty()) {
      return makeError(ErrorCode::BadRequest, "this gateway has no CSV mappers", "mapper",
                       "set mapping.csv_mappers_dir in the gateway config, or post JSON records");
    }
    if (options.mapper.empty()) {
      return makeError(ErrorCode::BadRequest, "a text/csv body needs the mapper query parameter", "mapper",
                       "post to /v1/records?mapper=NAME; available: " + available);
    }
    const auto* mapper = mappers->find(options.mapper);
    if (mapper == nullptr) {
      return makeError(ErrorCode::BadRequest, "unknown CSV mapper " + mapping::quoteCode(options.mapper), "mapper",
                       "available: " + available);
    }
    return readWith(*mapper, body, options.max_records);
  }

  static Result<InputBatch> readWith(const mapping::CsvInputMapper& mapper, std::string_view body, std::size_t max_records) {
    GW_TRY(auto rows, mapper.rowsToRecords(body, max_records));
    auto owned = std::make_shared<std::vector<mapping::CsvRecord>>(std::move(rows));
    InputBatch batch;
    batch.records.reserve(owned->size());
    for (const auto& row : *owned) {
      if (row.error) {
        batch.records.push_back({nullptr, row.line, row.error});
      } else {
        batch.records.push_back({&row.record, row.line, std::nullopt});
      }
    }
    batch.storage = std::move(owned);
    return batch;
  }
};

}  // namespace

InputFormatRegistry InputFormatRegistry::builtins() {
  InputFormatRegistry registry;
  // The media types are disjoint, so these cannot fail.
  (void)registry.add(std::make_unique<JsonRecordsFormat>(
      PayloadFormat::Json, std::vector<std::string>{"application/json", "application/fhir+json"}));
  (void)registry.add(std::make_unique<JsonRecordsFormat>(
      PayloadFormat::Ndjson, std::vector<std::string>{"application/x-ndjson", "application/ndjson"}));
  // No Content-Type: a JSON document, or NDJSON sent without its type.
  (void)registry.add(std::make_unique<JsonRecordsFormat>(PayloadFormat::Auto, std::vector<std::string>{""}));
  (void)registry.add(std::make_unique<CsvFormat>());
  return registry;
}

Status InputFormatRegistry::add(std::unique_ptr<InputFormat> format) {
  std::shared_ptr<const InputFormat> shared(std::move(format));
  for (const auto& media : shared->mediaTypes()) {
    const bool taken = std::any_of(by_media_type_.begin(), by_media_type_.end(),
                                   [&](const auto& entry) { return entry.first == media; });
    if (taken) {
      return makeError(ErrorCode::Config, "media type '" + media + "' has two input formats", media,
                       "register each media type once");
    }
  }
  for (const auto& media : shared->mediaTypes()) by_media_type_.emplace_back(media, shared);
  return ok();
}

Result<const InputFormat*> InputFormatRegistry::find(std::string_view content_type) const {
  const std::string media = mediaType(content_type);
  for (const auto& [type, format] : by_media_type_) {
    if (type == media) return format.get();
  }
  std::string accepted;
  for (const auto& [type, format] : by_media_type_) {
    if (!type.empty()) accepted += (accepted.empty() ? "" : ", ") + type;
  }
  return makeError(ErrorCode::BadRequest, "unsupported Content-Type '" + media + "'", "Content-Type",
                   "send one of: " + accepted);
}

std::vector<std::string> InputFormatRegistry::mediaTypes() const {
  std::vector<std::string> out;
  for (const auto& [type, format] : by_media_type_) {
    if (!type.empty()) out.push_back(type);
  }
  return out;
}

Result<InputBatch> readCsvWith(const mapping::CsvInputMapper& mapper, std::string_view body, std::size_t max_records) {
  return CsvFormat::readWith(mapper, body, max_records);
}

}  // namespace gw::ingest

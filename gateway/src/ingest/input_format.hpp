#pragma once
// How a request body becomes clinic records, chosen by its media type. JSON (one record or an
// array), NDJSON and CSV (through a CSV input mapper) are registered today; a new format is one
// InputFormat subclass in its own file and one add() in InputFormatRegistry::builtins().
// Formats only read: what happens to the records (schema, mapping, consent, storage) is the
// record pipeline's and ingest's business, the same for every format.
#include <rapidjson/document.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "ingest/record_pipeline.hpp"

namespace gw::ingest {

/// What a format gets besides the body: request options (?mapper=NAME for CSV) and the running
/// rule set (the CSV input mappers).
struct InputOptions {
  std::string_view mapper;  // CSV input mapper name; empty when the request names none
  const RuleSet* rules = nullptr;
  std::size_t max_records = 10000;
};

/// One record read from the body, or why one row could not become a record (the others go on).
struct InputRecord {
  const rapidjson::Value* record = nullptr;  // owned by the batch; null when `error`
  std::size_t line = 0;                      // line of the row for line-based formats, else 0
  std::optional<Error> error;                // where = "line N, column 'Header'"
};

struct InputBatch {
  std::vector<InputRecord> records;     // in body order
  std::shared_ptr<const void> storage;  // keeps the records' memory alive
};

class InputFormat {
 public:
  virtual ~InputFormat() = default;
  /// Media types this format reads, lower-case ("application/x-ndjson").
  virtual std::vector<std::string> mediaTypes() const = 0;
  /// Reads the whole body. Fails (nothing of the body is used) when it is unreadable as a whole:
  /// BadRequest or MalformedJson with the byte offset or line, PayloadTooLarge past max_records.
  virtual Result<InputBatch> read(std::string_view body, const InputOptions& options) const = 0;
};

class InputFormatRegistry {
 public:
  /// JSON (also for a missing Content-Type, which may be NDJSON sent without its type), NDJSON, CSV.
  static InputFormatRegistry builtins();

  /// Registers `format` for each of its media types; a media type already taken is a start-up
  /// error (ErrorCode::Config).
  Status add(std::unique_ptr<InputFormat> format);

  /// The format for a Content-Type header (parameters and case ignored; empty = JSON), or a
  /// BadRequest naming the media types that are accepted.
  Result<const InputFormat*> find(std::string_view content_type) const;

  /// Every registered media type, for messages and docs.
  std::vector<std::string> mediaTypes() const;

 private:
  std::vector<std::pair<std::string, std::shared_ptr<const InputFormat>>> by_media_type_;
};

/// The CSV format with a given mapper (`fhir-gateway import --mapper FILE`).
Result<InputBatch> readCsvWith(const mapping::CsvInputMapper& mapper, std::string_view body, std::size_t max_records);

}  // namespace gw::ingest

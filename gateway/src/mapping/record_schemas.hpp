#pragma once
// JSON Schemas (draft-04) of the clinic record types, one file per type:
// <dir>/<record_type>.schema.json. Loaded once at start-up; validate() is const and thread-safe
// (the compiled SchemaDocument is immutable, each call makes its own validator).
#include <rapidjson/document.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::mapping {

class RecordSchemas {
 public:
  struct FieldError {
    std::string path;    // "prescription.dose.value", "" for the record itself
    std::string reason;  // plain words; quotes codes and field names, never free-text values
  };

  /// Loads every *.schema.json in `dir`. Errors name the file and line:column (JSON syntax, a
  /// pattern RapidJSON's regex engine cannot compile, an unresolvable $ref, a record_type that
  /// does not match the file name).
  static Result<RecordSchemas> loadDirectory(const std::filesystem::path& dir);

  RecordSchemas(RecordSchemas&&) noexcept;
  RecordSchemas& operator=(RecordSchemas&&) noexcept;
  ~RecordSchemas();

  bool knows(std::string_view record_type) const;
  std::vector<std::string> recordTypes() const;

  /// Empty when the record is valid. An unknown or missing record_type gives one error at
  /// "record_type". Otherwise reports up to kMaxErrors problems: RapidJSON 1.1 stops at the first,
  /// so the offending part is removed from a scratch copy and validation repeats.
  std::vector<FieldError> validate(const rapidjson::Value& record) const;

  /// Whether the schema of `record_type` declares the field at `pointer` ("/prescription/dose/value";
  /// numeric tokens step into arrays). MapperSet uses it to reject typos in mapper paths at load.
  bool declaresField(std::string_view record_type, std::string_view pointer) const;

  static constexpr std::size_t kMaxErrors = 20;

  struct Entry;  // one compiled schema; defined in the .cpp

 private:
  RecordSchemas();
  const Entry* entry(std::string_view record_type) const;

  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_;
};

}  // namespace gw::mapping

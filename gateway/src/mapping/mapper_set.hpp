#pragma once
// The declarative mapping engine: mappers/<format>/<record_type>.mapper.json files (language in
// mappers/README.md) are parsed and compiled once at start-up into an expression tree; map() then
// walks that tree per record, with no parsing, no regex and no shared mutable state.
#include <rapidjson/document.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::mapping {

class RecordSchemas;
struct CompiledMapper;

struct MappingContext {
  std::string clinic;                  // the authenticated clinic; first part of every resource id
  std::string identifier_system_base;  // e.g. "https://ids.clinic-c1.example/"; + kind = identifier.system
};

struct MappedResource {
  std::string resource_type;      // "MedicationRequest"
  std::string id;                 // gw::ids::resourceId(clinic, resource_type, source id)
  std::string identifier_system;  // identifier_system_base + identifier kind ("mrn", "prescription", ...)
  std::string identifier_value;   // the source id
  // Owns the allocator of `resource` (declared first, so it outlives the document): 12 KiB chunks
  // (about one labelled resource) instead of RapidJSON's 64 KiB default, because a record with
  // many items makes many resources and glibc would return and re-fault that memory on every record.
  std::unique_ptr<rapidjson::MemoryPoolAllocator<>> allocator;
  rapidjson::Document resource;  // the FHIR resource, with resourceType, id and identifier
};

struct MappingOutput {
  std::vector<MappedResource> resources;
};

class MapperSet {
 public:
  /// Loads and compiles every *.mapper.json in `dir`. Errors carry where = "file:line:column"
  /// (JSON syntax, unknown keys or functions, bad path syntax, unknown value maps...). With
  /// `schemas`, every record path in a mapper must be a field its record type's schema declares,
  /// so a typo in a mapper fails at start-up instead of silently mapping nothing.
  static Result<MapperSet> loadDirectory(const std::filesystem::path& dir, const RecordSchemas* schemas = nullptr);

  MapperSet(MapperSet&&) noexcept;
  MapperSet& operator=(MapperSet&&) noexcept;
  ~MapperSet();

  bool has(std::string_view record_type) const;
  std::vector<std::string> recordTypes() const;

  /// Maps one record (already schema-checked by ingest) to its FHIR resources. Thread-safe.
  /// Data problems (a code missing from a value map, an impossible calendar date) are
  /// ErrorCode::InvalidInput with where = the record field path ("prescription.frequency"); the
  /// message names the mapper file and value map and quotes codes only, never other values.
  Result<MappingOutput> map(const rapidjson::Value& record, const MappingContext& context) const;

 private:
  MapperSet();
  std::map<std::string, std::unique_ptr<CompiledMapper>, std::less<>> mappers_;
};

}  // namespace gw::mapping

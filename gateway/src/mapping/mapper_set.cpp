#include "mapping/mapper_set.hpp"

#include "common/json.hpp"
#include "common/log.hpp"
#include "mapping/compiled_mapper.hpp"
#include "mapping/support.hpp"

namespace gw::mapping {

MapperSet::MapperSet() = default;
MapperSet::MapperSet(MapperSet&&) noexcept = default;
MapperSet& MapperSet::operator=(MapperSet&&) noexcept = default;
MapperSet::~MapperSet() = default;

Result<MapperSet> MapperSet::loadDirectory(const std::filesystem::path& dir, const RecordSchemas* schemas) {
  GW_TRY(auto files, listFiles(dir, ".mapper.json"));
  if (files.empty()) {
    return makeError(ErrorCode::Config, "no *.mapper.json files found", dir.string(),
                     "point the mappers directory at mappers/<format> (for example mappers/clinic-v1)");
  }
  MapperSet set;
  for (const auto& file : files) {
    GW_TRY(auto mapper, compileMapperFile(file, schemas));
    GW_LOG(Info, Mapping, "mapper_loaded").kv("record_type", mapper->record_type).kv("resources", mapper->resources.size());
    std::string type = mapper->record_type;
    set.mappers_.emplace(std::move(type), std::move(mapper));
  }
  return set;
}

bool MapperSet::has(std::string_view record_type) const { return mappers_.find(record_type) != mappers_.end(); }

std::vector<std::string> MapperSet::recordTypes() const {
  std::vector<std::string> out;
  out.reserve(mappers_.size());
  for (const auto& [type, mapper] : mappers_) out.push_back(type);
  return out;
}

Result<MappingOutput> MapperSet::map(const rapidjson::Value& record, const MappingContext& context) const {
  if (!record.IsObject()) return makeError(ErrorCode::InvalidInput, "a record must be a JSON object", "");
  const auto* type = json::find(record, "record_type");
  if (type == nullptr || !type->IsString()) {
    return makeError(ErrorCode::InvalidInput, "missing record_type", "record_type");
  }
  const auto it = mappers_.find(json::view(*type));
  if (it == mappers_.end()) {
    return makeError(ErrorCode::InvalidInput, "no mapper for record type " + quoteCode(json::view(*type)), "record_type",
                     "add <record_type>.mapper.json to the mappers directory");
  }
  if (context.clinic.empty() || context.identifier_system_base.empty()) {
    // Ids and identifier systems would collide across clinics; configuration must supply both.
    return makeError(ErrorCode::Internal, "mapping context lacks the clinic or the identifier system base", "",
                     "set both for every clinic in the configuration");
  }
  const CompiledMapper& mapper = *it->second;
  MappingOutput output;
  output.resources.reserve(mapper.resources.size());
  for (const auto& rule : mapper.resources) {
    GW_TRY(applyRule(mapper, rule, record, context, output.resources));
  }
  return output;
}

}  // namespace gw::mapping

// Fuzzes what a clinic can send: body splitting (JSON / array / NDJSON), the record JSON Schemas
// and the mappers, exactly as POST /v1/records runs them.
#include <cstdint>
#include <string_view>

#include "ingest/ingest_service.hpp"
#include "ingest/payload.hpp"
#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"

namespace {

struct Loaded {
  gw::mapping::RecordSchemas schemas;
  gw::mapping::MapperSet mappers;
};

const Loaded& loaded() {
  static const Loaded instance = [] {
    const std::string dir = std::string(GW_REPO_DIR) + "/mappers/clinic-v1";
    auto schemas = gw::mapping::RecordSchemas::loadDirectory(dir + "/schemas");
    if (!schemas) __builtin_trap();  // the shipped format must load
    auto mappers = gw::mapping::MapperSet::loadDirectory(dir, &schemas.value());
    if (!mappers) __builtin_trap();
    return Loaded{std::move(schemas).value(), std::move(mappers).value()};
  }();
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto& l = loaded();
  for (auto format : {gw::ingest::PayloadFormat::Auto, gw::ingest::PayloadFormat::Ndjson}) {
    auto parsed = gw::ingest::parsePayload(body, format, 1000);
    if (!parsed) continue;
    for (const auto* record : parsed.value()->records) {
      (void)gw::ingest::canonicalHash(*record);
      if (!l.schemas.validate(*record).empty()) continue;
      (void)l.mappers.map(*record, {"c1", "https://ids.c1.example.org/"});
    }
  }
  return 0;
}

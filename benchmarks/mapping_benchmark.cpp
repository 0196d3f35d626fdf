// Mapping throughput, single thread, one benchmark per record type: a golden record (reference
// format, already parsed and schema-checked by ingest) -> its FHIR resources -> compact JSON.
// items_per_second counts resources (a harm-reduction record with 8 items makes 8 Observations).
// Target (docs/architecture.md §6): at least 100,000 resources/s per core for every record type.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "common/json.hpp"
#include "common/log.hpp"
#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"

namespace {

using gw::mapping::MapperSet;
using gw::mapping::MappingContext;
using gw::mapping::RecordSchemas;

const std::string kRepo = GW_REPO_DIR;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct Fixture {
  Fixture() {
    gw::log::setLevel(gw::log::Level::Warn);
    auto loaded_schemas = RecordSchemas::loadDirectory(kRepo + "/mappers/clinic-v1/schemas");
    if (!loaded_schemas) fail(loaded_schemas.error().describe());
    schemas = std::make_unique<RecordSchemas>(std::move(loaded_schemas).value());
    auto loaded = MapperSet::loadDirectory(kRepo + "/mappers/clinic-v1", schemas.get());
    if (!loaded) fail(loaded.error().describe());
    mappers = std::make_unique<MapperSet>(std::move(loaded).value());
    for (const char* name :
         {"prescription_spec_example", "prescription_full", "patient_full", "lab_fentanyl_positive", "lab_quantity",
          "screening_phq9", "harm_reduction_all_items", "overdose_full", "treatment_plan_full", "consent_spec_example"}) {
      const std::string text = readFile(kRepo + "/mappers/clinic-v1/golden/" + name + ".input.json");
      auto& doc = records[name];
      doc.Parse(text.data(), text.size());
      if (doc.HasParseError()) fail(std::string("cannot parse golden input ") + name);
    }
  }
  [[noreturn]] static void fail(const std::string& why) {
    std::cerr << "mapping_benchmark: " << why << "\n";
    std::exit(1);
  }

  std::unique_ptr<RecordSchemas> schemas;
  std::unique_ptr<MapperSet> mappers;
  std::map<std::string, rapidjson::Document> records;
  MappingContext context{"c1", "https://ids.clinic-c1.example/"};
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void mapAndSerialize(benchmark::State& state, const char* record_name) {
  Fixture& f = fixture();
  const rapidjson::Value& record = f.records.at(record_name);
  std::size_t bytes = 0;
  std::size_t resources = 0;
  for (auto _ : state) {
    auto output = f.mappers->map(record, f.context);
    if (!output) {
      state.SkipWithError(output.error().describe().c_str());
      break;
    }
    resources += output.value().resources.size();
    for (const auto& resource : output.value().resources) {
      std::string json = gw::json::toString(resource.resource);
      bytes += json.size();
      benchmark::DoNotOptimize(json.data());
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(resources));  // FHIR resources out
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));      // FHIR JSON out
}

void BM_MapPrescriptionToFhirJson(benchmark::State& state) { mapAndSerialize(state, "prescription_spec_example"); }
void BM_MapFullPrescriptionToFhirJson(benchmark::State& state) { mapAndSerialize(state, "prescription_full"); }
void BM_MapPatientToFhirJson(benchmark::State& state) { mapAndSerialize(state, "patient_full"); }
void BM_MapLabQualitativeToFhirJson(benchmark::State& state) { mapAndSerialize(state, "lab_fentanyl_positive"); }
void BM_MapLabQuantityToFhirJson(benchmark::State& state) { mapAndSerialize(state, "lab_quantity"); }
void BM_MapScreeningToFhirJson(benchmark::State& state) { mapAndSerialize(state, "screening_phq9"); }
void BM_MapHarmReductionToFhirJson(benchmark::State& state) { mapAndSerialize(state, "harm_reduction_all_items"); }
void BM_MapOverdoseToFhirJson(benchmark::State& state) { mapAndSerialize(state, "overdose_full"); }
void BM_MapTreatmentPlanToFhirJson(benchmark::State& state) { mapAndSerialize(state, "treatment_plan_full"); }
void BM_MapConsentToFhirJson(benchmark::State& state) { mapAndSerialize(state, "consent_spec_example"); }

// Schema validation is ingest's cost, not mapping's; measured here because it lives in this module.
void BM_ValidatePrescriptionRecord(benchmark::State& state) {
  Fixture& f = fixture();
  const rapidjson::Value& record = f.records.at("prescription_spec_example");
  for (auto _ : state) {
    auto errors = f.schemas->validate(record);
    if (!errors.empty()) {
      state.SkipWithError("golden record does not validate");
      break;
    }
    benchmark::DoNotOptimize(errors);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

BENCHMARK(BM_MapPrescriptionToFhirJson);
BENCHMARK(BM_MapFullPrescriptionToFhirJson);
BENCHMARK(BM_MapPatientToFhirJson);
BENCHMARK(BM_MapLabQualitativeToFhirJson);
BENCHMARK(BM_MapLabQuantityToFhirJson);
BENCHMARK(BM_MapScreeningToFhirJson);
BENCHMARK(BM_MapHarmReductionToFhirJson);
BENCHMARK(BM_MapOverdoseToFhirJson);
BENCHMARK(BM_MapTreatmentPlanToFhirJson);
BENCHMARK(BM_MapConsentToFhirJson);
BENCHMARK(BM_ValidatePrescriptionRecord);

}  // namespace

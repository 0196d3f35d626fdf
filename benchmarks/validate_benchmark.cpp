// Profile validation throughput, single thread: golden MedicationRequest and Patient (as the
// mappers emit them) checked against the project profiles; and, when the mapping module is built,
// the whole hot path per record: map + validate + serialize.
// Target (docs/architecture.md §6): >= 100,000 resources/s on one core for map + validate + serialize.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "common/json.hpp"
#include "validate/profile_set.hpp"
#ifdef GW_HAVE_MAPPING
#include "common/log.hpp"
#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"
#endif

namespace {

using gw::validate::ProfileSet;

const std::string kRepo = GW_REPO_DIR;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

[[noreturn]] void fail(const std::string& why) {
  std::cerr << "validate_benchmark: " << why << "\n";
  std::exit(1);
}

struct Fixture {
  Fixture() {
    auto loaded = ProfileSet::loadDirectory(kRepo + "/fhir-profiles");
    if (!loaded) fail(loaded.error().describe());
    profiles = std::make_unique<ProfileSet>(std::move(loaded).value());
    for (const char* name : {"prescription_full", "prescription_spec_example", "patient_full"}) {
      const std::string text = readFile(kRepo + "/mappers/clinic-v1/golden/" + name + ".expected.json");
      auto& doc = goldens[name];
      doc.Parse(text.data(), text.size());
      if (doc.HasParseError() || !doc.IsArray() || doc.Empty()) fail(std::string("cannot read golden ") + name);
    }
#ifdef GW_HAVE_MAPPING
    gw::log::setLevel(gw::log::Level::Warn);
    auto loaded_schemas = gw::mapping::RecordSchemas::loadDirectory(kRepo + "/mappers/clinic-v1/schemas");
    if (!loaded_schemas) fail(loaded_schemas.error().describe());
    schemas = std::make_unique<gw::mapping::RecordSchemas>(std::move(loaded_schemas).value());
    auto mappers_loaded = gw::mapping::MapperSet::loadDirectory(kRepo + "/mappers/clinic-v1", schemas.get());
    if (!mappers_loaded) fail(mappers_loaded.error().describe());
    mappers = std::make_unique<gw::mapping::MapperSet>(std::move(mappers_loaded).value());
    for (const char* name : {"prescription_full", "patient_full", "lab_fentanyl_positive", "screening_phq9",
                             "harm_reduction_all_items", "overdose_full", "treatment_plan_full", "consent_spec_example"}) {
      const std::string text = readFile(kRepo + "/mappers/clinic-v1/golden/" + name + ".input.json");
      records[name].Parse(text.data(), text.size());
      if (records[name].HasParseError()) fail(std::string("cannot parse golden input ") + name);
    }
#endif
  }

  std::unique_ptr<ProfileSet> profiles;
  std::map<std::string, rapidjson::Document> goldens;
#ifdef GW_HAVE_MAPPING
  std::unique_ptr<gw::mapping::RecordSchemas> schemas;
  std::unique_ptr<gw::mapping::MapperSet> mappers;
  std::map<std::string, rapidjson::Document> records;
  gw::mapping::MappingContext context{"c1", "https://ids.clinic-c1.example/"};
#endif
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void validateGolden(benchmark::State& state, const char* name) {
  Fixture& f = fixture();
  const rapidjson::Value& resource = f.goldens.at(name)[0];
  for (auto _ : state) {
    auto result = f.profiles->validate(resource);
    if (!result.valid()) {
      state.SkipWithError(result.operationOutcomeJson().c_str());
      break;
    }
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));  // resources
}

void BM_ValidateMedicationRequest(benchmark::State& state) { validateGolden(state, "prescription_full"); }
void BM_ValidateMinimalMedicationRequest(benchmark::State& state) { validateGolden(state, "prescription_spec_example"); }
void BM_ValidatePatient(benchmark::State& state) { validateGolden(state, "patient_full"); }

BENCHMARK(BM_ValidateMedicationRequest);
BENCHMARK(BM_ValidateMinimalMedicationRequest);
BENCHMARK(BM_ValidatePatient);

#ifdef GW_HAVE_MAPPING
void mapValidateSerialize(benchmark::State& state, const char* record_name) {
  Fixture& f = fixture();
  const rapidjson::Value& record = f.records.at(record_name);
  std::int64_t resources = 0;
  for (auto _ : state) {
    auto output = f.mappers->map(record, f.context);
    if (!output) {
      state.SkipWithError(output.error().describe().c_str());
      break;
    }
    for (const auto& resource : output.value().resources) {
      auto result = f.profiles->validate(resource.resource);
      if (!result.valid()) {
        state.SkipWithError(result.operationOutcomeJson().c_str());
        return;
      }
      std::string json = gw::json::toString(resource.resource);
      benchmark::DoNotOptimize(json.data());
      ++resources;
    }
  }
  state.SetItemsProcessed(resources);
}

void BM_MapValidateSerializePrescription(benchmark::State& state) { mapValidateSerialize(state, "prescription_full"); }
void BM_MapValidateSerializePatient(benchmark::State& state) { mapValidateSerialize(state, "patient_full"); }

void BM_MapValidateSerializeLabResult(benchmark::State& state) { mapValidateSerialize(state, "lab_fentanyl_positive"); }
void BM_MapValidateSerializeScreening(benchmark::State& state) { mapValidateSerialize(state, "screening_phq9"); }
void BM_MapValidateSerializeHarmReduction(benchmark::State& state) {
  mapValidateSerialize(state, "harm_reduction_all_items");
}
void BM_MapValidateSerializeOverdose(benchmark::State& state) { mapValidateSerialize(state, "overdose_full"); }
void BM_MapValidateSerializeTreatmentPlan(benchmark::State& state) { mapValidateSerialize(state, "treatment_plan_full"); }
void BM_MapValidateSerializeConsent(benchmark::State& state) { mapValidateSerialize(state, "consent_spec_example"); }

BENCHMARK(BM_MapValidateSerializePrescription);
BENCHMARK(BM_MapValidateSerializePatient);
BENCHMARK(BM_MapValidateSerializeLabResult);
BENCHMARK(BM_MapValidateSerializeScreening);
BENCHMARK(BM_MapValidateSerializeHarmReduction);
BENCHMARK(BM_MapValidateSerializeOverdose);
BENCHMARK(BM_MapValidateSerializeTreatmentPlan);
BENCHMARK(BM_MapValidateSerializeConsent);
#endif

}  // namespace

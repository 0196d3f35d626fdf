// Classification and labelling throughput, single thread, on golden resources as the mappers
// emit them; and, when the mapping and validate modules are built, the whole hot path per record:
// map + classify + label + validate + serialize. BM_IngestPath<RecordType> is that path exactly as
// ingest runs it, for one reference record of each record type (from the Part 2 program "otp").
// Target (docs/architecture.md §6): >= 100,000 resources/s on one core for map + label + validate + serialize.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "common/json.hpp"
#include "privacy/classifier.hpp"
#include "privacy/labels.hpp"
#include "privacy/redaction.hpp"
#ifdef GW_HAVE_MAPPING_AND_VALIDATE
#include "common/log.hpp"
#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"
#include "validate/profile_set.hpp"
#endif

namespace {

using gw::privacy::Classifier;

const std::string kRepo = GW_REPO_DIR;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

[[noreturn]] void fail(const std::string& why) {
  std::cerr << "privacy_benchmark: " << why << "\n";
  std::exit(1);
}

#ifdef GW_HAVE_MAPPING_AND_VALIDATE
// One reference record per record type of clinic-v1 (all from the Part 2 program "otp").
constexpr const char* kIngestRecords[] = {
    "prescription_full",        "patient_full",  "lab_fentanyl_positive", "screening_phq9",
    "harm_reduction_all_items", "overdose_full", "treatment_plan_full",   "consent_spec_example",
};
#endif

struct Fixture {
  Fixture() {
    auto loaded = Classifier::load(gw::privacy::ValueSetFiles::inProfilesDir(kRepo + "/fhir-profiles"));
    if (!loaded) fail(loaded.error().describe());
    classifier = std::make_unique<Classifier>(std::move(loaded).value());
    for (const char* name :
         {"prescription_full", "patient_full", "lab_quantity_without_unit", "screening_phq9", "treatment_plan_full"}) {
      const std::string text = readFile(kRepo + "/mappers/clinic-v1/golden/" + name + ".expected.json");
      auto& doc = goldens[name];
      doc.Parse(text.data(), text.size());
      if (doc.HasParseError() || !doc.IsArray() || doc.Empty()) fail(std::string("cannot read golden ") + name);
      // As the mappers emit them: the golden files hold them labelled, as ingest stores them.
      for (auto& r : doc.GetArray()) {
        auto meta = r.FindMember("meta");
        if (meta == r.MemberEnd()) continue;
        meta->value.RemoveMember("security");
        if (meta->value.ObjectEmpty()) r.RemoveMember("meta");
      }
    }
#ifdef GW_HAVE_MAPPING_AND_VALIDATE
    gw::log::setLevel(gw::log::Level::Warn);
    auto profiles_loaded = gw::validate::ProfileSet::loadDirectory(kRepo + "/fhir-profiles");
    if (!profiles_loaded) fail(profiles_loaded.error().describe());
    profiles = std::make_unique<gw::validate::ProfileSet>(std::move(profiles_loaded).value());
    auto loaded_schemas = gw::mapping::RecordSchemas::loadDirectory(kRepo + "/mappers/clinic-v1/schemas");
    if (!loaded_schemas) fail(loaded_schemas.error().describe());
    schemas = std::make_unique<gw::mapping::RecordSchemas>(std::move(loaded_schemas).value());
    auto mappers_loaded = gw::mapping::MapperSet::loadDirectory(kRepo + "/mappers/clinic-v1", schemas.get());
    if (!mappers_loaded) fail(mappers_loaded.error().describe());
    mappers = std::make_unique<gw::mapping::MapperSet>(std::move(mappers_loaded).value());
    for (const char* name : kIngestRecords) {
      const std::string text = readFile(kRepo + "/mappers/clinic-v1/golden/" + name + ".input.json");
      records[name].Parse(text.data(), text.size());
      if (records[name].HasParseError()) fail(std::string("cannot parse golden input ") + name);
    }
#endif
  }

  std::unique_ptr<Classifier> classifier;
  std::map<std::string, rapidjson::Document> goldens;
#ifdef GW_HAVE_MAPPING_AND_VALIDATE
  std::unique_ptr<gw::validate::ProfileSet> profiles;
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

// classify() alone: one walk, hash lookups, no allocation.
void classify(benchmark::State& state, const char* name, bool part2) {
  Fixture& f = fixture();
  const rapidjson::Value& resource = f.goldens.at(name)[0];
  for (auto _ : state) {
    auto c = f.classifier->classify(resource, part2);
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// What labelling costs on top of a fresh copy of the resource (compare with the Copy baseline).
void copyClassifyLabel(benchmark::State& state, const char* name, bool part2, bool label) {
  Fixture& f = fixture();
  const rapidjson::Value& golden = f.goldens.at(name)[0];
  char buffer[16384];
  for (auto _ : state) {
    rapidjson::MemoryPoolAllocator<> allocator(buffer, sizeof(buffer));
    rapidjson::Document doc(&allocator);
    doc.CopyFrom(golden, allocator);
    if (label) {
      const auto c = f.classifier->classify(doc, part2);
      if (!gw::privacy::applyLabels(doc, c)) {
        state.SkipWithError("labelling failed");
        break;
      }
      if (part2 && !gw::privacy::attachPart2Notice(doc)) {
        state.SkipWithError("notice failed");
        break;
      }
    }
    benchmark::DoNotOptimize(doc.MemberCount());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_ClassifyMedicationRequest(benchmark::State& state) { classify(state, "prescription_full", false); }
void BM_ClassifyPatient(benchmark::State& state) { classify(state, "patient_full", false); }
void BM_ClassifyGeneralLab(benchmark::State& state) { classify(state, "lab_quantity_without_unit", false); }
void BM_ClassifyScreening(benchmark::State& state) { classify(state, "screening_phq9", false); }
void BM_ClassifyCarePlan(benchmark::State& state) { classify(state, "treatment_plan_full", false); }

void BM_CopyOnlyMedicationRequest(benchmark::State& state) { copyClassifyLabel(state, "prescription_full", false, false); }
void BM_CopyClassifyLabelMedicationRequest(benchmark::State& state) {
  copyClassifyLabel(state, "prescription_full", false, true);
}
void BM_CopyClassifyLabelPart2MedicationRequest(benchmark::State& state) {
  copyClassifyLabel(state, "prescription_full", true, true);
}
void BM_CopyOnlyPatient(benchmark::State& state) { copyClassifyLabel(state, "patient_full", false, false); }
void BM_CopyClassifyLabelPatient(benchmark::State& state) { copyClassifyLabel(state, "patient_full", false, true); }

void BM_CopyRedactCarePlan(benchmark::State& state) {
  Fixture& f = fixture();
  const rapidjson::Value& golden = f.goldens.at("treatment_plan_full")[0];
  char buffer[32768];
  for (auto _ : state) {
    rapidjson::MemoryPoolAllocator<> allocator(buffer, sizeof(buffer));
    rapidjson::Document doc(&allocator);
    doc.CopyFrom(golden, allocator);
    auto r = gw::privacy::redactCarePlan(doc, gw::privacy::DataClass::General, *f.classifier, false);
    if (!r) {
      state.SkipWithError(r.error().describe().c_str());
      break;
    }
    benchmark::DoNotOptimize(r.value().removed_kinds.size());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

BENCHMARK(BM_ClassifyMedicationRequest);
BENCHMARK(BM_ClassifyPatient);
BENCHMARK(BM_ClassifyGeneralLab);
BENCHMARK(BM_ClassifyScreening);
BENCHMARK(BM_ClassifyCarePlan);
BENCHMARK(BM_CopyOnlyMedicationRequest);
BENCHMARK(BM_CopyClassifyLabelMedicationRequest);
BENCHMARK(BM_CopyClassifyLabelPart2MedicationRequest);
BENCHMARK(BM_CopyOnlyPatient);
BENCHMARK(BM_CopyClassifyLabelPatient);
BENCHMARK(BM_CopyRedactCarePlan);

#ifdef GW_HAVE_MAPPING_AND_VALIDATE
enum class Labelling { None, Plain, Part2 };

void mapLabelValidateSerialize(benchmark::State& state, const char* record_name, Labelling labelling) {
  Fixture& f = fixture();
  const rapidjson::Value& record = f.records.at(record_name);
  std::int64_t resources = 0;
  for (auto _ : state) {
    auto output = f.mappers->map(record, f.context);
    if (!output) {
      state.SkipWithError(output.error().describe().c_str());
      break;
    }
    for (auto& resource : output.value().resources) {
      if (labelling != Labelling::None) {
        const bool part2 = labelling == Labelling::Part2;
        const auto c = f.classifier->classify(resource.resource, part2);
        if (!gw::privacy::applyLabels(resource.resource, c) ||
            (part2 && !gw::privacy::attachPart2Notice(resource.resource))) {
          state.SkipWithError("labelling failed");
          return;
        }
      }
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

// Plain: labels from the codes only (prescription: R, SUD, OPIOIDUD). Part2: a Part 2 program's
// resource, the most labels (R, SUD, OPIOIDUD, 42CFRPart2, NORDSCLCD, CPLYCD) plus the notice.
void BM_MapValidateSerializePrescription(benchmark::State& state) {
  mapLabelValidateSerialize(state, "prescription_full", Labelling::None);
}
void BM_MapLabelValidateSerializePrescription(benchmark::State& state) {
  mapLabelValidateSerialize(state, "prescription_full", Labelling::Plain);
}
void BM_MapLabelPart2ValidateSerializePrescription(benchmark::State& state) {
  mapLabelValidateSerialize(state, "prescription_full", Labelling::Part2);
}
void BM_MapValidateSerializePatient(benchmark::State& state) {
  mapLabelValidateSerialize(state, "patient_full", Labelling::None);
}
void BM_MapLabelValidateSerializePatient(benchmark::State& state) {
  mapLabelValidateSerialize(state, "patient_full", Labelling::Plain);
}
void BM_MapLabelPart2ValidateSerializePatient(benchmark::State& state) {
  mapLabelValidateSerialize(state, "patient_full", Labelling::Part2);
}
void BM_MapLabelValidateSerializeTreatmentPlan(benchmark::State& state) {
  mapLabelValidateSerialize(state, "treatment_plan_full", Labelling::Plain);
}

// What IngestService::prepare() does per resource of a record from a Part 2 program: map, then
// DisclosurePlanner::classifyAndLabel (classify; for a CarePlan also its activities and its own
// classes; applyLabels), then validate the labelled resource, then serialize it for storage. The
// notice is attached later, per partner, on a copy (DisclosurePlanner::plan), so not here.
// Kept in step with those two functions by hand: gw_ingest is not linked into this program.
void ingestPath(benchmark::State& state, const char* record_name) {
  Fixture& f = fixture();
  const rapidjson::Value& record = f.records.at(record_name);
  constexpr bool kPart2 = true;
  std::int64_t resources = 0;
  for (auto _ : state) {
    auto output = f.mappers->map(record, f.context);
    if (!output) {
      state.SkipWithError(output.error().describe().c_str());
      break;
    }
    for (auto& resource : output.value().resources) {
      const auto c = f.classifier->classify(resource.resource, kPart2);
      if (resource.resource_type == "CarePlan") {
        auto activities = f.classifier->classifyCarePlanActivities(resource.resource, kPart2);
        auto own = f.classifier->classifyCarePlanOwn(resource.resource, kPart2);
        benchmark::DoNotOptimize(activities.data());
        benchmark::DoNotOptimize(own);
      }
      if (!gw::privacy::applyLabels(resource.resource, c)) {
        state.SkipWithError("labelling failed");
        return;
      }
    }
    for (auto& resource : output.value().resources) {
      auto result = f.profiles->validate(resource.resource);
      if (!result.valid()) {
        state.SkipWithError(result.operationOutcomeJson().c_str());
        return;
      }
    }
    for (auto& resource : output.value().resources) {
      std::string json = gw::json::toString(resource.resource);
      benchmark::DoNotOptimize(json.data());
      ++resources;
    }
  }
  state.SetItemsProcessed(resources);
}

void BM_IngestPathPrescription(benchmark::State& state) { ingestPath(state, "prescription_full"); }
void BM_IngestPathPatient(benchmark::State& state) { ingestPath(state, "patient_full"); }
void BM_IngestPathLabResult(benchmark::State& state) { ingestPath(state, "lab_fentanyl_positive"); }
void BM_IngestPathScreening(benchmark::State& state) { ingestPath(state, "screening_phq9"); }
void BM_IngestPathHarmReduction(benchmark::State& state) { ingestPath(state, "harm_reduction_all_items"); }
void BM_IngestPathOverdose(benchmark::State& state) { ingestPath(state, "overdose_full"); }
void BM_IngestPathTreatmentPlan(benchmark::State& state) { ingestPath(state, "treatment_plan_full"); }
void BM_IngestPathConsent(benchmark::State& state) { ingestPath(state, "consent_spec_example"); }

BENCHMARK(BM_IngestPathPrescription);
BENCHMARK(BM_IngestPathPatient);
BENCHMARK(BM_IngestPathLabResult);
BENCHMARK(BM_IngestPathScreening);
BENCHMARK(BM_IngestPathHarmReduction);
BENCHMARK(BM_IngestPathOverdose);
BENCHMARK(BM_IngestPathTreatmentPlan);
BENCHMARK(BM_IngestPathConsent);

BENCHMARK(BM_MapValidateSerializePrescription);
BENCHMARK(BM_MapLabelValidateSerializePrescription);
BENCHMARK(BM_MapLabelPart2ValidateSerializePrescription);
BENCHMARK(BM_MapValidateSerializePatient);
BENCHMARK(BM_MapLabelValidateSerializePatient);
BENCHMARK(BM_MapLabelPart2ValidateSerializePatient);
BENCHMARK(BM_MapLabelValidateSerializeTreatmentPlan);
#endif

}  // namespace

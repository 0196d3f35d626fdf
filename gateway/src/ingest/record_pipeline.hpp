#pragma once
// The one record pipeline: schema -> map -> classify + label -> validate, for one clinic record.
// Ingest, consent reconciliation, `fhir-gateway map`, `fhir-gateway mappers test` and
// POST /v1/mappings/{name}/$test all run this, so what an engineer checks is exactly what ingest
// stores and sends (labels included). It is pure: it reads its inputs and the loaded rule set,
// never the store, the consent registry or the clock. Deciding who may receive the result
// (consent decisions, Bundles) is the next stage, ingest/disclosure_planner.hpp.
#include <rapidjson/document.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "config/gateway_config.hpp"
#include "consent/consent_version.hpp"
#include "ingest/disclosure_planner.hpp"
#include "mapping/csv_input_mapper.hpp"
#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"
#include "privacy/classifier.hpp"
#include "store/store.hpp"
#include "validate/profile_set.hpp"

namespace gw::ingest {

/// One loaded, immutable rule set: record schemas, mappers, profiles, the sensitivity value sets
/// and the CSV input mappers. The gateway holds the running one by shared_ptr and swaps it whole
/// on reload; a request keeps the one it started with.
struct RuleSet {
  std::shared_ptr<const mapping::RecordSchemas> schemas;
  std::shared_ptr<const mapping::MapperSet> mappers;  // compiled against *schemas
  std::shared_ptr<const validate::ProfileSet> profiles;
  std::shared_ptr<const privacy::Classifier> classifier;     // profiles_dir/ValueSet/gw-sensitivity-*
  std::shared_ptr<const mapping::CsvMapperSet> csv_mappers;  // never null; may hold no mapper
};

/// Where the rule set's files are.
struct RuleSetPaths {
  std::filesystem::path format_dir;       // <format_dir>/schemas and <format_dir>/*.mapper.json
  std::filesystem::path profiles_dir;     // StructureDefinitions and ValueSet/gw-sensitivity-*
  std::filesystem::path csv_mappers_dir;  // optional
};

/// Loads every part of a rule set. Errors carry where = "file:line:column" (ErrorCode::Config).
Result<std::shared_ptr<const RuleSet>> loadRuleSet(const RuleSetPaths& paths);

/// A problem that rejects a record: nothing of it is stored. `path` is the record field
/// ("consent.effective.end"), or a mapper location for mapping failures.
struct FieldError {
  std::string path;
  std::string reason;
  std::string hint;  // what to do about it; may be empty

  /// "reason (hint)", as clients read it.
  std::string text() const { return hint.empty() ? reason : reason + " (" + hint + ")"; }
};

/// What the pipeline reads of the gateway's settings.
struct PipelineSettings {
  /// Configured clinics (identifier systems, Part 2 programs). A record of a clinic not listed
  /// is rejected, unless `dry_run` is set.
  std::vector<config::Clinic> clinics;
  /// Configured partner ids: a consent must name one of them as its recipient (not checked in
  /// a dry run).
  std::vector<std::string> partner_ids;
  /// Engineer tools without a gateway config: an unknown clinic is mapped with identifier systems
  /// under "https://ids.clinic-<clinic>.example/" (the golden cases' convention) and no Part 2
  /// program. Ingest never sets it.
  bool dry_run = false;
};

/// One record after the pipeline. When `errors` is empty, `state` says how far it got:
/// Unmapped (no mapper for its type: kept, waits for one), Invalid (a resource fails its profile:
/// kept with the OperationOutcome, never sent) or Mapped (ready for the disclosure decision).
struct ProcessedRecord {
  std::vector<FieldError> errors;
  store::RecordState state = store::RecordState::Received;

  std::string clinic;
  std::string record_id;
  std::string record_type;
  bool known_type = false;            // record_type passed the schema check (a type of the rule set)
  std::string_view stage = "record";  // the step running, and so, when rejected, the one that refused it
  std::string mrn;
  std::string patient_id;              // the Patient's FHIR id: ids::resourceId(clinic, "Patient", mrn)
  bool part2 = false;                  // from a 42 CFR Part 2 program
  std::string identifier_system_base;  // the clinic's (dry run: the golden cases' convention)

  /// The mapped resources, classified and labelled as they are stored (and, per partner, sent).
  std::vector<mapping::MappedResource> resources;
  /// One per resource, in the same order (pointing into `resources`).
  std::vector<ClassifiedResource> classified;
  /// One per resource: the profile validation of the labelled resource.
  std::vector<validate::ValidationResult> outcomes;
  /// Classes of all resources (of the program, before mapping).
  privacy::ClassSet classes;
  /// For Invalid: the OperationOutcome JSON of the first resource that fails.
  std::string invalid_outcome;

  /// A consent record, read once: the version it describes (version 0, status as sent).
  std::optional<consent::ConsentVersion> consent;

  /// The US Core minimum Patient for a record about a patient that maps no Patient: labelled,
  /// sent as a conditional create so it never overwrites the partner's copy. Null otherwise.
  std::unique_ptr<rapidjson::Document> stub_patient;
  std::optional<ClassifiedResource> stub_classified;

  bool accepted() const { return errors.empty(); }
};

class RecordPipeline {
 public:
  /// `rules` and `settings` must outlive the pipeline.
  RecordPipeline(const RuleSet& rules, const PipelineSettings& settings);

  /// Runs one record through schema, clinic and program checks, mapping, classification and
  /// labelling, and validation. With a non-empty `expected_type`, the record must be of that type
  /// (a mapper's dry run). `allowed_clinics`, when given, lists the clinics the caller may post
  /// for ("*" = any): a record of another clinic is rejected before it is mapped.
  /// Never throws; never reads anything outside its inputs.
  ProcessedRecord process(const rapidjson::Value& record, std::string_view expected_type = {},
                          const std::vector<std::string>* allowed_clinics = nullptr) const;

 private:
  const RuleSet& rules_;
  const PipelineSettings& settings_;
};

/// SHA-256 of the record with object keys sorted, so key order does not make a new version.
std::string canonicalHash(const rapidjson::Value& record, std::string* canonical_json = nullptr);

/// Adds the program-setting extension (valueCoding from CodeSystem program-setting) to a mapped
/// resource of a record whose program declares a setting (clinics[].programs[].setting). The
/// Patient and the Consent are left as they are. It is added before classification, so the
/// setting counts like any other code (court-mandated is sud: docs/privacy.md §2.4).
void addProgramSetting(rapidjson::Document& resource, std::string_view setting);

/// A Patient carrying only what the gateway knows from another record's envelope: the MRN
/// identifier, a data-absent name and gender unknown (US Core minimum).
rapidjson::Document stubPatient(std::string_view patient_id, std::string_view mrn_system, std::string_view mrn);

}  // namespace gw::ingest

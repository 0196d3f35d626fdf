#include "ingest/record_pipeline.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "consent/consent_record.hpp"

namespace gw::ingest {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void writeCanonical(const rapidjson::Value& v, Writer& w) {
  if (v.IsObject()) {
    std::vector<rapidjson::Value::ConstMemberIterator> members;
    members.reserve(v.MemberCount());
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) members.push_back(it);
    std::sort(members.begin(), members.end(),
              [](const auto& a, const auto& b) { return json::view(a->name) < json::view(b->name); });
    w.StartObject();
    for (const auto& m : members) {
      w.Key(m->name.GetString(), m->name.GetStringLength());
      writeCanonical(m->value, w);
    }
    w.EndObject();
  } else if (v.IsArray()) {
    w.StartArray();
    for (const auto& item : v.GetArray()) writeCanonical(item, w);
    w.EndArray();
  } else {
    v.Accept(w);
  }
}

bool listsClinic(const std::vector<std::string>& clinics, std::string_view clinic) {
  return std::any_of(clinics.begin(), clinics.end(), [&](const std::string& c) { return c == "*" || c == clinic; });
}

constexpr std::string_view kProgramSettingUrl = "https://fhir-gateway.dev/fhir/StructureDefinition/program-setting";
constexpr std::string_view kProgramSettingSystem = "https://fhir-gateway.dev/fhir/CodeSystem/program-setting";

std::string_view programSettingDisplay(std::string_view code) {
  if (code == "outpatient") return "Outpatient";
  if (code == "intensive-outpatient") return "Intensive outpatient";
  if (code == "residential") return "Residential";
  if (code == "court-mandated") return "Court-mandated";
  return {};
}

}  // namespace

void addProgramSetting(rapidjson::Document& resource, std::string_view setting) {
  const std::string_view type = json::getString(resource, "resourceType");
  // A Patient belongs to the clinic, not to one program; a Consent is the patient's, not the visit's.
  if (type == "Patient" || type == "Consent" || setting.empty()) return;
  auto& a = resource.GetAllocator();
  rapidjson::Value coding(rapidjson::kObjectType);
  coding.AddMember("system", json::str(kProgramSettingSystem, a), a);
  coding.AddMember("code", json::str(setting, a), a);
  if (const auto display = programSettingDisplay(setting); !display.empty()) {
    coding.AddMember("display", json::str(display, a), a);
  }
  rapidjson::Value extension(rapidjson::kObjectType);
  extension.AddMember("url", json::str(kProgramSettingUrl, a), a);
  extension.AddMember("valueCoding", coding, a);
  auto it = resource.FindMember("extension");
  if (it == resource.MemberEnd() || !it->value.IsArray()) {
    resource.RemoveMember("extension");
    resource.AddMember("extension", rapidjson::Value(rapidjson::kArrayType), a);
    it = resource.FindMember("extension");
  }
  it->value.PushBack(extension, a);
}

Result<std::shared_ptr<const RuleSet>> loadRuleSet(const RuleSetPaths& paths) {
  auto rules = std::make_shared<RuleSet>();
  GW_TRY(auto schemas, mapping::RecordSchemas::loadDirectory(paths.format_dir / "schemas"));
  rules->schemas = std::make_shared<const mapping::RecordSchemas>(std::move(schemas));
  GW_TRY(auto mappers, mapping::MapperSet::loadDirectory(paths.format_dir, rules->schemas.get()));
  rules->mappers = std::make_shared<const mapping::MapperSet>(std::move(mappers));
  GW_TRY(auto profiles, validate::ProfileSet::loadDirectory(paths.profiles_dir));
  rules->profiles = std::make_shared<const validate::ProfileSet>(std::move(profiles));
  GW_TRY(auto classifier, privacy::Classifier::load(privacy::ValueSetFiles::inProfilesDir(paths.profiles_dir)));
  rules->classifier = std::make_shared<const privacy::Classifier>(std::move(classifier));
  if (paths.csv_mappers_dir.empty()) {
    rules->csv_mappers = std::make_shared<const mapping::CsvMapperSet>();
  } else {
    GW_TRY(auto csv, mapping::CsvMapperSet::loadDirectory(paths.csv_mappers_dir));
    rules->csv_mappers = std::make_shared<const mapping::CsvMapperSet>(std::move(csv));
  }
  return std::shared_ptr<const RuleSet>(std::move(rules));
}

std::string canonicalHash(const rapidjson::Value& record, std::string* canonical_json) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  writeCanonical(record, w);
  const std::string_view text(buffer.GetString(), buffer.GetSize());
  if (canonical_json != nullptr) canonical_json->assign(text);
  return ids::sha256Hex(text);
}

rapidjson::Document stubPatient(std::string_view patient_id, std::string_view mrn_system, std::string_view mrn) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  using rapidjson::Value;
  d.AddMember("resourceType", "Patient", a);
  d.AddMember("id", json::str(patient_id, a), a);
  Value meta(rapidjson::kObjectType);
  Value profiles(rapidjson::kArrayType);
  profiles.PushBack("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient", a);
  meta.AddMember("profile", profiles, a);
  d.AddMember("meta", meta, a);
  Value identifier(rapidjson::kObjectType);
  identifier.AddMember("use", "usual", a);
  Value type(rapidjson::kObjectType);
  Value codings(rapidjson::kArrayType);
  Value coding(rapidjson::kObjectType);
  coding.AddMember("system", "http://terminology.hl7.org/CodeSystem/v2-0203", a);
  coding.AddMember("code", "MR", a);
  codings.PushBack(coding, a);
  type.AddMember("coding", codings, a);
  identifier.AddMember("type", type, a);
  identifier.AddMember("system", json::str(mrn_system, a), a);
  identifier.AddMember("value", json::str(mrn, a), a);
  Value identifiers(rapidjson::kArrayType);
  identifiers.PushBack(identifier, a);
  d.AddMember("identifier", identifiers, a);
  // US Core (us-core-6): a name, or a data-absent-reason on it, must be present.
  Value absent(rapidjson::kObjectType);
  absent.AddMember("url", "http://hl7.org/fhir/StructureDefinition/data-absent-reason", a);
  absent.AddMember("valueCode", "unknown", a);
  Value extensions(rapidjson::kArrayType);
  extensions.PushBack(absent, a);
  Value name(rapidjson::kObjectType);
  name.AddMember("extension", extensions, a);
  Value names(rapidjson::kArrayType);
  names.PushBack(name, a);
  d.AddMember("name", names, a);
  d.AddMember("gender", "unknown", a);
  return d;
}

RecordPipeline::RecordPipeline(const RuleSet& rules, const PipelineSettings& settings)
    : rules_(rules), settings_(settings) {}

ProcessedRecord RecordPipeline::process(const rapidjson::Value& record, std::string_view expected_type,
                                        const std::vector<std::string>* allowed_clinics) const {
  ProcessedRecord p;
  if (!record.IsObject()) {
    p.errors.push_back({"", "a record must be a JSON object", "send one record as in mappers/<format>/examples/"});
    return p;
  }
  p.record_id = std::string(json::getString(record, "record_id"));
  p.record_type = std::string(json::getString(record, "record_type"));
  if (!expected_type.empty() && p.record_type != expected_type) {
    p.errors.push_back({"record_type",
                        "record_type '" + p.record_type + "' is not the mapper's '" + std::string(expected_type) + "'",
                        "use a record of that type, or the mapper for this record"});
    return p;
  }
  const bool is_consent = p.record_type == "consent";

  p.stage = "schema";
  // 1. Schema; a consent is also held to the validity rules, so every problem is named at once.
  // Every caller (a clinic system, an engineer) learns which schema the field breaks. The hint
  // is made only for a record that breaks it: this runs for every record.
  auto schema_errors = rules_.schemas->validate(record);
  if (!schema_errors.empty()) {
    const std::string type = p.record_type.empty() ? std::string("<record_type>") : p.record_type;
    const std::string hint = "fix the record to match the " + type + " record schema (schemas/" + type +
                             ".schema.json of the mapping format; see docs/record-format.md)";
    for (auto& e : schema_errors) p.errors.push_back({std::move(e.path), std::move(e.reason), hint});
  }
  consent::ConsentReading consent_reading;
  if (is_consent && json::find(record, "consent") != nullptr) {
    consent_reading = consent::readConsentRecord(record);
    for (const auto& e : consent_reading.problems) {
      const bool reported = std::any_of(p.errors.begin(), p.errors.end(),
                                        [&](const FieldError& f) { return f.path == e.path; });
      if (!reported) p.errors.push_back({e.path, e.reason, e.hint});
    }
  }
  if (!p.errors.empty()) return p;
  p.known_type = true;

  p.stage = "clinic";
  // 2. Clinic, caller and program.
  p.clinic = std::string(json::getString(record, "clinic"));
  const config::Clinic* clinic = nullptr;
  for (const auto& c : settings_.clinics) {
    if (c.id == p.clinic) clinic = &c;
  }
  if (clinic == nullptr && !settings_.dry_run) {
    p.errors.push_back({"clinic", "clinic '" + p.clinic + "' is not configured on this gateway"});
    return p;
  }
  if (allowed_clinics != nullptr && !listsClinic(*allowed_clinics, p.clinic)) {
    p.errors.push_back({"clinic", "this token may not post records for clinic '" + p.clinic + "'"});
    return p;
  }
  const std::string_view program = json::getString(record, "program");
  std::string_view program_setting;
  if (clinic != nullptr) {
    const config::Program* program_config = nullptr;
    for (const auto& pr : clinic->programs) {
      if (pr.id == program) program_config = &pr;
    }
    if (!program.empty() && program_config == nullptr && !settings_.dry_run) {
      p.errors.push_back(
          {"program", "program '" + std::string(program) + "' is not configured for clinic '" + p.clinic + "'"});
      return p;
    }
    p.part2 = program_config != nullptr && program_config->part2;
    if (program_config != nullptr) program_setting = program_config->setting;
    p.identifier_system_base = clinic->identifier_system_base;
  } else {
    p.identifier_system_base = "https://ids.clinic-" + (p.clinic.empty() ? std::string("unknown") : p.clinic) + ".example/";
  }
  const auto* patient = json::find(record, "patient");
  p.mrn = patient != nullptr ? std::string(json::getString(*patient, "mrn")) : std::string();
  p.patient_id = ids::resourceId(p.clinic, "Patient", p.mrn);
  // Until its resources say otherwise, a record is as sensitive as its program makes it.
  p.classes = p.part2 ? privacy::ClassSet(privacy::DataClass::Sud) : privacy::ClassSet();

  p.stage = "consent";
  if (is_consent) {
    if (!consent_reading.version) {
      p.errors.push_back({"consent", "the consent could not be read"});
      return p;
    }
    p.consent = std::move(consent_reading.version);
    const auto& partners = settings_.partner_ids;
    if (!settings_.dry_run && std::find(partners.begin(), partners.end(), p.consent->partner_id) == partners.end()) {
      p.errors.push_back({"consent.recipient", "partner '" + p.consent->partner_id +
                                                   "' is not configured on this gateway (name a partner id from "
                                                   "the gateway configuration)"});
      return p;
    }
  }

  // 3. Map.
  p.stage = "mapping";
  if (!rules_.mappers->has(p.record_type)) {
    if (is_consent) {
      // A consent must take effect when it is accepted (a revocation above all): no holding it.
      p.errors.push_back({"record_type",
                          "this gateway has no consent mapper, so it cannot record consents now "
                          "(retry after its mapping set is fixed)"});
      return p;
    }
    p.state = store::RecordState::Unmapped;  // kept in the inbox until a mapper for it exists
    return p;
  }
  const mapping::MappingContext context{p.clinic, p.identifier_system_base};
  auto mapped = rules_.mappers->map(record, context);
  if (!mapped) {
    const auto& e = mapped.error();
    p.errors.push_back({e.where, e.message, e.hint});
    return p;
  }
  p.resources = std::move(mapped.value().resources);
  if (!program_setting.empty()) {
    for (auto& r : p.resources) addProgramSetting(r.resource, program_setting);
  }

  p.stage = "labelling";
  // 4. Classify and label every resource, so it is validated as it will leave (labels included).
  p.classified.reserve(p.resources.size());
  privacy::ClassSet record_classes;
  for (auto& r : p.resources) {
    ClassifiedResource c{r.resource_type, r.id, r.identifier_system, r.identifier_value};
    if (auto labelled = DisclosurePlanner::classifyAndLabel(*rules_.classifier, p.part2, r.resource, c); !labelled) {
      p.errors.push_back({"record", labelled.error().message});
      return p;
    }
    record_classes.add(c.classification.classes);
    p.classified.push_back(std::move(c));
  }
  p.classes = record_classes;

  p.stage = "validation";
  // 5. Validate. Nothing leaves that fails its profile: such a record is kept (the clinic's data is
  // not lost) as "invalid" with the outcome of its first failing resource, and nothing is queued.
  p.outcomes.reserve(p.resources.size());
  for (const auto& r : p.resources) {
    p.outcomes.push_back(rules_.profiles->validate(r.resource));
    if (!p.outcomes.back().valid() && p.invalid_outcome.empty())
      p.invalid_outcome = p.outcomes.back().operationOutcomeJson();
  }
  if (!p.invalid_outcome.empty()) {
    if (is_consent) {
      // Accepting it as "invalid" would leave the previous version (an active one, say) in force.
      p.errors.push_back(
          {"consent", "the consent's FHIR Consent fails its profile, so it was not recorded: " + p.invalid_outcome});
      return p;
    }
    p.state = store::RecordState::Invalid;
    return p;
  }
  p.state = store::RecordState::Mapped;

  if (is_consent) {
    for (const auto& r : p.resources) {
      if (r.resource_type == "Consent") p.consent->resource_id = r.id;
    }
    return p;  // a Consent is sent only with the Part 2 data it permits
  }

  p.stage = "labelling";
  // 6. Resources about a patient travel with that patient, created only if the partner lacks it.
  const bool has_patient = std::any_of(p.resources.begin(), p.resources.end(),
                                       [](const auto& r) { return r.resource_type == "Patient"; });
  if (!has_patient && !p.mrn.empty()) {
    const std::string mrn_system = p.identifier_system_base + "mrn";
    p.stub_patient = std::make_unique<rapidjson::Document>(stubPatient(p.patient_id, mrn_system, p.mrn));
    ClassifiedResource c{"Patient", p.patient_id, mrn_system, p.mrn};
    c.method = outbox::EntryMethod::ConditionalCreate;
    if (auto labelled = DisclosurePlanner::classifyAndLabel(*rules_.classifier, p.part2, *p.stub_patient, c); !labelled) {
      p.errors.push_back({"record", labelled.error().message});
      return p;
    }
    p.stub_classified = std::move(c);
  }
  return p;
}

}  // namespace gw::ingest

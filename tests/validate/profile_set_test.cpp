// Validator tests: every rule kind fails at least once with the right issue code and expression,
// every project profile passes on a realistic resource (all mapper goldens, found by globbing, so
// goldens added later are checked too), and broken profile files are reported as file:line:column.
#include "validate/profile_set.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "common/json.hpp"
#include "validate/validate_test_support.hpp"

namespace gw::validate {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using vtest::edit;
using vtest::kProfiles;
using vtest::kRepo;
using vtest::parse;
using vtest::readFile;
const std::string kGw = "https://fhir-gateway.dev/fhir/StructureDefinition/";

const ProfileSet& profiles() { return vtest::repoProfiles(); }

std::string describe(const ValidationResult& r) { return r.operationOutcomeJson(); }

// True when some issue has this code and expression.
bool hasIssue(const ValidationResult& r, std::string_view code, std::string_view expression) {
  for (const auto& i : r.issues) {
    if (i.code == code && i.expression == expression && i.severity == Severity::Error) return true;
  }
  return false;
}

#define EXPECT_ISSUE(result, code, expression)                                                                      \
  do {                                                                                                              \
    const auto& r_ = (result);                                                                                      \
    EXPECT_FALSE(r_.valid());                                                                                       \
    EXPECT_TRUE(hasIssue(r_, code, expression)) << "want " << code << " at " << expression << "\n" << describe(r_); \
  } while (0)

// ---- realistic resources for each project profile ----------------------------------------------

const char* kPatient = R"({
  "resourceType": "Patient", "id": "4850b438-f2bc-5596-a16a-244c1b6355b3",
  "meta": {"profile": ["https://fhir-gateway.dev/fhir/StructureDefinition/gw-patient"]},
  "identifier": [{"system": "https://ids.clinic-c1.example/mrn", "value": "A12345"}],
  "name": [{"family": "Rivera", "given": ["Ana"]}],
  "gender": "female", "birthDate": "1988-04-02"})";

const char* kMedicationRequest = R"({
  "resourceType": "MedicationRequest", "id": "6ec5d565-310e-5a10-96c4-3c1496123d9b",
  "meta": {"profile": ["https://fhir-gateway.dev/fhir/StructureDefinition/gw-medicationrequest"]},
  "extension": [{"url": "https://fhir-gateway.dev/fhir/StructureDefinition/take-home-doses", "valueInteger": 6}],
  "identifier": [{"system": "https://ids.clinic-c1.example/prescription", "value": "9100"}],
  "status": "active", "intent": "order",
  "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "991147"}]},
  "subject": {"reference": "Patient/4850b438-f2bc-5596-a16a-244c1b6355b3"},
  "authoredOn": "2026-11-19",
  "requester": {"type": "Practitioner", "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1245319599"}},
  "dosageInstruction": [{"text": "82.5 mg oral, once daily",
    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
    "doseAndRate": [{"doseQuantity": {"value": 82.5, "unit": "mg"}}]}],
  "dispenseRequest": {"numberOfRepeatsAllowed": 3, "quantity": {"value": 57.75}}})";

const char* kLab = R"({
  "resourceType": "Observation", "id": "lab-1",
  "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"]},
  "identifier": [{"system": "https://ids.clinic-c1.example/result", "value": "r-88"}],
  "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory", "display": "Laboratory"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "59673-4"}], "text": "Fentanyl urine screen"},
  "subject": {"reference": "urn:uuid:4850b438-f2bc-5596-a16a-244c1b6355b3"},
  "effectiveDateTime": "2026-11-20T09:00:00-05:00",
  "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "10828004"}]}})";

const char* kScreening = R"({
  "resourceType": "Observation", "id": "scr-1",
  "meta": {"profile": ["https://fhir-gateway.dev/fhir/StructureDefinition/gw-observation-screening"]},
  "identifier": [{"system": "https://ids.clinic-c1.example/screening", "value": "s-1"}],
  "status": "final",
  "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
  "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
  "subject": {"reference": "Patient/4850b438-f2bc-5596-a16a-244c1b6355b3"},
  "effectiveDateTime": "2026-11-20", "valueInteger": 12})";

const char* kHarmReduction = R"({
  "resourceType": "Observation", "id": "hr-1",
  "meta": {"profile": ["https://fhir-gateway.dev/fhir/StructureDefinition/gw-observation-harm-reduction"]},
  "identifier": [{"system": "https://ids.clinic-c1.example/service", "value": "svc-4:naloxone_kit"}],
  "status": "final",
  "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "720174008", "display": "Drug harm reduction program"}]}],
  "code": {"coding": [{"system": "https://fhir-gateway.dev/fhir/CodeSystem/harm-reduction-item", "code": "naloxone_kit"}]},
  "subject": {"reference": "Patient/4850b438-f2bc-5596-a16a-244c1b6355b3"},
  "effectiveDateTime": "2026-11-20", "valueQuantity": {"value": 2, "unit": "kit"}})";

const char* kOverdose = R"({
  "resourceType": "Observation", "id": "od-1",
  "meta": {"profile": ["https://fhir-gateway.dev/fhir/StructureDefinition/gw-observation-overdose"]},
  "identifier": [{"system": "https://ids.clinic-c1.example/event", "value": "e-1"}],
  "status": "final",
  "code": {"coding": [{"system": "https://fhir-gateway.dev/fhir/CodeSystem/overdose-event", "code": "overdose"}]},
  "subject": {"reference": "Patient/4850b438-f2bc-5596-a16a-244c1b6355b3"},
  "effectiveDateTime": "2026-11-18T23:10:00-05:00",
  "component": [{"code": {"text": "naloxone administered"}, "valueBoolean": true}]})";

const char* kCarePlan = R"({
  "resourceType": "CarePlan", "id": "cp-1",
  "meta": {"profile": ["https://fhir-gateway.dev/fhir/StructureDefinition/gw-careplan"]},
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">MOUD and counseling</div>"},
  "identifier": [{"system": "https://ids.clinic-c1.example/plan", "value": "p-1"}],
  "status": "active", "intent": "plan",
  "category": [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "code": "assess-plan"}]}],
  "subject": {"reference": "Patient/4850b438-f2bc-5596-a16a-244c1b6355b3"},
  "period": {"start": "2026-11-20"},
  "activity": [{"detail": {"kind": "MedicationRequest", "status": "in-progress", "description": "buprenorphine"}}]})";

const char* kConsent = R"({
  "resourceType": "Consent", "id": "cn-77",
  "meta": {"profile": ["https://fhir-gateway.dev/fhir/StructureDefinition/gw-consent"]},
  "identifier": [{"system": "https://ids.clinic-c1.example/consent", "value": "77"}],
  "status": "active",
  "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
  "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
  "patient": {"reference": "Patient/4850b438-f2bc-5596-a16a-244c1b6355b3"},
  "dateTime": "2026-11-20",
  "policy": [{"uri": "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2"}],
  "provision": {"type": "deny", "provision": [{"type": "permit", "period": {"start": "2026-11-20", "end": "2027-11-20"},
    "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
               "reference": {"reference": "Organization/st-mary"}}],
    "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}]}]}})";

const char* kEncounter =
    R"({"resourceType": "Encounter", "id": "06c6a4f1-ab06-55b4-b806-6a96daca3b9b", "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"]}, "extension": [{"url": "https://fhir-gateway.dev/fhir/StructureDefinition/encounter-modality", "valueCoding": {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "VIDEOCONF", "display": "videoconferencing"}}], "identifier": [{"system": "https://ids.clinic-c1.example/encounter", "value": "E-103"}], "status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual"}, "type": [{"coding": [{"system": "https://fhir-gateway.dev/fhir/CodeSystem/encounter-visit-type", "code": "counseling-group", "display": "Group counseling"}]}], "serviceType": {"coding": [{"system": "https://ids.clinic-c1.example/program", "code": "otp"}]}, "subject": {"reference": "Patient/4850b438-f2bc-5596-a16a-244c1b6355b3"}, "participant": [{"type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PPRF", "display": "primary performer"}]}], "individual": {"type": "Practitioner", "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1245319599"}, "display": "Dr. Mar\u00eda Ortiz"}}], "period": {"start": "2026-12-01T18:00:00-05:00", "end": "2026-12-01T19:30:00-05:00"}})";

// Encounter.class is bound (required) to AMB and VR; the visit type and period are required.
TEST(ProfileSetTest, EncounterClassTypeAndPeriod) {
  EXPECT_TRUE(profiles().validate(parse(kEncounter)).valid());
  EXPECT_ISSUE(profiles().validate(parse(edit(kEncounter, "/class/code", R"("EMER")"))), "code-invalid", "Encounter.class");
  auto no_type = parse(kEncounter);
  no_type.RemoveMember("type");
  EXPECT_ISSUE(profiles().validate(no_type), "required", "Encounter.type");
  auto no_period = parse(kEncounter);
  no_period.RemoveMember("period");
  EXPECT_ISSUE(profiles().validate(no_period), "required", "Encounter.period");
}

ValidationResult check(std::string_view text) { return profiles().validate(parse(text)); }

// ---- passing cases ------------------------------------------------------------------------------

TEST(ProfileSetTest, LoadsEveryProjectProfile) {
  EXPECT_THAT(profiles().profileUrls(),
              ::testing::ElementsAre(kGw + "gw-careplan", kGw + "gw-consent", kGw + "gw-encounter",
                                     kGw + "gw-medicationrequest", kGw + "gw-observation-harm-reduction",
                                     kGw + "gw-observation-lab", kGw + "gw-observation-overdose",
                                     kGw + "gw-observation-screening", kGw + "gw-patient"));
  EXPECT_TRUE(profiles().knowsProfile("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"));
  EXPECT_FALSE(profiles().knowsProfile("http://hl7.org/fhir/StructureDefinition/Observation"));
}

TEST(ProfileSetTest, EveryProjectProfileAcceptsARealisticResource) {
  std::set<std::string> covered;
  for (const char* text :
       {kPatient, kMedicationRequest, kLab, kScreening, kHarmReduction, kOverdose, kCarePlan, kConsent, kEncounter}) {
    const auto result = check(text);
    EXPECT_TRUE(result.valid()) << describe(result);
    EXPECT_TRUE(result.issues.empty()) << describe(result);
    covered.insert(result.profile);
  }
  for (const auto& url : profiles().profileUrls()) EXPECT_EQ(covered.count(url), 1U) << url << " has no passing case";
}

// Golden cases are named after their record type; this is the profile each record type's output
// must meet, whether or not the mapper writes it into meta.profile.
std::string profileForGolden(const std::string& file_name) {
  static const std::pair<const char*, const char*> kByPrefix[] = {
      {"patient_", "gw-patient"},
      {"prescription_", "gw-medicationrequest"},
      {"lab_", "gw-observation-lab"},
      {"screening_", "gw-observation-screening"},
      {"harm_reduction_", "gw-observation-harm-reduction"},
      {"overdose_", "gw-observation-overdose"},
      {"treatment_plan_", "gw-careplan"},
      {"consent_", "gw-consent"},
      {"encounter_", "gw-encounter"},
  };
  for (const auto& [prefix, profile] : kByPrefix) {
    if (file_name.rfind(prefix, 0) == 0) return kGw + profile;
  }
  return {};
}

TEST(ProfileSetTest, EveryMapperGoldenOutputIsValid) {
  std::size_t resources = 0;
  std::set<std::string> covered;
  for (const auto& entry : fs::recursive_directory_iterator(kRepo / "mappers")) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.size() < 14 || name.substr(name.size() - 14) != ".expected.json") continue;
    const rapidjson::Document doc = parse(readFile(entry.path()));
    ASSERT_TRUE(doc.IsArray()) << entry.path();
    const std::string profile = profileForGolden(name);
    for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
      SCOPED_TRACE(entry.path().string() + "[" + std::to_string(i) + "]");
      const auto as_claimed = profiles().validate(doc[i]);
      EXPECT_TRUE(as_claimed.issues.empty()) << describe(as_claimed);
      if (!profile.empty()) {
        const auto against = profiles().validateAgainst(doc[i], profile);
        EXPECT_TRUE(against.issues.empty()) << profile << ": " << describe(against);
        covered.insert(profile);
      }
      ++resources;
    }
  }
  EXPECT_GE(resources, 7U);  // patient and mat_prescription goldens at least
  EXPECT_GE(covered.size(), 2U);
}

TEST(ProfileSetTest, ValidateAgainstAnUnknownProfileIsAnError) {
  const auto result = profiles().validateAgainst(parse(kPatient), kGw + "gw-careplan");
  EXPECT_ISSUE(result, "not-supported", "Patient");
}

TEST(ProfileSetTest, ValidOutcomeIsInformational) {
  const auto outcome = parse(check(kPatient).operationOutcomeJson());
  EXPECT_EQ(json::getString(outcome, "resourceType"), "OperationOutcome");
  EXPECT_EQ(json::getString(outcome["issue"][0], "severity"), "information");
}

// ---- one failing case (at least) per rule kind --------------------------------------------------

TEST(ProfileSetTest, RequiredElementMissing) {
  EXPECT_ISSUE(check(edit(kPatient, "/gender", "")), "required", "Patient.gender");
  EXPECT_ISSUE(check(edit(kPatient, "/identifier/0/system", "")), "required", "Patient.identifier[0].system");
  // base R4 rule, no profile: Observation.code is 1..1
  EXPECT_ISSUE(check(edit(edit(kOverdose, "/meta", ""), "/code", "")), "required", "Observation.code");
}

TEST(ProfileSetTest, MaxCardinality) {
  // a single-valued element given as an array
  EXPECT_ISSUE(check(edit(kPatient, "/birthDate", R"(["1988-04-02"])")), "structure", "Patient.birthDate");
  // a repeating element given as a single object
  EXPECT_ISSUE(check(edit(kPatient, "/name", R"({"family": "Rivera"})")), "structure", "Patient.name");
  // a profile max: the take-home-doses extension allows no nested extensions (max 0)
  EXPECT_ISSUE(check(edit(kMedicationRequest, "/extension/0/extension",
                          R"([{"url": "http://example.org/x", "valueString": "a"}])")),
               "structure", "MedicationRequest.extension[0].extension");
  // a slice max: two laboratory categories where the lab profile allows one
  const std::string lab =
      R"({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]})";
  EXPECT_ISSUE(check(edit(kLab, "/category", "[" + lab + "," + lab + "]")), "structure", "Observation.category");
}

TEST(ProfileSetTest, PrimitiveFormats) {
  struct Case {
    const char* resource;
    const char* pointer;
    const char* value;
    const char* expression;
  };
  const Case cases[] = {
      {kPatient, "/id", R"("no spaces allowed")", "Patient.id"},                                           // id
      {kPatient, "/identifier/0/system", R"("https://ids example/mrn")", "Patient.identifier[0].system"},  // uri
      {kPatient, "/gender", R"(" female")", "Patient.gender"},                                             // code
      {kPatient, "/birthDate", R"("1988-02-30")", "Patient.birthDate"},                                    // date
      {kPatient, "/birthDate", R"("04/02/1988")", "Patient.birthDate"},                                    // date
      {kLab, "/effectiveDateTime", R"("2026-11-20T09:00")", "Observation.effectiveDateTime"},              // dateTime
      {kLab, "/effectiveDateTime", R"("2026-11-20T09:00:00")", "Observation.effectiveDateTime"},  // dateTime, no zone
      {kPatient, "/meta/lastUpdated", R"("2026-11-20")", "Patient.meta.lastUpdated"},             // instant
      {kHarmReduction, "/valueQuantity/value", R"("2")", "Observation.valueQuantity.value"},      // decimal
      {kScreening, "/valueInteger", "12.5", "Observation.valueInteger"},                          // integer
      {kPatient, "/active", R"("true")", "Patient.active"},                                       // boolean
      {kPatient, "/name/0/family", R"("")", "Patient.name[0].family"},                            // string
      {kMedicationRequest, "/dosageInstruction/0/timing/repeat/frequency", "0",
       "MedicationRequest.dosageInstruction[0].timing.repeat.frequency"},  // positiveInt
      {kMedicationRequest, "/dispenseRequest/numberOfRepeatsAllowed", "-1",
       "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed"},            // unsignedInt
      {kCarePlan, "/text/div", R"("<p>plan</p>")", "CarePlan.text.div"},       // xhtml
      {kConsent, "/policy/0/uri", R"("not a uri")", "Consent.policy[0].uri"},  // uri
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expression);
    EXPECT_ISSUE(check(edit(c.resource, c.pointer, c.value)), "value", c.expression);
  }
  // and values that are valid
  EXPECT_TRUE(check(edit(kPatient, "/birthDate", R"("2000-02-29")")).valid());
  EXPECT_TRUE(check(edit(kPatient, "/birthDate", R"("1988-04")")).valid());
  EXPECT_TRUE(check(edit(kLab, "/effectiveDateTime", R"("2026-11-20T09:00:00.125Z")")).valid());
  EXPECT_TRUE(check(edit(kPatient, "/meta/lastUpdated", R"("2026-11-20T09:00:00+14:00")")).valid());
}

TEST(ProfileSetTest, FixedValue) {
  // gw-careplan fixes intent to "plan"; "order" is a valid care-plan-intent code otherwise
  EXPECT_ISSUE(check(edit(kCarePlan, "/intent", R"("order")")), "value", "CarePlan.intent");
  // the extension's url is fixed; a value of the wrong type is an unknown element there
  EXPECT_ISSUE(
      check(edit(kMedicationRequest, "/extension/0",
                 R"({"url": "https://fhir-gateway.dev/fhir/StructureDefinition/take-home-doses", "valueString": "6"})")),
      "structure", "MedicationRequest.extension[0].valueString");
}

TEST(ProfileSetTest, PatternValue) {
  EXPECT_ISSUE(check(edit(kConsent, "/scope/coding/0/code", R"("research")")), "value", "Consent.scope");
  // category slice pattern: the lab category is missing
  EXPECT_ISSUE(check(edit(kLab, "/category/0/coding/0/code", R"("vital-signs")")), "required", "Observation.category");
  EXPECT_ISSUE(check(edit(kHarmReduction, "/category", "")), "required", "Observation.category");
  // a pattern is a subset: extra members and codings are fine
  EXPECT_TRUE(check(edit(kLab, "/category/0/coding/1", R"({"system": "http://example.org", "code": "x"})")).valid());
}

TEST(ProfileSetTest, RequiredBinding) {
  EXPECT_ISSUE(check(edit(kMedicationRequest, "/dosageInstruction/0/timing/repeat/periodUnit", R"("day")")), "code-invalid",
               "MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit");
  EXPECT_ISSUE(check(edit(kPatient, "/gender", R"("femal")")), "code-invalid", "Patient.gender");
  EXPECT_ISSUE(check(edit(kMedicationRequest, "/status", R"("revoked")")), "code-invalid", "MedicationRequest.status");
  EXPECT_ISSUE(check(edit(kCarePlan, "/text/status", R"("empty")")), "code-invalid", "CarePlan.text.status");
  EXPECT_ISSUE(check(edit(kConsent, "/provision/type", R"("maybe")")), "code-invalid", "Consent.provision.type");
  // nested provision (contentReference to Consent.provision) is checked too
  EXPECT_ISSUE(check(edit(kConsent, "/provision/provision/0/type", R"("allow")")), "code-invalid",
               "Consent.provision.provision[0].type");
}

TEST(ProfileSetTest, ReferenceTarget) {
  EXPECT_ISSUE(check(edit(kMedicationRequest, "/subject/reference", R"("Practitioner/p1")")), "structure",
               "MedicationRequest.subject.reference");
  EXPECT_ISSUE(check(edit(kMedicationRequest, "/subject/reference", R"("Patinet/p1")")), "value",
               "MedicationRequest.subject.reference");
  EXPECT_ISSUE(check(edit(kMedicationRequest, "/requester/type", R"("Group")")), "structure",
               "MedicationRequest.requester.type");
  EXPECT_ISSUE(check(edit(kLab, "/subject/reference", R"("urn:uuid:not-a-uuid")")), "value",
               "Observation.subject.reference");
  // absolute URLs and urn:uuid are fine when they name an allowed type
  EXPECT_TRUE(check(edit(kLab, "/subject/reference", R"("https://fhir.example.org/r4/Patient/abc")")).valid());
  EXPECT_TRUE(check(edit(kConsent, "/patient/reference", R"("urn:uuid:4850b438-f2bc-5596-a16a-244c1b6355b3")")).valid());
}

TEST(ProfileSetTest, UnknownElement) {
  EXPECT_ISSUE(check(edit(kPatient, "/nickname", R"("Ana")")), "structure", "Patient.nickname");
  // longer than the 16 bytes a lookup slot holds, and one letter off a real element
  EXPECT_ISSUE(check(edit(kMedicationRequest, "/medicationCodeableConcepts", R"({"text": "x"})")), "structure",
               "MedicationRequest.medicationCodeableConcepts");
  EXPECT_ISSUE(check(edit(kMedicationRequest, "/dosageInstruction/0/timing/repeat/perodUnit", R"("d")")), "structure",
               "MedicationRequest.dosageInstruction[0].timing.repeat.perodUnit");
  // a choice type the profile does not allow is unknown there
  EXPECT_ISSUE(check(edit(edit(kLab, "/effectiveDateTime", ""), "/effectiveTiming", R"({"event": ["2026-11-20"]})")),
               "structure", "Observation.effectiveTiming");
  // two forms of one choice element
  EXPECT_ISSUE(check(edit(kLab, "/effectivePeriod", R"({"start": "2026-11-20"})")), "structure",
               "Observation.effectivePeriod");
  // an extension in the gateway's namespace that no StructureDefinition defines
  EXPECT_ISSUE(check(edit(kMedicationRequest, "/extension/0/url",
                          R"("https://fhir-gateway.dev/fhir/StructureDefinition/take-home-dose")")),
               "structure", "MedicationRequest.extension[0]");
}

TEST(ProfileSetTest, EmptyValues) {
  EXPECT_ISSUE(check(edit(kPatient, "/address", "[{}]")), "invalid", "Patient.address[0]");
  EXPECT_ISSUE(check(edit(kPatient, "/telecom", "[]")), "invalid", "Patient.telecom");
  EXPECT_ISSUE(check(edit(kPatient, "/name/0/given/0", R"("")")), "value", "Patient.name[0].given[0]");
  EXPECT_ISSUE(check(edit(kPatient, "/birthDate", "null")), "invalid", "Patient.birthDate");
}

TEST(ProfileSetTest, ProfileCardinalityMinAndBaseRulesWithoutProfile) {
  // gw-medicationrequest requires a dosage instruction; base R4 does not
  const std::string no_dosage = edit(kMedicationRequest, "/dosageInstruction", "");
  EXPECT_ISSUE(check(no_dosage), "required", "MedicationRequest.dosageInstruction");
  const auto base_only = check(edit(no_dosage, "/meta", ""));
  EXPECT_TRUE(base_only.valid()) << describe(base_only);
  EXPECT_TRUE(base_only.profile.empty());
}

TEST(ProfileSetTest, UnknownProfileIsAWarningAndBaseRulesStillApply) {
  const std::string text = edit(kPatient, "/meta/profile/0", R"("http://example.org/StructureDefinition/other")");
  const auto result = check(text);
  EXPECT_TRUE(result.valid()) << describe(result);
  ASSERT_EQ(result.issues.size(), 1U);
  EXPECT_EQ(result.issues[0].severity, Severity::Warning);
  EXPECT_ISSUE(check(edit(text, "/gender", R"("x")")), "code-invalid", "Patient.gender");
}

TEST(ProfileSetTest, UnsupportedResourceType) {
  EXPECT_ISSUE(check(R"({"resourceType": "Appointment", "status": "booked"})"), "not-supported", "Appointment.resourceType");
}

TEST(ProfileSetTest, OutcomeHasOneIssuePerProblemAndNoInstanceValues) {
  std::string text = edit(kPatient, "/birthDate", R"("1988-02-30")");
  text = edit(text, "/gender", R"("secretcode")");
  const auto result = check(text);
  ASSERT_EQ(result.issues.size(), 2U) << describe(result);
  const std::string json = result.operationOutcomeJson();
  EXPECT_THAT(json, ::testing::Not(HasSubstr("1988-02-30")));
  EXPECT_THAT(json, ::testing::Not(HasSubstr("secretcode")));
  const auto outcome = parse(json);
  const auto& issues = outcome["issue"];
  const auto& issue = std::string(issues[0]["expression"][0].GetString()) == "Patient.birthDate" ? issues[0] : issues[1];
  EXPECT_EQ(json::getString(issue, "severity"), "error");
  EXPECT_EQ(json::getString(issue, "code"), "value");
  EXPECT_THAT(std::string(json::getString(issue, "diagnostics")), HasSubstr("not a valid date"));
  EXPECT_EQ(std::string(issue["expression"][0].GetString()), "Patient.birthDate");
}

// ---- profile files with errors ------------------------------------------------------------------

class ProfileFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw_validate_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_ / "StructureDefinition");
    for (const char* sub : {"base", "CodeSystem", "ValueSet"})
      fs::copy(kProfiles / sub, dir_ / sub, fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / "StructureDefinition" / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  static std::string profile(const std::string& elements) {
    return R"({
  "resourceType": "StructureDefinition",
  "url": "https://fhir-gateway.dev/fhir/StructureDefinition/test-patient",
  "type": "Patient",
  "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
  "derivation": "constraint",
  "differential": {"element": [
    {"id": "Patient", "path": "Patient"},
)" + elements +
           "\n  ]}\n}\n";
  }

  // "file:line:column" of the first occurrence of `needle` in what was written to `file`.
  static std::string positionOf(const std::string& file, std::string_view needle) {
    const std::string text = readFile(file);
    const auto offset = text.find(needle);
    EXPECT_NE(offset, std::string::npos) << needle;
    const auto [line, column] = json::lineColumn(text, offset);
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
  }

  fs::path dir_;
};

TEST_F(ProfileFilesTest, CustomProfileCardinality) {
  write("test-patient.json", profile(R"(    {"id": "Patient.name", "path": "Patient.name", "max": "1"},
    {"id": "Patient.name.given", "path": "Patient.name.given", "min": 2})"));
  auto loaded = ProfileSet::loadDirectory(dir_);
  ASSERT_TRUE(loaded) << loaded.error().describe();
  const std::string text = edit(edit(kPatient, "/meta/profile/0",
                                     R"("https://fhir-gateway.dev/fhir/StructureDefinition/test-patient")"),
                                "/name/1", R"({"family": "R", "given": ["A", "B"]})");
  const auto result = loaded.value().validate(parse(text));
  EXPECT_ISSUE(result, "required", "Patient.name[0].given");  // cardinality min: 1 given, needs 2
  EXPECT_ISSUE(result, "structure", "Patient.name");          // cardinality max: 2 names, allows 1
}

TEST_F(ProfileFilesTest, SyntaxErrorHasFileLineColumn) {
  const std::string file = write("broken.json", "{\n  \"resourceType\": \"StructureDefinition\",\n  \"url\" \"x\"\n}\n");
  auto loaded = ProfileSet::loadDirectory(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::Config);
  EXPECT_EQ(loaded.error().where, file + ":3:9");
  EXPECT_THAT(loaded.error().message, HasSubstr("malformed JSON"));
}

TEST_F(ProfileFilesTest, UnknownElementPathHasFileLineColumn) {
  const std::string file = write("test-patient.json",
                                 profile(R"(    {"id": "Patient.nickname", "path": "Patient.nickname", "min": 1})"));
  auto loaded = ProfileSet::loadDirectory(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().where, positionOf(file, "\"Patient.nickname\", \"min\""));  // the "path" value
  EXPECT_THAT(loaded.error().message, HasSubstr("no element \"nickname\" in Patient"));
}

TEST_F(ProfileFilesTest, LooseningCardinalityAndUnsupportedRulesAreRejected) {
  std::string file = write("test-patient.json",
                           profile(R"(    {"id": "Patient.link.other", "path": "Patient.link.other", "min": 0})"));
  auto loaded = ProfileSet::loadDirectory(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().where, positionOf(file, "0}"));
  EXPECT_THAT(loaded.error().message, HasSubstr("below the base min"));

  file = write("test-patient.json", profile(R"(    {"id": "Patient.name.family", "path": "Patient.name.family",
     "maxLength": 40})"));
  loaded = ProfileSet::loadDirectory(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().where, positionOf(file, "40}"));
  EXPECT_THAT(loaded.error().message, HasSubstr("not supported"));

  // a constraint without the parts an invariant needs
  file = write("test-patient.json", profile(R"(    {"id": "Patient.gender", "path": "Patient.gender",
     "constraint": [{"key": "x-1", "expression": "true"}]})"));
  loaded = ProfileSet::loadDirectory(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().where, positionOf(file, "{\"key\""));
  EXPECT_THAT(loaded.error().message, HasSubstr("a constraint needs key, severity"));
}

TEST_F(ProfileFilesTest, RequiredBindingToAValueSetThatIsNotShipped) {
  const std::string file = write("test-patient.json", profile(R"(    {"id": "Patient.gender", "path": "Patient.gender",
     "binding": {"strength": "required", "valueSet": "http://example.org/ValueSet/missing"}})"));
  auto loaded = ProfileSet::loadDirectory(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().where, positionOf(file, "{\"strength\""));
  EXPECT_THAT(loaded.error().message, HasSubstr("not in fhir-profiles/ValueSet"));
}

}  // namespace
}  // namespace gw::validate

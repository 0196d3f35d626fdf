#include "mapping/record_schemas.hpp"

#include <gmock/gmock.h>

#include <thread>

#include "test_support.hpp"

namespace gw::mapping {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::parseJson;
using testing::schemasDir;
using testing::ScratchDir;

// The patient, prescription and consent examples of docs/record-format.md §3, verbatim.
constexpr const char* kSpecPatient = R"({"record_id":"c1:pt:A12345","record_type":"patient","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:00:00-05:00",
 "patient":{"mrn":"A12345","family_name":"Rivera","given_names":["Ana","M"],
            "birth_date":"1988-04-02","sex":"female","phone":"555-0100",
            "address":{"lines":["12 Elm St"],"city":"Dayton","state":"OH","postal_code":"45402"}}})";
constexpr const char* kSpecPrescription =
    R"({"record_id":"c1:rx:9001","record_type":"mat_prescription","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":"A12345"},
 "prescription":{"id":"9001","medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},
   "dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","quantity":14,
   "days_supply":14,"refills":0,"status":"active","written_on":"2026-11-20",
   "prescriber":{"npi":"1234567893","name":"Dr. Lee"},"diagnosis":{"system":"icd10","code":"F11.20"}}})";
constexpr const char* kSpecConsent = R"({"record_id":"c1:cn:77","record_type":"consent","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T08:55:00-05:00","patient":{"mrn":"A12345"},
 "consent":{"id":"77","recipient":"st-mary","purposes":["TREAT"],"categories":["general","sud"],
   "effective":{"start":"2026-11-20","end":"2027-11-20"},"signed_on":"2026-11-20",
   "signed_by":"patient","status":"active"}})";

// Plausible records for the other types.
constexpr const char* kLabResult = R"({"record_id":"c1:lab:5","record_type":"lab_result","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T10:00:00-05:00","patient":{"mrn":"A12345"},
 "result":{"id":"5","loinc":"59673-4","name":"Fentanyl screen, urine","value":"negative",
   "collected_at":"2026-11-19T16:20:00-05:00","status":"final"}})";
constexpr const char* kLabResultNumeric = R"({"record_id":"c1:lab:6","record_type":"lab_result","clinic":"c1",
 "recorded_at":"2026-11-20T10:00:00Z","patient":{"mrn":"A12345"},
 "result":{"id":"6","loinc":"13955-0","name":"HCV Ab","value":0.12,"unit":"S/CO",
   "collected_at":"2026-11-19T16:20:00.5Z","status":"corrected"}})";
constexpr const char* kScreening = R"({"record_id":"c1:scr:8","record_type":"screening","clinic":"c1",
 "recorded_at":"2026-11-20T10:00:00-05:00","patient":{"mrn":"A12345"},
 "screening":{"id":"8","instrument":"phq9","total_score":11,"item_scores":[1,2,1,1,2,1,1,1,1],
   "administered_at":"2026-11-20T09:40:00-05:00"}})";
constexpr const char* kService =
    R"({"record_id":"c1:hr:3","record_type":"harm_reduction_service","clinic":"c1","program":"ssp",
 "recorded_at":"2026-11-20T10:00:00-05:00","patient":{"mrn":"A12345"},
 "service":{"id":"3","date":"2026-11-20","site":"van 2",
   "items":[{"kind":"naloxone_kit","quantity":2},{"kind":"syringes","quantity":50},{"kind":"education"}]}})";
constexpr const char* kEncounter =
    R"({"record_id":"c1:enc:E-1","record_type":"encounter","clinic":"c1","program":"otp",
        "recorded_at":"2026-12-01T10:00:00-05:00","patient":{"mrn":"A12345"},
        "encounter":{"id":"E-1","status":"finished","visit_type":"counseling_group","modality":"telehealth_video",
          "start":"2026-12-01T09:00:00-05:00","end":"2026-12-01T10:00:00-05:00",
          "provider":{"npi":"1245319599","name":"Dr. Ortiz"}}})";
constexpr const char* kEncounterMinimal =
    R"({"record_id":"c1:enc:E-2","record_type":"encounter","clinic":"c1","recorded_at":"2026-12-01T10:00:00-05:00",
        "patient":{"mrn":"A12345"},"encounter":{"id":"E-2","status":"planned","visit_type":"intake","modality":"in_person",
          "start":"2026-12-02T09:00:00-05:00"}})";
constexpr const char* kOverdose = R"({"record_id":"c1:od:4","record_type":"overdose_event","clinic":"c1",
 "recorded_at":"2026-11-20T10:00:00-05:00","patient":{"mrn":"A12345"},
 "event":{"id":"4","occurred_at":"2026-11-18T23:10:00-05:00","substance_suspected":"fentanyl",
   "naloxone_administered":true,"naloxone_doses":2,"outcome":"survived","reported_by":"peer worker"}})";
constexpr const char* kPlan = R"({"record_id":"c1:cp:2","record_type":"treatment_plan","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T10:00:00-05:00","patient":{"mrn":"A12345"},
 "plan":{"id":"2","status":"active","period":{"start":"2026-11-20"},"goals":["Stable housing","No overdoses"],
   "activities":[{"kind":"moud","detail":"buprenorphine maintenance","status":"in-progress"},
                 {"kind":"psychiatric_care","detail":"monthly visit","status":"scheduled"}],
   "author":{"npi":"1234567893","name":"Dr. Lee"}}})";

class RecordSchemasTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto loaded = RecordSchemas::loadDirectory(schemasDir());
    ASSERT_TRUE(loaded) << loaded.error().describe();
    schemas_ = new RecordSchemas(std::move(loaded).value());
  }
  static void TearDownTestSuite() {
    delete schemas_;
    schemas_ = nullptr;
  }

  // Errors for the documented prescription example after `edit` changes it.
  template <class Edit>
  std::vector<RecordSchemas::FieldError> prescriptionErrors(Edit edit) const {
    auto doc = parseJson(kSpecPrescription);
    edit(doc, doc.GetAllocator());
    return schemas_->validate(doc);
  }

  static RecordSchemas* schemas_;
};

RecordSchemas* RecordSchemasTest::schemas_ = nullptr;

using Alloc = rapidjson::Document::AllocatorType;

std::string dump(const std::vector<RecordSchemas::FieldError>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  " + e.path + ": " + e.reason + "\n";
  return out;
}

TEST_F(RecordSchemasTest, KnowsAllNineRecordTypes) {
  for (const char* type : {"patient", "mat_prescription", "lab_result", "screening", "harm_reduction_service",
                           "overdose_event", "treatment_plan", "consent", "encounter"}) {
    EXPECT_TRUE(schemas_->knows(type)) << type;
  }
  EXPECT_EQ(schemas_->recordTypes().size(), 9u);
  EXPECT_FALSE(schemas_->knows("invoice"));
}

TEST_F(RecordSchemasTest, AcceptsTheSpecExamplesAndPlausibleRecordsOfEveryType) {
  for (const char* text : {kSpecPatient, kSpecPrescription, kSpecConsent, kLabResult, kLabResultNumeric, kScreening,
                           kService, kOverdose, kPlan, kEncounter, kEncounterMinimal}) {
    const auto doc = parseJson(text);
    const auto errors = schemas_->validate(doc);
    EXPECT_TRUE(errors.empty()) << json::getString(doc, "record_type") << ":\n" << dump(errors);
  }
}

// A record of a visit names its encounter; a patient or consent record belongs to no visit.
TEST_F(RecordSchemasTest, EncounterIdOnTheRecordsOfAVisitOnly) {
  for (const char* text : {kLabResult, kScreening, kService, kOverdose, kPlan, kSpecPrescription}) {
    auto doc = parseJson(text);
    doc.AddMember("encounter_id", "E-1", doc.GetAllocator());
    const auto errors = schemas_->validate(doc);
    EXPECT_TRUE(errors.empty()) << json::getString(doc, "record_type") << "\n" << dump(errors);
    doc["encounter_id"] = "E|1";
    EXPECT_FALSE(schemas_->validate(doc).empty()) << "an id with '|'";
  }
  for (const char* text : {kSpecPatient, kSpecConsent, kEncounter}) {
    auto doc = parseJson(text);
    doc.AddMember("encounter_id", "E-1", doc.GetAllocator());
    const auto errors = schemas_->validate(doc);
    ASSERT_EQ(errors.size(), 1u) << json::getString(doc, "record_type");
    EXPECT_EQ(errors[0].path, "encounter_id");
  }
}

TEST_F(RecordSchemasTest, EncounterVisitTypesAndModalitiesAreClosedLists) {
  auto doc = parseJson(kEncounter);
  doc["encounter"]["modality"] = "video";
  auto errors = schemas_->validate(doc);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "encounter.modality");
  EXPECT_THAT(errors[0].reason, ::testing::HasSubstr("telehealth_video"));
  doc = parseJson(kEncounter);
  doc["encounter"]["visit_type"] = "counseling";
  errors = schemas_->validate(doc);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "encounter.visit_type");
}

TEST_F(RecordSchemasTest, RejectsUnknownTopLevelField) {
  const auto errors = prescriptionErrors([](rapidjson::Document& d, Alloc& a) { d.AddMember("note", "x", a); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "note");
  EXPECT_EQ(errors[0].reason, "unknown field 'note'");
}

TEST_F(RecordSchemasTest, TypoInNestedFieldReportsUnknownAndMissing) {
  const auto errors = prescriptionErrors([](rapidjson::Document& d, Alloc&) {
    auto& rx = d["prescription"];
    auto it = rx.FindMember("frequency");
    it->name.SetString(rapidjson::StringRef("frequncy"));
  });
  ASSERT_EQ(errors.size(), 2u) << dump(errors);
  EXPECT_EQ(errors[0].path, "prescription.frequncy");
  EXPECT_EQ(errors[0].reason, "unknown field 'frequncy'");
  EXPECT_EQ(errors[1].path, "prescription.frequency");
  EXPECT_EQ(errors[1].reason, "missing required field 'frequency'");
}

TEST_F(RecordSchemasTest, RejectsMissingRequiredFieldWithItsPath) {
  const auto errors = prescriptionErrors(
      [](rapidjson::Document& d, Alloc&) { d["prescription"]["dose"].RemoveMember("unit"); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "prescription.dose.unit");
  EXPECT_EQ(errors[0].reason, "missing required field 'unit'");
}

TEST_F(RecordSchemasTest, RejectsWrongEnumListingTheAllowedValues) {
  const auto errors = prescriptionErrors(
      [](rapidjson::Document& d, Alloc&) { d["prescription"]["frequency"].SetString("hourly"); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "prescription.frequency");
  EXPECT_EQ(errors[0].reason, "value 'hourly' is not one of daily, bid, tid, weekly, monthly, once");
}

TEST_F(RecordSchemasTest, RejectsWrongTypeWithItsPath) {
  auto errors = prescriptionErrors(
      [](rapidjson::Document& d, Alloc&) { d["prescription"]["dose"]["value"].SetString("1"); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "prescription.dose.value");
  EXPECT_EQ(errors[0].reason, "expected number, got string");

  // Through a $ref into "definitions".
  errors = prescriptionErrors(
      [](rapidjson::Document& d, Alloc&) { d["prescription"]["prescriber"]["npi"].SetUint64(1234567893); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "prescription.prescriber.npi");
  EXPECT_EQ(errors[0].reason, "expected string, got number");

  errors = prescriptionErrors([](rapidjson::Document& d, Alloc&) { d["prescription"]["refills"].SetDouble(1.5); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "prescription.refills");
  EXPECT_EQ(errors[0].reason, "expected integer, got number");
}

TEST_F(RecordSchemasTest, DateErrorsDescribeTheFormatWithoutQuotingTheValue) {
  auto errors = prescriptionErrors(
      [](rapidjson::Document& d, Alloc&) { d["prescription"]["written_on"].SetString("2026-13-01"); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "prescription.written_on");
  EXPECT_EQ(errors[0].reason, "expected a calendar date YYYY-MM-DD");

  errors = prescriptionErrors([](rapidjson::Document& d, Alloc&) { d["recorded_at"].SetString("2026-11-20T09:05:00"); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "recorded_at");
  EXPECT_THAT(errors[0].reason, HasSubstr("RFC 3339 date-time with offset"));
  EXPECT_THAT(errors[0].reason, Not(HasSubstr("09:05")));
}

TEST_F(RecordSchemasTest, RecordIdMustNotContainPipeOrControlCharacters) {
  for (const char* bad : {"c1|rx|9001", "c1:rx:\t9001", ""}) {
    const auto errors = prescriptionErrors(
        [&](rapidjson::Document& d, Alloc&) { d["record_id"].SetString(rapidjson::StringRef(bad)); });
    ASSERT_FALSE(errors.empty()) << "accepted record_id '" << bad << "'";
    EXPECT_EQ(errors[0].path, "record_id");
  }
  auto errors = prescriptionErrors(
      [](rapidjson::Document& d, Alloc& a) { d["record_id"].SetString(std::string(129, 'x'), a); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].reason, "must be at most 128 characters long");
}

TEST_F(RecordSchemasTest, DemographicsOnlyInPatientRecords) {
  const auto errors = prescriptionErrors(
      [](rapidjson::Document& d, Alloc& a) { d["patient"].AddMember("family_name", "Rivera", a); });
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "patient.family_name");
  EXPECT_EQ(errors[0].reason, "unknown field 'family_name'");
}

TEST_F(RecordSchemasTest, ReportsSeveralIndependentErrors) {
  const auto errors = prescriptionErrors([](rapidjson::Document& d, Alloc& a) {
    d.AddMember("extra", 1, a);
    d["prescription"]["route"].SetString("rectal");
    d["prescription"]["dose"].RemoveMember("value");
    d["prescription"]["prescriber"]["npi"].SetString("12345");
  });
  ASSERT_EQ(errors.size(), 4u) << dump(errors);
  std::vector<std::string> paths;
  for (const auto& e : errors) paths.push_back(e.path);
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre("extra", "prescription.route", "prescription.dose.value",
                                                     "prescription.prescriber.npi"));
}

TEST_F(RecordSchemasTest, ArrayItemErrorsNameTheIndex) {
  auto doc = parseJson(kSpecConsent);
  doc["consent"]["categories"][1].SetString("finance");
  auto errors = schemas_->validate(doc);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "consent.categories[1]");
  EXPECT_EQ(errors[0].reason, "value 'finance' is not one of general, sud, mh");

  doc = parseJson(kSpecConsent);
  doc["consent"]["categories"][1].SetString("general");
  errors = schemas_->validate(doc);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "consent.categories[1]");
  EXPECT_THAT(errors[0].reason, HasSubstr("unique"));
}

TEST_F(RecordSchemasTest, UnknownOrMissingRecordTypeIsOneErrorAtRecordType) {
  auto doc = parseJson(kSpecPrescription);
  doc["record_type"].SetString("invoice");
  auto errors = schemas_->validate(doc);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "record_type");
  EXPECT_THAT(errors[0].reason, HasSubstr("'invoice' is not one of"));
  EXPECT_THAT(errors[0].reason, HasSubstr("mat_prescription"));

  doc.RemoveMember("record_type");
  errors = schemas_->validate(doc);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "record_type");
  EXPECT_EQ(errors[0].reason, "missing required field 'record_type'");

  const auto array = parseJson("[]");
  errors = schemas_->validate(array);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "");
}

TEST_F(RecordSchemasTest, ControlCharactersInTextAreRejected) {
  auto doc = parseJson(kSpecPatient);
  doc["patient"]["family_name"].SetString(
      rapidjson::StringRef("Riv\x01"
                           "era"));
  auto errors = schemas_->validate(doc);
  ASSERT_EQ(errors.size(), 1u) << dump(errors);
  EXPECT_EQ(errors[0].path, "patient.family_name");
  // A NUL would end RapidJSON's regex input early; it is caught all the same.
  doc = parseJson(kSpecPatient);
  doc["patient"]["mrn"].SetString(
      "A1\0"
      "23",
      5);
  errors = schemas_->validate(doc);
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors.back().path, "patient.mrn");
}

TEST_F(RecordSchemasTest, CalendarPatternsRejectImpossibleMonthsButLeaveDaysToTheMapper) {
  auto doc = parseJson(kSpecPatient);
  doc["patient"]["birth_date"].SetString("1990-00-10");
  EXPECT_EQ(schemas_->validate(doc).size(), 1u);
  doc["patient"]["birth_date"].SetString("1990-02-30");  // shape is fine; the mapper's $date rejects the day
  EXPECT_TRUE(schemas_->validate(doc).empty());
}

TEST_F(RecordSchemasTest, DeclaresFieldFollowsPropertiesItemsAndRefs) {
  EXPECT_TRUE(schemas_->declaresField("mat_prescription", "/prescription/dose/value"));
  EXPECT_TRUE(schemas_->declaresField("mat_prescription", "/prescription/prescriber/npi"));  // via $ref
  EXPECT_TRUE(schemas_->declaresField("mat_prescription", "/patient/mrn"));
  EXPECT_TRUE(schemas_->declaresField("patient", "/patient/given_names/0"));
  EXPECT_FALSE(schemas_->declaresField("mat_prescription", "/prescription/frequncy"));
  EXPECT_FALSE(schemas_->declaresField("mat_prescription", "/patient/family_name"));
  EXPECT_FALSE(schemas_->declaresField("invoice", "/x"));
}

TEST_F(RecordSchemasTest, ConcurrentValidationGivesTheSameAnswers) {
  const auto good = parseJson(kSpecPrescription);
  auto bad = parseJson(kSpecPrescription);
  bad["prescription"]["frequency"].SetString("hourly");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (!schemas_->validate(good).empty()) ++wrong;
        const auto errors = schemas_->validate(bad);
        if (errors.size() != 1 || errors[0].path != "prescription.frequency") ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(RecordSchemasLoad, MalformedSchemaNamesFileLineAndColumn) {
  ScratchDir dir;
  dir.write("patient.schema.json", "{\n  \"type\": \"object\",\n  \"properties\": {,}\n}\n");
  auto loaded = RecordSchemas::loadDirectory(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code, ErrorCode::Config);
  EXPECT_EQ(loaded.error().where, (dir.path() / "patient.schema.json").string() + ":3:18");
  EXPECT_THAT(loaded.error().message, HasSubstr("malformed JSON"));
}

TEST(RecordSchemasLoad, PatternTheRegexEngineCannotCompileIsAnError) {
  ScratchDir dir;
  dir.write("patient.schema.json", R"({
  "type": "object",
  "properties": {
    "record_type": {"enum": ["patient"]},
    "record_id": {"type": "string", "pattern": "^\\d+$"}
  }
})");
  auto loaded = RecordSchemas::loadDirectory(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().where, (dir.path() / "patient.schema.json").string() + ":5:48");
  EXPECT_THAT(loaded.error().message, HasSubstr("pattern"));
  EXPECT_THAT(loaded.error().hint, HasSubstr("[0-9]"));
}

TEST(RecordSchemasLoad, RecordTypeMustMatchTheFileName) {
  ScratchDir dir;
  dir.write("patient.schema.json", R"({"type": "object", "properties": {"record_type": {"enum": ["consent"]}}})");
  auto loaded = RecordSchemas::loadDirectory(dir.path());
  ASSERT_FALSE(loaded);
  EXPECT_THAT(loaded.error().message, HasSubstr("[\"patient\"]"));
}

TEST(RecordSchemasLoad, MissingDirectoryOrEmptyDirectoryIsAnError) {
  EXPECT_FALSE(RecordSchemas::loadDirectory("/nonexistent/gw-schemas"));
  ScratchDir dir;
  EXPECT_FALSE(RecordSchemas::loadDirectory(dir.path()));
}

}  // namespace
}  // namespace gw::mapping

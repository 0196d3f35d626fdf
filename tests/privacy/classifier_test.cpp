// Classification of the mappers' golden output against the shipped value sets
// (docs/privacy.md §2), and the value set loader's errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "privacy/classifier.hpp"
#include "privacy/test_support.hpp"

namespace gw::privacy {
namespace {

using testing::golden;
using testing::goldenDir;
using testing::goldenResource;
using testing::parseJson;
using testing::readFile;
using testing::shippedClassifier;

struct Expected {
  std::string classes;  // without a Part 2 program, classSetName() form
  bool opioid = false;
};

// Every golden case of mappers/clinic-v1: what each of its resources is without a Part 2
// program. A new golden case must be added here (the test fails until it is).
const std::map<std::string, Expected>& expectations() {
  static const std::map<std::string, Expected> table = {
      {"consent_revoked_at_instant", {"general"}},
      {"consent_revoked_representative", {"general"}},
      {"consent_spec_example", {"general"}},
      {"consent_tpo_sud", {"general"}},
      {"harm_reduction_all_items", {"sud"}},  // naloxone kits, HIV and HCV tests too: harm-reduction services
      {"harm_reduction_minimal", {"sud"}},
      {"harm_reduction_overdose_response", {"sud"}},       // naloxone administered, rescue breathing, EMS called
      {"harm_reduction_supervised_consumption", {"sud"}},  // a supervised consumption visit
      {"harm_reduction_with_encounter", {"sud"}},
      // Encounters: as their program (general here, sud for a Part 2 program), but a dosing visit is sud
      // (MOUD) and a psychiatric visit mh whichever program holds it.
      {"encounter_counseling_family_in_person", {"general"}},
      {"encounter_counseling_group_video", {"general"}},
      {"encounter_counseling_individual_telephone", {"general"}},
      {"encounter_dosing_in_person", {"sud"}},
      {"encounter_intake_in_person", {"general"}},
      {"encounter_medical_video", {"general"}},
      {"encounter_minimal_planned", {"general"}},
      {"encounter_peer_support_telephone", {"general"}},
      {"encounter_psychiatric_video", {"mh"}},
      {"lab_fentanyl_positive", {"sud", true}},
      {"lab_negative_at_plus14", {"sud", true}},   // buprenorphine screen: a negative UDS is still a UDS
      {"lab_quantity", {"sud", true}},             // norbuprenorphine in urine
      {"lab_quantity_without_unit", {"general"}},  // creatinine
      {"lab_with_encounter", {"sud", true}},       // the encounter reference (by identifier) adds nothing
      {"overdose_full", {"sud"}},
      {"overdose_minimal", {"sud"}},
      {"overdose_with_encounter", {"sud"}},
      {"patient_full", {"general"}},
      {"patient_minimal", {"general"}},
      {"patient_non_ascii", {"general"}},
      {"prescription_full", {"sud", true}},            // methadone concentrate, OUD on agonist therapy
      {"prescription_minimal", {"general"}},           // naloxone spray, no codes
      {"prescription_spec_example", {"sud", true}},    // buprenorphine-naloxone film, F11.20
      {"prescription_with_encounter", {"general"}},    // naloxone spray, no codes
      {"prescription_without_rxnorm", {"sud", true}},  // F11.20 reason only
      {"screening_auditc", {"sud"}},
      {"screening_dast10", {"sud"}},
      {"screening_gad7", {"mh"}},
      {"screening_phq9", {"mh"}},
      {"screening_with_encounter", {"mh"}},
      {"treatment_plan_empty_arrays", {"general"}},
      {"treatment_plan_full", {"sud,mh", true}},
      {"treatment_plan_revoked", {"sud"}},
      {"treatment_plan_with_encounter", {"sud,mh", true}},
  };
  return table;
}

TEST(ClassifierTest, LoadsTheShippedValueSets) {
  const auto stats = shippedClassifier().stats();
  EXPECT_GT(stats.codes, 60U);
  EXPECT_EQ(stats.whole_systems, 3U);  // overdose-event, overdose-outcome, harm-reduction-service
  EXPECT_EQ(stats.unverified, 10U);    // the codes marked UNVERIFIED in fhir-profiles/ValueSet/gw-sensitivity-*.json
}

TEST(ClassifierTest, EveryGoldenResourceWithAndWithoutPart2Program) {
  std::set<std::string> seen;
  for (const auto& entry : std::filesystem::directory_iterator(goldenDir())) {
    const std::string file = entry.path().filename().string();
    const std::string suffix = ".expected.json";
    if (file.size() <= suffix.size() || file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const std::string name = file.substr(0, file.size() - suffix.size());
    seen.insert(name);
    const auto it = expectations().find(name);
    ASSERT_NE(it, expectations().end()) << "golden case " << name << " has no expected classes here: add it";
    const auto resources = golden(name);
    ASSERT_GT(resources.Size(), 0U) << name;
    for (const auto& r : resources.GetArray()) {
      const auto plain = shippedClassifier().classify(r, false);
      EXPECT_EQ(classSetName(plain.classes), it->second.classes) << name;
      EXPECT_EQ(plain.opioid, it->second.opioid) << name;
      EXPECT_FALSE(plain.part2) << name;
      EXPECT_FALSE(plain.hiv) << name;
      EXPECT_FALSE(plain.psych) << name;

      // A Part 2 program's resources are all sud, and keep what their codes say besides.
      const auto part2 = shippedClassifier().classify(r, true);
      ClassSet expected_part2 = *parseClassSet(it->second.classes);
      if (expected_part2 == ClassSet(DataClass::General)) expected_part2 = ClassSet();
      expected_part2.add(DataClass::Sud);
      EXPECT_EQ(classSetName(part2.classes), classSetName(expected_part2)) << name;
      EXPECT_TRUE(part2.part2) << name;
      EXPECT_EQ(part2.opioid, it->second.opioid) << name;
    }
  }
  EXPECT_EQ(seen.size(), expectations().size()) << "an expectation names a golden case that no longer exists";
}

TEST(ClassifierTest, HivResultGetsTheHivFlagButKeepsItsClass) {
  auto lab = goldenResource("lab_fentanyl_positive");
  lab["code"]["coding"][0]["code"] = "56888-1";  // HIV 1+2 Ab + HIV1 p24 Ag
  const auto plain = shippedClassifier().classify(lab, false);
  EXPECT_TRUE(plain.hiv);
  EXPECT_EQ(classSetName(plain.classes), "general");
  EXPECT_FALSE(plain.opioid);
  const auto part2 = shippedClassifier().classify(lab, true);
  EXPECT_TRUE(part2.hiv);
  EXPECT_EQ(classSetName(part2.classes), "sud");

  lab["code"]["coding"][0]["code"] = "13955-0";  // HCV antibody: general, no label
  EXPECT_EQ(shippedClassifier().classify(lab, false), (Classification{ClassSet(DataClass::General)}));
}

TEST(ClassifierTest, OpioidAndAlcoholAreBothSudButOnlyOpioidSaysOpioid) {
  const auto alcohol = shippedClassifier().classify(goldenResource("screening_auditc"), false);
  const auto opioid = shippedClassifier().classify(goldenResource("lab_fentanyl_positive"), false);
  EXPECT_EQ(classSetName(alcohol.classes), "sud");
  EXPECT_FALSE(alcohol.opioid);
  EXPECT_EQ(classSetName(opioid.classes), "sud");
  EXPECT_TRUE(opioid.opioid);
}

TEST(ClassifierTest, PsychiatricDiagnosisIsMhAndPsychAlongsideSud) {
  auto rx = goldenResource("prescription_full");  // methadone
  rx["reasonCode"][0]["coding"][0]["system"] = "http://hl7.org/fhir/sid/icd-10-cm";
  rx["reasonCode"][0]["coding"][0]["code"] = "F20.9";
  const auto c = shippedClassifier().classify(rx, false);
  EXPECT_EQ(classSetName(c.classes), "sud,mh");
  EXPECT_TRUE(c.psych);
  EXPECT_TRUE(c.opioid);
}

TEST(ClassifierTest, SystemAndCodeMustBothMatch) {
  auto lab = goldenResource("lab_fentanyl_positive");
  lab["code"]["coding"][0]["system"] = "http://snomed.info/sct";  // a LOINC code under another system
  EXPECT_EQ(classSetName(shippedClassifier().classify(lab, false).classes), "general");
  lab["code"]["coding"][0]["system"] = "http://loinc.org";
  lab["code"]["coding"][0]["code"] = "59673-";
  EXPECT_EQ(classSetName(shippedClassifier().classify(lab, false).classes), "general");
}

TEST(ClassifierTest, CodingsCountAnywhereExceptMetaAndIdentifiers) {
  const auto sud_coding = R"({"system":"http://snomed.info/sct","code":"75544000"})";
  // In meta (a tag) and in an identifier type: not clinical content.
  auto patient = parseJson(std::string(R"({"resourceType":"Patient","meta":{"tag":[)") + sud_coding +
                           R"(]},"identifier":[{"type":{"coding":[)" + sud_coding + R"(]},"system":"s","value":"v"}]})");
  EXPECT_EQ(classSetName(shippedClassifier().classify(patient, false).classes), "general");
  // In an extension, deep in a component, in a contained resource's code: all count.
  for (
      const std::string& where : {
          std::string(R"({"resourceType":"Patient","extension":[{"url":"u","valueCoding":)") + sud_coding + "}]}",
          std::string(
              R"({"resourceType":"Observation","component":[{"code":{"coding":[{"system":"x","code":"y"}]},"valueCodeableConcept":{"coding":[)") +
              sud_coding + "]}}]}",
          std::string(R"({"resourceType":"CarePlan","contained":[{"resourceType":"Condition","code":{"coding":[)") +
              sud_coding + "]}}]}",
      }) {
    auto doc = parseJson(where);
    const auto c = shippedClassifier().classify(doc, false);
    EXPECT_EQ(classSetName(c.classes), "sud") << where;
    EXPECT_TRUE(c.opioid) << where;
  }
}

TEST(ClassifierTest, WholeSystemIncludeCoversCodesAddedLater) {
  auto hr = goldenResource("harm_reduction_minimal");
  hr["code"]["coding"][0]["code"] = "drug_checking";  // not (yet) in the CodeSystem
  EXPECT_EQ(classSetName(shippedClassifier().classify(hr, false).classes), "sud");
}

TEST(ClassifierTest, CarePlanActivitiesAreClassifiedOneByOne) {
  const auto plan = goldenResource("treatment_plan_full");
  std::vector<std::string> names;
  for (const auto c : shippedClassifier().classifyCarePlanActivities(plan, false)) names.push_back(classSetName(c));
  // moud, counseling, peer_support, psychiatric_care, housing_support, harm_reduction
  EXPECT_EQ(names, (std::vector<std::string>{"sud", "sud", "general", "mh", "general", "sud"}));
  EXPECT_EQ(classSetName(shippedClassifier().classifyCarePlanOwn(plan, false)), "general");

  names.clear();
  for (const auto c : shippedClassifier().classifyCarePlanActivities(plan, true)) names.push_back(classSetName(c));
  EXPECT_EQ(names, (std::vector<std::string>{"sud", "sud", "sud", "sud,mh", "sud", "sud"}));
  EXPECT_EQ(classSetName(shippedClassifier().classifyCarePlanOwn(plan, true)), "sud");

  EXPECT_TRUE(shippedClassifier().classifyCarePlanActivities(goldenResource("treatment_plan_empty_arrays"), false).empty());
}

// --- loader errors -----------------------------------------------------------------------------

class ClassifierLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* role : {"sud", "opioid", "mh", "psy", "hiv"}) {
      const std::string name = std::string("gw-sensitivity-") + role + ".json";
      scratch_.write(name, readFile(testing::profilesDir() / "ValueSet" / name));
    }
  }
  ValueSetFiles files() const {
    const auto& d = scratch_.path();
    return {d / "gw-sensitivity-sud.json", d / "gw-sensitivity-opioid.json", d / "gw-sensitivity-mh.json",
            d / "gw-sensitivity-psy.json", d / "gw-sensitivity-hiv.json"};
  }
  void writeMh(const std::string& text) const { scratch_.write("gw-sensitivity-mh.json", text); }

  testing::ScratchDir scratch_;
};

TEST_F(ClassifierLoadTest, CopiesOfTheShippedFilesLoad) { EXPECT_TRUE(Classifier::load(files())); }

TEST_F(ClassifierLoadTest, MissingFileNamesTheFileAndRole) {
  auto f = files();
  f.hiv = scratch_.path() / "no-such.json";
  const auto r = Classifier::load(f);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Config);
  EXPECT_NE(r.error().message.find("hiv value set"), std::string::npos) << r.error().describe();
  EXPECT_NE(r.error().where.find("no-such.json"), std::string::npos) << r.error().describe();
}

TEST_F(ClassifierLoadTest, MalformedJsonGivesLineAndColumn) {
  writeMh("{\n  \"resourceType\": \"ValueSet\",\n  \"url\": }\n");
  const auto r = Classifier::load(files());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("malformed JSON"), std::string::npos) << r.error().describe();
  EXPECT_NE(r.error().where.find("gw-sensitivity-mh.json:3:"), std::string::npos) << r.error().describe();
}

TEST_F(ClassifierLoadTest, StructuralProblemsNameFileLineAndJsonPath) {
  struct Case {
    std::string compose;
    std::string message;
    std::string path;
  };
  const Case cases[] = {
      {R"({"include":[{"system":"http://loinc.org","filter":[{"property":"concept","op":"is-a","value":"x"}]}]})",
       "filter is not supported", "(compose.include[0].filter)"},
      {R"({"include":[{"system":"http://loinc.org","concept":[{"code":"1-8"},{"display":"no code"}]}]})",
       "needs a non-empty code", "(compose.include[0].concept[1])"},
      {R"({"include":[{"system":"http://loinc.org"}],"exclude":[{"system":"http://loinc.org"}]})",
       "exclude is not supported", "(compose.exclude)"},
      {R"({"include":[{"concept":[{"code":"1-8"}]}]})", "needs a system or a valueSet", "(compose.include[0])"},
      {R"({"include":[{"valueSet":["https://example.org/ValueSet/elsewhere"]}]})",
       "is not one of the sensitivity value sets", "(compose.include[0].valueSet[0])"},
      {R"({"include":[]})", "non-empty array", "(compose)"},
  };
  for (const auto& c : cases) {
    writeMh(
        "{\"resourceType\": \"ValueSet\",\n \"url\": \"https://fhir-gateway.dev/fhir/ValueSet/gw-sensitivity-mh\",\n "
        "\"compose\": " +
        c.compose + "}");
    const auto r = Classifier::load(files());
    ASSERT_FALSE(r) << c.compose;
    EXPECT_EQ(r.error().code, ErrorCode::Config);
    EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().describe();
    EXPECT_NE(r.error().where.find("gw-sensitivity-mh.json:3:"), std::string::npos) << r.error().describe();
    EXPECT_NE(r.error().where.find(c.path), std::string::npos) << r.error().describe();
  }
}

TEST_F(ClassifierLoadTest, NotAValueSetIsRejected) {
  writeMh(R"({"resourceType":"CodeSystem","url":"x"})");
  const auto r = Classifier::load(files());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("expected a FHIR ValueSet"), std::string::npos);
  EXPECT_NE(r.error().where.find("(resourceType)"), std::string::npos) << r.error().describe();
}

TEST_F(ClassifierLoadTest, TwoRolesCannotShareAUrl) {
  writeMh(R"({"resourceType":"ValueSet","url":"https://fhir-gateway.dev/fhir/ValueSet/gw-sensitivity-sud",
              "compose":{"include":[{"system":"http://loinc.org","concept":[{"code":"44261-6"}]}]}})");
  const auto r = Classifier::load(files());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("the mh value set has the same url as"), std::string::npos) << r.error().describe();
}

TEST_F(ClassifierLoadTest, AClinicCanTightenThePolicyInData) {
  // Add an MH diagnosis code: resources carrying it become mh, with no code change.
  writeMh(R"({"resourceType":"ValueSet","url":"https://fhir-gateway.dev/fhir/ValueSet/gw-sensitivity-mh",
              "compose":{"include":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","concept":[{"code":"F32.9"}]}]}})");
  auto loaded = Classifier::load(files());
  ASSERT_TRUE(loaded) << loaded.error().describe();
  auto rx = goldenResource("prescription_minimal");
  auto& a = rx.GetAllocator();
  rapidjson::Value coding(rapidjson::kObjectType);
  coding.AddMember("system", "http://hl7.org/fhir/sid/icd-10-cm", a);
  coding.AddMember("code", "F32.9", a);
  rapidjson::Value codings(rapidjson::kArrayType);
  codings.PushBack(coding, a);
  rapidjson::Value reason(rapidjson::kObjectType);
  reason.AddMember("coding", codings, a);
  rapidjson::Value reasons(rapidjson::kArrayType);
  reasons.PushBack(reason, a);
  rx.AddMember("reasonCode", reasons, a);
  EXPECT_EQ(classSetName(loaded.value().classify(rx, false).classes), "mh");
  EXPECT_EQ(classSetName(shippedClassifier().classify(rx, false).classes), "general");
}

}  // namespace
}  // namespace gw::privacy

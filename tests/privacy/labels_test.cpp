// meta.security labels (docs/privacy.md §3), the Part 2 notice (§7) and the
// Bundle's confidentiality, on the mappers' golden output.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/json.hpp"
#include "privacy/labels.hpp"
#include "privacy/test_support.hpp"

namespace gw::privacy {
namespace {

using testing::goldenResource;
using testing::parseJson;
using testing::shippedClassifier;

std::string securityOf(const rapidjson::Value& resource) {
  const auto* meta = json::find(resource, "meta");
  const auto* security = meta != nullptr ? json::find(*meta, "security") : nullptr;
  return security != nullptr ? json::toString(*security) : "<none>";
}

std::vector<std::string> memberNames(const rapidjson::Value& object) {
  std::vector<std::string> out;
  for (const auto& m : object.GetObject()) out.emplace_back(m.name.GetString());
  return out;
}

constexpr const char* kN =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"N","display":"normal"})";
constexpr const char* kR =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R","display":"restricted"})";
constexpr const char* kSud =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"SUD","display":"substance use disorder information sensitivity"})";
constexpr const char* kOpioid =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPIOIDUD","display":"opioid use disorder information sensitivity"})";
constexpr const char* kMh =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"MH","display":"mental health information sensitivity"})";
constexpr const char* kPsy =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY","display":"psychiatry disorder information sensitivity"})";
constexpr const char* kHiv =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV","display":"HIV/AIDS information sensitivity"})";
constexpr const char* kPart2 =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"42CFRPart2","display":"42 CFR Part2"})";
constexpr const char* kNoRedisclosure =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"NORDSCLCD","display":"no redisclosure without consent directive"})";
constexpr const char* kComply =
    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"CPLYCD","display":"comply with consent directive"})";

std::string array(std::initializer_list<const char*> codings) {
  std::string out = "[";
  for (const char* c : codings) {
    if (out.size() > 1) out += ',';
    out += c;
  }
  return out + "]";
}

std::string labelled(const std::string& golden_case, bool part2) {
  auto r = goldenResource(golden_case);
  const auto c = shippedClassifier().classify(r, part2);
  EXPECT_TRUE(applyLabels(r, c));
  return securityOf(r);
}

TEST(LabelsTest, ExactLabelsPerClass) {
  EXPECT_EQ(labelled("patient_full", false), array({kN}));
  EXPECT_EQ(labelled("patient_full", true), array({kR, kSud, kPart2, kNoRedisclosure, kComply}));
  EXPECT_EQ(labelled("lab_quantity_without_unit", false), array({kN}));
  EXPECT_EQ(labelled("lab_fentanyl_positive", false), array({kR, kSud, kOpioid}));
  EXPECT_EQ(labelled("lab_fentanyl_positive", true), array({kR, kSud, kOpioid, kPart2, kNoRedisclosure, kComply}));
  EXPECT_EQ(labelled("screening_auditc", false), array({kR, kSud}));  // alcohol: SUD without OPIOIDUD
  EXPECT_EQ(labelled("screening_phq9", false), array({kR, kMh}));
  EXPECT_EQ(labelled("screening_gad7", true), array({kR, kSud, kMh, kPart2, kNoRedisclosure, kComply}));
  EXPECT_EQ(labelled("treatment_plan_full", false), array({kR, kSud, kOpioid, kMh}));
  EXPECT_EQ(labelled("harm_reduction_minimal", false), array({kR, kSud}));
  // Supervised consumption and overdose response: sud from a program that is not Part 2.
  EXPECT_EQ(labelled("harm_reduction_supervised_consumption", false), array({kR, kSud}));
  EXPECT_EQ(labelled("harm_reduction_overdose_response", false), array({kR, kSud}));
  // Encounters: as the program, a dosing visit sud and a psychiatric visit mh wherever they happen.
  EXPECT_EQ(labelled("encounter_intake_in_person", false), array({kN}));
  EXPECT_EQ(labelled("encounter_intake_in_person", true), array({kR, kSud, kPart2, kNoRedisclosure, kComply}));
  EXPECT_EQ(labelled("encounter_dosing_in_person", false), array({kR, kSud}));
  EXPECT_EQ(labelled("encounter_psychiatric_video", false), array({kR, kMh}));
  EXPECT_EQ(labelled("encounter_psychiatric_video", true), array({kR, kSud, kMh, kPart2, kNoRedisclosure, kComply}));
  EXPECT_EQ(labelled("consent_tpo_sud", false), array({kN}));
}

TEST(LabelsTest, HivAndPsychiatricLabels) {
  auto lab = goldenResource("lab_fentanyl_positive");
  lab["code"]["coding"][0]["code"] = "56888-1";
  ASSERT_TRUE(applyLabels(lab, shippedClassifier().classify(lab, false)));
  EXPECT_EQ(securityOf(lab), array({kN, kHiv}));

  auto rx = goldenResource("prescription_minimal");
  auto reason = parseJson(R"([{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"F31.9"}]}])");
  rapidjson::Value copy;
  copy.CopyFrom(reason, rx.GetAllocator());
  rx.AddMember("reasonCode", copy, rx.GetAllocator());
  ASSERT_TRUE(applyLabels(rx, shippedClassifier().classify(rx, false)));
  EXPECT_EQ(securityOf(rx), array({kR, kMh, kPsy}));
}

TEST(LabelsTest, KeepsMetaAndPlacesNewMetaAfterId) {
  auto lab = goldenResource("lab_fentanyl_positive");  // has meta.profile
  ASSERT_TRUE(applyLabels(lab, shippedClassifier().classify(lab, false)));
  EXPECT_EQ(json::toString(lab["meta"]["profile"]),
            R"(["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"])");
  EXPECT_EQ(memberNames(lab["meta"]), (std::vector<std::string>{"profile", "security"}));

  auto od = goldenResource("overdose_full");  // no meta at all
  const auto before = memberNames(od);
  ASSERT_TRUE(applyLabels(od, shippedClassifier().classify(od, false)));
  auto expected = before;
  expected.insert(expected.begin() + 2, "meta");  // resourceType, id, meta, ...
  EXPECT_EQ(memberNames(od), expected);
  EXPECT_EQ(memberNames(od["meta"]), (std::vector<std::string>{"security"}));
}

TEST(LabelsTest, RelabellingReplacesOwnLabelsAndKeepsOthers) {
  auto lab = goldenResource("lab_fentanyl_positive");
  auto& a = lab.GetAllocator();
  // A purpose-of-use tag someone else put in meta.security stays.
  auto treat = parseJson(R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"})");
  rapidjson::Value security(rapidjson::kArrayType);
  security.PushBack(rapidjson::Value().CopyFrom(treat, a), a);
  lab["meta"].AddMember("security", security, a);

  const auto part2 = shippedClassifier().classify(lab, true);
  ASSERT_TRUE(applyLabels(lab, part2));
  const std::string once = json::toString(lab);
  ASSERT_TRUE(applyLabels(lab, part2));
  EXPECT_EQ(json::toString(lab), once) << "labelling twice must not change anything";
  EXPECT_EQ(securityOf(lab), array({kR, kSud, kOpioid, kPart2, kNoRedisclosure, kComply,
                                    R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"})"}));

  // Re-classified without the Part 2 program: the Part 2 labels go, nothing is duplicated.
  ASSERT_TRUE(applyLabels(lab, shippedClassifier().classify(lab, false)));
  EXPECT_EQ(securityOf(lab),
            array({kR, kSud, kOpioid, R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"})"}));
}

TEST(LabelsTest, ApplyLabelsKeepsRedacted) {
  auto plan = goldenResource("treatment_plan_full");
  LabelSet labels;
  labels.add(Label::Redacted);
  ASSERT_TRUE(writeLabels(plan, labels));
  ASSERT_TRUE(applyLabels(plan, shippedClassifier().classify(plan, false)));
  const auto read = readLabels(plan);
  EXPECT_TRUE(read.has(Label::Redacted));
  EXPECT_EQ(read.names(), "R,SUD,OPIOIDUD,MH,REDACTED");
}

TEST(LabelsTest, Part2NoticeTravelsInMetaAndIsNotDuplicated) {
  auto patient = goldenResource("patient_full");
  ASSERT_TRUE(applyLabels(patient, shippedClassifier().classify(patient, true)));
  ASSERT_TRUE(attachPart2Notice(patient));
  ASSERT_TRUE(attachPart2Notice(patient));
  EXPECT_EQ(json::toString(patient["meta"]["extension"]),
            R"([{"url":"http://hl7.org/fhir/uv/security-label-ds4p/StructureDefinition/extension-display",)"
            R"("valueAnnotation":{"text":"42 CFR part 2 prohibits unauthorized use or disclosure of these records."}}])");
  EXPECT_EQ(memberNames(patient["meta"]), (std::vector<std::string>{"profile", "security", "extension"}));

  ASSERT_TRUE(attachPart2Notice(patient, "Clinic-configured notice."));
  ASSERT_EQ(patient["meta"]["extension"].Size(), 1U);
  EXPECT_STREQ(patient["meta"]["extension"][0]["valueAnnotation"]["text"].GetString(), "Clinic-configured notice.");

  const auto empty = attachPart2Notice(patient, "");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::Config);
}

TEST(LabelsTest, NotAnObjectIsAnError) {
  auto doc = parseJson("[1,2]");
  const auto r = applyLabels(doc, Classification{ClassSet(DataClass::General)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Internal);
  auto bad_meta = parseJson(R"({"resourceType":"Patient","meta":[]})");
  EXPECT_FALSE(applyLabels(bad_meta, Classification{ClassSet(DataClass::General)}));
}

TEST(LabelsTest, ConfidentialityOrder) {
  EXPECT_LT(Confidentiality::U, Confidentiality::L);
  EXPECT_LT(Confidentiality::M, Confidentiality::N);
  EXPECT_LT(Confidentiality::N, Confidentiality::R);
  EXPECT_LT(Confidentiality::R, Confidentiality::V);
  for (const char* code : {"U", "L", "M", "N", "R", "V"}) EXPECT_EQ(confidentialityCode(*parseConfidentiality(code)), code);
  EXPECT_FALSE(parseConfidentiality("ETH"));  // retired in v3-Confidentiality
}

TEST(LabelsTest, BundleCarriesHighestConfidentialityAndThePart2Labels) {
  const Classification general{ClassSet(DataClass::General)};
  const Classification mh{ClassSet(DataClass::Mh)};
  Classification part2_sud{ClassSet(DataClass::Sud)};
  part2_sud.part2 = true;
  part2_sud.opioid = true;

  EXPECT_EQ(bundleLabels(std::span<const Classification>{}).confidentiality, Confidentiality::N);
  const std::vector<Classification> only_general{general, general};
  EXPECT_EQ(bundleLabels(only_general).confidentiality, Confidentiality::N);
  const std::vector<Classification> mixed{general, mh, part2_sud};
  EXPECT_EQ(bundleLabels(mixed).confidentiality, Confidentiality::R);
  EXPECT_EQ(bundleLabels(mixed).names(), "R,SUD,OPIOIDUD,MH,42CFRPart2,NORDSCLCD,CPLYCD");

  // From labelled resources: a V set by hand wins, REDACTED stays on its resource, an unlabelled
  // entry counts as restricted.
  auto a = goldenResource("patient_full");
  auto b = goldenResource("lab_quantity_without_unit");
  ASSERT_TRUE(applyLabels(a, shippedClassifier().classify(a, false)));
  ASSERT_TRUE(writeLabels(b, LabelSet{Confidentiality::V, static_cast<std::uint16_t>(Label::Redacted)}));
  const rapidjson::Value* labelled_ones[] = {&a, &b};
  const auto from_resources = bundleLabels(labelled_ones);
  EXPECT_EQ(from_resources.names(), "V");
  auto unlabelled = goldenResource("patient_minimal");
  const rapidjson::Value* with_unlabelled[] = {&a, &unlabelled};
  EXPECT_EQ(bundleLabels(with_unlabelled).confidentiality, Confidentiality::R);

  rapidjson::Document bundle;
  bundle.SetObject();
  const auto codings = securityCodings(bundleLabels(mixed), bundle.GetAllocator());
  EXPECT_EQ(json::toString(codings), array({kR, kSud, kOpioid, kMh, kPart2, kNoRedisclosure, kComply}));
}

}  // namespace
}  // namespace gw::privacy

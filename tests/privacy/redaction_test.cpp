// Segmented disclosure of the golden treatment plan (docs/privacy.md §6): what a
// consent does not cover must vanish from the activities, the narrative and the labels.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/json.hpp"
#include "privacy/labels.hpp"
#include "privacy/redaction.hpp"
#include "privacy/test_support.hpp"

namespace gw::privacy {
namespace {

using testing::goldenResource;
using testing::shippedClassifier;

std::vector<std::string> activityKinds(const rapidjson::Value& plan) {
  std::vector<std::string> out;
  if (!plan.HasMember("activity")) return out;
  for (const auto& a : plan["activity"].GetArray()) out.emplace_back(a["detail"]["code"]["coding"][0]["code"].GetString());
  return out;
}

std::string div(const rapidjson::Value& plan) { return plan["text"]["div"].GetString(); }

// Text of the golden plan that must not survive removing the activity it belongs to.
constexpr const char* kMoudText = "Buprenorphine/naloxone 16 mg daily";
constexpr const char* kPsychText = "Evaluate for co-occurring depression";
constexpr const char* kHarmReductionText = "Naloxone kit &amp; test strips";
constexpr const char* kGoalText = "Stay on buprenorphine";

TEST(RedactionTest, GeneralOnlyConsentKeepsOnlyGeneralActivities) {
  auto plan = goldenResource("treatment_plan_full");
  const std::string original_div = div(plan);
  const auto r = redactCarePlan(plan, DataClass::General, shippedClassifier(), false);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r.value().redacted());
  EXPECT_EQ(r.value().removed_kinds, (std::vector<std::string>{"moud", "counseling", "psychiatric_care", "harm_reduction"}));
  EXPECT_EQ(classSetName(r.value().removed_classes), "sud,mh");
  EXPECT_EQ(classSetName(r.value().after.classes), "general");
  EXPECT_FALSE(r.value().after.opioid);
  EXPECT_EQ(activityKinds(plan), (std::vector<std::string>{"peer_support", "housing_support"}));

  // The narrative lists the kept activities exactly as the mapper wrote them, and nothing else.
  EXPECT_EQ(div(plan),
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p><b>Treatment plan</b></p><p>Goals: not included in this "
            "disclosure.</p>"
            "<p>Activities:</p><ul><li>Peer support (not-started): Peer coach: José</li>"
            "<li>Housing support (completed): Referral to &quot;Home First&quot; program</li></ul></div>");
  EXPECT_NE(original_div.find("<li>Peer support (not-started): Peer coach: José</li>"), std::string::npos);
  EXPECT_NE(original_div.find("<li>Housing support (completed): Referral to &quot;Home First&quot; program</li>"),
            std::string::npos);
  EXPECT_STREQ(plan["text"]["status"].GetString(), "generated");
  const std::string all = json::toString(plan);
  for (const char* gone :
       {kMoudText, kPsychText, kHarmReductionText, kGoalText, "opioid", "Psychiatric", "60112009", "720174008"}) {
    EXPECT_EQ(all.find(gone), std::string::npos) << gone << " survived redaction";
  }

  // Labels say what is left (general), plus REDACTED; no SUD/MH label leaks the removed part.
  EXPECT_EQ(readLabels(plan).names(), "N,REDACTED");
  EXPECT_EQ(
      json::toString(plan["meta"]["security"][1]),
      R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"REDACTED","display":"redacted"})");
  EXPECT_EQ(json::toString(plan["meta"]["profile"]),
            R"(["http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan"])");
}

TEST(RedactionTest, SudConsentWithoutMhRemovesPsychiatricCareOnly) {
  auto plan = goldenResource("treatment_plan_full");
  const auto r = redactCarePlan(plan, ClassSet(DataClass::General).add(DataClass::Sud), shippedClassifier(), false);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r.value().removed_kinds, (std::vector<std::string>{"psychiatric_care"}));
  EXPECT_EQ(classSetName(r.value().removed_classes), "mh");
  EXPECT_EQ(classSetName(r.value().after.classes), "sud");
  EXPECT_EQ(activityKinds(plan),
            (std::vector<std::string>{"moud", "counseling", "peer_support", "housing_support", "harm_reduction"}));
  EXPECT_NE(div(plan).find(std::string("<li>Medication for opioid use disorder (in-progress): ") + kMoudText + "</li>"),
            std::string::npos);
  EXPECT_NE(div(plan).find(kHarmReductionText), std::string::npos);
  EXPECT_EQ(div(plan).find(kPsychText), std::string::npos);
  EXPECT_EQ(div(plan).find("Psychiatric care"), std::string::npos);
  EXPECT_EQ(readLabels(plan).names(), "R,SUD,OPIOIDUD,REDACTED");

  // Labelling the redacted plan again (e.g. before a retry) keeps REDACTED and adds no MH.
  ASSERT_TRUE(applyLabels(plan, shippedClassifier().classify(plan, false)));
  EXPECT_EQ(readLabels(plan).names(), "R,SUD,OPIOIDUD,REDACTED");
}

TEST(RedactionTest, CoveredPlanIsUntouched) {
  auto plan = goldenResource("treatment_plan_full");
  const std::string before = json::toString(plan);
  const auto r = redactCarePlan(plan, ClassSet(DataClass::General).add(DataClass::Sud).add(DataClass::Mh),
                                shippedClassifier(), false);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r.value().redacted());
  EXPECT_TRUE(r.value().removed_classes.empty());
  EXPECT_EQ(classSetName(r.value().after.classes), "sud,mh");
  EXPECT_EQ(json::toString(plan), before);
}

TEST(RedactionTest, Part2PlanHasNothingToKeepWithoutSud) {
  auto plan = goldenResource("treatment_plan_full");
  const auto r = redactCarePlan(plan, ClassSet(DataClass::General).add(DataClass::Mh), shippedClassifier(), true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().removed_kinds.size(), 6U);
  EXPECT_FALSE(plan.HasMember("activity")) << "an empty array is not valid FHIR";
  EXPECT_NE(div(plan).find("<p>Activities: none included in this disclosure.</p>"), std::string::npos);
  EXPECT_EQ(readLabels(plan).names(), "R,SUD,42CFRPart2,NORDSCLCD,CPLYCD,REDACTED");
}

TEST(RedactionTest, RemoveByDecisionIndexes) {
  auto by_index = goldenResource("treatment_plan_full");
  auto by_class = goldenResource("treatment_plan_full");
  const std::uint32_t psychiatric_care[] = {3};
  ASSERT_TRUE(removeCarePlanActivities(by_index, psychiatric_care, shippedClassifier(), false));
  ASSERT_TRUE(redactCarePlan(by_class, ClassSet(DataClass::General).add(DataClass::Sud), shippedClassifier(), false));
  EXPECT_EQ(json::toString(by_index), json::toString(by_class));
}

TEST(RedactionTest, BadRequestsLeaveThePlanUntouched) {
  auto plan = goldenResource("treatment_plan_full");
  const std::string before = json::toString(plan);
  const std::uint32_t out_of_range[] = {6};
  const std::uint32_t not_ascending[] = {3, 1};
  for (const auto indexes : {std::span<const std::uint32_t>(out_of_range), std::span<const std::uint32_t>(not_ascending)}) {
    const auto r = removeCarePlanActivities(plan, indexes, shippedClassifier(), false);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Internal);
    EXPECT_EQ(json::toString(plan), before);
  }
  auto observation = goldenResource("screening_phq9");
  const auto r = redactCarePlan(observation, DataClass::General, shippedClassifier(), false);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("CarePlan"), std::string::npos);
}

// Found by fuzz_classifier: RapidJSON keeps repeated member names, and removing the first
// "activity" uncovered the second, which then went out with its uncovered activities (or, when
// not an array, was read as one: undefined behaviour).
TEST(RedactionTest, RepeatedActivityMemberIsRefusedNotHalfRedacted) {
  constexpr const char* kActivity =
      R"([{"detail":{"code":{"coding":[{"system":"https://fhir-gateway.dev/fhir/CodeSystem/treatment-plan-activity","code":"%s"}]}}}])";
  auto activity = [&](const char* code) {
    std::string out(kActivity);
    out.replace(out.find("%s"), 2, code);
    return out;
  };
  for (const std::string& second : {activity("counseling"), std::string(R"("psychiatric care")")}) {
    auto plan = testing::parseJson(R"({"resourceType":"CarePlan","id":"cp","activity":)" + activity("moud") +
                                   R"(,"activity":)" + second + "}");
    const std::string before = json::toString(plan);
    const auto r = redactCarePlan(plan, DataClass::General, shippedClassifier(), false);
    ASSERT_FALSE(r) << "a plan with a second activity member was redacted: " << json::toString(plan);
    EXPECT_EQ(r.error().code, ErrorCode::Internal);
    EXPECT_EQ(r.error().where, "CarePlan.activity");
    EXPECT_EQ(json::toString(plan), before);
    const std::uint32_t first[] = {0};
    EXPECT_FALSE(removeCarePlanActivities(plan, first, shippedClassifier(), false));
    EXPECT_EQ(json::toString(plan), before);
  }
}

}  // namespace
}  // namespace gw::privacy

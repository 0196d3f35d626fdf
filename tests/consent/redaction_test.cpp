// CarePlans whose activities span classes (docs/privacy.md §5.3): sent without the activities a
// candidate consent does not cover, or denied when it covers none of them or not the plan itself.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "consent_test_support.hpp"

namespace gw::consent {
namespace {

using namespace gw::consent::testing;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A plan of a non-Part 2 program: the plan itself is general; activities moud (sud), housing
// (general), psychiatric care (mh). Labels as the classifier gives them: general only when
// nothing is sensitive, so the plan is labelled sud,mh.
const std::vector<ClassSet> kActivities = {kSud, kGeneral, kMh};

DecisionRequest carePlan(const std::vector<ClassSet>& activities, ClassSet classes, ClassSet plan = kGeneral) {
  DecisionRequest r = request(classes);
  r.activity_classes = activities;
  r.plan_classes = plan;
  return r;
}

Decision decideWith(ClassSet consent_classes, const DecisionRequest& r, PurposeSet purposes = PurposeSet(Purpose::Treat)) {
  ConsentRegistry registry;
  ConsentVersion v = sampleConsent();
  v.classes = consent_classes;
  v.purposes = purposes;
  add(registry, v);
  return registry.decide(r);
}

TEST(Redaction, AGeneralConsentKeepsOnlyTheGeneralActivities) {
  const Decision d = decideWith(kGeneral, carePlan(kActivities, kSudMh));
  EXPECT_EQ(describe(d), "redact:class-not-covered:sud,mh");
  EXPECT_THAT(d.removed_activities, ElementsAre(0u, 2u));
  EXPECT_EQ(d.missing, kSudMh);
  EXPECT_EQ(d.disclosed, kGeneral);
  ASSERT_NE(d.consent, nullptr);
  EXPECT_EQ(d.consent->consent_id, "77");
  EXPECT_TRUE(d.disclosable());
  EXPECT_FALSE(d.permitted());
}

TEST(Redaction, AGeneralAndSudConsentRemovesThePsychiatricCareOnly) {
  const Decision d = decideWith(kGeneralSud, carePlan(kActivities, kSudMh));
  EXPECT_EQ(describe(d), "redact:class-not-covered:mh");
  EXPECT_THAT(d.removed_activities, ElementsAre(2u));
  EXPECT_EQ(d.disclosed, kSud);  // relabel the plan sud once mh is gone
}

TEST(Redaction, AConsentCoveringEveryClassPermitsTheWholePlan) {
  const Decision d = decideWith(kAll, carePlan(kActivities, kSudMh));
  EXPECT_TRUE(d.permitted());
  EXPECT_THAT(d.removed_activities, IsEmpty());
  EXPECT_EQ(d.disclosed, kSudMh);
}

TEST(Redaction, AnMhConsentCoversAGeneralPlanLabelledMh) {
  // General means "nothing sensitive": the kept plan is labelled mh, which the consent covers.
  // The housing activity is general and the consent lists no general: removed as well.
  const Decision d = decideWith(kMh, carePlan(kActivities, kSudMh));
  EXPECT_EQ(describe(d), "redact:class-not-covered:general,sud");
  EXPECT_THAT(d.removed_activities, ElementsAre(0u, 1u));
  EXPECT_EQ(d.disclosed, kMh);
}

TEST(Redaction, NoActivityCoveredIsADenyNotAnEmptyPlan) {
  const std::vector<ClassSet> activities = {kSud, kSud};
  const Decision d = decideWith(kGeneral, carePlan(activities, kSud));
  EXPECT_EQ(describe(d), "deny:class-not-covered:sud");
  EXPECT_THAT(d.removed_activities, IsEmpty());
}

TEST(Redaction, APart2PlanIsSudItselfSoNothingCanBeCut) {
  // Every part of a Part 2 program's plan is sud: a general consent covers none of it.
  const std::vector<ClassSet> activities = {kSud, kSud, kSudMh};
  const Decision d = decideWith(kGeneral, carePlan(activities, kSudMh, kSud));
  EXPECT_EQ(describe(d), "deny:class-not-covered:sud,mh");
  // A sud consent keeps the sud activities and drops the one that is also mh.
  const Decision e = decideWith(kSud, carePlan(activities, kSudMh, kSud));
  EXPECT_EQ(describe(e), "redact:class-not-covered:sud,mh");
  EXPECT_THAT(e.removed_activities, ElementsAre(2u));
  EXPECT_EQ(e.disclosed, kSud);
}

TEST(Redaction, OnlyACandidateCanRedact) {
  // The consent would redact but does not list the purpose: the purpose is the reason.
  const Decision d = decideWith(kGeneral, carePlan(kActivities, kSudMh), PurposeSet(Purpose::Hpaymt));
  EXPECT_EQ(describe(d), "deny:purpose-not-covered");
}

TEST(Redaction, UnionLabelsAreUnderstoodToo) {
  // Labels that list general beside the sensitive classes: the plan's general part needs a
  // consent listing general.
  const Decision d = decideWith(kGeneralSud, carePlan(kActivities, kAll));
  EXPECT_EQ(describe(d), "redact:class-not-covered:mh");
  EXPECT_THAT(d.removed_activities, ElementsAre(2u));
  EXPECT_EQ(d.disclosed, kGeneralSud);
  const Decision e = decideWith(kSudMh, carePlan(kActivities, kAll));
  EXPECT_EQ(describe(e), "deny:class-not-covered:general");
}

TEST(Redaction, WithoutPlanClassesThereIsNoRedaction) {
  DecisionRequest r = carePlan(kActivities, kSudMh, ClassSet());
  EXPECT_EQ(describe(decideWith(kGeneral, r)), "deny:class-not-covered:sud,mh");
  EXPECT_TRUE(decideWith(kAll, r).permitted());
}

TEST(Redaction, LabelsThatContradictTheActivitiesAreDenied) {
  // An mh activity in a plan labelled sud only: the labels are wrong somewhere upstream.
  EXPECT_EQ(describe(decideWith(kAll, carePlan(kActivities, kSud))), "deny:invalid-request");
  // A label no part explains.
  const std::vector<ClassSet> general_only = {kGeneral};
  EXPECT_EQ(describe(decideWith(kAll, carePlan(general_only, kSud))), "deny:invalid-request");
  // An unclassified activity.
  const std::vector<ClassSet> with_unclassified = {kGeneral, ClassSet()};
  EXPECT_EQ(describe(decideWith(kAll, carePlan(with_unclassified, kGeneral))), "deny:unclassified");
}

TEST(Redaction, APermitBeatsARedactionAndFewerRemovalsBeatMore) {
  ConsentRegistry registry;
  ConsentVersion newest_general = sampleConsent("1");
  newest_general.classes = kGeneral;
  newest_general.signed_on = day("2026-02-25");
  add(registry, newest_general);  // would remove two activities
  ConsentVersion general_sud = sampleConsent("2");
  general_sud.classes = kGeneralSud;
  general_sud.signed_on = day("2026-02-10");
  add(registry, general_sud);  // would remove one
  Decision d = registry.decide(carePlan(kActivities, kSudMh));
  EXPECT_EQ(d.outcome, Outcome::Redact);
  EXPECT_EQ(d.consent->consent_id, "2");
  EXPECT_THAT(d.removed_activities, ElementsAre(2u));

  ConsentVersion everything = sampleConsent("3");
  everything.classes = kAll;
  everything.signed_on = day("2025-06-01");  // the oldest, but the only one covering all
  add(registry, everything);
  d = registry.decide(carePlan(kActivities, kSudMh));
  EXPECT_TRUE(d.permitted());
  EXPECT_EQ(d.consent->consent_id, "3");
}

TEST(Redaction, OnATieOfKeptActivitiesTheConsentSignedLastRedacts) {
  // docs/privacy.md §5.7: each consent keeps two of the three activities; the later signature wins.
  ConsentRegistry registry;
  ConsentVersion keeps_sud = sampleConsent("1");
  keeps_sud.classes = kGeneralSud;
  keeps_sud.signed_on = day("2026-02-10");
  add(registry, keeps_sud);
  ConsentVersion keeps_mh = sampleConsent("2");
  keeps_mh.classes = ClassSet(DataClass::General).add(DataClass::Mh);
  keeps_mh.signed_on = day("2026-02-25");
  add(registry, keeps_mh);
  const Decision d = registry.decide(carePlan(kActivities, kSudMh));
  EXPECT_EQ(describe(d), "redact:class-not-covered:sud");
  EXPECT_EQ(d.consent->consent_id, "2");
  EXPECT_THAT(d.removed_activities, ElementsAre(0u));
}

TEST(Redaction, APlanWithoutActivitiesIsDecidedWhole) {
  const std::vector<ClassSet> none;
  EXPECT_EQ(describe(decideWith(kGeneral, carePlan(none, kSud, kSud))), "deny:class-not-covered:sud");
  EXPECT_TRUE(decideWith(kGeneral, carePlan(none, kGeneral)).permitted());
}

}  // namespace
}  // namespace gw::consent

#include "outbox/disclosure.hpp"

#include <gtest/gtest.h>

#include <string>

namespace gw::outbox {
namespace {

using privacy::ClassSet;
using privacy::DataClass;

TEST(Disclosure, RoundTripsEveryField) {
  Disclosure d{"TREAT", "pk-1", {}};
  DisclosedResource rx;
  rx.resource_type = "MedicationRequest";
  rx.resource_id = "m-1";
  rx.classes = ClassSet(DataClass::Sud);
  rx.outcome = consent::Outcome::Permit;
  rx.consent_id = "c1/77";
  rx.consent_version = 2;
  d.resources.push_back(rx);
  DisclosedResource plan = rx;
  plan.resource_type = "CarePlan";
  plan.resource_id = "cp-1";
  plan.classes = ClassSet(DataClass::Sud).add(DataClass::Mh);
  plan.outcome = consent::Outcome::Redact;
  plan.activity_classes = {ClassSet(DataClass::Sud), ClassSet(DataClass::Mh)};
  plan.removed_activities = {1};
  plan.plan_classes = ClassSet(DataClass::General);
  d.resources.push_back(plan);
  auto back = parseDisclosure(toJson(d));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back.value().purpose, "TREAT");
  EXPECT_EQ(back.value().patient_key, "pk-1");
  ASSERT_EQ(back.value().resources.size(), 2u);
  const auto& r = back.value().resources[1];
  EXPECT_EQ(r.resource_type, "CarePlan");
  EXPECT_EQ(r.classes, ClassSet(DataClass::Sud).add(DataClass::Mh));
  ASSERT_EQ(r.activity_classes.size(), 2u);
  EXPECT_EQ(r.activity_classes[1], ClassSet(DataClass::Mh));
  EXPECT_EQ(r.outcome, consent::Outcome::Redact);
  EXPECT_EQ(r.plan_classes, ClassSet(DataClass::General));
  EXPECT_EQ(r.removed_activities, std::vector<std::uint32_t>{1});
  EXPECT_EQ(r.consent_id, "c1/77");
  EXPECT_EQ(r.consent_version, 2);
}

TEST(Disclosure, RecordsTheConsentCopiesAndAConsentUpdate) {
  Disclosure d{"TREAT", "pk-1", {}};
  DisclosedResource consent;
  consent.resource_type = "Consent";
  consent.resource_id = "cn-1";
  consent.classes = ClassSet(DataClass::Sud);
  consent.outcome = consent::Outcome::Permit;
  consent.consent_id = "c1/77";
  consent.consent_version = 3;
  d.resources.push_back(consent);
  d.consent_copies = {"c1/77"};
  d.consent_update = true;
  auto back = parseDisclosure(toJson(d));
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back.value().consent_copies, std::vector<std::string>{"c1/77"});
  EXPECT_TRUE(back.value().consent_copies_known);
  EXPECT_TRUE(back.value().consent_update);
  // Items queued before the copies were recorded: known as unknown, so the caller infers them.
  auto old = parseDisclosure(
      R"({"purpose":"TREAT","patient":"p","resources":[{"type":"X","id":"1","classes":"sud","outcome":"permit","consent":"c","consent_version":1}]})");
  ASSERT_TRUE(old);
  EXPECT_FALSE(old.value().consent_copies_known);
  EXPECT_FALSE(old.value().consent_update);
  EXPECT_FALSE(parseDisclosure(
      R"({"purpose":"TREAT","patient":"p","kind":"recall","resources":[{"type":"X","id":"1","classes":"sud","outcome":"permit","consent":"c","consent_version":1}]})"));
}

TEST(Disclosure, AnythingMalformedIsAnErrorSoTheItemIsNeverSentOnAGuess) {
  for (
      const char* text :
      {"", "[]", R"({"purpose":"TREAT"})",
       R"({"purpose":"TREAT","patient":"p","resources":[{"type":"X","id":"1","classes":"","outcome":"permit","consent":"c","consent_version":1}]})",
       R"({"purpose":"TREAT","patient":"p","resources":[{"type":"X","id":"1","classes":"sud","outcome":"maybe","consent":"c","consent_version":1}]})",
       R"({"purpose":"TREAT","patient":"p","resources":[{"type":"X","id":"1","classes":"sud","outcome":"deny","consent":"c","consent_version":1}]})",
       R"({"purpose":"TREAT","patient":"p","resources":[{"type":"X","id":"1","classes":"secret","outcome":"permit","consent":"c","consent_version":1}]})",
       R"({"purpose":"TREAT","patient":"p","resources":[{"type":"X","id":"1","classes":"sud","outcome":"permit","consent":"c"}]})"}) {
    EXPECT_FALSE(parseDisclosure(text)) << text;
  }
}

// Found fuzzing parseDisclosure: it parsed without json::parse's nesting cap, so a damaged row
// nested deeply enough overflowed the stack instead of being refused.
TEST(Disclosure, DeeplyNestedRowIsAnErrorNotACrash) {
  const std::size_t depth = 1'000'000;
  const std::string text = R"({"purpose":"TREAT","patient":"p","resources":)" + std::string(depth, '[') +
                           std::string(depth, ']') + "}";
  const auto r = parseDisclosure(text);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Internal);
  EXPECT_EQ(r.error().where, "outbox.disclosure");
}

}  // namespace
}  // namespace gw::outbox

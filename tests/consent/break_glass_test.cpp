// Break-glass in decisions (42 CFR 2.51, docs/privacy.md §7.1): a grant permits, for its patient
// and partner only, what no consent permits, from its opening until it expires (by itself) or is
// ended; it never makes unclassified data or an unknown purpose sendable, and a consent that
// permits still decides (the disclosure is then not an emergency one).
#include <gtest/gtest.h>

#include "consent/consent_registry.hpp"
#include "consent_test_support.hpp"

namespace gw::consent::testing {
namespace {

BreakGlassGrant grant(std::string_view opened_day, std::int64_t minutes, std::string id = "bg-1") {
  BreakGlassGrant g;
  g.id = std::move(id);
  g.clinic = "c1";
  g.patient_key = "pat-1";
  g.partner_id = "st-mary";
  g.opened_ms = toUnixMillis(noon(opened_day));
  g.expires_ms = g.opened_ms + minutes * 60'000;
  return g;
}

DecisionRequest request(SystemTime at, ClassSet classes, std::string_view partner = "st-mary",
                        std::string_view patient = "pat-1") {
  DecisionRequest r;
  r.patient_key = patient;
  r.partner_id = partner;
  r.purpose = "TREAT";
  r.at = at;
  r.classes = classes;
  return r;
}

TEST(BreakGlass, PermitsWhatNoConsentCoversUntilItExpiresByItself) {
  ConsentRegistry registry;
  const auto opened = noon("2026-12-01");
  EXPECT_EQ(registry.decide(request(opened, kMh)).reason, Reason::NoConsent);
  const auto generation = registry.generation();
  registry.openBreakGlass(grant("2026-12-01", 30));
  EXPECT_GT(registry.generation(), generation) << "decisions taken before it are stale";

  const auto during = registry.decide(request(opened + std::chrono::minutes(29), kSudMh));
  EXPECT_EQ(during.outcome, Outcome::Permit);
  EXPECT_EQ(during.reason, Reason::BreakGlass);
  EXPECT_EQ(reasonText(during), "break-glass");
  ASSERT_TRUE(during.break_glass);
  EXPECT_EQ(during.break_glass->id, "bg-1");
  EXPECT_FALSE(during.consent);
  EXPECT_EQ(during.disclosed, kSudMh);

  EXPECT_EQ(registry.decide(request(opened + std::chrono::minutes(30), kMh)).reason, Reason::NoConsent)
      << "ends by itself at expiry";
  EXPECT_EQ(registry.decide(request(opened - std::chrono::seconds(1), kMh)).reason, Reason::NoConsent)
      << "not before it was opened";
  EXPECT_EQ(registry.decide(request(opened, kMh, "county-general")).reason, Reason::NoConsent) << "one partner";
  EXPECT_EQ(registry.decide(request(opened, kMh, "st-mary", "pat-2")).reason, Reason::NoConsent) << "one patient";
}

TEST(BreakGlass, EndedByReplacingItsGrant) {
  ConsentRegistry registry;
  registry.openBreakGlass(grant("2026-12-01", 600));
  const auto at = noon("2026-12-01") + std::chrono::minutes(10);
  EXPECT_TRUE(registry.decide(request(at, kSud)).permitted());
  auto ended = grant("2026-12-01", 600);
  ended.expires_ms = toUnixMillis(at);
  registry.openBreakGlass(ended);
  EXPECT_FALSE(registry.decide(request(at, kSud)).permitted());
  registry.loadBreakGlass({});
  EXPECT_FALSE(registry.decide(request(at - std::chrono::minutes(5), kSud)).permitted());
}

TEST(BreakGlass, NeverForUnclassifiedDataOrAnUnknownPurpose) {
  ConsentRegistry registry;
  registry.openBreakGlass(grant("2026-12-01", 60));
  const auto at = noon("2026-12-01");
  EXPECT_EQ(registry.decide(request(at, ClassSet{})).reason, Reason::Unclassified);
  auto bad = request(at, kSud);
  bad.purpose = "MARKETING";
  EXPECT_EQ(registry.decide(bad).reason, Reason::InvalidRequest);
}

TEST(BreakGlass, AConsentThatPermitsStillDecidesAndRedactionsBecomeFullPermits) {
  ConsentRegistry registry;
  add(registry, sampleConsent());  // general + sud, 2026-03-01..2026-08-31
  registry.openBreakGlass(grant("2026-06-01", 60));
  const auto at = noon("2026-06-01");
  const auto consented = registry.decide(request(at, kSud));
  EXPECT_EQ(consented.reason, Reason::None);
  EXPECT_TRUE(consented.consent) << "under the consent, not the emergency";
  EXPECT_FALSE(consented.break_glass);
  const auto mh = registry.decide(request(at, kMh));
  EXPECT_EQ(mh.reason, Reason::BreakGlass) << "what the consent does not cover goes under the emergency";
}

}  // namespace
}  // namespace gw::consent::testing

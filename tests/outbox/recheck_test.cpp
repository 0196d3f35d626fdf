#include "outbox/recheck.hpp"

#include <gtest/gtest.h>

#include "outbox/disclosure.hpp"

namespace gw::outbox {
namespace {

using privacy::ClassSet;
using privacy::DataClass;

class RecheckTest : public ::testing::Test {
 protected:
  SystemTime now_ = fromUnixMillis(1'800'000'000'000);

  consent::ConsentVersion consentVersion(std::int64_t version, consent::ConsentStatus status, ClassSet classes) {
    consent::ConsentVersion v;
    v.clinic = "c1";
    v.consent_id = "77";
    v.version = version;
    v.patient_key = "pk";
    v.partner_id = "p1";
    v.status = status;
    v.purposes = consent::Purpose::Treat;
    v.classes = classes;
    const auto today = consent::utcDate(now_);
    v.period_start = today - std::chrono::days(5);
    v.period_end = today + std::chrono::days(5);
    v.signed_on = v.period_start.day;
    if (status == consent::ConsentStatus::Revoked) v.revoked_on = today;
    v.resource_id = "consent-77";
    return v;
  }

  store::OutboxItem item(const std::string& disclosure) {
    store::OutboxItem i;
    i.id = 7;
    i.partner_id = "p1";
    i.clinic = "c1";
    i.patient_key = "pk";
    i.disclosure = disclosure;
    return i;
  }

  std::string permittedUnder(int version) {
    Disclosure d{"TREAT", "pk", {}};
    DisclosedResource r;
    r.resource_type = "MedicationRequest";
    r.resource_id = "m1";
    r.classes = ClassSet(DataClass::Sud);
    r.outcome = consent::Outcome::Permit;
    r.consent_id = "c1/77";
    r.consent_version = version;
    d.resources.push_back(r);
    return toJson(d);
  }

  consent::ConsentRegistry registry_;
};

TEST_F(RecheckTest, StillPermittedUnderTheSameConsentIsSent) {
  ASSERT_TRUE(registry_.upsert(consentVersion(1, consent::ConsentStatus::Active, ClassSet(DataClass::Sud))));
  auto r = recheckItem(item(permittedUnder(1)), registry_, now_, "v");
  EXPECT_TRUE(r.send);
  EXPECT_TRUE(r.cancellations.empty());
}

TEST_F(RecheckTest, ARevocationCancelsWithItsReasonLogged) {
  ASSERT_TRUE(registry_.upsert(consentVersion(1, consent::ConsentStatus::Active, ClassSet(DataClass::Sud))));
  ASSERT_TRUE(registry_.upsert(consentVersion(2, consent::ConsentStatus::Revoked, ClassSet(DataClass::Sud))));
  auto r = recheckItem(item(permittedUnder(1)), registry_, now_, "v");
  EXPECT_FALSE(r.send);
  EXPECT_EQ(r.reason, "revoked");
  ASSERT_EQ(r.cancellations.size(), 1u);
  EXPECT_EQ(r.cancellations[0].kind, store::AuditKind::Cancel);
  EXPECT_EQ(r.cancellations[0].resource_id, "m1");
  EXPECT_EQ(r.cancellations[0].policy_version, "v");
}

TEST_F(RecheckTest, PermittedUnderAnotherConsentVersionIsReplannedNotSentWithTheOldCopy) {
  ASSERT_TRUE(registry_.upsert(consentVersion(1, consent::ConsentStatus::Active, ClassSet(DataClass::Sud))));
  ASSERT_TRUE(
      registry_.upsert(consentVersion(2, consent::ConsentStatus::Active, ClassSet(DataClass::Sud).add(DataClass::General))));
  auto r = recheckItem(item(permittedUnder(1)), registry_, now_, "v");
  EXPECT_FALSE(r.send) << "the Bundle carries version 1 of the Consent";
  EXPECT_EQ(r.reason, "consent-changed");
}

TEST_F(RecheckTest, AnUnreadableDisclosureIsNeverSent) {
  ASSERT_TRUE(registry_.upsert(consentVersion(1, consent::ConsentStatus::Active, ClassSet(DataClass::Sud))));
  for (const char* bad : {"", "{}", "garbage"}) {
    auto r = recheckItem(item(bad), registry_, now_, "v");
    EXPECT_FALSE(r.send) << bad;
    EXPECT_EQ(r.cancellations.size(), 1u);
  }
}

}  // namespace
}  // namespace gw::outbox

namespace gw::outbox {
namespace {

// docs/privacy.md §7.1: an item queued under a break-glass goes only while that very grant is in
// force; at its expiry (by itself, no one ends it) the re-check cancels it.
TEST(RecheckBreakGlass, AnItemQueuedUnderABreakGlassIsCancelledOnceItExpired) {
  const SystemTime opened = fromUnixMillis(1'800'000'000'000);
  consent::ConsentRegistry registry;
  consent::BreakGlassGrant g;
  g.id = "bg-1";
  g.clinic = "c1";
  g.patient_key = "pk";
  g.partner_id = "p1";
  g.opened_ms = toUnixMillis(opened);
  g.expires_ms = g.opened_ms + 5 * 60'000;
  registry.openBreakGlass(g);

  Disclosure d{"TREAT", "pk", {}};
  DisclosedResource r;
  r.resource_type = "Condition";
  r.resource_id = "c1";
  r.classes = privacy::ClassSet(privacy::DataClass::Mh);
  r.outcome = consent::Outcome::Permit;
  r.break_glass_id = "bg-1";
  d.resources.push_back(r);
  const auto json = toJson(d);
  auto parsed = parseDisclosure(json);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.value().resources[0].break_glass_id, "bg-1") << "kept beside the Bundle";

  store::OutboxItem item;
  item.id = 9;
  item.partner_id = "p1";
  item.clinic = "c1";
  item.patient_key = "pk";
  item.disclosure = json;
  EXPECT_TRUE(recheckItem(item, registry, opened + std::chrono::minutes(4), "v").send);
  const auto expired = recheckItem(item, registry, opened + std::chrono::minutes(5), "v");
  EXPECT_FALSE(expired.send);
  EXPECT_EQ(expired.reason, "no-consent");
  ASSERT_EQ(expired.cancellations.size(), 1u);

  // Another grant (a new break-glass) is another basis: the item was decided under bg-1.
  g.id = "bg-2";
  g.expires_ms = g.opened_ms + 60 * 60'000;
  registry.openBreakGlass(g);
  EXPECT_FALSE(recheckItem(item, registry, opened + std::chrono::minutes(10), "v").send);
}

}  // namespace
}  // namespace gw::outbox

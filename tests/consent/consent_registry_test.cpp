// The registry: newest version per consent, revocation, bulk load, concurrent readers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "consent_test_support.hpp"

namespace gw::consent {
namespace {

using namespace gw::consent::testing;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

ConsentVersion version(ConsentVersion v, std::int64_t n) {
  v.version = n;
  return v;
}

ConsentVersion revoked(ConsentVersion v, std::int64_t n) {
  v.version = n;
  v.status = ConsentStatus::Revoked;
  v.revoked_on = day("2026-04-01");
  return v;
}

TEST(Registry, TheNewestVersionDecides) {
  ConsentRegistry registry;
  add(registry, sampleConsent());
  ASSERT_TRUE(registry.decide(request(kSud)).permitted());

  ConsentVersion narrower = version(sampleConsent(), 2);
  narrower.classes = kGeneral;
  auto r = registry.upsert(narrower);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r.value().applied);
  ASSERT_NE(r.value().previous, nullptr);
  EXPECT_EQ(r.value().previous->version, 1);
  EXPECT_FALSE(r.value().revoked);

  const Decision d = registry.decide(request(kSud));
  EXPECT_EQ(describe(d), "deny:class-not-covered:sud");
  EXPECT_EQ(d.consent->version, 2);
  EXPECT_EQ(registry.decide(request(kGeneral)).consent->version, 2);
  EXPECT_EQ(registry.size(), 1u);
  EXPECT_EQ(registry.latestVersion("c1", "77"), 2);
  EXPECT_EQ(registry.current("c1", "77")->version, 2);
  EXPECT_EQ(registry.latestVersion("c1", "78"), 0);
  EXPECT_EQ(registry.current("c2", "77"), nullptr);
}

TEST(Registry, AnOlderOrRepeatedVersionChangesNothing) {
  ConsentRegistry registry;
  ConsentVersion v2 = version(sampleConsent(), 2);
  v2.classes = kGeneral;
  add(registry, v2);
  for (std::int64_t n : {1, 2}) {
    ConsentVersion replay = version(sampleConsent(), n);  // covers sud: must not come back
    auto r = registry.upsert(replay);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r.value().applied);
  }
  EXPECT_EQ(describe(registry.decide(request(kSud))), "deny:class-not-covered:sud");
}

TEST(Registry, RevocationIsReportedAndDenies) {
  ConsentRegistry registry;
  add(registry, sampleConsent());
  const Decision before = registry.decide(request(kSud));
  ASSERT_TRUE(before.permitted());

  auto r = registry.upsert(revoked(sampleConsent(), 2));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r.value().revoked);  // the caller cancels what is queued for this patient and partner
  ASSERT_NE(r.value().previous, nullptr);
  EXPECT_EQ(r.value().previous->patient_key, "pat-1");
  EXPECT_EQ(r.value().previous->partner_id, "st-mary");

  const Decision after = registry.decide(request(kSud));
  EXPECT_EQ(describe(after), "deny:revoked");
  EXPECT_EQ(after.consent->version, 2);
  // A decision taken earlier keeps the version it was taken under.
  EXPECT_EQ(before.consent->version, 1);
  EXPECT_EQ(before.consent->status, ConsentStatus::Active);
}

TEST(Registry, ARevokedConsentCannotBecomeActiveAgain) {
  ConsentRegistry registry;
  add(registry, sampleConsent());
  add(registry, revoked(sampleConsent(), 2));
  const ConsentVersion reactivated = version(sampleConsent(), 3);
  EXPECT_FALSE(registry.admissible(reactivated));
  auto r = registry.upsert(reactivated);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("revoked"));
  EXPECT_THAT(r.error().hint, HasSubstr("new consent"));
  EXPECT_EQ(describe(registry.decide(request(kSud))), "deny:revoked");
  EXPECT_EQ(registry.latestVersion("c1", "77"), 2);

  // A corrected revocation is fine, and reports no second revocation.
  ConsentVersion corrected = revoked(sampleConsent(), 3);
  corrected.revoked_on = day("2026-04-02");
  EXPECT_TRUE(registry.admissible(corrected));
  auto c = registry.upsert(corrected);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c.value().applied);
  EXPECT_FALSE(c.value().revoked);
}

TEST(Registry, AConsentRecordedAsRevokedIsNotAnActiveOneRevoked) {
  ConsentRegistry registry;
  auto r = registry.upsert(revoked(sampleConsent(), 1));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r.value().applied);
  EXPECT_FALSE(r.value().revoked);  // nothing could have been queued under it
  EXPECT_EQ(describe(registry.decide(request(kSud))), "deny:revoked");
}

TEST(Registry, AnUnsoundNewerVersionWithdrawsTheOlderOne) {
  ConsentRegistry registry;
  add(registry, sampleConsent());
  ConsentVersion broken = version(sampleConsent(), 2);
  broken.purposes = PurposeSet();  // perhaps a revocation that lost its fields
  EXPECT_FALSE(registry.admissible(broken));
  auto r = registry.upsert(broken);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("no purpose"));
  EXPECT_EQ(describe(registry.decide(request(kSud))), "deny:no-consent");
  EXPECT_EQ(registry.current("c1", "77"), nullptr);
  EXPECT_EQ(registry.size(), 0u);
  EXPECT_EQ(registry.latestVersion("c1", "77"), 2);

  add(registry, version(sampleConsent(), 3));
  EXPECT_TRUE(registry.decide(request(kSud)).permitted());
  EXPECT_EQ(registry.size(), 1u);
}

TEST(Registry, RowsWithoutKeysAreRefusedWithoutEffect) {
  ConsentRegistry registry;
  add(registry, sampleConsent());
  for (auto change : {+[](ConsentVersion& v) { v.version = 0; }, +[](ConsentVersion& v) { v.consent_id.clear(); },
                      +[](ConsentVersion& v) { v.clinic.clear(); }}) {
    ConsentVersion v = sampleConsent();
    change(v);
    EXPECT_FALSE(registry.upsert(v));
  }
  EXPECT_TRUE(registry.decide(request(kSud)).permitted());
}

TEST(Registry, ANewVersionCanNameAnotherPartnerOrPatient) {
  ConsentRegistry registry;
  add(registry, sampleConsent());
  ConsentVersion moved = version(sampleConsent(), 2);
  moved.partner_id = "county-hie";
  add(registry, moved);
  EXPECT_EQ(describe(registry.decide(request(kSud))), "deny:no-consent");
  EXPECT_TRUE(registry.decide(request(kSud, "2026-05-15", "county-hie")).permitted());

  ConsentVersion other_patient = version(moved, 3);
  other_patient.patient_key = "pat-2";
  add(registry, other_patient);
  EXPECT_EQ(describe(registry.decide(request(kSud, "2026-05-15", "county-hie"))), "deny:no-consent");
  EXPECT_TRUE(registry.decide(request(kSud, "2026-05-15", "county-hie", "TREAT", "pat-2")).permitted());
}

TEST(Registry, LoadReplacesEverythingAndAppliesVersionsInOrder) {
  ConsentRegistry registry;
  ConsentVersion stale = sampleConsent("old");
  stale.patient_key = "pat-9";
  add(registry, stale);

  ConsentVersion other = sampleConsent("80");
  other.partner_id = "county-hie";
  std::vector<ConsentVersion> rows = {
      version(sampleConsent(), 3),  // reactivation after the revocation in v2: refused
      revoked(sampleConsent(), 2),
      version(sampleConsent(), 1),
      other,
  };
  ConsentVersion keyless = sampleConsent("81");
  keyless.version = 0;
  rows.push_back(keyless);

  const auto errors = registry.load(rows);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_THAT(errors[0].message, HasSubstr("77 version 3"));
  EXPECT_THAT(errors[1].message, HasSubstr("81 version 0"));
  EXPECT_EQ(describe(registry.decide(request(kSud))), "deny:revoked");
  EXPECT_EQ(registry.latestVersion("c1", "77"), 2);
  EXPECT_TRUE(registry.decide(request(kSud, "2026-05-15", "county-hie")).permitted());
  EXPECT_EQ(describe(registry.decide(request(kSud, "2026-05-15", "st-mary", "TREAT", "pat-9"))), "deny:no-consent");
  EXPECT_EQ(registry.current("c1", "old"), nullptr);
  EXPECT_EQ(registry.size(), 2u);
  // Writes after a load go to the loaded state.
  add(registry, sampleConsent("82"));
  EXPECT_EQ(registry.size(), 3u);
}

TEST(Registry, ManyConsentsAcrossShards) {
  ConsentRegistry registry;
  std::vector<ConsentVersion> rows;
  for (int i = 0; i < 2000; ++i) {
    ConsentVersion v = sampleConsent(std::to_string(i));
    v.patient_key = "patient-" + std::to_string(i % 500);
    v.partner_id = i % 2 == 0 ? "st-mary" : "county-hie";
    v.classes = i % 3 == 0 ? kGeneral : kAll;
    rows.push_back(v);
  }
  EXPECT_THAT(registry.load(rows), IsEmpty());
  EXPECT_EQ(registry.size(), 2000u);
  for (int p = 0; p < 500; ++p) {
    const std::string key = "patient-" + std::to_string(p);
    // patient p holds consents p, p+500, p+1000, p+1500: partners alternate with p's parity.
    const bool has_st_mary = p % 2 == 0;
    const Decision d = registry.decide(request(kSud, "2026-05-15", "st-mary", "TREAT", key));
    EXPECT_EQ(d.permitted(), has_st_mary) << key << " " << describe(d);
  }
}

// Readers decide while a writer keeps replacing one consent's versions (alternately covering sud
// and not) and adds consents of other patients. Same-patient replacement is one locked swap, so
// a reader must always see exactly one version: never no-consent, and the outcome must match the
// version it reports.
TEST(RegistryConcurrency, ReadersAlwaysSeeAWholeVersion) {
  ConsentRegistry registry;
  add(registry, sampleConsent());
  std::atomic<bool> stop{false};
  std::atomic<long> decisions{0};
  std::atomic<long> inconsistent{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        const Decision d = registry.decide(request(kSud));
        const bool odd = d.consent && d.consent->version % 2 == 1;
        const bool ok = d.consent && (d.permitted() ? odd : (!odd && d.reason == Reason::ClassNotCovered));
        if (!ok) inconsistent.fetch_add(1);
        decisions.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (std::int64_t v = 2; v <= 400; ++v) {
    ConsentVersion next = version(sampleConsent(), v);
    next.classes = v % 2 == 1 ? kAll : kGeneral;
    ASSERT_TRUE(registry.upsert(next));
    ConsentVersion noise = sampleConsent("n" + std::to_string(v));
    noise.patient_key = "noise-" + std::to_string(v);
    ASSERT_TRUE(registry.upsert(noise));
    if (v % 50 == 0) std::this_thread::yield();
  }
  // Let the readers see the final state too.
  while (decisions.load() < 2000) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(inconsistent.load(), 0);
  EXPECT_EQ(registry.size(), 400u);
  EXPECT_EQ(describe(registry.decide(request(kSud))), "deny:class-not-covered:sud");  // v400 is general only
}

}  // namespace
}  // namespace gw::consent

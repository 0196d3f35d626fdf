// The decision table of issue 4: classes x coverage x purpose x period x status x partner, each
// row checked against an independent statement of docs/privacy.md §5 and, for a subset,
// against hand-written expectations; then the reasons when several consents disagree, and a
// randomized comparison with a brute-force oracle.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <functional>
#include <random>
#include <tuple>

#include "consent_test_support.hpp"

namespace gw::consent {
namespace {

using namespace gw::consent::testing;

enum class Classes { General, Sud, Mh, SudMh };
enum class Period { BeforeStart, FirstDay, Inside, LastDay, AfterEnd };

struct Row {
  Classes classes;
  bool covers;
  bool purpose_listed;
  Period period;
  bool revoked;
  bool named_partner;
};

ClassSet resourceClasses(Classes c) {
  switch (c) {
    case Classes::General: return kGeneral;
    case Classes::Sud: return kSud;
    case Classes::Mh: return kMh;
    case Classes::SudMh: return kSudMh;
  }
  return {};
}

// The class a non-covering consent leaves out; it lists the other two.
DataClass leftOut(Classes c) {
  switch (c) {
    case Classes::General: return DataClass::General;
    case Classes::Sud: return DataClass::Sud;
    case Classes::Mh: return DataClass::Mh;
    case Classes::SudMh: return DataClass::Mh;
  }
  return DataClass::Sud;
}

ClassSet consentCategories(const Row& r) {
  if (r.covers) return resourceClasses(r.classes);
  ClassSet out;
  for (DataClass c : {DataClass::General, DataClass::Sud, DataClass::Mh}) {
    if (c != leftOut(r.classes)) out.add(c);
  }
  return out;
}

const char* dateOf(Period p) {
  switch (p) {
    case Period::BeforeStart: return "2026-02-28";
    case Period::FirstDay: return "2026-03-01";
    case Period::Inside: return "2026-05-15";
    case Period::LastDay: return "2026-08-31";  // the end is inclusive
    case Period::AfterEnd: return "2026-09-01";
  }
  return "";
}

std::string rowName(const Row& r) {
  static const char* kClasses[] = {"general", "sud", "mh", "sud+mh"};
  static const char* kPeriods[] = {"before", "first-day", "inside", "last-day", "after"};
  return std::string(kClasses[static_cast<int>(r.classes)]) + (r.covers ? "/covered" : "/not-covered") +
         (r.purpose_listed ? "/purpose" : "/other-purpose") + "/" + kPeriods[static_cast<int>(r.period)] +
         (r.revoked ? "/revoked" : "/active") + (r.named_partner ? "/named" : "/other-partner");
}

// docs/privacy.md §5 for a patient with one consent, written as the rules read:
// no consent names the partner -> no-consent; otherwise the first rule the consent breaks, taking
// the consent's state (revoked, then lapsed, then not begun) before its scope (purpose, classes).
std::string expected(const Row& r) {
  if (!r.named_partner) return "deny:no-consent";
  if (r.revoked) return "deny:revoked";
  if (r.period == Period::AfterEnd) return "deny:expired";
  if (r.period == Period::BeforeStart) return "deny:not-yet-valid";
  if (!r.purpose_listed) return "deny:purpose-not-covered";
  if (!r.covers) return "deny:class-not-covered:" + std::string(privacy::className(leftOut(r.classes)));
  return "permit";
}

std::vector<Row> allRows() {
  std::vector<Row> rows;
  for (Classes c : {Classes::General, Classes::Sud, Classes::Mh, Classes::SudMh})
    for (bool covers : {true, false})
      for (bool purpose : {true, false})
        for (Period p : {Period::BeforeStart, Period::FirstDay, Period::Inside, Period::LastDay, Period::AfterEnd})
          for (bool revoked : {false, true})
            for (bool named : {true, false}) rows.push_back({c, covers, purpose, p, revoked, named});
  return rows;
}

// The patient's consent for st-mary per the row, plus noise that must not matter: a consent of
// the same patient for a third partner that would permit anything, and one of another patient
// for st-mary that would permit anything.
void fill(ConsentRegistry& registry, const Row& r) {
  ConsentVersion v = sampleConsent("77");
  v.classes = consentCategories(r);
  v.purposes = r.purpose_listed ? PurposeSet(Purpose::Treat).add(Purpose::Hoperat) : PurposeSet(Purpose::Hpaymt);
  if (r.revoked) {
    v.status = ConsentStatus::Revoked;
    v.revoked_on = day("2026-06-30");  // later than some request days: revocation still wins
  }
  add(registry, v);

  ConsentVersion third = sampleConsent("78");
  third.partner_id = "third-partner";
  third.classes = kAll;
  third.purposes = PurposeSet(0x7);
  third.period_start = day("2000-01-01");
  third.period_end.reset();
  add(registry, third);

  ConsentVersion other_patient = third;
  other_patient.consent_id = "79";
  other_patient.patient_key = "pat-2";
  other_patient.partner_id = "st-mary";
  add(registry, other_patient);
}

TEST(DecisionTable, EveryCombination) {
  const auto rows = allRows();
  ASSERT_EQ(rows.size(), 4u * 2 * 2 * 5 * 2 * 2);
  int permits = 0;
  for (const Row& r : rows) {
    SCOPED_TRACE(rowName(r));
    ConsentRegistry registry;
    fill(registry, r);
    const Decision d = registry.decide(
        request(resourceClasses(r.classes), dateOf(r.period), r.named_partner ? "st-mary" : "county-hie"));
    EXPECT_EQ(describe(d), expected(r));

    // Invariants that hold whatever the reason.
    const bool every_dimension_passes = r.named_partner && !r.revoked && r.purpose_listed && r.covers &&
                                        r.period != Period::BeforeStart && r.period != Period::AfterEnd;
    EXPECT_EQ(d.permitted(), every_dimension_passes);
    EXPECT_NE(d.outcome, Outcome::Redact);  // not a CarePlan
    if (d.permitted()) {
      ++permits;
      ASSERT_NE(d.consent, nullptr);
      EXPECT_EQ(d.consent->consent_id, "77");
      EXPECT_EQ(d.consent->version, 1);
      EXPECT_EQ(d.disclosed, resourceClasses(r.classes));
      EXPECT_EQ(d.reason, Reason::None);
    } else if (r.named_partner) {
      ASSERT_NE(d.consent, nullptr);  // the audit log can name the consent that fell short
      EXPECT_EQ(d.consent->consent_id, "77");
    } else {
      EXPECT_EQ(d.consent, nullptr);
    }
  }
  EXPECT_EQ(permits, 4 * 3);  // covered, purpose listed, active, named: three in-period days each
}

// Hand-written rows, read straight from the rules (no helper computes these).
TEST(DecisionTable, HandWrittenRows) {
  struct Case {
    Row row;
    const char* want;
  };
  const Case cases[] = {
      {{Classes::Sud, true, true, Period::Inside, false, true}, "permit"},
      {{Classes::SudMh, true, true, Period::LastDay, false, true}, "permit"},
      {{Classes::General, true, true, Period::FirstDay, false, true}, "permit"},
      {{Classes::SudMh, false, true, Period::Inside, false, true}, "deny:class-not-covered:mh"},
      {{Classes::Sud, false, true, Period::Inside, false, true}, "deny:class-not-covered:sud"},
      {{Classes::General, false, true, Period::Inside, false, true}, "deny:class-not-covered:general"},
      {{Classes::Mh, true, false, Period::Inside, false, true}, "deny:purpose-not-covered"},
      {{Classes::Mh, true, true, Period::AfterEnd, false, true}, "deny:expired"},
      {{Classes::Mh, true, true, Period::BeforeStart, false, true}, "deny:not-yet-valid"},
      {{Classes::Sud, true, true, Period::Inside, true, true}, "deny:revoked"},
      {{Classes::Sud, false, false, Period::AfterEnd, true, true}, "deny:revoked"},
      {{Classes::Sud, false, false, Period::AfterEnd, false, true}, "deny:expired"},
      {{Classes::General, true, true, Period::Inside, false, false}, "deny:no-consent"},
      {{Classes::SudMh, false, false, Period::BeforeStart, true, false}, "deny:no-consent"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(rowName(c.row));
    ConsentRegistry registry;
    fill(registry, c.row);
    const Decision d = registry.decide(
        request(resourceClasses(c.row.classes), dateOf(c.row.period), c.row.named_partner ? "st-mary" : "county-hie"));
    EXPECT_EQ(describe(d), c.want);
  }
}

// --- requests that cannot be permitted whatever the consents -----------------------------

TEST(DecisionRequests, BadRequestsAreDenied) {
  ConsentRegistry registry;
  ConsentVersion v = sampleConsent();
  v.classes = kAll;
  v.purposes = PurposeSet(0x7);
  add(registry, v);
  ASSERT_TRUE(registry.decide(request(kSud)).permitted());

  EXPECT_EQ(describe(registry.decide(request(ClassSet()))), "deny:unclassified");
  EXPECT_EQ(describe(registry.decide(request(kSud, "2026-05-15", "st-mary", "treat"))), "deny:invalid-request");
  EXPECT_EQ(describe(registry.decide(request(kSud, "2026-05-15", "st-mary", ""))), "deny:invalid-request");
  EXPECT_EQ(describe(registry.decide(request(kSud, "2026-05-15", ""))), "deny:invalid-request");
  EXPECT_EQ(describe(registry.decide(request(kSud, "2026-05-15", "st-mary", "TREAT", ""))), "deny:invalid-request");
  EXPECT_EQ(describe(registry.decide(request(kSud, "2026-05-15", "st-mary", "TREAT", "pat-9"))), "deny:no-consent");
  EXPECT_EQ(describe(registry.decide(request(kSud, "2026-05-15", "ST-MARY"))), "deny:no-consent");
  ConsentRegistry empty;
  EXPECT_EQ(describe(empty.decide(request(kSud))), "deny:no-consent");
}

TEST(DecisionRequests, ADefaultDecisionIsADeny) {
  const Decision d;
  EXPECT_EQ(d.outcome, Outcome::Deny);
  EXPECT_FALSE(d.disclosable());
  EXPECT_EQ(describe(d), "deny:internal-error");
}

// --- several consents: which one decides, and the most telling reason ----------------------

TEST(SeveralConsents, AnyOneCandidateCoveringEveryClassPermits) {
  ConsentRegistry registry;
  ConsentVersion revoked = sampleConsent("1");
  revoked.status = ConsentStatus::Revoked;
  revoked.revoked_on = day("2026-04-01");
  revoked.classes = kAll;
  add(registry, revoked);
  ConsentVersion general_only = sampleConsent("2");
  general_only.classes = kGeneral;
  add(registry, general_only);
  ConsentVersion mh_only = sampleConsent("3");
  mh_only.classes = kMh;
  add(registry, mh_only);
  // Neither the general nor the mh consent covers sud+mh alone (consents are not combined), and
  // each falls short in one way, as the revoked one does: the revocation is the reason given.
  EXPECT_EQ(describe(registry.decide(request(kSudMh))), "deny:revoked");
  ConsentVersion both = sampleConsent("4");
  both.classes = kSudMh;
  both.signed_on = day("2025-01-01");  // oldest: still the only candidate
  add(registry, both);
  const Decision d = registry.decide(request(kSudMh));
  ASSERT_TRUE(d.permitted());
  EXPECT_EQ(d.consent->consent_id, "4");
}

TEST(SeveralConsents, TheNewestCandidateIsUsedWhateverTheInsertionOrder) {
  auto a = sampleConsent("a");
  a.signed_on = day("2026-01-01");
  auto b = sampleConsent("b");
  b.signed_on = day("2026-02-01");  // latest signature wins
  auto c = sampleConsent("c");
  c.signed_on = day("2026-02-01");
  c.recorded_at = b.recorded_at - 1;  // same day, recorded earlier
  auto d = sampleConsent("d");
  d.signed_on.reset();  // no signature date sorts last
  std::vector<ConsentVersion> all{a, b, c, d};
  std::sort(all.begin(), all.end(), [](const auto& x, const auto& y) { return x.consent_id < y.consent_id; });
  do {
    ConsentRegistry registry;
    for (const auto& v : all) add(registry, v);
    const Decision decision = registry.decide(request(kSud));
    ASSERT_TRUE(decision.permitted());
    EXPECT_EQ(decision.consent->consent_id, "b");
  } while (std::next_permutation(all.begin(), all.end(),
                                 [](const auto& x, const auto& y) { return x.consent_id < y.consent_id; }));
  // Identical signature and recording times: the consent id decides, so the choice is stable.
  ConsentRegistry registry;
  auto x = sampleConsent("x");
  auto y = sampleConsent("y");
  add(registry, y);
  add(registry, x);
  EXPECT_EQ(registry.decide(request(kSud)).consent->consent_id, "x");
}

struct ReasonCase {
  const char* name;
  std::vector<ConsentVersion> consents;
  const char* want;
  const char* consent_id;  // the consent reported
};

ConsentVersion with(ConsentVersion v, const std::function<void(ConsentVersion&)>& change) {
  change(v);
  return v;
}

TEST(SeveralConsents, TheMostTellingReasonWins) {
  const auto revoke = [](ConsentVersion& v) {
    v.status = ConsentStatus::Revoked;
    v.revoked_on = day("2026-04-01");
  };
  const auto expire = [](ConsentVersion& v) {
    v.period_start = day("2025-01-01");
    v.period_end = day("2025-12-31");
  };
  const auto future = [](ConsentVersion& v) {
    v.period_start = day("2026-06-01");
    v.period_end = day("2027-05-31");
  };
  const auto payment = [](ConsentVersion& v) { v.purposes = PurposeSet(Purpose::Hpaymt); };
  const auto general = [](ConsentVersion& v) { v.classes = kGeneral; };
  const std::vector<ReasonCase> cases = {
      {"only_consent_revoked", {with(sampleConsent("1"), revoke)}, "deny:revoked", "1"},
      {"only_consent_expired", {with(sampleConsent("1"), expire)}, "deny:expired", "1"},
      {"only_consent_future", {with(sampleConsent("1"), future)}, "deny:not-yet-valid", "1"},
      {"no_consent_lists_the_purpose",
       {with(sampleConsent("1"), payment), with(with(sampleConsent("2"), payment), general)},
       "deny:purpose-not-covered",
       "1"},
      {"all_else_matches_but_sud", {with(sampleConsent("1"), general)}, "deny:class-not-covered:sud", "1"},
      // One failure each: the revocation says most (the consent that would have covered it is gone).
      {"revoked_beats_purpose", {with(sampleConsent("1"), payment), with(sampleConsent("2"), revoke)}, "deny:revoked", "2"},
      {"revoked_beats_class", {with(sampleConsent("1"), general), with(sampleConsent("2"), revoke)}, "deny:revoked", "2"},
      {"expired_beats_class", {with(sampleConsent("1"), general), with(sampleConsent("2"), expire)}, "deny:expired", "2"},
      {"expired_beats_not_yet_valid",
       {with(sampleConsent("1"), future), with(sampleConsent("2"), expire)},
       "deny:expired",
       "2"},
      // The consent closest to permitting decides: one failure beats three.
      {"closest_consent_decides",
       {with(with(with(sampleConsent("1"), revoke), payment), general), with(sampleConsent("2"), general)},
       "deny:class-not-covered:sud",
       "2"},
      {"closest_consent_decides_2",
       {with(with(sampleConsent("1"), expire), general), with(sampleConsent("2"), payment)},
       "deny:purpose-not-covered",
       "2"},
      // A consent for another partner never counts, however close.
      {"other_partner_ignored",
       {with(sampleConsent("1"), [](ConsentVersion& v) { v.partner_id = "county-hie"; }), with(sampleConsent("2"), expire)},
       "deny:expired",
       "2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ConsentRegistry registry;
    for (const auto& v : c.consents) add(registry, v);
    const Decision d = registry.decide(request(kSud));
    EXPECT_EQ(describe(d), c.want);
    ASSERT_NE(d.consent, nullptr);
    EXPECT_EQ(d.consent->consent_id, c.consent_id);
  }
}

// --- randomized: the registry against a brute-force reading of the rules -------------------

TEST(DecisionOracle, RandomRegistriesAgreeWithBruteForce) {
  std::mt19937 rng(20261120);
  const std::vector<std::string> partners = {"st-mary", "county-hie"};
  const std::vector<std::string> patients = {"p1", "p2", "p3"};
  const Date base = day("2026-01-01");
  const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  int permits = 0;
  int denies = 0;
  for (int round = 0; round < 200; ++round) {
    ConsentRegistry registry;
    std::vector<ConsentVersion> consents;
    const int count = pick(8);
    for (int i = 0; i < count; ++i) {
      ConsentVersion v = sampleConsent("c" + std::to_string(i));
      v.patient_key = patients[static_cast<std::size_t>(pick(3))];
      v.partner_id = partners[static_cast<std::size_t>(pick(2))];
      v.status = pick(4) == 0 ? ConsentStatus::Revoked : ConsentStatus::Active;
      if (v.status == ConsentStatus::Revoked) v.revoked_on = base + std::chrono::days(pick(60));
      v.purposes = PurposeSet(static_cast<std::uint8_t>(1 + pick(7)));
      v.classes = ClassSet(static_cast<std::uint8_t>(1 + pick(7)));
      v.period_start = base + std::chrono::days(pick(60));
      if (pick(3) != 0) {
        v.period_end = v.period_start + std::chrono::days(pick(60));
      } else {
        v.period_end.reset();
      }
      v.signed_on = base + std::chrono::days(pick(10));
      v.recorded_at = pick(3);
      add(registry, v);
      consents.push_back(v);
    }
    for (int q = 0; q < 30; ++q) {
      const std::string& patient = patients[static_cast<std::size_t>(pick(3))];
      const std::string& partner = partners[static_cast<std::size_t>(pick(2))];
      const Purpose purpose = std::array{Purpose::Treat, Purpose::Hpaymt,
                                         Purpose::Hoperat}[static_cast<std::size_t>(pick(3))];
      const ClassSet classes(static_cast<std::uint8_t>(1 + pick(7)));
      const Date date = base + std::chrono::days(pick(130));
      DecisionRequest r;
      r.patient_key = patient;
      r.partner_id = partner;
      r.purpose = purposeName(purpose);
      r.date = date;
      r.classes = classes;
      const Decision d = registry.decide(r);

      // Brute force, straight from section 3.1-3.2.
      std::vector<const ConsentVersion*> named;
      std::vector<const ConsentVersion*> candidates;
      for (const auto& c : consents) {
        if (c.patient_key != patient || c.partner_id != partner) continue;
        named.push_back(&c);
        const bool in_period = c.period_start <= date && (!c.period_end || date <= *c.period_end);
        if (c.status == ConsentStatus::Active && c.purposes.has(purpose) && in_period && c.classes.covers(classes)) {
          candidates.push_back(&c);
        }
      }
      SCOPED_TRACE("round " + std::to_string(round) + " query " + std::to_string(q));
      ASSERT_EQ(d.permitted(), !candidates.empty()) << describe(d);
      if (d.permitted()) {
        ++permits;
        // The newest candidate: latest signature, then latest recording, then smallest id.
        const auto best = *std::min_element(candidates.begin(), candidates.end(), [](auto* x, auto* y) {
          return std::make_tuple(-x->signed_on->time_since_epoch().count(), -x->recorded_at, x->consent_id) <
                 std::make_tuple(-y->signed_on->time_since_epoch().count(), -y->recorded_at, y->consent_id);
        });
        EXPECT_EQ(d.consent->consent_id, best->consent_id);
      } else {
        ++denies;
        EXPECT_EQ(d.reason == Reason::NoConsent, named.empty()) << describe(d);
        if (!named.empty()) {
          // The reported consent names the partner and really fails in the way the reason says.
          ASSERT_NE(d.consent, nullptr);
          const ConsentVersion& c = *d.consent;
          EXPECT_EQ(c.partner_id, partner);
          EXPECT_EQ(c.patient_key, patient);
          switch (d.reason) {
            case Reason::Revoked: EXPECT_EQ(c.status, ConsentStatus::Revoked); break;
            case Reason::Expired: EXPECT_TRUE(c.period_end && date > *c.period_end); break;
            case Reason::NotYetValid: EXPECT_LT(date, c.period_start); break;
            case Reason::PurposeNotCovered: EXPECT_FALSE(c.purposes.has(purpose)); break;
            case Reason::ClassNotCovered:
              EXPECT_FALSE(c.classes.covers(classes));
              EXPECT_TRUE(classes.covers(d.missing));
              EXPECT_FALSE(d.missing.empty());
              EXPECT_EQ(ClassSet(d.missing).add(c.classes).covers(classes), true);
              break;
            default: ADD_FAILURE() << "unexpected reason " << describe(d);
          }
        }
      }
    }
  }
  // The generator must exercise both outcomes, or the comparison proves little.
  EXPECT_GT(permits, 100);
  EXPECT_GT(denies, 1000);
}

// The outcome names are stored (outbox disclosure records) and logged: one spelling each way.
TEST(OutcomeNames, ParseIsTheInverseOfOutcomeName) {
  for (const Outcome o : {Outcome::Permit, Outcome::Redact, Outcome::Deny}) EXPECT_EQ(parseOutcome(outcomeName(o)), o);
  EXPECT_EQ(outcomeName(Outcome::Redact), "redact");
  EXPECT_EQ(parseOutcome("Permit"), std::nullopt);
  EXPECT_EQ(parseOutcome(""), std::nullopt);
}

}  // namespace
}  // namespace gw::consent

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
    v.revoked_on = day("2026-02-01");  // in effect on every request day (a later one is a scheduled end)
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

// --- local days (docs/privacy.md §5.5): the same rows in three US zones ---------------------
//
// The consent's days are read in its clinic's zone. Every request instant below is written by
// hand as the local wall time with the offset the zone has then, so no zone code computes the
// expectation: the rows are judged by expected() above, the instants by these strings.

struct Zone {
  const char* name;
  // Local periods (start day, end day) and, for each Period, the decision instant.
  struct Variant {
    const char* start_day;
    const char* end_day;
    const char* start_instant;  // the start as a date-time bound (the same instant as the local day's start)
    const char* end_instant;    // the end as a date-time bound (the local day's last millisecond)
    const char* at[5];          // BeforeStart, FirstDay, Inside, LastDay, AfterEnd
  };
  Variant variants[2];
};

// New York: DST 2026-03-08 02:00 -> 03:00 and 2026-11-01 02:00 -> 01:00. The first variant's
// bounds are the change days (midnight still in the old offset), the second's the days around
// them (midnight in EDT). Los Angeles likewise, three hours later; Honolulu keeps -10:00.
const Zone kZones[] = {
    {"America/New_York",
     {{"2026-03-08",
       "2026-11-01",
       "2026-03-08T00:00:00-05:00",
       "2026-11-01T23:59:59.999-05:00",
       {"2026-03-07T23:59:59.999-05:00", "2026-03-08T00:00:00-05:00", "2026-07-04T12:00:00-04:00",
        "2026-11-01T23:59:59.999-05:00", "2026-11-02T00:00:00-05:00"}},
      {"2026-03-09",
       "2026-10-31",
       "2026-03-09T00:00:00-04:00",
       "2026-10-31T23:59:59.999-04:00",
       {"2026-03-08T23:59:59.999-04:00", "2026-03-09T00:00:00-04:00", "2026-07-04T12:00:00-04:00",
        "2026-10-31T23:59:59.999-04:00", "2026-11-01T00:00:00-04:00"}}}},
    {"America/Los_Angeles",
     {{"2026-03-08",
       "2026-11-01",
       "2026-03-08T00:00:00-08:00",
       "2026-11-01T23:59:59.999-08:00",
       {"2026-03-07T23:59:59.999-08:00", "2026-03-08T00:00:00-08:00", "2026-07-04T12:00:00-07:00",
        "2026-11-01T23:59:59.999-08:00", "2026-11-02T00:00:00-08:00"}},
      {"2026-03-09",
       "2026-10-31",
       "2026-03-09T00:00:00-07:00",
       "2026-10-31T23:59:59.999-07:00",
       {"2026-03-08T23:59:59.999-07:00", "2026-03-09T00:00:00-07:00", "2026-07-04T12:00:00-07:00",
        "2026-10-31T23:59:59.999-07:00", "2026-11-01T00:00:00-07:00"}}}},
    {"Pacific/Honolulu",
     {{"2026-03-08",
       "2026-11-01",
       "2026-03-08T00:00:00-10:00",
       "2026-11-01T23:59:59.999-10:00",
       {"2026-03-07T23:59:59.999-10:00", "2026-03-08T00:00:00-10:00", "2026-07-04T12:00:00-10:00",
        "2026-11-01T23:59:59.999-10:00", "2026-11-02T00:00:00-10:00"}},
      {"2026-03-09",
       "2026-10-31",
       "2026-03-09T00:00:00-10:00",
       "2026-10-31T23:59:59.999-10:00",
       {"2026-03-08T23:59:59.999-10:00", "2026-03-09T00:00:00-10:00", "2026-07-04T12:00:00-10:00",
        "2026-10-31T23:59:59.999-10:00", "2026-11-01T00:00:00-10:00"}}}},
};

SystemTime instant(std::string_view rfc3339) {
  auto ms = parseRfc3339Millis(rfc3339);
  EXPECT_TRUE(ms.has_value()) << "bad test instant " << rfc3339;
  return fromUnixMillis(ms.value_or(0));
}

// Every clinic of the registry is in `zone`.
ClinicZones zoneOf(const char* zone) {
  auto z = tz::TimeZone::load(zone);
  EXPECT_TRUE(z) << (z ? "" : z.error().describe());
  std::shared_ptr<const tz::TimeZone> loaded = z ? z.value() : nullptr;
  return [loaded](std::string_view) { return loaded; };
}

TEST(DecisionTable, LocalDaysInThreeZonesDateAndDateTimeBounds) {
  int rows = 0;
  int permits = 0;
  for (const Zone& zone : kZones) {
    for (const auto& variant : zone.variants) {
      for (const bool date_time : {false, true}) {
        for (const Row& r : allRows()) {
          SCOPED_TRACE(std::string(zone.name) + " " + variant.start_day + (date_time ? " date-time " : " date ") +
                       rowName(r));
          ConsentRegistry registry(zoneOf(zone.name));
          fill(registry, r);
          // Re-send the row's consent with this variant's bounds as a newer version.
          ConsentVersion v = *registry.current("c1", "77");
          v.version = 2;
          v.period_start = date_time ? *parseBound(variant.start_instant) : Bound(day(variant.start_day));
          v.period_end = date_time ? *parseBound(variant.end_instant) : Bound(day(variant.end_day));
          add(registry, v);
          DecisionRequest q = request(resourceClasses(r.classes), "2026-05-15", r.named_partner ? "st-mary" : "county-hie");
          q.at = instant(variant.at[static_cast<int>(r.period)]);
          const Decision d = registry.decide(q);
          ASSERT_EQ(describe(d), expected(r));
          ++rows;
          if (d.permitted()) ++permits;
          if (d.reason == Reason::Expired) {
            EXPECT_EQ(d.time_bound, date_time ? "end:instant" : "end:local-day");
          }
          if (d.reason == Reason::NotYetValid) {
            EXPECT_EQ(d.time_bound, date_time ? "start:instant" : "start:local-day");
          }
          if (d.consent) {
            ASSERT_NE(d.zone, nullptr);
            EXPECT_EQ(d.zone->name(), zone.name);
          }
        }
      }
    }
  }
  EXPECT_EQ(rows, 3 * 2 * 2 * 320);
  EXPECT_EQ(permits, 3 * 2 * 2 * 12);
}

// Hand-written: each boundary millisecond, read straight from the rules.
TEST(DecisionTable, LocalDayBoundariesHandWritten) {
  struct Case {
    const char* zone;
    const char* start;
    const char* end;
    const char* at;
    const char* want;
  };
  const Case cases[] = {
      // Date-only bounds cover whole local days, the end inclusive, across both DST changes.
      {"America/New_York", "2026-03-08", "2026-11-01", "2026-03-08T04:59:59.999Z", "deny:not-yet-valid"},
      {"America/New_York", "2026-03-08", "2026-11-01", "2026-03-08T05:00:00Z", "permit"},
      {"America/New_York", "2026-03-09", "2026-11-01", "2026-03-09T03:59:59.999Z", "deny:not-yet-valid"},
      {"America/New_York", "2026-03-09", "2026-11-01", "2026-03-09T04:00:00Z", "permit"},
      {"America/New_York", "2026-03-08", "2026-11-01", "2026-11-02T04:59:59.999Z", "permit"},
      {"America/New_York", "2026-03-08", "2026-11-01", "2026-11-02T05:00:00Z", "deny:expired"},
      {"America/New_York", "2026-03-08", "2026-10-31", "2026-11-01T03:59:59.999Z", "permit"},
      {"America/New_York", "2026-03-08", "2026-10-31", "2026-11-01T04:00:00Z", "deny:expired"},
      // The UTC day would have ended the consent five hours early and started it five hours late.
      {"America/New_York", "2026-01-10", "2026-01-20", "2026-01-21T02:00:00Z", "permit"},
      {"America/New_York", "2026-01-10", "2026-01-20", "2026-01-10T02:00:00Z", "deny:not-yet-valid"},
      {"America/Los_Angeles", "2026-03-08", "2026-11-01", "2026-03-08T07:59:59.999Z", "deny:not-yet-valid"},
      {"America/Los_Angeles", "2026-03-08", "2026-11-01", "2026-03-08T08:00:00Z", "permit"},
      {"America/Los_Angeles", "2026-03-08", "2026-11-01", "2026-11-02T07:59:59.999Z", "permit"},
      {"America/Los_Angeles", "2026-03-08", "2026-11-01", "2026-11-02T08:00:00Z", "deny:expired"},
      {"America/Los_Angeles", "2026-03-09", "2026-10-31", "2026-03-09T07:00:00Z", "permit"},
      {"America/Los_Angeles", "2026-03-09", "2026-10-31", "2026-11-01T07:00:00Z", "deny:expired"},
      {"Pacific/Honolulu", "2026-03-08", "2026-11-01", "2026-03-08T09:59:59.999Z", "deny:not-yet-valid"},
      {"Pacific/Honolulu", "2026-03-08", "2026-11-01", "2026-03-08T10:00:00Z", "permit"},
      {"Pacific/Honolulu", "2026-03-08", "2026-11-01", "2026-11-02T09:59:59.999Z", "permit"},
      {"Pacific/Honolulu", "2026-03-08", "2026-11-01", "2026-11-02T10:00:00Z", "deny:expired"},
      // Date-time bounds are instants, whatever the zone: the end instant itself is still inside.
      {"Pacific/Honolulu", "2026-03-08T15:30:00-10:00", "2026-03-09T08:00:00Z", "2026-03-09T01:29:59.999Z",
       "deny:not-yet-valid"},
      {"Pacific/Honolulu", "2026-03-08T15:30:00-10:00", "2026-03-09T08:00:00Z", "2026-03-09T01:30:00Z", "permit"},
      {"Pacific/Honolulu", "2026-03-08T15:30:00-10:00", "2026-03-09T08:00:00Z", "2026-03-09T08:00:00Z", "permit"},
      {"Pacific/Honolulu", "2026-03-08T15:30:00-10:00", "2026-03-09T08:00:00.001Z", "2026-03-09T08:00:00.002Z",
       "deny:expired"},
      // Mixed: a date-only start (local day) with a date-time end.
      {"America/New_York", "2026-11-01", "2026-11-01T01:30:00-05:00", "2026-11-01T04:00:00Z", "permit"},
      {"America/New_York", "2026-11-01", "2026-11-01T01:30:00-05:00", "2026-11-01T06:30:00.001Z", "deny:expired"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.zone) + " " + c.start + ".." + c.end + " at " + c.at);
    ConsentRegistry registry(zoneOf(c.zone));
    ConsentVersion v = sampleConsent();
    v.period_start = *parseBound(c.start);
    v.period_end = *parseBound(c.end);
    add(registry, v);
    DecisionRequest q = request(kSud);
    q.at = instant(c.at);
    EXPECT_EQ(describe(registry.decide(q)), c.want);
  }
}

// Revocation instants: a date-only revoked_on from the start of its local day, revoked_at from
// its instant; one in the future is a scheduled end (docs/privacy.md §5.5).
TEST(DecisionTable, RevocationInstantsHandWritten) {
  struct Case {
    const char* zone;
    const char* revoked;  // revoked_on (date) or revoked_at (date-time)
    const char* at;
    const char* want;
    const char* bound;  // Decision::time_bound
  };
  const Case cases[] = {
      {"America/New_York", "2026-06-10", "2026-06-10T03:59:59.999Z", "permit", ""},
      {"America/New_York", "2026-06-10", "2026-06-10T04:00:00Z", "deny:revoked", "revoked:local-day"},
      {"America/New_York", "2026-03-08", "2026-03-08T04:59:59.999Z", "permit", ""},
      {"America/New_York", "2026-03-08", "2026-03-08T05:00:00Z", "deny:revoked", "revoked:local-day"},
      {"America/New_York", "2026-11-01", "2026-11-01T03:59:59.999Z", "permit", ""},
      {"America/New_York", "2026-11-01", "2026-11-01T04:00:00Z", "deny:revoked", "revoked:local-day"},
      {"America/Los_Angeles", "2026-06-10", "2026-06-10T06:59:59.999Z", "permit", ""},
      {"America/Los_Angeles", "2026-06-10", "2026-06-10T07:00:00Z", "deny:revoked", "revoked:local-day"},
      {"Pacific/Honolulu", "2026-06-10", "2026-06-10T09:59:59.999Z", "permit", ""},
      {"Pacific/Honolulu", "2026-06-10", "2026-06-10T10:00:00Z", "deny:revoked", "revoked:local-day"},
      {"America/New_York", "2026-06-10T14:05:00-04:00", "2026-06-10T18:04:59.999Z", "permit", ""},
      {"America/New_York", "2026-06-10T14:05:00-04:00", "2026-06-10T18:05:00Z", "deny:revoked", "revoked:instant"},
      // A future date is a scheduled end: in force until then, whatever the status says.
      {"Pacific/Honolulu", "2026-08-01", "2026-05-15T12:00:00Z", "permit", ""},
      {"Pacific/Honolulu", "2026-08-01", "2026-08-01T12:00:00Z", "deny:revoked", "revoked:local-day"},
      // A revocation before the consent ever began: revoked says more than not-yet-valid.
      {"America/New_York", "2026-02-01", "2026-02-15T12:00:00Z", "deny:revoked", "revoked:local-day"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.zone) + " revoked " + c.revoked + " at " + c.at);
    ConsentRegistry registry(zoneOf(c.zone));
    ConsentVersion v = sampleConsent();
    v.period_end = day("2026-12-31");
    v.status = ConsentStatus::Revoked;
    v.revoked_on = *parseBound(c.revoked);
    add(registry, v);
    DecisionRequest q = request(kSud);
    q.at = instant(c.at);
    const Decision d = registry.decide(q);
    EXPECT_EQ(describe(d), c.want);
    EXPECT_EQ(d.time_bound, c.bound);
  }
}

// A date-only bound needs the clinic's zone: without one the consent is refused, never read as UTC.
TEST(DecisionTable, ADateOnlyBoundWithoutAClinicZoneIsRefused) {
  ConsentRegistry registry([](std::string_view) { return std::shared_ptr<const tz::TimeZone>(); });
  const ConsentVersion v = sampleConsent();
  const auto admissible = registry.admissible(v);
  ASSERT_FALSE(admissible);
  EXPECT_NE(admissible.error().message.find("no time zone"), std::string::npos);
  EXPECT_NE(admissible.error().hint.find("clinics[].time_zone"), std::string::npos);
  EXPECT_FALSE(registry.upsert(v));
  EXPECT_EQ(describe(registry.decide(request(kSud))), "deny:no-consent");
  // Instants need no zone.
  ConsentVersion instants = sampleConsent("78");
  instants.period_start = *parseBound("2026-03-01T00:00:00-05:00");
  instants.period_end = *parseBound("2026-09-01T00:00:00-04:00");
  add(registry, instants);
  EXPECT_TRUE(registry.decide(request(kSud)).permitted());
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

constexpr std::int64_t kDayMs = 86'400'000;
// In a registry whose clinics keep UTC: a day bound runs from its 00:00:00.000Z to its
// 23:59:59.999Z; a date-time bound is that millisecond.
std::int64_t firstMs(const Bound& b) { return b.at_ms ? *b.at_ms : b.day.time_since_epoch().count() * kDayMs; }
std::int64_t lastMs(const Bound& b) { return b.at_ms ? *b.at_ms : firstMs(b) + kDayMs - 1; }
bool revokedAt(const ConsentVersion& c, std::int64_t at) {
  return c.status == ConsentStatus::Revoked && (!c.revoked_on || at >= firstMs(*c.revoked_on));
}

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
      if (v.status == ConsentStatus::Revoked) {
        // A day or an instant, before, inside or after the queries' span: a future one is a scheduled end.
        v.revoked_on = pick(2) == 0
                           ? Bound(base + std::chrono::days(pick(130)))
                           : Bound::instant(toUnixMillis(SystemTime(base)) + pick(130) * kDayMs + pick(3) * 43'200'000);
      }
      v.purposes = PurposeSet(static_cast<std::uint8_t>(1 + pick(7)));
      v.classes = ClassSet(static_cast<std::uint8_t>(1 + pick(7)));
      const Date start_day = base + std::chrono::days(pick(60));
      v.period_start = start_day;
      if (pick(3) != 0) {
        v.period_end = start_day + std::chrono::days(pick(60));
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
      // Days' first and last milliseconds and their middles: the boundaries are where rules slip.
      const std::int64_t at = toUnixMillis(SystemTime(base)) + pick(130) * kDayMs +
                              std::array<std::int64_t, 4>{0, 1, kDayMs / 2, kDayMs - 1}[static_cast<std::size_t>(pick(4))];
      DecisionRequest r;
      r.patient_key = patient;
      r.partner_id = partner;
      r.purpose = purposeName(purpose);
      r.at = fromUnixMillis(at);
      r.classes = classes;
      const Decision d = registry.decide(r);

      // Brute force, straight from section 3.1-3.2 and 3a (a UTC registry: local days are UTC days).
      std::vector<const ConsentVersion*> named;
      std::vector<const ConsentVersion*> candidates;
      for (const auto& c : consents) {
        if (c.patient_key != patient || c.partner_id != partner) continue;
        named.push_back(&c);
        const bool in_period = firstMs(c.period_start) <= at && (!c.period_end || at <= lastMs(*c.period_end));
        if (!revokedAt(c, at) && c.purposes.has(purpose) && in_period && c.classes.covers(classes)) {
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
            case Reason::Revoked: EXPECT_TRUE(revokedAt(c, at)); break;
            case Reason::Expired: EXPECT_TRUE(c.period_end && at > lastMs(*c.period_end)); break;
            case Reason::NotYetValid: EXPECT_LT(at, firstMs(c.period_start)); break;
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

// Consent decisions per second with 10,000 patients and 50,000 consents loaded (a random mix of
// partners, purposes, categories, periods and revocations), against a fixed set of random
// requests. About one in ten is permitted: denials are the slower path (every consent of the
// partner is looked at), so the mix errs on the slow side.
// Target (docs/architecture.md §6): >= 500,000 decisions/s on one core with 50,000 consents loaded.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "common/ids.hpp"
#include "consent/consent_registry.hpp"

namespace {

using gw::consent::ConsentRegistry;
using gw::consent::ConsentStatus;
using gw::consent::ConsentVersion;
using gw::consent::Date;
using gw::consent::DecisionRequest;
using gw::consent::Purpose;
using gw::consent::PurposeSet;
using gw::privacy::ClassSet;

constexpr int kPatients = 10'000;
constexpr int kConsents = 50'000;
constexpr std::size_t kRequests = 1 << 16;
const std::array<const char*, 5> kPartners = {"st-mary", "county-hie", "riverside-ed", "metro-health", "valley-clinic"};

struct Fixture {
  Fixture() {
    std::mt19937_64 rng(42);
    const auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
    // Patient keys as the gateway makes them: UUIDv5 of (clinic, Patient, MRN).
    for (int p = 0; p < kPatients; ++p) patients.push_back(gw::ids::resourceId("c1", "Patient", "mrn-" + std::to_string(p)));
    const Date base = *gw::consent::parseDate("2026-01-01");
    std::vector<ConsentVersion> rows;
    rows.reserve(kConsents);
    for (int i = 0; i < kConsents; ++i) {
      ConsentVersion v;
      v.clinic = "c1";
      v.consent_id = std::to_string(100000 + i);
      v.version = 1;
      v.patient_key = patients[static_cast<std::size_t>(i % kPatients)];
      v.partner_id = kPartners[static_cast<std::size_t>(pick(static_cast<int>(kPartners.size())))];
      v.status = pick(10) == 0 ? ConsentStatus::Revoked : ConsentStatus::Active;
      if (v.status == ConsentStatus::Revoked) v.revoked_on = base + std::chrono::days(pick(365));
      v.purposes = PurposeSet(static_cast<std::uint8_t>(1 + pick(7)));
      v.classes = ClassSet(static_cast<std::uint8_t>(1 + pick(7)));
      const auto start = base + std::chrono::days(pick(365));
      v.period_start = start;
      if (pick(4) != 0) v.period_end = start + std::chrono::days(30 + pick(700));
      v.signed_on = start - std::chrono::days(pick(5));
      v.resource_id = gw::ids::resourceId("c1", "Consent", v.consent_id);
      v.recorded_at = 1'770'000'000'000 + i;
      rows.push_back(std::move(v));
    }
    const auto errors = registry.load(std::move(rows));
    if (!errors.empty() || registry.size() != kConsents) {
      std::cerr << "consent_benchmark: load failed: " << (errors.empty() ? "size" : errors[0].describe()) << "\n";
      std::exit(1);
    }
    static constexpr std::array<const char*, 3> kPurposes = {"TREAT", "HPAYMT", "HOPERAT"};
    for (std::size_t i = 0; i < kRequests; ++i) {
      DecisionRequest r;
      r.patient_key = patients[static_cast<std::size_t>(pick(kPatients))];
      r.partner_id = kPartners[static_cast<std::size_t>(pick(static_cast<int>(kPartners.size())))];
      // Mostly TREAT, as deliveries are.
      r.purpose = kPurposes[static_cast<std::size_t>(pick(4) == 0 ? 1 + pick(2) : 0)];
      r.at = gw::SystemTime(base + std::chrono::days(pick(730))) + std::chrono::hours(pick(24));
      r.classes = ClassSet(static_cast<std::uint8_t>(1 + pick(7)));
      requests.push_back(r);
    }
    // A CarePlan of a non-Part 2 program: general plan, moud (sud), housing (general), psychiatric (mh).
    activities = {ClassSet(gw::privacy::DataClass::Sud), ClassSet(gw::privacy::DataClass::General),
                  ClassSet(gw::privacy::DataClass::Mh)};
  }

  ConsentRegistry registry;
  std::vector<std::string> patients;
  std::vector<DecisionRequest> requests;
  std::vector<ClassSet> activities;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_Decide(benchmark::State& state) {
  Fixture& f = fixture();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 7919;
  std::int64_t permits = 0;
  for (auto _ : state) {
    const auto d = f.registry.decide(f.requests[i++ & (kRequests - 1)]);
    permits += d.permitted() ? 1 : 0;
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());  // decisions
  state.counters["permit_share"] = benchmark::Counter(static_cast<double>(permits) /
                                                          static_cast<double>(std::max<std::int64_t>(1, state.iterations())),
                                                      benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_Decide);                             // one core: the design target
BENCHMARK(BM_Decide)->Threads(2)->UseRealTime();  // concurrent readers, total throughput

void BM_DecideCarePlan(benchmark::State& state) {
  Fixture& f = fixture();
  std::size_t i = 0;
  std::int64_t redacts = 0;
  for (auto _ : state) {
    DecisionRequest r = f.requests[i++ & (kRequests - 1)];
    r.classes = ClassSet(gw::privacy::DataClass::Sud).add(gw::privacy::DataClass::Mh);
    r.plan_classes = ClassSet(gw::privacy::DataClass::General);
    r.activity_classes = f.activities;
    const auto d = f.registry.decide(r);
    redacts += d.outcome == gw::consent::Outcome::Redact ? 1 : 0;
    benchmark::DoNotOptimize(d);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["redact_share"] = benchmark::Counter(static_cast<double>(redacts) /
                                                      static_cast<double>(std::max<std::int64_t>(1, state.iterations())));
}
BENCHMARK(BM_DecideCarePlan);

void BM_UpsertVersion(benchmark::State& state) {
  // A rare write: replacing one consent's version (and its index slot) among 50,000.
  Fixture& f = fixture();
  auto current = f.registry.current("c1", "100000");
  if (!current) {
    state.SkipWithError("consent 100000 missing");
    return;
  }
  ConsentVersion next = *current;
  for (auto _ : state) {
    next.version = f.registry.latestVersion("c1", "100000") + 1;
    auto r = f.registry.upsert(next);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_UpsertVersion);

}  // namespace

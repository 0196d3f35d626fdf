// Audit log speed: appends per second in batches of 100 inside one transaction (commit and
// fsync included, WAL as the store runs it), chain verification rows per second, and a page
// query. Run from a release build: build/<dir>/benchmarks/audit_benchmark.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/ids.hpp"
#include "store/audit_log.hpp"
#include "store/sqlite_store.hpp"

namespace {

namespace fs = std::filesystem;
using gw::store::AuditEntry;

constexpr int kBatch = 100;
constexpr int kVerifyRows = 200'000;

AuditEntry sample(int i) {
  return gw::store::AuditEntryBuilder(gw::store::AuditKind::Decision,
                                      i % 10 ? gw::store::AuditOutcome::Permit : gw::store::AuditOutcome::Deny, "gateway",
                                      1'800'000'000'000 + i)
      .clinic("c1")
      .patient(gw::ids::uuidV5(gw::ids::kGatewayNamespace, "patient-" + std::to_string(i % 5000)))
      .partner("partner-hospital-a", "TREAT")
      .resource("MedicationRequest", gw::ids::uuidV5(gw::ids::kGatewayNamespace, "res-" + std::to_string(i)),
                gw::privacy::DataClass::Sud)
      .labels("R,SUD,OPIOIDUD,42CFRPart2,NORDSCLCD,CPLYCD")
      .consent("consent-" + std::to_string(i % 5000), 2)
      .reason(i % 10 ? "" : "class-not-covered:sud")
      .policy("2026.1")
      .detail(R"({"outbox_id":)" + std::to_string(i) + "}")
      .build();
}

struct Db {
  fs::path dir;
  std::unique_ptr<gw::store::Store> store;

  explicit Db(bool synchronous_full) {
    dir = fs::temp_directory_path() / ("gw-audit-bench-" + gw::ids::randomHex(6));
    fs::create_directories(dir);
    auto key = gw::crypto::SecretKey::generate();
    if (!key) std::abort();
    auto opened = gw::store::openSqliteStore({(dir / "gw.db").string(), synchronous_full, 4, std::move(key).value()});
    if (!opened) std::abort();
    store = std::move(opened).value();
  }
  ~Db() {
    store.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// range(0): 1 = synchronous FULL (the store's default), 0 = NORMAL. Each batch is one write
// transaction: the tail read, the inserts and the commit.
void BM_AuditAppendBatch100(benchmark::State& state) {
  Db db(state.range(0) == 1);
  std::vector<AuditEntry> templates;
  for (int i = 0; i < kBatch; ++i) templates.push_back(sample(i));
  for (auto _ : state) {
    if (!db.store->appendAudit(templates)) {
      state.SkipWithError("append failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_AuditAppendBatch100)
    ->ArgNames({"sync_full"})
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();  // commits wait for fsync: wall time is the rate that matters

Db& verifyDb() {
  static const std::unique_ptr<Db> db = [] {
    auto d = std::make_unique<Db>(false);
    for (int start = 0; start < kVerifyRows; start += 10'000) {
      std::vector<AuditEntry> batch;
      for (int i = start; i < start + 10'000; ++i) batch.push_back(sample(i));
      if (!d->store->appendAudit(std::move(batch))) std::abort();
    }
    return d;
  }();
  return *db;
}

void BM_AuditVerifyChain(benchmark::State& state) {
  auto& db = verifyDb();
  for (auto _ : state) {
    auto report = db.store->verifyAudit(std::nullopt);
    if (!report || !report.value().ok || report.value().rows != kVerifyRows) {
      state.SkipWithError("verify failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kVerifyRows);
}
BENCHMARK(BM_AuditVerifyChain)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AuditQueryPatientPage(benchmark::State& state) {
  auto& db = verifyDb();
  gw::store::AuditQuery q;
  q.patient_key = sample(17).patient_key;  // 40 rows of 200,000
  q.limit = 100;
  for (auto _ : state) {
    auto page = db.store->queryAudit(q);
    if (!page || page.value().entries.size() != 40) {
      state.SkipWithError("query failed");
      break;
    }
  }
}
BENCHMARK(BM_AuditQueryPatientPage)->Unit(benchmark::kMicrosecond);

void BM_AuditEntryHash(benchmark::State& state) {
  AuditEntry e = sample(1);
  e.seq = 1;
  e.prev_hash = std::string(gw::store::kGenesisHash);
  for (auto _ : state) benchmark::DoNotOptimize(gw::store::entryHash(e));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuditEntryHash);

}  // namespace

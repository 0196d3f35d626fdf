// Audit log speed: appends per second in batches of 100 inside one transaction (commit and
// fsync included, WAL as the store runs it), chain verification rows per second, and a page
// query. Run from a release build: build/<dir>/benchmarks/audit_benchmark.
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/ids.hpp"
#include "store/audit_log.hpp"
#include "store/migrations.hpp"

namespace {

namespace fs = std::filesystem;
using namespace Poco::Data::Keywords;
using gw::store::AuditEntry;

constexpr int kBatch = 100;
constexpr int kVerifyRows = 200'000;

AuditEntry sample(int i) {
  AuditEntry e;
  e.at_ms = 1'800'000'000'000 + i;
  e.kind = "decision";
  e.actor = "gateway";
  e.clinic = "c1";
  e.patient_key = gw::ids::uuidV5(gw::ids::kGatewayNamespace, "patient-" + std::to_string(i % 5000));
  e.partner_id = "partner-hospital-a";
  e.purpose = "TREAT";
  e.resource_type = "MedicationRequest";
  e.resource_id = gw::ids::uuidV5(gw::ids::kGatewayNamespace, "res-" + std::to_string(i));
  e.classes = "sud";
  e.labels = "R,SUD,OPIOIDUD,42CFRPart2,NORDSCLCD,CPLYCD";
  e.consent_id = "consent-" + std::to_string(i % 5000);
  e.consent_version = 2;
  e.outcome = i % 10 ? "permit" : "deny";
  e.reason = i % 10 ? "" : "class-not-covered:sud";
  e.policy_version = "2026.1";
  e.detail = R"({"outbox_id":)" + std::to_string(i) + "}";
  return e;
}

struct Db {
  fs::path dir;
  std::unique_ptr<Poco::Data::Session> session;

  explicit Db(bool synchronous_full) {
    Poco::Data::SQLite::Connector::registerConnector();
    dir = fs::temp_directory_path() / ("gw-audit-bench-" + gw::ids::randomHex(6));
    fs::create_directories(dir);
    session = std::make_unique<Poco::Data::Session>("SQLite", (dir / "gw.db").string());
    auto& s = *session;
    s << "PRAGMA page_size=16384", now;
    std::string mode;
    s << "PRAGMA journal_mode=WAL", into(mode), now;
    s << (synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"), now;
    s << "PRAGMA cache_size=-32768", now;
    if (!gw::store::applyMigrations(s)) std::abort();
  }
  ~Db() {
    session.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// range(0): 1 = synchronous FULL (the store's default), 0 = NORMAL.
// range(1): 1 = the caller reports commits (cached tail), 0 = the tail is re-read every batch.
void BM_AuditAppendBatch100(benchmark::State& state) {
  Db db(state.range(0) == 1);
  const bool report_commits = state.range(1) == 1;
  gw::store::AuditAppender appender;
  std::vector<AuditEntry> templates;
  for (int i = 0; i < kBatch; ++i) templates.push_back(sample(i));
  for (auto _ : state) {
    std::vector<AuditEntry> batch = templates;
    db.session->begin();
    if (!appender.append(*db.session, batch)) {
      state.SkipWithError("append failed");
      break;
    }
    db.session->commit();
    if (report_commits) appender.committed();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_AuditAppendBatch100)
    ->ArgNames({"sync_full", "cached_tail"})
    ->Args({1, 1})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({0, 0})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();  // commits wait for fsync: wall time is the rate that matters

Db& verifyDb() {
  static const std::unique_ptr<Db> db = [] {
    auto d = std::make_unique<Db>(false);
    gw::store::AuditAppender appender;
    for (int start = 0; start < kVerifyRows; start += 10'000) {
      std::vector<AuditEntry> batch;
      for (int i = start; i < start + 10'000; ++i) batch.push_back(sample(i));
      d->session->begin();
      if (!appender.append(*d->session, batch)) std::abort();
      d->session->commit();
      appender.committed();
    }
    return d;
  }();
  return *db;
}

void BM_AuditVerifyChain(benchmark::State& state) {
  auto& db = verifyDb();
  for (auto _ : state) {
    auto report = gw::store::verifyChain(*db.session);
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
    auto page = gw::store::queryAudit(*db.session, q);
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

// `store migrate` SQLite -> PostgreSQL -> SQLite keeps every row of every table byte for byte
// (records, every version's sealed payload, resources, items with and without outcomes, the
// delivery ledger, consents, keys, secrets, decisions, pauses, break-glass rows, accounting requests,
// the partner view's hourly counters and every log row); the copy opens
// with the same master key and its audit chain verifies. And `store backup`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "app/keys.hpp"
#include "app/store_tools.hpp"
#include "common/ids.hpp"
#include "store/store_backend.hpp"
#include "support/postgres_cluster.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class StoreMigrate : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-migrate-" + ids::randomHex(6));
    fs::create_directories(dir_);
    master_ = dir_ / "master.key";
    std::ofstream(master_) << ids::randomHex(32) << "\n";
    fs::permissions(master_, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  }
  void TearDown() override {
    ::unsetenv(env_.c_str());
    fs::remove_all(dir_);
  }

  config::GatewayConfig sqliteConfig(const std::string& name) const {
    config::GatewayConfig c;
    c.storage.sqlite_path = dir_ / name;
    c.storage.synchronous_full = false;
    c.privacy.master_key_file = master_;
    return c;
  }

  // A new database in the run's PostgreSQL server; the DSN goes through the environment, as a
  // deployment's secret store would give it.
  config::GatewayConfig postgresConfig() {
    auto* cluster = test::PostgresCluster::shared();
    config::GatewayConfig c;
    config::PostgresStorage pg;
    pg.dsn_env = env_;
    pg.sslmode = "disable";  // loopback
    pg.pool_size = 2;
    ::setenv(env_.c_str(), cluster->createDatabase().c_str(), 1);
    c.storage.postgres = pg;
    c.privacy.master_key_file = master_;
    return c;
  }

  static SystemTime t(int seconds) { return fromUnixMillis(1'800'000'000'000 + seconds * 1000LL); }

  static store::IngestWrite write(const std::string& id, const std::string& hash, const std::string& patient) {
    store::IngestWrite w;
    w.clinic = "c1";
    w.record_id = id;
    w.record_type = "mat_prescription";
    w.content_hash = hash;
    w.payload = R"({"record":")" + id + R"(","dose":"ünïcode \u0000 bytes"})";
    w.patient_key = patient;
    w.state = store::RecordState::Mapped;
    w.classes = privacy::DataClass::Sud;
    w.resources.push_back(
        {"MedicationRequest", "mr-" + id, "https://ids/rx", "rx-" + id, R"({"id":")" + id + "\"}", privacy::DataClass::Sud});
    w.outbox.push_back(
        {"p1", R"({"resourceType":"Bundle","id":")" + id + "\"}", 1, privacy::DataClass::Sud, R"({"resources":[]})"});
    w.audit.push_back(
        store::AuditEntryBuilder(store::AuditKind::Decision, store::AuditOutcome::Permit, "tok-1", toUnixMillis(t(0)))
            .clinic("c1")
            .patient(patient)
            .partner("p1", "TREAT")
            .resource("MedicationRequest", "mr-" + id, privacy::DataClass::Sud)
            .policy("2026.1")
            .build());
    store::ResourceDecision decision;
    decision.partner_id = "p1";
    decision.resource_type = "MedicationRequest";
    decision.resource_id = "mr-" + id;
    decision.outcome = store::AuditOutcome::Redact;
    decision.removed_activities = {1, 4};
    decision.reason = "class-not-covered:mh";
    w.decisions.push_back(decision);
    return w;
  }

  // A store with something in every table.
  void fill(const config::GatewayConfig& config) {
    auto opened = openConfiguredStore(config, 2);
    ASSERT_TRUE(opened) << opened.error().describe();
    auto& s = *opened.value();
    ASSERT_TRUE(s.ingest({write("r1", "h1", "pa"), write("r2", "h2", "pb"), write("r3", "h3", "pa")}, t(0)));
    ASSERT_TRUE(s.ingest({write("r2", "h2b", "pb")}, t(5)));  // a second version, the first superseded
    auto consent = write("consent-1", "hc", "pa");
    consent.record_type = "consent";
    consent.outbox.clear();
    consent.resources.clear();
    privacy::ConsentRow row;
    row.clinic = "c1";
    row.consent_id = "consent-1";
    row.patient_key = "pa";
    row.partner_id = "p1";
    row.status = "active";
    row.purposes = "TREAT";
    row.classes = "sud";
    row.period_start = "2026-01-01";
    row.signed_on = "2025-12-30";
    row.resource_id = "consent-res-1";
    row.recorded_at = toUnixMillis(t(6));
    consent.consent = row;
    ASSERT_TRUE(s.ingest({consent}, t(6)));
    auto due = s.dueItems("p1", t(10), 10);
    ASSERT_TRUE(due);
    ASSERT_GE(due.value().size(), 2u);
    ASSERT_TRUE(s.markDelivered(due.value()[0].id, {{"201 Created", "MedicationRequest/1/_history/1", "W/\"1\""}}, t(11)));
    ASSERT_TRUE(s.markDead(due.value()[1].id, 3, "422 from the partner", R"({"resourceType":"OperationOutcome"})", t(12)));
    ASSERT_TRUE(s.setPartnerPaused({"p2", toUnixMillis(t(13)), "ops-1", "maintenance window"}, true, {}));
    // The compliance console's rows (schema 8); the decisions above filled the hourly counters.
    store::BreakGlass glass;
    glass.id = "bg-1";
    glass.clinic = "c1";
    glass.patient_key = "pa";
    glass.partner_id = "p1";
    glass.recipient = "Dr. Rivera, ED";
    glass.authorised_by = "officer Chen";
    glass.nature = "unresponsive, suspected overdose";
    glass.opened_by = "tok-1";
    glass.opened_at_ms = toUnixMillis(t(14));
    glass.expires_at_ms = toUnixMillis(t(14)) + 3'600'000;
    ASSERT_TRUE(s.putBreakGlass(glass, {}));
    store::AccountingRequest request;
    request.id = "ar-1";
    request.clinic = "c1";
    request.patient_key = "pb";
    request.received_on = "2027-01-15";
    request.due_on = "2027-02-14";
    request.note = "written request, by mail";
    request.created_by = "tok-1";
    request.created_at_ms = toUnixMillis(t(15));
    request.updated_at_ms = toUnixMillis(t(15));
    ASSERT_TRUE(s.putAccountingRequest(request, {}));
  }

  // Every row of every table, as the backend of `config` reads it for a copy.
  static std::vector<std::vector<store::CopyRow>> everyRow(const config::GatewayConfig& config) {
    auto backend = openConfiguredBackend(config, true);
    EXPECT_TRUE(backend) << (backend ? "" : backend.error().describe());
    if (!backend) return {};
    auto reader = backend.value()->read();
    EXPECT_TRUE(reader);
    std::vector<std::vector<store::CopyRow>> tables;
    for (const auto& table : store::copiedTables()) {
      auto rows = reader.value()->copyRows(table, nullptr, 100000);
      EXPECT_TRUE(rows) << table.name;
      tables.push_back(rows ? rows.value() : std::vector<store::CopyRow>{});
    }
    return tables;
  }

  fs::path dir_;
  fs::path master_;
  std::string env_ = "GW_MIGRATE_TEST_DSN_" + ids::randomHex(4);
};

bool sameRows(const std::vector<std::vector<store::CopyRow>>& a, const std::vector<std::vector<store::CopyRow>>& b,
              std::string& where) {
  if (a.size() != b.size()) return false;
  for (std::size_t t = 0; t < a.size(); ++t) {
    const auto& table = store::copiedTables()[t];
    if (a[t].size() != b[t].size()) {
      where = std::string(table.name) + ": " + std::to_string(a[t].size()) + " rows vs " + std::to_string(b[t].size());
      return false;
    }
    for (std::size_t r = 0; r < a[t].size(); ++r) {
      for (std::size_t c = 0; c < table.columns.size(); ++c) {
        const auto& x = a[t][r][c];
        const auto& y = b[t][r][c];
        if (x.null != y.null || x.number != y.number || x.text != y.text) {
          where = std::string(table.name) + " row " + std::to_string(r) + " column " + std::string(table.columns[c].name);
          return false;
        }
      }
    }
  }
  return true;
}

TEST_F(StoreMigrate, SqliteToPostgresAndBackKeepsEveryRowPayloadAndLogRow) {
  if (const auto why = test::PostgresCluster::unavailableReason(); !why.empty()) GTEST_SKIP() << why;
  const auto original = sqliteConfig("original.db");
  fill(original);
  const auto before = everyRow(original);
  ASSERT_FALSE(before.empty());
  for (std::size_t t = 0; t < before.size(); ++t) {
    EXPECT_FALSE(before[t].empty()) << store::copiedTables()[t].name << " should hold a row for the test to mean much";
  }

  const auto postgres = postgresConfig();
  auto there = migrateStore(original, postgres);
  ASSERT_TRUE(there) << there.error().describe();
  EXPECT_TRUE(there.value().target_audit.ok);
  EXPECT_EQ(there.value().target_audit.rows, there.value().source_audit.rows);
  EXPECT_GT(there.value().target_audit.rows, 0);
  std::string where;
  EXPECT_TRUE(sameRows(before, everyRow(postgres), where)) << "SQLite -> PostgreSQL differs at " << where;

  const auto back = sqliteConfig("back.db");
  auto again = migrateStore(postgres, back);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_TRUE(sameRows(before, everyRow(back), where)) << "PostgreSQL -> SQLite differs at " << where;
  EXPECT_EQ(again.value().target_audit.head_hash, there.value().source_audit.head_hash);

  // Both copies open with the master key and give back the payloads in clear; and take new writes
  // (PostgreSQL's outbox ids continue after the copied ones).
  for (const auto* config : {&postgres, &back}) {
    auto opened = openConfiguredStore(*config, 2);
    ASSERT_TRUE(opened) << opened.error().describe();
    auto& s = *opened.value();
    auto payload = s.recordPayload("c1", "r2", 1);
    ASSERT_TRUE(payload) << payload.error().describe();
    ASSERT_TRUE(payload.value()) << "no payload for r2 version 1";
    EXPECT_THAT(*payload.value(), HasSubstr("\"record\":\"r2\""));
    auto status = s.recordStatus("c1", "r1");
    ASSERT_TRUE(status && status.value());
    ASSERT_FALSE(status.value()->deliveries.empty());
    EXPECT_EQ(status.value()->deliveries[0].state, store::OutboxState::Delivered);
    ASSERT_TRUE(s.ingest({write("r4", "h4", "pc")}, t(20)));
    auto verified = s.verifyAudit(std::nullopt);
    ASSERT_TRUE(verified);
    EXPECT_TRUE(verified.value().ok);
  }
}

TEST_F(StoreMigrate, RefusesATargetThatHoldsAStoreOrAnotherMasterKey) {
  if (const auto why = test::PostgresCluster::unavailableReason(); !why.empty()) GTEST_SKIP() << why;
  const auto original = sqliteConfig("original.db");
  fill(original);
  auto postgres = postgresConfig();
  ASSERT_TRUE(migrateStore(original, postgres));
  auto twice = migrateStore(original, postgres);
  ASSERT_FALSE(twice);
  EXPECT_THAT(twice.error().message, HasSubstr("already holds a store"));

  auto other = sqliteConfig("other.db");
  other.privacy.master_key_file = dir_ / "other.key";
  std::ofstream(other.privacy.master_key_file) << ids::randomHex(32) << "\n";
  fs::permissions(other.privacy.master_key_file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  auto wrong_key = migrateStore(original, other);
  ASSERT_FALSE(wrong_key);
  EXPECT_EQ(wrong_key.error().code, ErrorCode::Config);
  EXPECT_THAT(wrong_key.error().message, HasSubstr("different master keys"));
  EXPECT_FALSE(fs::exists(dir_ / "other.db")) << "refused before anything is made";
}

TEST_F(StoreMigrate, BackupIsAConsistentPrivateCopyThatOpens) {
  const auto original = sqliteConfig("original.db");
  fill(original);
  const auto file = dir_ / "backup.db";
  auto written = backupStore(original, file);
  ASSERT_TRUE(written) << written.error().describe();
  EXPECT_GT(written.value(), 0);
  EXPECT_EQ(fs::status(file).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
  std::string where;
  EXPECT_TRUE(sameRows(everyRow(original), everyRow(sqliteConfig("backup.db")), where)) << where;
  auto again = backupStore(original, file);
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().message, HasSubstr("exists already"));

  config::GatewayConfig pg;
  pg.storage.postgres = config::PostgresStorage{};
  auto refused = backupStore(pg, dir_ / "pg.db");
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().hint, HasSubstr("pg_dump"));
}

}  // namespace
}  // namespace gw::app

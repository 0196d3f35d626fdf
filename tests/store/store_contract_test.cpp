// The store contract, part 1: records, the outbox, consents, keys and transactions. Runs on every
// backend in storeBackends() below (the audit log: store_contract_audit_test.cpp; retention:
// store_contract_retention_test.cpp).
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gmock/gmock.h>

#include <fstream>
#include <regex>

#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"
#include "store/store_contract.hpp"
#include "support/postgres_cluster.hpp"

namespace gw::store::test {

// --- the backends ------------------------------------------------------------------------------

namespace {

using namespace Poco::Data::Keywords;

std::string sqlitePath(const std::filesystem::path& dir) { return (dir / "gw.db").string(); }

Poco::Data::Session sqliteSession(const std::filesystem::path& dir) {
  Poco::Data::SQLite::Connector::registerConnector();
  Poco::Data::Session s("SQLite", sqlitePath(dir));
  s << "PRAGMA busy_timeout=10000", now;
  return s;
}

BackendFactory sqliteFactory() {
  return {
      "sqlite",
      [](const std::filesystem::path& dir) {
        SqliteOptions options{sqlitePath(dir), true, 4, {}};
        options.instance_id = kContractInstance;
        return openSqliteBackend(options);
      },
      [](const std::filesystem::path& dir) {
        SqliteOptions options{sqlitePath(dir), true, 4, {}};
        options.read_only = true;
        return openSqliteBackend(options);
      },
      [](const std::filesystem::path& dir, const std::string& sql) {
        auto s = sqliteSession(dir);
        s << sql, now;
      },
      [](const std::filesystem::path& dir, const std::string& sql) {
        auto s = sqliteSession(dir);
        Poco::Int64 n = 0;
        s << sql, into(n), now;
        return static_cast<std::int64_t>(n);
      },
  };
}

// PostgreSQL: a database per test in the run's cluster (support/postgres_cluster.hpp). The test's
// folder keeps the DSN, so every open of the folder is the same database.
std::string postgresDsn(const std::filesystem::path& dir) {
  const auto file = dir / "postgres.dsn";
  std::string dsn;
  if (std::ifstream in(file); in) std::getline(in, dsn);
  if (dsn.empty()) {
    dsn = gw::test::PostgresCluster::shared()->createDatabase();
    std::ofstream(file) << dsn << "\n";
  }
  return dsn;
}

std::string postgresDatabase(const std::filesystem::path& dir) {
  return gw::test::PostgresCluster::databaseOf(postgresDsn(dir));
}

// The contract's direct SQL is written for SQLite; the few SQLite words it uses, in PostgreSQL's:
// blob literals x'..' are bytea, and "holds an envelope" (typeof()='blob') is "holds bytes".
std::string postgresSql(const std::string& sql) {
  static const std::regex blob_literal("x'([0-9A-Fa-f]*)'");
  static const std::regex is_blob("typeof\\((\\w+)\\)='blob'");
  return std::regex_replace(std::regex_replace(sql, blob_literal, "'\\x$1'::bytea"), is_blob, "octet_length($1)>0");
}

BackendFactory postgresFactory() {
  return {
      "postgresql",
      [](const std::filesystem::path& dir) {
        PostgresOptions options;
        options.dsn = postgresDsn(dir);
        options.pool_size = 4;
        options.instance_id = kContractInstance;
        return openPostgresBackend(options);
      },
      [](const std::filesystem::path& dir) {
        PostgresOptions options;
        options.dsn = postgresDsn(dir);
        options.pool_size = 4;
        options.read_only = true;
        return openPostgresBackend(options);
      },
      [](const std::filesystem::path& dir, const std::string& sql) {
        gw::test::PostgresCluster::shared()->exec(postgresDatabase(dir), postgresSql(sql));
      },
      [](const std::filesystem::path& dir, const std::string& sql) {
        return static_cast<std::int64_t>(
            gw::test::PostgresCluster::shared()->count(postgresDatabase(dir), postgresSql(sql)));
      },
      [] { return gw::test::PostgresCluster::unavailableReason(); },
  };
}

}  // namespace

std::vector<BackendFactory> storeBackends() { return {sqliteFactory(), postgresFactory()}; }

std::string backendName(const ::testing::TestParamInfo<BackendFactory>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::ValuesIn(storeBackends()), backendName);

namespace {

using privacy::DataClass;
using ::testing::HasSubstr;

// --- ingest ------------------------------------------------------------------------------------

TEST_P(StoreContract, SameContentIsUnchangedNewContentIsNewVersion) {
  auto first = store_->ingest({write("r1", "h1", "pa")}, t(0));
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value()[0].disposition, IngestDisposition::Created);
  EXPECT_EQ(first.value()[0].version, 1);
  auto again = store_->ingest({write("r1", "h1", "pa")}, t(1));
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value()[0].disposition, IngestDisposition::Unchanged);
  EXPECT_EQ(again.value()[0].version, 1);
  auto changed = store_->ingest({write("r1", "h2", "pa")}, t(2));
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed.value()[0].disposition, IngestDisposition::NewVersion);
  EXPECT_EQ(changed.value()[0].version, 2);

  auto status = store_->recordStatus("c1", "r1");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->version, 2);
  EXPECT_EQ(status.value()->received_at_ms, toUnixMillis(t(0)));
  EXPECT_EQ(status.value()->updated_at_ms, toUnixMillis(t(2)));
  ASSERT_EQ(status.value()->deliveries.size(), 2u);
  // The unsent first version is superseded by the second: only one item is ever sent.
  EXPECT_EQ(status.value()->deliveries[0].state, OutboxState::Superseded);
  EXPECT_EQ(status.value()->deliveries[1].state, OutboxState::Queued);
  EXPECT_EQ(status.value()->resources.size(), 1u) << "the new version's resources replace the old ones";
  EXPECT_THAT(*store_->recordPayload("c1", "r1", 1).value(), HasSubstr("r1"));
  EXPECT_TRUE(store_->recordPayload("c1", "r1", 2).value()) << "every version is kept";
}

TEST_P(StoreContract, SameContentInANewStateIsANewVersion) {
  auto invalid = write("r1", "h1", "pa", 0);
  invalid.state = RecordState::Invalid;
  invalid.error = "mapping failed at $.dose";
  invalid.resources.clear();
  ASSERT_TRUE(store_->ingest({invalid}, t(0)));
  EXPECT_EQ(store_->recordStatus("c1", "r1").value()->error, "mapping failed at $.dose");
  // Resent unchanged while still invalid: nothing to do.
  EXPECT_EQ(store_->ingest({invalid}, t(1)).value()[0].disposition, IngestDisposition::Unchanged);
  // The mapper was fixed: the same content now maps; it must not be answered "unchanged".
  auto outcome = store_->ingest({write("r1", "h1", "pa")}, t(2));
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome.value()[0].disposition, IngestDisposition::NewVersion);
  EXPECT_EQ(store_->recordStatus("c1", "r1").value()->state, RecordState::Mapped);
  EXPECT_EQ(store_->outboxCounts("p1").value().queued, 1);
}

TEST_P(StoreContract, DuplicateWithinOneBatchIsUnchanged) {
  auto result = store_->ingest({write("r1", "h1", "pa"), write("r1", "h1", "pa")}, t(0));
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value()[0].disposition, IngestDisposition::Created);
  EXPECT_EQ(result.value()[1].disposition, IngestDisposition::Unchanged);
  EXPECT_EQ(store_->outboxCounts("p1").value().queued, 1);
}

TEST_P(StoreContract, UnchangedRecordsLogNothingNewOnesLogTheirEntries) {
  auto w = write("r1", "h1", "pa");
  w.audit = {decision(1), decision(2)};
  ASSERT_TRUE(store_->ingest({w}, t(0)));
  ASSERT_TRUE(store_->ingest({w}, t(1)));
  EXPECT_EQ(auditLog().size(), 2u);
}

TEST_P(StoreContract, SurvivesReopen) {
  ASSERT_TRUE(store_->ingest({write("r1", "h1", "pa")}, t(0)));
  store_.reset();
  store_ = open();
  ASSERT_TRUE(store_);
  EXPECT_EQ(store_->outboxCounts("p1").value().queued, 1);
  EXPECT_EQ(store_->ingest({write("r1", "h1", "pa")}, t(1)).value()[0].disposition, IngestDisposition::Unchanged);
}

TEST_P(StoreContract, UnknownRecordHasNoStatus) {
  auto status = store_->recordStatus("c1", "nope");
  ASSERT_TRUE(status);
  EXPECT_FALSE(status.value().has_value());
  EXPECT_TRUE(store_->resourceKeys("c1", "nope").value().empty());
  EXPECT_FALSE(store_->recordPayload("c1", "nope", 1).value());
}

TEST_P(StoreContract, EveryReadDecrypts) {
  auto w = write("r1", "h1", "pa", 1, DataClass::Mh);
  w.payload = R"({"patient":{"mrn":"A12345"}})";
  w.resources[0] = {"Patient", "pat-1", "https://ids/mrn", "A12345", R"({"resourceType":"Patient"})", DataClass::Mh};
  w.outbox[0].bundle = R"({"resourceType":"Bundle","entry":["A12345"]})";
  ASSERT_TRUE(store_->ingest({w}, t(0)));
  EXPECT_EQ(*store_->recordPayload("c1", "r1", 1).value(), w.payload);
  EXPECT_EQ(*store_->resourceBody("Patient", "pat-1").value(), R"({"resourceType":"Patient"})");
  EXPECT_FALSE(store_->resourceBody("Patient", "nope").value());
  auto keys = store_->resourceKeys("c1", "r1");
  ASSERT_TRUE(keys && keys.value().size() == 1);
  EXPECT_EQ(keys.value()[0].identifier_value, "A12345");
  EXPECT_EQ(keys.value()[0].identifier_system, "https://ids/mrn");
  EXPECT_EQ(keys.value()[0].classes, privacy::ClassSet(DataClass::Mh));
  auto status = store_->recordStatus("c1", "r1");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->resources[0].identifier_value, "A12345");
  EXPECT_EQ(status.value()->resources[0].body, "") << "status carries ids only";

  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  EXPECT_EQ(due.value()[0].bundle, w.outbox[0].bundle);
  EXPECT_EQ(due.value()[0].entry_count, 2);
  ASSERT_TRUE(store_->markDead(due.value()[0].id, 1, "HTTP 422", R"({"resourceType":"OperationOutcome"})", t(0)));
  EXPECT_EQ(store_->recordStatus("c1", "r1").value()->deliveries[0].outcome, R"({"resourceType":"OperationOutcome"})");
}

// Sealed ahead of the commit (Store::sealAhead, on a request thread): stored as sealed when the
// record still gets the version it was sealed for, sealed again when another version came first.
TEST_P(StoreContract, AWriteSealedAheadIsStoredAsSealedOrSealedAgainWhenTheRecordMovedOn) {
  auto w = write("r1", "h1", "pa", 1, DataClass::Mh);
  w.resources[0].body = R"({"resourceType":"MedicationRequest","note":"ahead"})";
  w.outbox[0].bundle = R"({"resourceType":"Bundle","entry":["ahead"]})";
  w.outbox[0].disclosure = R"({"decisions":["ahead"]})";
  const IngestWrite plain = w;
  store_->sealAhead(w);
  ASSERT_TRUE(w.sealed);
  EXPECT_EQ(w.sealed->version, 1);
  EXPECT_TRUE(w.outbox[0].bundle.empty() && w.resources[0].body.empty()) << "one copy in flight: the sealed one";
  EXPECT_EQ(w.payload, plain.payload) << "the record itself stays (its hash and state are compared)";

  auto unchanged = write("r2", "h2", "pb");
  ASSERT_TRUE(store_->ingest({unchanged}, t(0)));
  store_->sealAhead(unchanged);
  EXPECT_FALSE(unchanged.sealed) << "the same content again is not sealed: nothing of it is written";

  // Another version of r1 commits first: w becomes version 2, sealed again for it.
  ASSERT_TRUE(store_->ingest({write("r1", "h0", "pa", 1, DataClass::Mh)}, t(0)));
  auto outcomes = store_->ingest({w}, t(1));
  ASSERT_TRUE(outcomes) << outcomes.error().describe();
  EXPECT_EQ(outcomes.value()[0].version, 2);
  EXPECT_EQ(*store_->recordPayload("c1", "r1", 2).value(), plain.payload);
  EXPECT_EQ(*store_->resourceBody("MedicationRequest", plain.resources[0].resource_id).value(), plain.resources[0].body);
  auto items = store_->dueItems("p1", t(2), 10);
  ASSERT_TRUE(items);
  std::vector<std::string> bundles;
  for (const auto& item : items.value()) bundles.push_back(item.bundle);
  EXPECT_THAT(bundles, ::testing::Contains(plain.outbox[0].bundle));

  // Sealed ahead and still fitting: stored as sealed, read back the same.
  auto fresh = write("r3", "h3", "pc", 1, DataClass::Sud);
  fresh.outbox[0].bundle = R"({"resourceType":"Bundle","entry":["fresh"]})";
  const IngestWrite fresh_plain = fresh;
  store_->sealAhead(fresh);
  ASSERT_TRUE(fresh.sealed);
  const std::string sealed_payload = fresh.sealed->payload;
  ASSERT_TRUE(store_->ingest({fresh}, t(3)));
  EXPECT_EQ(*store_->recordPayload("c1", "r3", 1).value(), fresh_plain.payload);
  std::string hex;
  for (unsigned char c : sealed_payload) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
  EXPECT_EQ(count("SELECT COUNT(*) FROM record_versions WHERE payload=x'" + hex + "'"), 1)
      << "the envelope sealed ahead is the one stored";
  items = store_->dueItems("p1", t(4), 10);
  ASSERT_TRUE(items);
  bundles.clear();
  for (const auto& item : items.value()) bundles.push_back(item.bundle);
  EXPECT_THAT(bundles, ::testing::Contains(fresh_plain.outbox[0].bundle));
}

// --- the outbox --------------------------------------------------------------------------------

TEST_P(StoreContract, DueItemsKeepPerPatientOrder) {
  ASSERT_TRUE(store_->ingest({write("a1", "h", "pa"), write("a2", "h", "pa"), write("b1", "h", "pb")}, t(0)));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value().size(), 2u);  // a1 and b1; a2 waits for a1
  EXPECT_EQ(due.value()[0].record_key, recordKey("a1"));
  EXPECT_EQ(due.value()[1].record_key, recordKey("b1"));
  EXPECT_TRUE(store_->dueItems("p2", t(0), 10).value().empty()) << "items are per partner";

  // a1 retrying later: a2 still waits (order beats throughput for one patient).
  ASSERT_TRUE(store_->markRetry(due.value()[0].id, 1, t(60), "HTTP 503 from partner", t(0)));
  due = store_->dueItems("p1", t(1), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value().size(), 1u);
  EXPECT_EQ(due.value()[0].record_key, recordKey("b1"));
  auto next = store_->nextDueTime("p1");
  ASSERT_TRUE(next && next.value());
  EXPECT_EQ(*next.value(), t(0));  // b1 is due now
  ASSERT_TRUE(store_->markRetry(due.value()[0].id, 1, t(30), "HTTP 503 from partner", t(1)));
  next = store_->nextDueTime("p1");
  ASSERT_TRUE(next && next.value());
  // a2 (queued at t0) waits behind a1: the next due time is b1's retry, not a2's queue time.
  EXPECT_EQ(*next.value(), t(30));
  EXPECT_FALSE(store_->nextDueTime("p2").value());

  // After the retry time, a1 comes back; once delivered, a2 follows.
  due = store_->dueItems("p1", t(61), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value()[0].record_key, recordKey("a1"));
  EXPECT_EQ(due.value()[0].attempts, 1);
  EXPECT_EQ(due.value()[0].state, OutboxState::Retrying);
  ASSERT_TRUE(
      store_->markDelivered(due.value()[0].id, {{"201 Created", "MedicationRequest/9/_history/1", "W/\"1\""}}, t(61)));
  due = store_->dueItems("p1", t(61), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value().size(), 2u);
  EXPECT_EQ(due.value()[0].record_key, recordKey("a2"));
  EXPECT_EQ(store_->dueItems("p1", t(61), 1).value().size(), 1u) << "the limit holds";

  auto status = store_->recordStatus("c1", "a1");
  ASSERT_TRUE(status && status.value());
  ASSERT_EQ(status.value()->deliveries.size(), 1u);
  const auto& d = status.value()->deliveries[0];
  EXPECT_EQ(d.state, OutboxState::Delivered);
  EXPECT_EQ(d.attempts, 2);
  ASSERT_EQ(d.entries.size(), 1u);
  EXPECT_EQ(d.entries[0].status, "201 Created");
  EXPECT_EQ(d.entries[0].location, "MedicationRequest/9/_history/1");
  EXPECT_EQ(d.entries[0].etag, "W/\"1\"");
  const auto counts = store_->outboxCounts("p1").value();
  EXPECT_EQ(counts.delivered, 1);
  EXPECT_EQ(counts.retrying, 1);
  EXPECT_EQ(counts.queued, 1);
}

TEST_P(StoreContract, DeadItemsKeepOutcomeAndReleaseThePatientQueue) {
  ASSERT_TRUE(store_->ingest({write("a1", "h", "pa"), write("a2", "h", "pa")}, t(0)));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  ASSERT_TRUE(
      store_->markDead(due.value()[0].id, 1, "HTTP 400 from partner", R"({"resourceType":"OperationOutcome"})", t(0)));
  auto status = store_->recordStatus("c1", "a1");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->deliveries[0].state, OutboxState::Dead);
  EXPECT_EQ(status.value()->deliveries[0].last_error, "HTTP 400 from partner");
  EXPECT_EQ(status.value()->deliveries[0].outcome, R"({"resourceType":"OperationOutcome"})");
  due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  EXPECT_EQ(due.value()[0].record_key, recordKey("a2"));
}

TEST_P(StoreContract, AnItemSupersededWhileInFlightStaysSuperseded) {
  ASSERT_TRUE(store_->ingest({write("r1", "h1", "pa")}, t(0)));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  // While the worker is sending version 1, version 2 arrives...
  ASSERT_TRUE(store_->ingest({write("r1", "h2", "pa")}, t(1)));
  // ...and the partner answers 503 for version 1: it must not come back as retrying.
  ASSERT_TRUE(store_->markRetry(due.value()[0].id, 1, t(5), "HTTP 503", t(2)));
  // Nor may a cancellation or a dead letter of it be logged: it was never sent as such.
  ASSERT_TRUE(store_->markCancelled(due.value()[0].id, "consent revoked", t(2), {decision(1)}));
  ASSERT_TRUE(store_->markDead(due.value()[0].id, 1, "HTTP 400", "{}", t(2), {decision(2)}));
  EXPECT_TRUE(auditLog().empty());
  auto status = store_->recordStatus("c1", "r1");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->deliveries[0].state, OutboxState::Superseded);
  EXPECT_EQ(status.value()->deliveries[0].outcome, "");
  due = store_->dueItems("p1", t(10), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  EXPECT_EQ(due.value()[0].record_version, 2);
}

TEST_P(StoreContract, OutcomesOfAnItemThatDoesNotExistChangeNothing) {
  EXPECT_TRUE(store_->markDead(424242, 1, "HTTP 400", "{}", t(0), {decision(1)}));
  EXPECT_TRUE(store_->markCancelled(424242, "gone", t(0), {decision(2)}));
  EXPECT_TRUE(auditLog().empty());
}

// Each outcome and its log entries commit together: when the log append fails, the outcome is
// not recorded either (the worker retries the item; nothing claims a disclosure that is not logged).
TEST_P(StoreContract, AnOutcomeAndItsLogEntriesCommitTogether) {
  ASSERT_TRUE(store_->ingest({write("a1", "h", "pa"), write("b1", "h", "pb"), write("c1", "h", "pc")}, t(0)));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 3);
  const auto delivered = due.value()[0].id, dead = due.value()[1].id, cancelled = due.value()[2].id;

  faults_->arm("appendAudit");
  auto st = store_->markDelivered(delivered, {{"201 Created", "X/1", ""}}, t(1), {decision(1)});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::Storage);
  faults_->arm("appendAudit");
  EXPECT_FALSE(store_->markDead(dead, 1, "HTTP 400", R"({"issue":[]})", t(1), {decision(2)}));
  faults_->arm("appendAudit");
  EXPECT_FALSE(store_->markCancelled(cancelled, "consent revoked", t(1), {decision(3)}));
  EXPECT_EQ(faults_->failed, 3);
  for (const char* record : {"a1", "b1", "c1"}) {
    const auto status = store_->recordStatus("c1", record).value();
    ASSERT_TRUE(status);
    EXPECT_EQ(status->deliveries[0].state, OutboxState::Queued) << record;
    EXPECT_TRUE(status->deliveries[0].entries.empty()) << record;
    EXPECT_EQ(status->deliveries[0].outcome, "") << record;
    EXPECT_EQ(status->deliveries[0].attempts, 0) << record;
  }
  EXPECT_TRUE(auditLog().empty());

  // Without the failure each commits with its entries.
  ASSERT_TRUE(store_->markDelivered(delivered, {{"201 Created", "X/1", ""}}, t(2), {decision(1)}));
  ASSERT_TRUE(store_->markDead(dead, 1, "HTTP 400", R"({"issue":[]})", t(2), {decision(2)}));
  ASSERT_TRUE(store_->markCancelled(cancelled, "consent revoked", t(2), {decision(3)}));
  const auto counts = store_->outboxCounts("p1").value();
  EXPECT_EQ(counts.delivered, 1);
  EXPECT_EQ(counts.dead, 1);
  EXPECT_EQ(counts.cancelled, 1);
  const auto log = auditLog();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[2].resource_id, store_->lookupKeys().resource("MedicationRequest", "res-3"));
  EXPECT_TRUE(verify().ok);
}

// Outcomes recorded together are one transaction: all of them with their log entries, or none
// (the partner workers' group commit relies on it and then records each on its own).
TEST_P(StoreContract, OutcomesRecordedTogetherCommitAllOrNone) {
  ASSERT_TRUE(store_->ingest({write("a1", "h", "pa"), write("b1", "h", "pb"), write("c1", "h", "pc")}, t(0)));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 3);
  const auto delivered = due.value()[0].id, dead = due.value()[1].id, retrying = due.value()[2].id;
  const auto outcomes = [&](int second) {
    std::vector<OutboxOutcome> all;
    all.push_back(OutboxOutcome::delivered(delivered, {{"201 Created", "X/1", ""}}, t(second), {decision(1)}));
    all.push_back(OutboxOutcome::dead(dead, 1, "HTTP 400", R"({"issue":[]})", t(second), {decision(2)}));
    all.push_back(OutboxOutcome::retry(retrying, 1, t(second + 30), "HTTP 503", t(second)));
    return all;
  };

  faults_->arm("appendAudit", 1);  // the first outcome's log entry passes, the second's fails
  ASSERT_FALSE(store_->recordOutcomes(outcomes(1)));
  EXPECT_EQ(faults_->failed, 1);
  for (const char* record : {"a1", "b1", "c1"}) {
    const auto status = store_->recordStatus("c1", record).value();
    ASSERT_TRUE(status);
    EXPECT_EQ(status->deliveries[0].state, OutboxState::Queued) << record;
    EXPECT_EQ(status->deliveries[0].attempts, 0) << record;
  }
  EXPECT_TRUE(auditLog().empty());

  ASSERT_TRUE(store_->recordOutcomes(outcomes(2)));
  const auto counts = store_->outboxCounts("p1").value();
  EXPECT_EQ(counts.delivered, 1);
  EXPECT_EQ(counts.dead, 1);
  EXPECT_EQ(counts.retrying, 1);
  EXPECT_EQ(store_->recordStatus("c1", "b1").value()->deliveries[0].outcome, R"({"issue":[]})");
  EXPECT_EQ(store_->recordStatus("c1", "c1").value()->deliveries[0].last_error, "HTTP 503");
  EXPECT_EQ(auditLog().size(), 2u);
  EXPECT_TRUE(verify().ok);
  EXPECT_TRUE(store_->recordOutcomes({}));  // nothing to record is no transaction
}

TEST_P(StoreContract, AnInvalidLogEntryFailsTheWholeWrite) {
  ASSERT_TRUE(store_->ingest({write("a1", "h", "pa")}, t(0)));
  const auto id = store_->dueItems("p1", t(0), 10).value().at(0).id;
  auto bad = decision(1);
  bad.reason = "line\nbreak";
  auto st = store_->markDelivered(id, {}, t(1), {decision(0), bad});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::Internal);
  EXPECT_EQ(st.error().where, "audit_log.reason");
  EXPECT_EQ(store_->recordStatus("c1", "a1").value()->deliveries[0].state, OutboxState::Queued);

  auto w = write("a2", "h", "pa");
  w.audit = {bad};
  EXPECT_FALSE(store_->ingest({w}, t(1)));
  EXPECT_FALSE(store_->recordStatus("c1", "a2").value());
  EXPECT_TRUE(auditLog().empty());
}

// --- all or nothing ----------------------------------------------------------------------------

// A consent record as ingest stores it: the registry row and its registration entry.
IngestWrite consentWrite(const std::string& consent_id, const std::string& hash, const std::string& status,
                         std::int64_t recorded_at, const std::string& revoked_on = "") {
  IngestWrite w;
  w.clinic = "c1";
  w.record_id = "consent-" + consent_id;
  w.record_type = "consent";
  w.content_hash = hash;
  w.payload = R"({"consent":")" + consent_id + R"("})";
  w.patient_key = "pa";
  w.state = RecordState::Mapped;
  w.classes = DataClass::Sud;
  w.resources.push_back({"Consent", "consent-res-" + consent_id, "https://ids/consent", consent_id, "{}", DataClass::Sud});
  w.consent = privacy::ConsentRow{"c1",
                                  consent_id,
                                  7,
                                  "pa",
                                  "p1",
                                  status,
                                  "TREAT",
                                  "sud",
                                  "2026-01-01",
                                  "",
                                  revoked_on,
                                  "2025-12-30",
                                  "consent-res-" + consent_id,
                                  recorded_at};
  w.audit.push_back(AuditEntryBuilder(AuditKind::Consent, AuditOutcome::Ok, "tok-1", recorded_at)
                        .clinic("c1")
                        .patient("pa")
                        .partner("p1", "TREAT")
                        .resource("Consent", "consent-res-" + consent_id, DataClass::Sud)
                        .consent("c1/" + consent_id, 0)
                        .reason(status)
                        .build());
  return w;
}

TEST_P(StoreContract, AFailureAnywhereInABatchLeavesNothing) {
  ASSERT_TRUE(store_->ingest({write("old", "h1", "pa")}, t(0)));
  const auto before = store_->recordStatus("c1", "old").value().value();
  auto batch = [&] {
    auto a = write("r1", "h1", "pa", 2);
    a.audit = {decision(1)};
    auto changed = write("old", "h2", "pa");
    changed.audit = {decision(2)};
    return std::vector<IngestWrite>{a, changed, consentWrite("k1", "hk", "active", 1'800'000'000'000)};
  };
  // Fails at the 3rd outbox insert (in the second record), at the consent, at the log, at commit.
  const std::vector<std::pair<std::string, int>> faults = {
      {"insertOutboxItem", 2}, {"insertConsent", 0}, {"appendAudit", 0}, {"commit", 0}, {"putResource", 1}};
  for (const auto& [primitive, pass] : faults) {
    SCOPED_TRACE(primitive);
    faults_->arm(primitive, pass);
    auto result = store_->ingest(batch(), t(1));
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, ErrorCode::Storage);
    EXPECT_FALSE(store_->recordStatus("c1", "r1").value());
    EXPECT_FALSE(store_->recordStatus("c1", "consent-k1").value());
    EXPECT_TRUE(store_->consents("pa").value().empty());
    EXPECT_TRUE(auditLog().empty());
    const auto old = store_->recordStatus("c1", "old").value().value();
    EXPECT_EQ(old.version, 1) << "the record stays at the version before the batch";
    ASSERT_EQ(old.deliveries.size(), 1u);
    EXPECT_EQ(old.deliveries[0].state, OutboxState::Queued) << "not superseded by a version that was not stored";
    EXPECT_EQ(old.resources.size(), 1u);
    EXPECT_EQ(old.resources[0].resource_id, before.resources[0].resource_id);
    EXPECT_EQ(store_->outboxCounts("p1").value().queued, 1);
  }
  EXPECT_EQ(faults_->failed, static_cast<int>(faults.size()));
  // Nothing half-stored makes the retry look unchanged.
  auto retried = store_->ingest(batch(), t(2));
  ASSERT_TRUE(retried) << retried.error().describe();
  EXPECT_EQ(retried.value()[0].disposition, IngestDisposition::Created);
  EXPECT_EQ(retried.value()[1].disposition, IngestDisposition::NewVersion);
  EXPECT_EQ(retried.value()[2].disposition, IngestDisposition::Created);
  EXPECT_EQ(retried.value()[2].consent_version, 1);
  EXPECT_EQ(auditLog().size(), 3u);
  EXPECT_TRUE(verify().ok);
}

// --- consents ----------------------------------------------------------------------------------

TEST_P(StoreContract, ConsentVersionsCountFromOnePerConsent) {
  auto first = store_->ingest({consentWrite("k1", "h1", "active", 1'800'000'000'000)}, t(0));
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value()[0].consent_version, 1) << "the version in the write is not used";
  // The revocation is the consent's next version, a row of its own.
  auto revoked = store_->ingest({consentWrite("k1", "h2", "revoked", 1'800'000'100'000, "2027-02-01")}, t(1));
  ASSERT_TRUE(revoked);
  EXPECT_EQ(revoked.value()[0].disposition, IngestDisposition::NewVersion);
  EXPECT_EQ(revoked.value()[0].consent_version, 2);
  auto other = store_->ingest({consentWrite("k2", "h3", "active", 1'800'000'200'000)}, t(2));
  ASSERT_TRUE(other);
  EXPECT_EQ(other.value()[0].consent_version, 1);
  auto resent = store_->ingest({consentWrite("k1", "h2", "revoked", 1'800'000'100'000, "2027-02-01")}, t(3));
  ASSERT_TRUE(resent);
  EXPECT_EQ(resent.value()[0].disposition, IngestDisposition::Unchanged);
  EXPECT_EQ(resent.value()[0].consent_version, 0) << "an unchanged record stores no consent version";

  auto stored = store_->consents("pa");
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored.value().size(), 3u);
  EXPECT_EQ(stored.value()[0].row.consent_id, "k1");
  EXPECT_EQ(stored.value()[0].row.version, 1);
  EXPECT_EQ(stored.value()[0].row.status, "active");
  EXPECT_EQ(stored.value()[1].row.version, 2);
  EXPECT_EQ(stored.value()[1].row.status, "revoked");
  EXPECT_EQ(stored.value()[1].row.revoked_on, "2027-02-01");
  EXPECT_EQ(stored.value()[2].row.consent_id, "k2");
  auto expected = *consentWrite("k1", "h2", "revoked", 1'800'000'100'000, "2027-02-01").consent;
  expected.version = 2;
  EXPECT_EQ(stored.value()[1].row, expected) << "every column is kept";
  EXPECT_FALSE(stored.value()[1].reconciled);
  EXPECT_EQ(store_->consents("").value().size(), 3u);
  EXPECT_TRUE(store_->consents("someone-else").value().empty());

  // Each registration's log entry carries the version the store assigned.
  std::vector<std::int64_t> logged;
  for (const auto& e : auditLog()) {
    EXPECT_EQ(e.kind, AuditKind::Consent);
    logged.push_back(e.consent_version);
  }
  EXPECT_EQ(logged, (std::vector<std::int64_t>{1, 2, 1}));

  ASSERT_TRUE(store_->markConsentReconciled("c1", "k1", 2));
  stored = store_->consents("pa");
  EXPECT_FALSE(stored.value()[0].reconciled);
  EXPECT_TRUE(stored.value()[1].reconciled);
  EXPECT_FALSE(stored.value()[2].reconciled);
}

// The database holds lookup keys, never the clear ids (docs/privacy.md §9.1); callers look rows up
// by the clear values they have: clinic + record id, clinic + MRN (the patient key), resource id.
TEST_P(StoreContract, RowsAreFoundByClearIdsThatTheDatabaseNeverHolds) {
  const std::string patient = store_->lookupKeys().patient("c1", "A12345");
  EXPECT_EQ(patient, store_->lookupKeys().patientOfResource(ids::resourceId("c1", "Patient", "A12345")));
  auto w = write("c1:rx:A12345-1", "h1", patient);
  w.resources[0] = {"Patient", "pat-A12345", "https://ids/mrn", "A12345", "{}", DataClass::Sud};
  auto consent = consentWrite("cn-A12345", "hc", "active", 1'800'000'000'000);
  consent.patient_key = patient;
  consent.consent->patient_key = patient;
  consent.audit[0].patient_key = patient;
  ASSERT_TRUE(store_->ingest({w, consent}, t(0)));
  for (const char* sql :
       {"SELECT COUNT(*) FROM records WHERE record_key LIKE '%A12345%' OR patient_key LIKE '%A12345%'",
        "SELECT COUNT(*) FROM record_versions WHERE record_key LIKE '%A12345%'",
        "SELECT COUNT(*) FROM resources WHERE resource_key LIKE '%A12345%' OR record_key LIKE '%A12345%'",
        "SELECT COUNT(*) FROM outbox WHERE record_key LIKE '%A12345%'",
        "SELECT COUNT(*) FROM consents WHERE consent_key LIKE '%A12345%'",
        "SELECT COUNT(*) FROM audit_log WHERE resource_id LIKE '%A12345%' OR consent_id LIKE '%A12345%'"}) {
    EXPECT_EQ(count(sql), 0) << sql;
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM records WHERE patient_key='" + patient + "'"), 2);

  auto status = store_->recordStatus("c1", "c1:rx:A12345-1");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->record_id, "c1:rx:A12345-1");
  EXPECT_EQ(status.value()->resources.at(0).resource_id, "pat-A12345");
  EXPECT_FALSE(store_->recordStatus("c2", "c1:rx:A12345-1").value()) << "the clinic is part of the key";
  EXPECT_EQ(store_->ingest({w}, t(1)).value()[0].disposition, IngestDisposition::Unchanged);
  EXPECT_EQ(store_->resourceKeys("c1", "c1:rx:A12345-1").value().at(0).identifier_value, "A12345");
  EXPECT_TRUE(store_->resourceBody("Patient", "pat-A12345").value());
  EXPECT_EQ(store_->pendingItems("p1", patient).value().size(), 1u);
  const auto consents = store_->consents(patient).value();
  ASSERT_EQ(consents.size(), 1u);
  EXPECT_EQ(consents[0].row.consent_id, "cn-A12345");
  EXPECT_EQ(consents[0].row.resource_id, "consent-res-cn-A12345");
  AuditQuery q;
  q.patient_key = patient;
  const auto page = store_->queryAudit(q).value();
  ASSERT_EQ(page.entries.size(), 1u);
  EXPECT_EQ(page.entries[0].consent_id, consents[0].consent_key);
}

// --- reconciliation ----------------------------------------------------------------------------

TEST_P(StoreContract, HeldRecordsAndEnqueueFollowTheCurrentVersion) {
  auto held = write("r1", "h1", "pa", 0);
  ASSERT_TRUE(store_->ingest({held, consentWrite("k1", "hk", "active", 1'800'000'000'000)}, t(0)));
  auto listed = store_->heldRecords("p2", "pa");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed.value().size(), 1u) << "consent records are never held for disclosure";
  EXPECT_EQ(listed.value()[0].record_key, recordKey("r1"));
  EXPECT_EQ(listed.value()[0].version, 1);
  EXPECT_EQ(listed.value()[0].payload, held.payload);

  EnqueueWrite q;
  q.clinic = "c1";
  q.record_id = "r1";
  q.record_version = 1;
  q.patient_key = "pa";
  q.outbox.push_back({"p2", R"({"resourceType":"Bundle","id":"v1"})", 1, DataClass::Sud, R"({"purpose":"TREAT"})"});
  q.audit = {decision(1, AuditOutcome::Permit)};
  ASSERT_TRUE(store_->enqueue(q, t(1)));
  auto pending = store_->pendingItems("p2", "pa");
  ASSERT_TRUE(pending && pending.value().size() == 1);
  EXPECT_EQ(pending.value()[0].record_version, 1);
  EXPECT_EQ(pending.value()[0].disclosure, R"({"purpose":"TREAT"})");
  EXPECT_EQ(store_->dueItems("p2", t(1), 10).value().at(0).bundle, R"({"resourceType":"Bundle","id":"v1"})");
  EXPECT_TRUE(store_->heldRecords("p2", "pa").value().empty());
  EXPECT_EQ(auditLog().size(), 2u);  // the consent's registration and the decision

  // Version 2 arrives; an enqueue decided for version 1 comes late and must queue nothing.
  ASSERT_TRUE(store_->ingest({write("r1", "h2", "pa", 0)}, t(2)));
  ASSERT_TRUE(store_->enqueue(q, t(3)));
  EXPECT_TRUE(store_->pendingItems("p2", "pa").value().empty()) << "version 1's item was superseded";
  EXPECT_EQ(auditLog().size(), 2u) << "nor logs its decisions";
  q.record_version = 2;
  ASSERT_TRUE(store_->enqueue(q, t(4)));
  pending = store_->pendingItems("p2", "pa");
  ASSERT_TRUE(pending && pending.value().size() == 1);
  EXPECT_EQ(pending.value()[0].record_version, 2);
  q.record_id = "never-stored";
  ASSERT_TRUE(store_->enqueue(q, t(5)));
  EXPECT_EQ(store_->pendingItems("p2", "pa").value().size(), 1u);
}

// --- last decisions per (partner, record, resource) ---------------------------------------------

ResourceDecision held(const std::string& partner, AuditOutcome outcome, std::vector<std::uint32_t> removed = {},
                      const std::string& reason = "") {
  ResourceDecision d;
  d.partner_id = partner;
  d.resource_type = "CarePlan";
  d.resource_id = "cp-1";
  d.outcome = outcome;
  d.removed_activities = std::move(removed);
  d.reason = reason;
  return d;
}

AuditEntry decisionFor(const std::string& partner, AuditOutcome outcome) {
  auto e = test::sampleDecision(1, outcome);
  e.partner_id = partner;
  return e;
}

// A treatment plan of patient pa: its CarePlan redacted for p1 (activity 3, mh, left out) and
// denied for p2 (no consent).
IngestWrite planWrite(const std::string& hash) {
  IngestWrite w = StoreContract::write("tp", hash, "pa");
  w.record_type = "treatment_plan";
  w.resources[0] = {"CarePlan", "cp-1", "https://ids/tp", "TP-1", "{}", DataClass::Sud};
  w.audit = {decisionFor("p1", AuditOutcome::Redact), decisionFor("p2", AuditOutcome::Deny)};
  w.decisions = {held("p1", AuditOutcome::Redact, {3}, "class-not-covered:mh"),
                 held("p2", AuditOutcome::Deny, {}, "no-consent")};
  return w;
}

EnqueueWrite replan(const std::string& partner, AuditOutcome outcome, std::vector<std::uint32_t> removed = {}) {
  EnqueueWrite q;
  q.clinic = "c1";
  q.record_id = "tp";
  q.record_version = 1;
  q.patient_key = "pa";
  if (outcome != AuditOutcome::Deny) q.outbox.push_back({partner, R"({"resourceType":"Bundle"})", 2, DataClass::Sud, ""});
  q.audit = {decisionFor(partner, outcome)};
  q.decisions = {held(partner, outcome, std::move(removed))};
  return q;
}

TEST(DisclosesMore, OnlyWhatWasHeldBackAndIsNowDisclosedCounts) {
  const auto d = [](AuditOutcome o, std::vector<std::uint32_t> removed = {}) { return held("p", o, std::move(removed)); };
  EXPECT_TRUE(disclosesMore(d(AuditOutcome::Deny), d(AuditOutcome::Permit)));
  EXPECT_TRUE(disclosesMore(d(AuditOutcome::Deny), d(AuditOutcome::Redact, {1})));
  EXPECT_TRUE(disclosesMore(d(AuditOutcome::Redact, {3}), d(AuditOutcome::Permit)));
  EXPECT_TRUE(disclosesMore(d(AuditOutcome::Redact, {1, 3}), d(AuditOutcome::Redact, {3})));
  EXPECT_TRUE(disclosesMore(d(AuditOutcome::Redact, {3}), d(AuditOutcome::Redact, {1}))) << "activity 3 is kept now";
  EXPECT_FALSE(disclosesMore(d(AuditOutcome::Redact, {3}), d(AuditOutcome::Redact, {1, 3})));
  EXPECT_FALSE(disclosesMore(d(AuditOutcome::Redact, {3}), d(AuditOutcome::Redact, {3})));
  EXPECT_FALSE(disclosesMore(d(AuditOutcome::Permit), d(AuditOutcome::Permit)));
  EXPECT_FALSE(disclosesMore(d(AuditOutcome::Permit), d(AuditOutcome::Deny)));
  EXPECT_FALSE(disclosesMore(d(AuditOutcome::Deny), d(AuditOutcome::Deny)));
}

TEST_P(StoreContract, ARedactedOrDeniedResourceIsHeldAndQueuedOnceWhenItNowDisclosesMore) {
  ASSERT_TRUE(store_->ingest({planWrite("h1")}, t(0)));
  auto last = store_->lastDecisions("c1", "tp");
  ASSERT_TRUE(last) << last.error().describe();
  ASSERT_EQ(last.value().size(), 2u);
  EXPECT_EQ(last.value()[0].partner_id, "p1");
  EXPECT_EQ(last.value()[0].outcome, AuditOutcome::Redact);
  EXPECT_EQ(last.value()[0].removed_activities, (std::vector<std::uint32_t>{3}));
  EXPECT_EQ(last.value()[0].reason, "class-not-covered:mh");
  EXPECT_EQ(last.value()[0].resource_id, store_->lookupKeys().resource("CarePlan", "cp-1")) << "a lookup key, not the id";
  EXPECT_EQ(last.value()[0].record_version, 1);
  EXPECT_EQ(last.value()[1].partner_id, "p2");
  EXPECT_EQ(last.value()[1].outcome, AuditOutcome::Deny);
  EXPECT_EQ(count("SELECT COUNT(*) FROM resource_decisions WHERE resource_key='cp-1'"), 0) << "no clear id stored";

  // p1's redacted plan is delivered: still held (a part was left out); p2 has no item: held.
  const auto item = store_->dueItems("p1", t(0), 10).value().at(0).id;
  ASSERT_TRUE(store_->markDelivered(item, {{"200 OK", "CarePlan/1/_history/1", ""}}, t(1)));
  ASSERT_EQ(store_->heldRecords("p1", "pa").value().size(), 1u);
  ASSERT_EQ(store_->heldRecords("p2", "pa").value().size(), 1u);
  const auto logged = auditLog().size();

  // Decided again the same (or narrower): nothing is queued or logged, the decisions stay.
  EXPECT_EQ(store_->enqueue(replan("p1", AuditOutcome::Redact, {3}), t(2)).value(), 0);
  EXPECT_EQ(store_->enqueue(replan("p1", AuditOutcome::Deny), t(2)).value(), 0);
  EXPECT_TRUE(store_->pendingItems("p1", "pa").value().empty());
  EXPECT_EQ(auditLog().size(), logged);
  EXPECT_EQ(store_->lastDecisions("c1", "tp").value()[0].outcome, AuditOutcome::Redact);

  // Now permitted in full: queued once, the decision replaced, no longer held.
  EXPECT_EQ(store_->enqueue(replan("p1", AuditOutcome::Permit), t(3)).value(), 1);
  EXPECT_EQ(store_->pendingItems("p1", "pa").value().size(), 1u);
  EXPECT_EQ(auditLog().size(), logged + 1);
  EXPECT_EQ(store_->lastDecisions("c1", "tp").value()[0].outcome, AuditOutcome::Permit);
  EXPECT_TRUE(store_->heldRecords("p1", "pa").value().empty());
  EXPECT_EQ(store_->enqueue(replan("p1", AuditOutcome::Permit), t(4)).value(), 0) << "sent once";
  EXPECT_EQ(store_->pendingItems("p1", "pa").value().size(), 1u);
}

TEST_P(StoreContract, AResendOfTheSameContentIsQueuedOnlyWhereItNowDisclosesMore) {
  ASSERT_TRUE(store_->ingest({planWrite("h1")}, t(0)));
  const auto logged = auditLog().size();
  // Resent unchanged after p2's consent arrived (p1's decision unchanged): queued for p2 only.
  auto resend = planWrite("h1");
  resend.outbox.push_back({"p2", R"({"resourceType":"Bundle"})", 2, DataClass::Sud, ""});
  resend.audit[1].outcome = AuditOutcome::Permit;
  resend.decisions[1] = held("p2", AuditOutcome::Permit);
  auto outcome = store_->ingest({resend}, t(1));
  ASSERT_TRUE(outcome) << outcome.error().describe();
  EXPECT_EQ(outcome.value()[0].disposition, IngestDisposition::Unchanged);
  EXPECT_EQ(outcome.value()[0].requeued_for, (std::vector<std::string>{"p2"}));
  EXPECT_EQ(store_->pendingItems("p2", "pa").value().size(), 1u);
  EXPECT_EQ(store_->pendingItems("p1", "pa").value().size(), 1u) << "p1's first item only";
  EXPECT_EQ(auditLog().size(), logged + 1) << "p2's decision only";
  EXPECT_EQ(store_->lastDecisions("c1", "tp").value()[1].outcome, AuditOutcome::Permit);
  // The same again: nothing more.
  outcome = store_->ingest({resend}, t(2));
  EXPECT_TRUE(outcome.value()[0].requeued_for.empty());
  EXPECT_EQ(store_->pendingItems("p2", "pa").value().size(), 1u);
  EXPECT_EQ(auditLog().size(), logged + 1);

  // A new version decides afresh: its decisions replace the older version's.
  auto v2 = planWrite("h2");
  v2.decisions = {held("p1", AuditOutcome::Permit)};
  ASSERT_TRUE(store_->ingest({v2}, t(3)));
  const auto last = store_->lastDecisions("c1", "tp").value();
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].record_version, 2);
  EXPECT_EQ(count("SELECT COUNT(*) FROM resource_decisions"), 1);
}

TEST_P(StoreContract, ARecordDeliveredBeforeDecisionsWereKeptIsNeverSentAgain) {
  // As a schema 5 database left it: a delivered item and no decision rows (unknown).
  auto w = planWrite("h1");
  w.decisions.clear();
  ASSERT_TRUE(store_->ingest({w}, t(0)));
  const auto item = store_->dueItems("p1", t(0), 10).value().at(0).id;
  ASSERT_TRUE(store_->markDelivered(item, {}, t(1)));
  EXPECT_TRUE(store_->heldRecords("p1", "pa").value().empty());
  EXPECT_EQ(store_->enqueue(replan("p1", AuditOutcome::Permit), t(2)).value(), 0);
  EXPECT_TRUE(store_->pendingItems("p1", "pa").value().empty());
}

// --- secrets and keys --------------------------------------------------------------------------

TEST_P(StoreContract, DeploymentSecretIsMadeOnceAndKept) {
  auto first = store_->deploymentSecret("record-key");
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value().size(), 64u);
  EXPECT_EQ(store_->deploymentSecret("record-key").value(), first.value());
  EXPECT_NE(store_->deploymentSecret("other").value(), first.value());
  auto second = open();  // another instance on the same database
  EXPECT_EQ(second->deploymentSecret("record-key").value(), first.value());
  store_.reset();
  store_ = open();
  EXPECT_EQ(store_->deploymentSecret("record-key").value(), first.value());
}

TEST_P(StoreContract, OpeningNeedsTheRightMasterKey) {
  store_.reset();
  auto none = openWith(crypto::SecretKey());
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::Config);
  auto wrong = openWith(gw::test::testMasterKey('w'));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::Config);
  EXPECT_THAT(wrong.error().message, HasSubstr("the master key does not match the one that wrapped the data keys"));
  EXPECT_TRUE(openWith(gw::test::testMasterKey()));
}

TEST_P(StoreContract, RotatingTheMasterKeyKeepsEveryPayload) {
  ASSERT_TRUE(store_->ingest({write("r1", "h1", "pa", 1, DataClass::Mh)}, t(0)));
  auto wrong = store_->rotateMasterKey(gw::test::testMasterKey('x'), gw::test::testMasterKey('n'));
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message, HasSubstr("does not match"));
  auto rotation = store_->rotateMasterKey(gw::test::testMasterKey(), gw::test::testMasterKey('n'));
  ASSERT_TRUE(rotation) << rotation.error().describe();
  EXPECT_EQ(rotation.value().data_keys, 5);
  EXPECT_EQ(rotation.value().old_master_id, gw::test::testMasterKey().id());
  EXPECT_EQ(rotation.value().new_master_id, gw::test::testMasterKey('n').id());
  EXPECT_THAT(rotation.value().keys,
              ::testing::UnorderedElementsAre("general v1", "sud v1", "mh v1", "lookup v1", "audit-chain v1"));
  store_.reset();
  EXPECT_FALSE(openWith(gw::test::testMasterKey()));
  store_ = open('n');
  ASSERT_TRUE(store_);
  EXPECT_THAT(*store_->recordPayload("c1", "r1", 1).value(), HasSubstr("r1"));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  EXPECT_EQ(due.value()[0].bundle, "{\"resourceType\":\"Bundle\"}");
}

TEST_P(StoreContract, AFailedRotationChangesNothing) {
  faults_->arm("updateDataKey", 2);  // the third key fails
  ASSERT_FALSE(store_->rotateMasterKey(gw::test::testMasterKey(), gw::test::testMasterKey('n')));
  store_.reset();
  EXPECT_FALSE(openWith(gw::test::testMasterKey('n')));
  EXPECT_TRUE(openWith(gw::test::testMasterKey()));
}

TEST_P(StoreContract, Pings) { EXPECT_TRUE(store_->ping()); }

}  // namespace
}  // namespace gw::store::test

// The store contract, part 2: the decision and disclosure log. Appends chain onto the tail read
// inside the write transaction, keyed with the audit-chain secret; verification finds every kind
// of tampering, also by someone who recomputes the chain without the master key; a read-only
// open verifies without writing; queries filter and page. Tampering is done with plain SQL on the
// database, as an attacker would.
#include <gmock/gmock.h>

#include "store/audit_chain.hpp"
#include "store/store_contract.hpp"

namespace gw::store::test {
namespace {

using ::testing::HasSubstr;

class AuditContract : public StoreContract {
 protected:
  // Appends in one write and returns the entries as the log holds them.
  std::vector<AuditEntry> append(std::vector<AuditEntry> entries, Store* store = nullptr) {
    const std::size_t before = auditLog().size();
    auto st = (store ? store : store_.get())->appendAudit(entries);
    EXPECT_TRUE(st) << (st ? "" : st.error().describe());
    auto all = auditLog();
    return std::vector<AuditEntry>(all.begin() + static_cast<std::ptrdiff_t>(std::min(before, all.size())), all.end());
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, AuditContract, ::testing::ValuesIn(storeBackends()), backendName);

// --- appending -------------------------------------------------------------------------------

TEST_P(AuditContract, AppendsAcrossTransactionsFormOneChain) {
  std::vector<AuditEntry> all;
  for (int t = 0; t < 3; ++t) {
    auto part = append(decisions(t * 4, 4));
    all.insert(all.end(), part.begin(), part.end());
  }
  ASSERT_EQ(all.size(), 12u);
  EXPECT_EQ(all[0].prev_hash, kGenesisHash);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(chainVersionOf(all[i].hash), ChainVersion::V3) << "every new row is keyed, with its instance";
    EXPECT_EQ(all[i].instance_id, kContractInstance);
    EXPECT_NE(all[i].hash, "v2:" + entryHash(all[i])) << "keyed, not a plain SHA-256 with a label";
    if (i > 0) {
      EXPECT_EQ(all[i].prev_hash, all[i - 1].hash);
    }
    // What was stored is what was appended, its ids keyed.
    AuditEntry appended = asStored(decision(static_cast<int>(i)));
    appended.seq = all[i].seq;
    appended.prev_hash = all[i].prev_hash;
    appended.hash = all[i].hash;
    EXPECT_EQ(all[i], appended) << i;
  }
  const auto report = verify();
  EXPECT_TRUE(report.ok);
  EXPECT_EQ(report.rows, 12);
  EXPECT_EQ(report.last_seq, 12);
  EXPECT_EQ(report.head_hash, all.back().hash);
  EXPECT_EQ(report.break_count, 0);
  EXPECT_EQ(report.keyed_from_seq, 1) << "a new database is keyed from its first row";
  EXPECT_EQ(report.unkeyed_rows, 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deployment_secrets WHERE name='audit-chain-start'"), 1);
}

TEST_P(AuditContract, AFailedAppendLeavesNoTraceAndTheNextOneContinuesTheChain) {
  const auto first = append(decisions(0, 3));
  for (const char* primitive : {"appendAudit", "commit"}) {
    faults_->arm(primitive);
    auto st = store_->appendAudit(decisions(3, 2));
    ASSERT_FALSE(st) << primitive;
    EXPECT_EQ(st.error().code, ErrorCode::Storage);
  }
  const auto second = append(decisions(5, 2));
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second.front().seq, 4);
  EXPECT_EQ(second.front().prev_hash, first.back().hash);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 5);
  const auto report = verify();
  EXPECT_TRUE(report.ok) << (report.breaks.empty() ? "" : report.breaks[0].message);
  EXPECT_EQ(report.last_seq, 5);
}

TEST_P(AuditContract, TwoStoresOnOneDatabaseKeepOneChain) {
  // Another gateway process (or a CLI) on the same database appends between our appends: each
  // append chains onto the tail as it is at that moment, never onto one remembered from before.
  auto other = open();
  ASSERT_TRUE(other);
  append(decisions(0, 2));
  const auto theirs = append(decisions(2, 3), other.get());
  ASSERT_EQ(theirs.size(), 3u);
  EXPECT_EQ(theirs.back().seq, 5);
  const auto mine = append(decisions(5, 2));
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine.front().seq, 6);
  EXPECT_EQ(mine.front().prev_hash, theirs.back().hash);
  append(decisions(7, 1), other.get());
  EXPECT_TRUE(verify().ok);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 8);
}

TEST_P(AuditContract, InvalidEntriesAreRefusedAndNothingIsWritten) {
  struct Case {
    std::string field;
    std::function<void(AuditEntry&)> edit;
  };
  const std::vector<Case> cases = {
      {"at_ms", [](AuditEntry& e) { e.at_ms = 0; }},
      {"kind", [](AuditEntry& e) { e.kind = static_cast<AuditKind>(99); }},
      {"outcome", [](AuditEntry& e) { e.outcome = static_cast<AuditOutcome>(99); }},
      {"actor", [](AuditEntry& e) { e.actor.clear(); }},
      {"classes", [](AuditEntry& e) { e.classes = "mh,sud"; }},  // not canonical order
      {"classes", [](AuditEntry& e) { e.classes = "hiv"; }},
      {"labels", [](AuditEntry& e) { e.labels = "R,,SUD"; }},
      {"labels", [](AuditEntry& e) { e.labels = "R, SUD"; }},
      {"reason", [](AuditEntry& e) { e.reason = "line\nbreak"; }},
      {"reason", [](AuditEntry& e) { e.reason = std::string(1025, 'x'); }},
      {"patient_key", [](AuditEntry& e) { e.patient_key = std::string(257, 'x'); }},
      {"detail", [](AuditEntry& e) { e.detail = "[1,2]"; }},
      {"detail", [](AuditEntry& e) { e.detail = "{\"a\":"; }},
      {"detail", [](AuditEntry& e) { e.detail = "{\"a\":\"" + std::string(5000, 'x') + "\"}"; }},
      {"consent_version", [](AuditEntry& e) { e.consent_version = -1; }},
  };
  for (const auto& c : cases) {
    auto entries = decisions(0, 3);
    c.edit(entries[1]);
    auto st = store_->appendAudit(entries);
    ASSERT_FALSE(st) << c.field;
    EXPECT_EQ(st.error().code, ErrorCode::Internal);
    EXPECT_EQ(st.error().where, "audit_log." + c.field);
    EXPECT_THAT(st.error().message, HasSubstr("entry 1"));
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 0);
  // Empty optional fields are fine.
  append({AuditEntryBuilder(AuditKind::KeyRotation, AuditOutcome::Ok, "gateway", 1'800'000'000'000).build()});
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 1);
}

// --- the instance that wrote each row (schema 9) -----------------------------------------------

// The same database as another gateway instance sees it: only the instance id differs.
class OtherInstance final : public StoreBackend {
 public:
  OtherInstance(std::unique_ptr<StoreBackend> inner, std::string id) : inner_(std::move(inner)), id_(std::move(id)) {}
  std::string_view name() const override { return inner_->name(); }
  std::string location() const override { return inner_->location(); }
  Result<std::unique_ptr<StoreReader>> read() override { return inner_->read(); }
  Result<std::unique_ptr<StoreWriter>> beginWrite() override { return inner_->beginWrite(); }
  Result<std::int64_t> convertLegacyIdentifiers(const LegacyIdentifiers& convert) override {
    return inner_->convertLegacyIdentifiers(convert);
  }
  std::string instanceId() const override { return id_; }

 private:
  std::unique_ptr<StoreBackend> inner_;
  std::string id_;
};

TEST_P(AuditContract, EachRowNamesTheInstanceThatAppendedItAndItsHashCoversIt) {
  auto backend = GetParam().open(dir_);
  ASSERT_TRUE(backend) << backend.error().describe();
  auto other = openStore(std::make_unique<OtherInstance>(std::move(backend).value(), "gw-other"),
                         gw::test::testMasterKey('m'));
  ASSERT_TRUE(other) << other.error().describe();
  EXPECT_EQ(store_->instanceId(), kContractInstance);
  EXPECT_EQ(other.value()->instanceId(), "gw-other");
  append(decisions(0, 2));
  append(decisions(2, 2), other.value().get());
  auto named = decision(4);
  named.instance_id = "gw-named";  // an entry that names its instance keeps it
  append({named});
  const auto log = auditLog();
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[0].instance_id, kContractInstance);
  EXPECT_EQ(log[1].instance_id, kContractInstance);
  EXPECT_EQ(log[2].instance_id, "gw-other");
  EXPECT_EQ(log[3].instance_id, "gw-other");
  EXPECT_EQ(log[4].instance_id, "gw-named");
  EXPECT_TRUE(verify().ok);

  // Crediting a row to another instance is an alteration like any other.
  exec("UPDATE audit_log SET instance_id='gw-other' WHERE seq=2");
  const auto r = verify();
  ASSERT_EQ(r.break_count, 1);
  EXPECT_EQ(r.breaks[0].seq, 2);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::HashMismatch);

  // The filter-less query returns the column too (exports show it).
  AuditQuery q;
  q.limit = 10;
  auto page = store_->queryAudit(q);
  ASSERT_TRUE(page) << page.error().describe();
  EXPECT_EQ(page.value().entries[2].instance_id, "gw-other");
}

// --- verification ----------------------------------------------------------------------------

// Rows as the gateway appended them before kind and outcome became enums (made with that build's
// AuditAppender): the stored words and the hashed bytes are the same, so its chains still verify,
// read back, and take new rows.
const char* const kEarlierRows[] = {
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(1, 1800000000000, 'decision', 'tok-1', 'c1', 'pat-0', 'st-mary', 'TREAT', 'MedicationRequest', 'res-0', 'sud,mh', '', '', 0, 'permit', 'class-not-covered:mh', '2026.1', '', '0000000000000000000000000000000000000000000000000000000000000000', '4a577b3bdb1f1e511cdca0ebbffb1da6fce79892a75d766d3fea7f4f34714ed2'))SQL",
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(2, 1800000001000, 'cancel', 'gateway', 'c1', 'pat-1', 'st-mary', 'TREAT', 'MedicationRequest', 'res-1', 'general', 'R,SUD,42CFRPart2', 'c1/consent-1', 2, 'deny', 'class-not-covered:mh', '2026.1', '{"outbox_item":12,"locations":["Patient/1"]}', '4a577b3bdb1f1e511cdca0ebbffb1da6fce79892a75d766d3fea7f4f34714ed2', '4b85736185de3f4b4e022abea7f77c4bff605c990f575c5dc2259645ea085e2a'))SQL",
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(3, 1800000002000, 'disclosure', 'tok-1', 'c1', 'pat-2', 'st-mary', 'TREAT', 'MedicationRequest', 'res-2', '', '', '', 0, 'redact', 'class-not-covered:mh', '2026.1', '', '4b85736185de3f4b4e022abea7f77c4bff605c990f575c5dc2259645ea085e2a', 'd9469e44b6ec3973d0b37f75376dcf68047d6f3d8d9ee505f5cb7fbf4311932b'))SQL",
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(4, 1800000003000, 'consent', 'gateway', 'c1', 'pat-0', 'st-mary', 'TREAT', 'MedicationRequest', 'res-3', 'sud,mh', 'R,SUD,42CFRPart2', 'c1/consent-1', 2, 'cancelled', 'ünïcode, "quoted"', '2026.1', '{"outbox_item":12,"locations":["Patient/1"]}', 'd9469e44b6ec3973d0b37f75376dcf68047d6f3d8d9ee505f5cb7fbf4311932b', '3af3dec769346bd37c482b1b325566d1c354a2d68ba1e3c47a7dafe99bc1ba97'))SQL",
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(5, 1800000004000, 'audit-read', 'tok-1', 'c1', 'pat-1', 'st-mary', 'TREAT', 'MedicationRequest', 'res-4', 'general', '', '', 0, 'delivered', 'class-not-covered:mh', '2026.1', '', '3af3dec769346bd37c482b1b325566d1c354a2d68ba1e3c47a7dafe99bc1ba97', 'baa3fd9e327f3af015e0f10106f410c1a412f01acaec3903a27a6363308e66c5'))SQL",
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(6, 1800000005000, 'audit-verify', 'gateway', 'c1', 'pat-2', 'st-mary', 'TREAT', 'MedicationRequest', 'res-5', '', 'R,SUD,42CFRPart2', 'c1/consent-1', 2, 'retrying', 'class-not-covered:mh', '2026.1', '{"outbox_item":12,"locations":["Patient/1"]}', 'baa3fd9e327f3af015e0f10106f410c1a412f01acaec3903a27a6363308e66c5', 'ebd8bd96762a3eb2d64ca3eae646ac331962ee7beaa5d304ef66f50af21e7c04'))SQL",
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(7, 1800000006000, 'key-rotation', 'tok-1', 'c1', 'pat-0', 'st-mary', 'TREAT', 'MedicationRequest', 'res-6', 'sud,mh', '', '', 0, 'failed', 'class-not-covered:mh', '2026.1', '', 'ebd8bd96762a3eb2d64ca3eae646ac331962ee7beaa5d304ef66f50af21e7c04', '291f265b6a535e79c77c5894350f44aea53e934b9cee69b65b56aff3d0ef4adf'))SQL",
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(8, 1800000007000, 'decision', 'gateway', 'c1', 'pat-1', 'st-mary', 'TREAT', 'MedicationRequest', 'res-7', 'general', 'R,SUD,42CFRPart2', 'c1/consent-1', 2, 'ok', 'class-not-covered:mh', '2026.1', '{"outbox_item":12,"locations":["Patient/1"]}', '291f265b6a535e79c77c5894350f44aea53e934b9cee69b65b56aff3d0ef4adf', '4f7df0c7d8e153a8678eeaaec1eaffa15681af41a0e46a0ff71bdaf7ca283ca1'))SQL",
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(9, 1800000008000, 'cancel', 'tok-1', 'c1', 'pat-2', 'st-mary', 'TREAT', 'MedicationRequest', 'res-8', '', '', '', 0, 'error', 'class-not-covered:mh', '2026.1', '', '4f7df0c7d8e153a8678eeaaec1eaffa15681af41a0e46a0ff71bdaf7ca283ca1', '240c70e3bcbdc085717a2712b64a590611337b85def476c768b9eca20214836b'))SQL",
    R"SQL(INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash) VALUES(10, 1800000009000, 'disclosure', 'gateway', 'c1', 'pat-0', 'st-mary', 'TREAT', 'MedicationRequest', 'res-9', 'sud,mh', 'R,SUD,42CFRPart2', 'c1/consent-1', 2, 'permit', 'class-not-covered:mh', '2026.1', '{"outbox_item":12,"locations":["Patient/1"]}', '240c70e3bcbdc085717a2712b64a590611337b85def476c768b9eca20214836b', '96098c8da03144d62931a7cf6254797ee8fdcc82dd4c87b5247489dbfc04bc69'))SQL",
};

// A database as a build before the keyed chain left it: v1 rows, no audit-chain secret, no marker.
void makeUnkeyedDatabase(const std::function<void(const std::string&)>& exec) {
  exec("DELETE FROM data_keys WHERE data_class='audit-chain'");
  exec("DELETE FROM deployment_secrets WHERE name='audit-chain-start'");
  for (const char* sql : kEarlierRows) exec(sql);
}

TEST_P(AuditContract, ChainsWrittenByEarlierBuildsStillVerifyAndContinueKeyed) {
  store_.reset();
  makeUnkeyedDatabase([this](const std::string& sql) { exec(sql); });
  store_ = open();  // the keyed build's first start: the secret and the marker (after seq 10)
  ASSERT_TRUE(store_);
  auto r = verify();
  EXPECT_TRUE(r.ok) << (r.breaks.empty() ? "" : r.breaks[0].message);
  EXPECT_EQ(r.rows, 10);
  EXPECT_EQ(r.unkeyed_rows, 10);
  EXPECT_EQ(r.keyed_from_seq, 11);
  EXPECT_EQ(r.head_hash, "96098c8da03144d62931a7cf6254797ee8fdcc82dd4c87b5247489dbfc04bc69");
  const auto log = auditLog();
  ASSERT_EQ(log.size(), 10u);
  for (const auto& e : log) EXPECT_EQ(entryHash(e), e.hash) << e.seq;
  EXPECT_EQ(log[0].kind, AuditKind::Decision);
  EXPECT_EQ(log[0].outcome, AuditOutcome::Permit);
  EXPECT_EQ(log[6].kind, AuditKind::KeyRotation);
  EXPECT_EQ(log[8].outcome, AuditOutcome::Error);
  EXPECT_EQ(log[3].reason, "ünïcode, \"quoted\"");
  const auto next = append(decisions(0, 2));
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].seq, 11);
  EXPECT_EQ(next[0].prev_hash, r.head_hash) << "the first keyed row links to the last unkeyed one";
  EXPECT_EQ(chainVersionOf(next[0].hash), ChainVersion::V3);
  r = verify();
  EXPECT_TRUE(r.ok) << (r.breaks.empty() ? "" : r.breaks[0].message);
  EXPECT_EQ(r.unkeyed_rows, 10);

  // Another start changes nothing: the marker stays where the keyed chain began.
  store_ = open();
  EXPECT_EQ(verify().keyed_from_seq, 11);
  // An unkeyed row appended after the keyed ones, by someone without the key, is caught.
  exec(
      "INSERT INTO audit_log(seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, "
      "resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, "
      "hash) SELECT seq + 3, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, "
      "resource_type, resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version, "
      "detail, prev_hash, hash FROM audit_log WHERE seq = 10");
  r = verify();
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.breaks.back().seq, 13);
}

// Migration 9 on a log written before it: the column is added empty, the rows (v1 here; v2
// alike) keep verifying, an instance id put on one of them afterwards is caught, and new rows are
// v3 with their instance. The schema is taken back to 8 by hand and the store reopened.
TEST_P(AuditContract, Migration9AddsTheInstanceColumnAndEarlierRowsStillVerify) {
  store_.reset();
  exec("DROP TABLE gateway_instances");
  exec("ALTER TABLE audit_log DROP COLUMN instance_id");
  exec("DELETE FROM schema_version WHERE version = 9");
  makeUnkeyedDatabase([this](const std::string& sql) { exec(sql); });
  store_ = open();
  ASSERT_TRUE(store_);
  EXPECT_EQ(count("SELECT COUNT(*) FROM schema_version WHERE version = 9"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM gateway_instances"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log WHERE instance_id = ''"), 10);
  auto r = verify();
  EXPECT_TRUE(r.ok) << (r.breaks.empty() ? "" : r.breaks[0].message);
  const auto next = append(decisions(0, 1));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(chainVersionOf(next[0].hash), ChainVersion::V3);
  EXPECT_EQ(next[0].instance_id, kContractInstance);
  EXPECT_TRUE(verify().ok);
  exec("UPDATE audit_log SET instance_id='gw-contract' WHERE seq=4");
  r = verify();
  ASSERT_EQ(r.break_count, 1) << "a v1 row's bytes have no instance id: one set later is an alteration";
  EXPECT_EQ(r.breaks[0].seq, 4);
}

TEST_P(AuditContract, EmptyLogVerifies) {
  const auto r = verify();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.rows, 0);
  EXPECT_EQ(r.last_seq, 0);
  EXPECT_EQ(r.head_hash, kGenesisHash);
}

TEST_P(AuditContract, AnAlteredRowIsReportedAtItsSeq) {
  append(decisions(0, 5));
  append(decisions(5, 5));
  exec("UPDATE audit_log SET outcome='permit' WHERE seq=5");
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.rows, 10);
  ASSERT_EQ(r.break_count, 1);
  EXPECT_EQ(r.breaks[0].seq, 5);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::HashMismatch);
  EXPECT_THAT(r.breaks[0].message, HasSubstr("altered"));
}

TEST_P(AuditContract, AWordOutsideTheVocabularyIsABreakNotAnUnreadableLog) {
  append(decisions(0, 4));
  exec("UPDATE audit_log SET kind='decided' WHERE seq=2");
  exec("UPDATE audit_log SET outcome='maybe' WHERE seq=3");
  const auto r = verify();
  ASSERT_EQ(r.break_count, 2);
  EXPECT_EQ(r.breaks[0].seq, 2);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::HashMismatch);
  EXPECT_EQ(r.breaks[1].seq, 3);
  // A query cannot show such a row as an entry: it says which row to look at.
  auto page = store_->queryAudit(AuditQuery{});
  ASSERT_FALSE(page);
  EXPECT_EQ(page.error().code, ErrorCode::Storage);
  EXPECT_THAT(page.error().message, HasSubstr("seq 2 has an unknown kind"));
  AuditQuery later;
  later.after_seq = 3;
  EXPECT_TRUE(store_->queryAudit(later));
}

TEST_P(AuditContract, ADeletedRowIsReportedAsAGap) {
  append(decisions(0, 10));
  exec("DELETE FROM audit_log WHERE seq=5");
  auto r = verify();
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.break_count, 1);
  EXPECT_EQ(r.breaks[0].seq, 5);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::SeqGap);

  exec("DELETE FROM audit_log WHERE seq IN (1, 7, 8)");
  r = verify();
  ASSERT_EQ(r.break_count, 3);
  EXPECT_EQ(r.breaks[0].seq, 1);
  EXPECT_EQ(r.breaks[1].seq, 5);
  EXPECT_EQ(r.breaks[2].seq, 7);
  EXPECT_THAT(r.breaks[2].message, HasSubstr("7 to 8"));
}

TEST_P(AuditContract, AlteringAndRehashingARowWithoutTheKeyIsCaughtAtTheRowAndTheNextLink) {
  auto rows = append(decisions(0, 10));
  // Row 5 altered and its hash recomputed as plain SHA-256, or as SHA-256 under the v2 label.
  AuditEntry forged = rows[4];
  forged.outcome = AuditOutcome::Permit;
  exec("UPDATE audit_log SET outcome='permit', hash='" + entryHash(forged) + "' WHERE seq=5");
  auto r = verify();
  ASSERT_EQ(r.break_count, 2);
  EXPECT_EQ(r.breaks[0].seq, 5);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::UnkeyedRow);
  EXPECT_EQ(r.breaks[1].seq, 6);
  EXPECT_EQ(r.breaks[1].problem, ChainProblem::PrevHashMismatch);

  exec("UPDATE audit_log SET hash='v2:" + entryHash(forged) + "' WHERE seq=5");
  r = verify();
  ASSERT_EQ(r.break_count, 2);
  EXPECT_EQ(r.breaks[0].seq, 5);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::HashMismatch);
}

TEST_P(AuditContract, AnchorsDetectRewritesAndTruncation) {
  append(decisions(0, 10));
  auto good = verify();
  ASSERT_TRUE(good.ok);
  const ChainAnchor anchor{good.last_seq, good.head_hash};
  EXPECT_TRUE(verify(anchor).ok);

  // Cut the tail: the chain alone still checks out, the anchor does not.
  exec("DELETE FROM audit_log WHERE seq >= 9");
  EXPECT_TRUE(verify().ok);
  auto r = verify(anchor);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::Truncated);
  EXPECT_EQ(r.breaks[0].seq, 9);

  EXPECT_EQ(r.anchor.status, AnchorStatus::Truncated);

  // Rewrite the whole chain consistently from seq 3 on, without the key: the keyed chain tells,
  // and so does an anchor at or after 3.
  auto rows = auditLog();
  const ChainAnchor mid{6, rows[5].hash};
  for (std::size_t i = 2; i < rows.size(); ++i) {
    rows[i].prev_hash = rows[i - 1].hash;
    if (i == 2) rows[i].reason = "forged";
    rows[i].hash = entryHash(rows[i]);
    exec("UPDATE audit_log SET reason='" + rows[i].reason + "', prev_hash='" + rows[i].prev_hash + "', hash='" +
         rows[i].hash + "' WHERE seq=" + std::to_string(rows[i].seq));
  }
  EXPECT_FALSE(verify().ok);
  r = verify(mid);
  EXPECT_EQ(r.anchor.status, AnchorStatus::Rewritten);
  EXPECT_TRUE(std::any_of(r.breaks.begin(), r.breaks.end(),
                          [](const ChainBreak& b) { return b.seq == 6 && b.problem == ChainProblem::AnchorMismatch; }));
  r = verify(ChainAnchor{2, rows[1].hash});
  EXPECT_EQ(r.anchor.status, AnchorStatus::Ok) << "the rows before the rewrite are intact";
}

// Someone who can write the database but has no master key alters a row and recomputes the whole
// chain from seq 1 with the published unkeyed format (plain SHA-256): the keyed chain tells.
TEST_P(AuditContract, AChainRecomputedWithoutTheChainKeyDoesNotVerify) {
  append(decisions(0, 10));
  auto rows = auditLog();
  rows[3].outcome = AuditOutcome::Permit;
  std::string prev(kGenesisHash);
  for (auto& row : rows) {
    row.prev_hash = prev;
    row.hash = entryHash(row);
    prev = row.hash;
    exec("UPDATE audit_log SET outcome='" + std::string(auditOutcomeName(row.outcome)) + "', prev_hash='" + row.prev_hash +
         "', hash='" + row.hash + "' WHERE seq=" + std::to_string(row.seq));
  }
  const auto r = verify();
  EXPECT_FALSE(r.ok) << "a chain anyone can recompute proves nothing";
  ASSERT_FALSE(r.breaks.empty());
  EXPECT_EQ(r.breaks[0].seq, 1);
}

TEST_P(AuditContract, ADeletedOrMovedStartMarkerIsReported) {
  append(decisions(0, 3));
  exec("UPDATE deployment_secrets SET value='2' || substr(value, 2) WHERE name='audit-chain-start'");
  auto r = verify();
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::StartMarker);
  EXPECT_THAT(r.breaks[0].message, HasSubstr("altered"));
  exec("DELETE FROM deployment_secrets WHERE name='audit-chain-start'");
  r = verify();
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::StartMarker);
  EXPECT_THAT(r.breaks[0].message, HasSubstr("missing"));
  store_ = open();  // a restart does not make a new marker for an existing key
  EXPECT_EQ(count("SELECT COUNT(*) FROM deployment_secrets WHERE name='audit-chain-start'"), 0);
}

TEST_P(AuditContract, TheHeadIsTheLastRowAndAnchorLinesCheckOnlyWithThisDatabasesKey) {
  auto head = store_->auditHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head.value().seq, 0);
  EXPECT_EQ(head.value().hash, kGenesisHash);
  const auto rows = append(decisions(0, 4));
  head = store_->auditHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head.value().seq, 4);
  EXPECT_EQ(head.value().hash, rows.back().hash);

  const auto line = store_->anchorSealer().line({4, rows.back().hash, 1'800'000'000'000});
  auto again = open();  // the same database, another process: the same secret
  ASSERT_TRUE(again);
  auto back = again->anchorSealer().read(line);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->anchor(), (ChainAnchor{4, rows.back().hash}));

  const auto other_dir = dir_ / "other";
  std::filesystem::create_directories(other_dir);
  auto other_backend = GetParam().open(other_dir);
  ASSERT_TRUE(other_backend);
  auto other = openStore(std::move(other_backend).value(), gw::test::testMasterKey('m'));
  ASSERT_TRUE(other);
  EXPECT_FALSE(other.value()->anchorSealer().read(line)) << "another database, even under the same master key";
}

// `audit verify --read-only` and verifying a copy: the log checks the same, nothing is made or
// written (no key, no marker, no row), and writes are refused.
TEST_P(AuditContract, AReadOnlyOpenVerifiesTheSameAndWritesNothing) {
  const auto rows = append(decisions(0, 6));
  const auto rw = verify(ChainAnchor{6, rows.back().hash});
  store_.reset();
  const auto keys = count("SELECT COUNT(*) FROM data_keys");
  auto backend = GetParam().open_read_only(dir_);
  ASSERT_TRUE(backend) << backend.error().describe();
  auto log = ReadOnlyAuditLog::open(std::move(backend).value(), gw::test::testMasterKey('m'));
  ASSERT_TRUE(log) << log.error().describe();
  auto ro = log.value().verify(ChainAnchor{6, rows.back().hash});
  ASSERT_TRUE(ro) << ro.error().describe();
  EXPECT_TRUE(ro.value().ok);
  EXPECT_EQ(ro.value().head_hash, rw.head_hash);
  EXPECT_EQ(ro.value().keyed_from_seq, 1);
  EXPECT_EQ(ro.value().anchor.status, AnchorStatus::Ok);
  EXPECT_EQ(log.value().head().value().seq, 6);
  EXPECT_TRUE(log.value().anchorSealer().canCheck());

  auto refused = GetParam().open_read_only(dir_).value()->beginWrite();
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("read-only"));
  EXPECT_EQ(count("SELECT COUNT(*) FROM data_keys"), keys);
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 6);

  auto wrong = ReadOnlyAuditLog::open(GetParam().open_read_only(dir_).value(), gw::test::testMasterKey('x'));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::Config);
}

TEST_P(AuditContract, AReadOnlyOpenOfAnUnkeyedDatabaseMakesNoKey) {
  store_.reset();
  makeUnkeyedDatabase([this](const std::string& sql) { exec(sql); });
  const auto keys = count("SELECT COUNT(*) FROM data_keys");
  auto log = ReadOnlyAuditLog::open(GetParam().open_read_only(dir_).value(), gw::test::testMasterKey('m'));
  ASSERT_TRUE(log) << log.error().describe();
  EXPECT_FALSE(log.value().anchorSealer().canCheck());
  auto r = log.value().verify(std::nullopt);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r.value().ok);
  EXPECT_EQ(r.value().unkeyed_rows, 10);
  EXPECT_EQ(r.value().keyed_from_seq, 0) << "not keyed yet";
  EXPECT_EQ(count("SELECT COUNT(*) FROM data_keys"), keys);
  EXPECT_EQ(count("SELECT COUNT(*) FROM deployment_secrets WHERE name='audit-chain-start'"), 0);
}

TEST_P(AuditContract, VerifyReadsAcrossChunkBoundaries) {
  // 5000 rows: more than two verify chunks of 2048.
  for (int t = 0; t < 5; ++t) ASSERT_TRUE(store_->appendAudit(decisions(t * 1000, 1000)));
  auto r = verify();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.rows, 5000);
  exec("UPDATE audit_log SET reason='x' WHERE seq IN (2048, 2049, 4097)");
  r = verify();
  ASSERT_EQ(r.break_count, 3);
  EXPECT_EQ(r.breaks[0].seq, 2048);
  EXPECT_EQ(r.breaks[1].seq, 2049);
  EXPECT_EQ(r.breaks[2].seq, 4097);
  EXPECT_EQ(r.rows, 5000);
}

TEST_P(AuditContract, BreakListIsCappedButCounted) {
  append(decisions(0, 40));
  exec("UPDATE audit_log SET reason='x'");
  const auto r = verify();
  EXPECT_EQ(r.break_count, 40);
  EXPECT_EQ(r.breaks.size(), kMaxReportedBreaks);
  EXPECT_EQ(r.breaks.front().seq, 1);
}

// --- queries ---------------------------------------------------------------------------------

// A varied data set: every filter value occurs with and without every other one, and at_ms is
// not in seq order, so the time filter is not secretly a seq range.
std::vector<AuditEntry> varied(int n) {
  const AuditOutcome outcomes[] = {AuditOutcome::Permit, AuditOutcome::Deny, AuditOutcome::Redact, AuditOutcome::Delivered,
                                   AuditOutcome::Cancelled};
  // kind varies independently of outcome here: the store filters, it does not check pairings.
  const AuditKind kinds[] = {AuditKind::Decision, AuditKind::Decision, AuditKind::Disclosure, AuditKind::Cancel};
  const char* classes[] = {"general", "sud", "mh", "sud,mh", "", "general,mh"};
  std::vector<AuditEntry> out;
  for (int i = 0; i < n; ++i) {
    AuditEntry e = StoreContract::decision(i);
    e.clinic = i % 2 ? "c1" : "c2";
    e.patient_key = "pat-" + std::to_string(i % 3);
    e.partner_id = i % 4 < 2 ? "p1" : "p2";
    e.outcome = outcomes[i % 5];
    e.kind = kinds[(i / 3) % 4];
    e.classes = classes[(i * 5) % 6];
    e.at_ms = 1'800'000'000'000 + ((i * 7) % n) * 1000LL;
    out.push_back(e);
  }
  return out;
}

bool matches(const AuditEntry& e, const AuditQuery& q) {
  if (!q.clinic.empty() && e.clinic != q.clinic) return false;
  if (!q.patient_key.empty() && e.patient_key != q.patient_key) return false;
  if (!q.partner_id.empty() && e.partner_id != q.partner_id) return false;
  if (q.outcome && e.outcome != *q.outcome) return false;
  if (q.kind && e.kind != *q.kind) return false;
  if (q.data_class) {
    auto set = privacy::parseClassSet(e.classes);
    if (!set || !set->has(*q.data_class)) return false;
  }
  if (q.from_ms && e.at_ms < *q.from_ms) return false;
  if (q.to_ms && e.at_ms >= *q.to_ms) return false;
  return true;
}

std::vector<std::int64_t> pageAll(Store& store, AuditQuery q) {
  std::vector<std::int64_t> seqs;
  q.after_seq = 0;
  for (int guard = 0; guard < 1000; ++guard) {
    auto page = store.queryAudit(q);
    EXPECT_TRUE(page);
    if (!page) break;
    EXPECT_LE(page.value().entries.size(), static_cast<std::size_t>(q.limit));
    for (const auto& e : page.value().entries) seqs.push_back(e.seq);
    if (!page.value().next_after_seq) break;
    EXPECT_EQ(page.value().entries.size(), static_cast<std::size_t>(q.limit));  // only full pages have a next
    EXPECT_EQ(*page.value().next_after_seq, page.value().entries.back().seq);
    q.after_seq = *page.value().next_after_seq;
  }
  return seqs;
}

TEST_P(AuditContract, EveryFilterCombinationMatchesABruteForceFilterAcrossPages) {
  const auto rows = append(varied(90));
  constexpr std::int64_t kBase = 1'800'000'000'000;
  for (unsigned mask = 0; mask < (1u << 8); ++mask) {
    AuditQuery q;
    if (mask & 1) q.clinic = "c1";
    if (mask & 2) q.patient_key = "pat-1";
    if (mask & 4) q.partner_id = "p2";
    if (mask & 8) q.outcome = AuditOutcome::Deny;
    if (mask & 16) q.kind = AuditKind::Decision;
    if (mask & 32) q.data_class = privacy::DataClass::Mh;
    if (mask & 64) q.from_ms = kBase + 20'000;
    if (mask & 128) q.to_ms = kBase + 70'000;
    q.limit = 4;
    std::vector<std::int64_t> expected;
    for (const auto& e : rows) {
      if (matches(e, q)) expected.push_back(e.seq);
    }
    EXPECT_EQ(pageAll(*store_, q), expected) << "filter mask " << mask;
    if (mask == 0) {
      EXPECT_EQ(expected.size(), 90u);
    }
  }
}

TEST_P(AuditContract, EachFilterAloneSelectsSomethingAndNotEverything) {
  const auto rows = append(varied(90));
  constexpr std::int64_t kBase = 1'800'000'000'000;
  std::vector<AuditQuery> singles(8);
  singles[0].clinic = "c1";
  singles[1].patient_key = "pat-1";
  singles[2].partner_id = "p2";
  singles[3].outcome = AuditOutcome::Deny;
  singles[4].kind = AuditKind::Decision;
  singles[5].data_class = privacy::DataClass::Mh;
  singles[6].from_ms = kBase + 20'000;
  singles[7].to_ms = kBase + 70'000;
  for (std::size_t i = 0; i < singles.size(); ++i) {
    singles[i].limit = 1000;
    const auto got = pageAll(*store_, singles[i]);
    EXPECT_GT(got.size(), 0u) << i;
    EXPECT_LT(got.size(), rows.size()) << i;
  }
}

TEST_P(AuditContract, ClassFilterMatchesWholeClassNames) {
  std::vector<AuditEntry> rows;
  for (const char* c : {"general", "sud", "mh", "sud,mh", "general,sud", ""}) {
    rows.push_back(decision(static_cast<int>(rows.size())));
    rows.back().classes = c;
  }
  append(rows);
  auto seqsFor = [&](privacy::DataClass c) {
    AuditQuery q;
    q.data_class = c;
    return pageAll(*store_, q);
  };
  EXPECT_EQ(seqsFor(privacy::DataClass::Sud), (std::vector<std::int64_t>{2, 4, 5}));
  EXPECT_EQ(seqsFor(privacy::DataClass::Mh), (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(seqsFor(privacy::DataClass::General), (std::vector<std::int64_t>{1, 5}));
}

TEST_P(AuditContract, KeysetPagingIsStableWhileRowsAreAppended) {
  append(decisions(0, 12));
  AuditQuery q;
  q.patient_key = "pat-0";  // seq 1, 4, 7, 10, then the new rows
  q.limit = 2;
  auto first = store_->queryAudit(q);
  ASSERT_TRUE(first && first.value().next_after_seq);
  EXPECT_EQ(first.value().entries[0].seq, 1);
  EXPECT_EQ(first.value().entries[1].seq, 4);

  append(decisions(12, 6));  // 13..18; pat-0 at 13 and 16
  std::vector<std::int64_t> rest;
  q.after_seq = *first.value().next_after_seq;
  while (true) {
    auto page = store_->queryAudit(q);
    ASSERT_TRUE(page);
    for (const auto& e : page.value().entries) rest.push_back(e.seq);
    if (!page.value().next_after_seq) break;
    q.after_seq = *page.value().next_after_seq;
  }
  EXPECT_EQ(rest, (std::vector<std::int64_t>{7, 10, 13, 16}));
}

TEST_P(AuditContract, PageSizeIsClampedAndAnExactFitHasNoNextPage) {
  ASSERT_TRUE(store_->appendAudit(decisions(0, 1005)));
  AuditQuery q;
  q.limit = 5000;
  auto page = store_->queryAudit(q);
  ASSERT_TRUE(page);
  EXPECT_EQ(page.value().entries.size(), static_cast<std::size_t>(kMaxAuditPageSize));
  ASSERT_TRUE(page.value().next_after_seq);
  EXPECT_EQ(*page.value().next_after_seq, 1000);

  q.limit = 5;
  q.after_seq = 1000;
  page = store_->queryAudit(q);
  ASSERT_TRUE(page);
  EXPECT_EQ(page.value().entries.size(), 5u);
  EXPECT_FALSE(page.value().next_after_seq);  // exactly the last 5 rows: no empty extra page

  q.limit = 0;
  q.after_seq = 0;
  page = store_->queryAudit(q);
  ASSERT_TRUE(page);
  EXPECT_EQ(page.value().entries.size(), 1u);
}

}  // namespace
}  // namespace gw::store::test

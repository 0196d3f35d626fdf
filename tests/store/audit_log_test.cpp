// The decision log's entries without a database: the canonical bytes, the vocabulary, the
// builder and the chaining rule. Appending, verifying and querying through a store is the store
// contract (store_contract_audit_test.cpp).
#include "store/audit_log.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "common/ids.hpp"
#include "store/sample_audit_entries.hpp"

namespace gw::store {
namespace {

constexpr std::int64_t kBase = 1'800'000'000'000;

AuditEntry decision(int i) { return test::sampleDecision(i); }

// --- serialization ---------------------------------------------------------------------------

TEST(AuditHashTest, CanonicalBytesAreLengthPrefixedInColumnOrder) {
  AuditEntry e = decision(0);
  e.seq = 7;
  e.prev_hash = std::string(kGenesisHash);
  const std::string bytes = canonicalAuditBytes(e);
  EXPECT_EQ(bytes.rfind("gw-audit-v1\nseq:1:7\nat_ms:13:1800000000000\nkind:8:decision\nactor:7:gateway\n", 0), 0u) << bytes;
  EXPECT_NE(bytes.find("\nclasses:3:sud\nlabels:16:R,SUD,42CFRPart2\n"), std::string::npos);
  EXPECT_NE(bytes.find("\nprev_hash:64:" + std::string(kGenesisHash) + "\n"), std::string::npos);
  EXPECT_EQ(bytes.find("\nhash:"), std::string::npos);  // the hash does not hash itself
  EXPECT_EQ(entryHash(e), ids::sha256Hex(bytes));
}

TEST(AuditHashTest, MovingTextBetweenFieldsChangesTheHash) {
  AuditEntry a = decision(0), b = decision(0);
  a.clinic = "c1:";
  a.patient_key = "x";
  b.clinic = "c1";
  b.patient_key = ":x";
  EXPECT_NE(entryHash(a), entryHash(b));
  // Separator-looking content cannot forge a field boundary either.
  a.clinic = "c1\npatient_key:1:x";
  a.patient_key = "";
  b.clinic = "c1";
  b.patient_key = "x";
  EXPECT_NE(entryHash(a), entryHash(b));
}

TEST(AuditHashTest, EveryHashedFieldMatters) {
  const AuditEntry base = decision(1);
  const std::string h = entryHash(base);
  std::vector<std::function<void(AuditEntry&)>> edits = {
      [](AuditEntry& e) { e.seq += 1; },
      [](AuditEntry& e) { e.at_ms += 1; },
      [](AuditEntry& e) { e.kind = AuditKind::Cancel; },
      [](AuditEntry& e) { e.actor = "tok-1"; },
      [](AuditEntry& e) { e.clinic = "c2"; },
      [](AuditEntry& e) { e.patient_key = "p"; },
      [](AuditEntry& e) { e.partner_id = "p2"; },
      [](AuditEntry& e) { e.purpose = "ETREAT"; },
      [](AuditEntry& e) { e.resource_type = "Patient"; },
      [](AuditEntry& e) { e.resource_id = "r"; },
      [](AuditEntry& e) { e.classes = "mh"; },
      [](AuditEntry& e) { e.labels = "R"; },
      [](AuditEntry& e) { e.consent_id = "c"; },
      [](AuditEntry& e) { e.consent_version = 3; },
      [](AuditEntry& e) { e.outcome = AuditOutcome::Permit; },
      [](AuditEntry& e) { e.reason = ""; },
      [](AuditEntry& e) { e.policy_version = "2"; },
      [](AuditEntry& e) { e.detail = "{}"; },
      [](AuditEntry& e) { e.prev_hash = "x"; },
  };
  for (std::size_t i = 0; i < edits.size(); ++i) {
    AuditEntry e = base;
    edits[i](e);
    EXPECT_NE(entryHash(e), h) << "edit " << i;
  }
  AuditEntry e = base;
  e.hash = "anything";
  EXPECT_EQ(entryHash(e), h);
}

TEST(AuditHashTest, AnEntryAndItsStoredRowHashAlike) {
  AuditEntry e = decision(3);
  e.seq = 4;
  e.prev_hash = std::string(64, 'a');
  const AuditRow row = toAuditRow(e);
  EXPECT_EQ(row.kind, "decision");
  EXPECT_EQ(row.outcome, "deny");
  EXPECT_EQ(canonicalAuditBytes(row), canonicalAuditBytes(e));
  auto back = fromAuditRow(row);
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), e);
  AuditRow altered = row;
  altered.outcome = "maybe";
  auto unreadable = fromAuditRow(altered);
  ASSERT_FALSE(unreadable);
  EXPECT_EQ(unreadable.error().code, ErrorCode::Storage);
  EXPECT_NE(unreadable.error().message.find("seq 4 has an unknown outcome"), std::string::npos);
}

// --- vocabulary ------------------------------------------------------------------------------

TEST(AuditVocabularyTest, EveryValueHasItsStoredWordAndReadsBack) {
  // These words are in stored rows and in the hashed bytes: they never change.
  const std::vector<std::string_view> kinds = {"decision",   "cancel",       "disclosure",   "consent",
                                               "audit-read", "audit-verify", "key-rotation", "record-read"};
  const std::vector<std::string_view> outcomes = {"permit",   "deny",   "redact", "cancelled", "delivered",
                                                  "retrying", "failed", "ok",     "error"};
  EXPECT_EQ(auditKindNames(), kinds);
  EXPECT_EQ(auditOutcomeNames(), outcomes);
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    const auto k = static_cast<AuditKind>(i);
    EXPECT_EQ(auditKindName(k), kinds[i]);
    EXPECT_EQ(parseAuditKind(kinds[i]), k);
  }
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const auto o = static_cast<AuditOutcome>(i);
    EXPECT_EQ(auditOutcomeName(o), outcomes[i]);
    EXPECT_EQ(parseAuditOutcome(outcomes[i]), o);
  }
  EXPECT_FALSE(parseAuditKind("decisions"));
  EXPECT_FALSE(parseAuditKind("Decision"));
  EXPECT_FALSE(parseAuditOutcome(""));
}

TEST(AuditEntryBuilderTest, FillsWhatItIsGivenAndLeavesTheRestEmpty) {
  const auto minimal = AuditEntryBuilder(AuditKind::KeyRotation, AuditOutcome::Ok, "cli", kBase).build();
  AuditEntry expected;
  expected.at_ms = kBase;
  expected.kind = AuditKind::KeyRotation;
  expected.actor = "cli";
  expected.outcome = AuditOutcome::Ok;
  EXPECT_EQ(minimal, expected);
  EXPECT_TRUE(validateAuditEntry(minimal));

  const auto e = decision(7);
  EXPECT_EQ(e.kind, AuditKind::Decision);
  EXPECT_EQ(e.outcome, AuditOutcome::Deny);
  EXPECT_EQ(e.patient_key, "pat-1");
  EXPECT_EQ(e.partner_id, "p1");
  EXPECT_EQ(e.purpose, "TREAT");
  EXPECT_EQ(e.resource_id, "res-7");
  EXPECT_EQ(e.classes, "sud");
  EXPECT_EQ(e.consent_version, 2);
  EXPECT_EQ(e.seq, 0);
  EXPECT_EQ(e.hash, "");
  auto both = AuditEntryBuilder(AuditKind::Cancel, AuditOutcome::Cancelled, "gateway", kBase)
                  .resource("CarePlan", "cp-1", privacy::ClassSet(privacy::DataClass::Mh).add(privacy::DataClass::Sud))
                  .build();
  EXPECT_EQ(both.classes, "sud,mh") << "classes in their canonical order";
}

// --- chaining --------------------------------------------------------------------------------

TEST(AuditChainTest, EntriesContinueTheTailAndEachHashesItsPredecessor) {
  std::vector<AuditEntry> entries = {decision(0), decision(1), decision(2)};
  auto tail = chainEntries(ChainTail{}, entries);
  ASSERT_TRUE(tail);
  EXPECT_EQ(entries[0].seq, 1);
  EXPECT_EQ(entries[0].prev_hash, kGenesisHash);
  EXPECT_EQ(entries[2].prev_hash, entries[1].hash);
  for (const auto& e : entries) EXPECT_EQ(e.hash, entryHash(e));
  EXPECT_EQ(tail.value().seq, 3);
  EXPECT_EQ(tail.value().hash, entries[2].hash);

  std::vector<AuditEntry> more = {decision(3)};
  ASSERT_TRUE(chainEntries(tail.value(), more));
  EXPECT_EQ(more[0].seq, 4);
  EXPECT_EQ(more[0].prev_hash, entries[2].hash);

  ChainVerifier verifier;
  for (const auto& e : entries) verifier.add(toAuditRow(e));
  verifier.add(toAuditRow(more[0]));
  EXPECT_EQ(verifier.lastSeq(), 4);
  const auto report = verifier.finish();
  EXPECT_TRUE(report.ok);
  EXPECT_EQ(report.head_hash, more[0].hash);
}

TEST(AuditChainTest, ABadEntryChangesNoEntry) {
  std::vector<AuditEntry> entries = {decision(0), decision(1)};
  entries[1].actor.clear();
  const auto before = entries;
  auto tail = chainEntries(ChainTail{}, entries);
  ASSERT_FALSE(tail);
  EXPECT_EQ(tail.error().where, "audit_log.actor");
  EXPECT_NE(tail.error().message.find("entry 1"), std::string::npos);
  EXPECT_EQ(entries, before);
}

}  // namespace
}  // namespace gw::store

// The decision log's entries without a database: the canonical bytes, the vocabulary, the
// builder, the chaining rule (v1, keyed v2, and v3 with the instance id), the verifier's rules and the published anchor
// line. Appending, verifying and querying through a store is the store contract
// (store_contract_audit_test.cpp).
#include "store/audit_log.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "common/ids.hpp"
#include "store/audit_anchor.hpp"
#include "store/sample_audit_entries.hpp"

namespace gw::store {
namespace {

constexpr std::int64_t kBase = 1'800'000'000'000;

AuditEntry decision(int i) { return test::sampleDecision(i); }

crypto::SecretKey key(char fill) { return crypto::SecretKey::fromBytes(std::string(32, fill)).value(); }

// What an old build wrote: plain SHA-256 (v1), chained from `tail`.
std::vector<AuditEntry> v1Chain(ChainTail tail, std::vector<AuditEntry> entries) {
  for (auto& e : entries) {
    e.seq = tail.seq + 1;
    e.prev_hash = tail.hash;
    e.hash = entryHash(e);
    tail = {e.seq, e.hash};
  }
  return entries;
}

VerifyReport verifyRows(const std::vector<AuditEntry>& rows, ChainKeying keying,
                        std::optional<ChainAnchor> anchor = std::nullopt) {
  ChainVerifier verifier(std::move(keying), std::move(anchor));
  for (const auto& e : rows) verifier.add(toAuditRow(e));
  return verifier.finish();
}

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
  const std::vector<std::string_view> kinds = {"decision",     "cancel",       "disclosure",  "consent",  "audit-read",
                                               "audit-verify", "key-rotation", "record-read", "operation"};
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

TEST(AuditHashTest, KeyedHashIsAnHmacOfTheV2BytesUnderTheChainKey) {
  AuditEntry e = decision(0);
  e.seq = 1;
  e.prev_hash = std::string(kGenesisHash);
  const std::string v2 = canonicalAuditBytes(e, ChainVersion::V2);
  EXPECT_EQ(v2.rfind("gw-audit-v2\nseq:1:1\n", 0), 0u);
  EXPECT_EQ(v2.substr(12), canonicalAuditBytes(e).substr(12)) << "the same fields after the version line";
  const std::string h = keyedEntryHash(key('k'), e, ChainVersion::V2);
  EXPECT_EQ(h, "v2:" + crypto::hmacSha256Hex(key('k'), v2));
  EXPECT_NE(h, keyedEntryHash(key('j'), e, ChainVersion::V2)) << "another key, another hash";
  EXPECT_EQ(chainVersionOf(h), ChainVersion::V2);
  EXPECT_EQ(chainVersionOf(entryHash(e)), ChainVersion::V1);
  for (std::string bad : {std::string(), std::string(63, 'a'), std::string(64, 'A'), "v2:" + std::string(63, 'a'),
                          "v4:" + std::string(64, 'a'), "v2:" + std::string(64, 'g'), "v3:" + std::string(64, 'G')}) {
    EXPECT_FALSE(chainVersionOf(bad)) << bad;
  }
}

// Schema 9: the row format that covers the instance that wrote the row.
TEST(AuditHashTest, V3BytesAddTheInstanceIdAfterPrevHashAndNewRowsAreV3) {
  AuditEntry e = decision(0);
  e.seq = 1;
  e.prev_hash = std::string(kGenesisHash);
  e.instance_id = "gw-east-1";
  const std::string v3 = canonicalAuditBytes(e, ChainVersion::V3);
  const std::string v2 = canonicalAuditBytes(e, ChainVersion::V2);
  EXPECT_EQ(v3.rfind("gw-audit-v3\nseq:1:1\n", 0), 0u);
  EXPECT_EQ(v3.substr(12), v2.substr(12) + "instance_id:9:gw-east-1\n") << "v2's fields, then the instance";
  EXPECT_EQ(v2.find("gw-east-1"), std::string::npos) << "v1 and v2 bytes never held it";
  const std::string h = keyedEntryHash(key('k'), e);
  EXPECT_EQ(h, "v3:" + crypto::hmacSha256Hex(key('k'), v3)) << "the default: what new rows carry";
  EXPECT_EQ(chainVersionOf(h), ChainVersion::V3);
  AuditEntry other = e;
  other.instance_id = "gw-east-2";
  EXPECT_NE(keyedEntryHash(key('k'), other), h) << "the instance is covered";

  std::vector<AuditEntry> entries = {e};
  ASSERT_TRUE(chainEntries(key('k'), ChainTail{}, entries));
  EXPECT_EQ(chainVersionOf(entries[0].hash), ChainVersion::V3);
  EXPECT_EQ(entries[0].instance_id, "gw-east-1");
}

TEST(AuditChainTest, V2RowsStillVerifyAndAnInstanceIdPutOnThemLaterIsAnAlteration) {
  const auto k = key('k');
  // Rows a schema 8 build wrote (v2, no instance), then rows of this build (v3).
  std::vector<AuditEntry> rows = {decision(0), decision(1)};
  ChainTail tail;
  for (auto& e : rows) {
    e.seq = tail.seq + 1;
    e.prev_hash = tail.hash;
    e.hash = keyedEntryHash(k, e, ChainVersion::V2);
    tail = {e.seq, e.hash};
  }
  std::vector<AuditEntry> newer = {decision(2), decision(3)};
  for (auto& e : newer) e.instance_id = "gw-1";
  ASSERT_TRUE(chainEntries(k, tail, newer));
  rows.insert(rows.end(), newer.begin(), newer.end());
  const auto intact = verifyRows(rows, {&k, chainStartMarker(k, 0)});
  EXPECT_TRUE(intact.ok) << (intact.breaks.empty() ? "" : intact.breaks[0].message);

  auto claimed = rows;
  claimed[1].instance_id = "gw-2";  // the new column, filled in on an old row
  const auto r = verifyRows(claimed, {&k, chainStartMarker(k, 0)});
  ASSERT_EQ(r.break_count, 1);
  EXPECT_EQ(r.breaks[0].seq, 2);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::HashMismatch);

  auto moved = rows;
  moved[3].instance_id = "gw-2";  // a v3 row credited to another instance
  const auto m = verifyRows(moved, {&k, chainStartMarker(k, 0)});
  ASSERT_EQ(m.break_count, 1);
  EXPECT_EQ(m.breaks[0].seq, 4);
}

// --- chaining --------------------------------------------------------------------------------

TEST(AuditChainTest, EntriesContinueTheTailAndEachIsKeyedAndHashesItsPredecessor) {
  const auto k = key('k');
  std::vector<AuditEntry> entries = {decision(0), decision(1), decision(2)};
  auto tail = chainEntries(k, ChainTail{}, entries);
  ASSERT_TRUE(tail);
  EXPECT_EQ(entries[0].seq, 1);
  EXPECT_EQ(entries[0].prev_hash, kGenesisHash);
  EXPECT_EQ(entries[2].prev_hash, entries[1].hash);
  for (const auto& e : entries) EXPECT_EQ(e.hash, keyedEntryHash(k, e));
  EXPECT_EQ(tail.value().seq, 3);
  EXPECT_EQ(tail.value().hash, entries[2].hash);

  std::vector<AuditEntry> more = {decision(3)};
  ASSERT_TRUE(chainEntries(k, tail.value(), more));
  EXPECT_EQ(more[0].seq, 4);
  EXPECT_EQ(more[0].prev_hash, entries[2].hash);

  entries.push_back(more[0]);
  const auto report = verifyRows(entries, {&k, chainStartMarker(k, 0)});
  EXPECT_TRUE(report.ok) << (report.breaks.empty() ? "" : report.breaks[0].message);
  EXPECT_EQ(report.last_seq, 4);
  EXPECT_EQ(report.head_hash, more[0].hash);
  EXPECT_EQ(report.keyed_from_seq, 1);
  EXPECT_EQ(report.unkeyed_rows, 0);
  EXPECT_EQ(report.anchor.status, AnchorStatus::None);

  const auto other = key('o');
  const auto forged = verifyRows(entries, {&other, chainStartMarker(other, 0)});
  EXPECT_EQ(forged.break_count, 4) << "rows sealed with another key do not check";
}

TEST(AuditChainTest, ABadEntryChangesNoEntry) {
  std::vector<AuditEntry> entries = {decision(0), decision(1)};
  entries[1].actor.clear();
  const auto before = entries;
  auto tail = chainEntries(key('k'), ChainTail{}, entries);
  ASSERT_FALSE(tail);
  EXPECT_EQ(tail.error().where, "audit_log.actor");
  EXPECT_NE(tail.error().message.find("entry 1"), std::string::npos);
  EXPECT_EQ(entries, before);
  EXPECT_FALSE(chainEntries(crypto::SecretKey(), ChainTail{}, entries)) << "never unkeyed";
}

TEST(AuditChainTest, V1RowsBeforeTheStartMarkerVerifyAndTheKeyedChainLinksToThem) {
  const auto k = key('k');
  auto rows = v1Chain(ChainTail{}, {decision(0), decision(1), decision(2)});
  std::vector<AuditEntry> keyed = {decision(3), decision(4)};
  ASSERT_TRUE(chainEntries(k, ChainTail{3, rows.back().hash}, keyed));
  EXPECT_EQ(keyed[0].prev_hash, rows.back().hash) << "the first v2 row links to the last v1 row";
  rows.insert(rows.end(), keyed.begin(), keyed.end());
  const auto r = verifyRows(rows, {&k, chainStartMarker(k, 3)});
  EXPECT_TRUE(r.ok) << (r.breaks.empty() ? "" : r.breaks[0].message);
  EXPECT_EQ(r.unkeyed_rows, 3);
  EXPECT_EQ(r.keyed_from_seq, 4);
  // A database never opened by a keyed build, verified read-only: no key, v1 only.
  const auto old = verifyRows(std::vector<AuditEntry>(rows.begin(), rows.begin() + 3), {});
  EXPECT_TRUE(old.ok);
  EXPECT_EQ(old.keyed_from_seq, 0);
}

TEST(AuditChainTest, UnkeyedRowsAfterTheStartAreRewrittenRows) {
  const auto k = key('k');
  std::vector<AuditEntry> rows = {decision(0), decision(1), decision(2), decision(3), decision(4)};
  ASSERT_TRUE(chainEntries(k, ChainTail{}, rows));
  // From seq 3 on, altered and re-chained with plain SHA-256: all anyone without the key can do.
  rows[2].reason = "forged";
  auto forged = v1Chain(ChainTail{2, rows[1].hash}, {rows[2], rows[3], rows[4]});
  std::copy(forged.begin(), forged.end(), rows.begin() + 2);
  auto r = verifyRows(rows, {&k, chainStartMarker(k, 0)});
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.break_count, 3);
  EXPECT_EQ(r.breaks[0].seq, 3);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::UnkeyedRow);

  // The whole log rewritten as v1 from seq 1: the marker says the keyed chain began at 1.
  const auto all_v1 = v1Chain(ChainTail{}, {decision(0), decision(1)});
  r = verifyRows(all_v1, {&k, chainStartMarker(k, 0)});
  ASSERT_EQ(r.break_count, 2);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::UnkeyedRow);
  // ... and with the marker deleted or moved, the marker itself is the break.
  r = verifyRows(all_v1, {&k, std::nullopt});
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::StartMarker);
  EXPECT_EQ(r.breaks[0].seq, 0);
  const std::string moved = "2:" + chainStartMarker(k, 0).substr(2);
  r = verifyRows(all_v1, {&k, moved});
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::StartMarker);
  // A keyed row in a database whose chain key is gone.
  r = verifyRows(std::vector<AuditEntry>(rows.begin(), rows.begin() + 2), {});
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::StartMarker);
  EXPECT_EQ(r.breaks[0].seq, 1);
}

TEST(AuditChainTest, StartMarkerIsKeyed) {
  const auto k = key('k');
  const auto marker = chainStartMarker(k, 42);
  EXPECT_EQ(marker.rfind("42:", 0), 0u);
  EXPECT_EQ(readChainStartMarker(k, marker), 42);
  EXPECT_FALSE(readChainStartMarker(key('o'), marker));
  for (std::string bad : {std::string(), std::string("42"), "43" + marker.substr(2), marker + "0", ":" + marker.substr(3),
                          "-1" + marker.substr(2)}) {
    EXPECT_FALSE(readChainStartMarker(k, bad)) << bad;
  }
}

TEST(AuditChainTest, AnchorStatusSaysOkTruncatedOrRewritten) {
  const auto k = key('k');
  std::vector<AuditEntry> rows = {decision(0), decision(1), decision(2), decision(3)};
  ASSERT_TRUE(chainEntries(k, ChainTail{}, rows));
  const ChainKeying keying{&k, chainStartMarker(k, 0)};
  auto r = verifyRows(rows, keying, ChainAnchor{3, rows[2].hash});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.anchor.status, AnchorStatus::Ok);
  ASSERT_TRUE(r.anchor.anchor);
  EXPECT_EQ(r.anchor.anchor->seq, 3);
  r = verifyRows(rows, keying, ChainAnchor{6, rows[2].hash});
  EXPECT_EQ(r.anchor.status, AnchorStatus::Truncated);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::Truncated);
  r = verifyRows(rows, keying, ChainAnchor{2, rows[2].hash});
  EXPECT_EQ(r.anchor.status, AnchorStatus::Rewritten);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::AnchorMismatch);
  EXPECT_EQ(anchorStatusName(AnchorStatus::Truncated), "truncated");

  addReportBreak(r, {0, ChainProblem::AnchorForged, "line 2"});
  EXPECT_EQ(r.breaks.front().problem, ChainProblem::AnchorForged) << "kept in seq order";
  EXPECT_EQ(r.break_count, 2);
}

// --- published anchors -----------------------------------------------------------------------

TEST(AnchorSealerTest, ALineReadsBackAndAnyAlterationOrAnotherKeyFails) {
  const AnchorSealer sealer(key('k'));
  const PublishedAnchor a{1042, "v2:" + std::string(64, 'e'), kBase + 125};
  const std::string line = sealer.line(a);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.rfind(R"({"anchor":"gw-audit-anchor-v1","seq":1042,"hash":"v2:eee)", 0), 0u) << line;
  EXPECT_NE(line.find(R"("at":"2027-01-15T08:00:00.125Z")"), std::string::npos) << line;
  auto back = sealer.read(line + "\n");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->seq, 1042);
  EXPECT_EQ(back->hash, a.hash);
  EXPECT_EQ(back->at_ms, a.at_ms);

  // Every single-byte change is caught: the seq, the hash, the time, the MAC, the framing.
  for (std::size_t i = 0; i < line.size(); ++i) {
    std::string altered = line;
    altered[i] = altered[i] == '1' ? '2' : '1';
    EXPECT_FALSE(sealer.read(altered)) << "byte " << i << ": " << altered;
  }
  EXPECT_FALSE(AnchorSealer(key('o')).read(line)) << "written under another database's key";
  EXPECT_FALSE(AnchorSealer(crypto::SecretKey()).read(line));
  EXPECT_FALSE(sealer.read(""));
  EXPECT_FALSE(sealer.read("garbage"));
}

}  // namespace
}  // namespace gw::store

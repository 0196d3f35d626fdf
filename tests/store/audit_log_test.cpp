#include "store/audit_log.hpp"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>

#include "common/ids.hpp"
#include "store/migrations.hpp"

namespace gw::store {
namespace {

namespace fs = std::filesystem;
using namespace Poco::Data::Keywords;
using Poco::Data::Session;

constexpr std::int64_t kBase = 1'800'000'000'000;

AuditEntry decision(int i, std::string outcome = "deny") {
  AuditEntry e;
  e.at_ms = kBase + i * 1000LL;
  e.kind = "decision";
  e.actor = "gateway";
  e.clinic = "c1";
  e.patient_key = "pat-" + std::to_string(i % 3);
  e.partner_id = "p1";
  e.purpose = "TREAT";
  e.resource_type = "MedicationRequest";
  e.resource_id = "res-" + std::to_string(i);
  e.classes = "sud";
  e.labels = "R,SUD,42CFRPart2";
  e.consent_id = "consent-1";
  e.consent_version = 2;
  e.outcome = std::move(outcome);
  e.reason = "class-not-covered:sud";
  e.policy_version = "2026.1";
  e.detail = R"({"outbox_id":12})";
  return e;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Poco::Data::SQLite::Connector::registerConnector();
    dir_ = fs::temp_directory_path() / ("gw-audit-" + ids::randomHex(6));
    fs::create_directories(dir_);
    session_ = openSession();
    auto st = applyMigrations(*session_);
    ASSERT_TRUE(st) << st.error().describe();
  }
  void TearDown() override {
    session_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<Session> openSession() {
    auto s = std::make_unique<Session>("SQLite", (dir_ / "gw.db").string());
    *s << "PRAGMA busy_timeout=10000", now;
    std::string mode;
    *s << "PRAGMA journal_mode=WAL", into(mode), now;
    return s;
  }

  // Appends in one committed transaction and returns the entries as filled in.
  std::vector<AuditEntry> commit(std::vector<AuditEntry> entries, AuditAppender& appender, Session& s) {
    s.begin();
    auto st = appender.append(s, entries);
    EXPECT_TRUE(st) << (st ? "" : st.error().describe());
    s.commit();
    appender.committed();
    return entries;
  }
  std::vector<AuditEntry> commit(std::vector<AuditEntry> entries) {
    return commit(std::move(entries), appender_, *session_);
  }

  std::vector<AuditEntry> decisions(int from, int count) {
    std::vector<AuditEntry> out;
    for (int i = from; i < from + count; ++i) out.push_back(decision(i));
    return out;
  }

  std::int64_t rowCount() {
    Poco::Int64 n = 0;
    *session_ << "SELECT COUNT(*) FROM audit_log", into(n), now;
    return n;
  }

  VerifyReport verify(const std::optional<ChainAnchor>& anchor = std::nullopt) {
    auto r = verifyChain(*session_, anchor);
    EXPECT_TRUE(r) << (r ? "" : r.error().describe());
    return r ? r.value() : VerifyReport{};
  }

  fs::path dir_;
  std::unique_ptr<Session> session_;
  AuditAppender appender_;
};

// --- serialization ---------------------------------------------------------------------------

TEST(AuditHashTest, CanonicalBytesAreLengthPrefixedInColumnOrder) {
  AuditEntry e = decision(0);
  e.seq = 7;
  e.prev_hash = std::string(kGenesisHash);
  const std::string bytes = canonicalAuditBytes(e);
  EXPECT_EQ(bytes.rfind("gw-audit-v1\nseq:1:7\nat_ms:13:1800000000000\nkind:8:decision\nactor:7:gateway\n", 0), 0u)
      << bytes;
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
      [](AuditEntry& e) { e.seq += 1; },           [](AuditEntry& e) { e.at_ms += 1; },
      [](AuditEntry& e) { e.kind = "cancel"; },    [](AuditEntry& e) { e.actor = "tok-1"; },
      [](AuditEntry& e) { e.clinic = "c2"; },      [](AuditEntry& e) { e.patient_key = "p"; },
      [](AuditEntry& e) { e.partner_id = "p2"; },  [](AuditEntry& e) { e.purpose = "ETREAT"; },
      [](AuditEntry& e) { e.resource_type = "Patient"; }, [](AuditEntry& e) { e.resource_id = "r"; },
      [](AuditEntry& e) { e.classes = "mh"; },     [](AuditEntry& e) { e.labels = "R"; },
      [](AuditEntry& e) { e.consent_id = "c"; },   [](AuditEntry& e) { e.consent_version = 3; },
      [](AuditEntry& e) { e.outcome = "permit"; }, [](AuditEntry& e) { e.reason = ""; },
      [](AuditEntry& e) { e.policy_version = "2"; }, [](AuditEntry& e) { e.detail = "{}"; },
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

// --- appending -------------------------------------------------------------------------------

TEST_F(AuditLogTest, AppendsAcrossTransactionsFormOneChain) {
  std::vector<AuditEntry> all;
  for (int t = 0; t < 3; ++t) {
    auto part = commit(decisions(t * 4, 4));
    all.insert(all.end(), part.begin(), part.end());
  }
  ASSERT_EQ(all.size(), 12u);
  EXPECT_EQ(all[0].prev_hash, kGenesisHash);
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(all[i].hash, entryHash(all[i]));
    if (i > 0) {
      EXPECT_EQ(all[i].prev_hash, all[i - 1].hash);
    }
  }
  // What was stored is what append returned.
  auto page = queryAudit(*session_, AuditQuery{});
  ASSERT_TRUE(page);
  EXPECT_EQ(page.value().entries, all);

  const auto report = verify();
  EXPECT_TRUE(report.ok);
  EXPECT_EQ(report.rows, 12);
  EXPECT_EQ(report.last_seq, 12);
  EXPECT_EQ(report.head_hash, all.back().hash);
  EXPECT_EQ(report.break_count, 0);
}

TEST_F(AuditLogTest, ARolledBackAppendLeavesNoTraceWhetherOrNotTheAppenderIsTold) {
  const auto first = commit(decisions(0, 3));

  session_->begin();
  auto doomed = decisions(3, 2);
  ASSERT_TRUE(appender_.append(*session_, doomed));
  EXPECT_EQ(doomed.front().seq, 4);
  session_->rollback();
  appender_.rolledBack();

  const auto second = commit(decisions(5, 2));
  EXPECT_EQ(second.front().seq, 4);
  EXPECT_EQ(second.front().prev_hash, first.back().hash);

  // Not told this time: the tail is re-read because committed() was not called.
  session_->begin();
  auto doomed2 = decisions(7, 3);
  ASSERT_TRUE(appender_.append(*session_, doomed2));
  session_->rollback();

  const auto third = commit(decisions(10, 1));
  EXPECT_EQ(third.front().seq, 6);
  EXPECT_EQ(third.front().prev_hash, second.back().hash);

  EXPECT_EQ(rowCount(), 6);
  const auto report = verify();
  EXPECT_TRUE(report.ok) << (report.breaks.empty() ? "" : report.breaks[0].message);
  EXPECT_EQ(report.last_seq, 6);
}

TEST_F(AuditLogTest, TwoAppendsInOneTransactionContinueEachOther) {
  commit(decisions(0, 2));
  session_->begin();
  auto a = decisions(2, 2), b = decisions(4, 2);
  ASSERT_TRUE(appender_.append(*session_, a));
  ASSERT_TRUE(appender_.append(*session_, b));
  session_->commit();
  appender_.committed();
  EXPECT_EQ(b.front().seq, 5);
  EXPECT_EQ(b.front().prev_hash, a.back().hash);
  commit(decisions(6, 1));
  EXPECT_TRUE(verify().ok);
  EXPECT_EQ(rowCount(), 7);
}

TEST_F(AuditLogTest, AStaleCacheAfterAnotherConnectionAppendedIsRecovered) {
  commit(decisions(0, 2));  // appender_ now trusts its cached tail (seq 2)
  auto other_session = openSession();
  AuditAppender other;
  const auto theirs = commit(decisions(2, 3), other, *other_session);
  EXPECT_EQ(theirs.back().seq, 5);

  const auto mine = commit(decisions(5, 2));
  EXPECT_EQ(mine.front().seq, 6);
  EXPECT_EQ(mine.front().prev_hash, theirs.back().hash);
  EXPECT_TRUE(verify().ok);
  EXPECT_EQ(rowCount(), 7);
}

TEST_F(AuditLogTest, AFailureInsideABatchIsReportedNotRetriedAndTheNextAppendRecovers) {
  // A trigger stands in for a database failure on one particular row.
  *session_ << "CREATE TRIGGER fail_boom BEFORE INSERT ON audit_log WHEN NEW.reason = 'boom' "
               "BEGIN SELECT RAISE(ABORT, 'boom'); END",
      now;
  commit(decisions(0, 2));  // cached tail: seq 2
  for (std::size_t bad_index : {std::size_t{0}, std::size_t{2}}) {
    auto batch = decisions(2, 3);
    batch[bad_index].reason = "boom";
    session_->begin();
    auto st = appender_.append(*session_, batch);
    session_->rollback();
    ASSERT_FALSE(st) << bad_index;
    EXPECT_EQ(st.error().code, ErrorCode::Storage);
    EXPECT_NE(st.error().message.find("boom"), std::string::npos) << st.error().message;
  }
  const auto next = commit(decisions(5, 2));
  EXPECT_EQ(next.front().seq, 3);
  EXPECT_EQ(rowCount(), 4);
  EXPECT_TRUE(verify().ok);
}

TEST_F(AuditLogTest, AppendOutsideATransactionIsRefused) {
  auto entries = decisions(0, 1);
  auto st = appender_.append(*session_, entries);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::Internal);
  EXPECT_NE(st.error().message.find("transaction"), std::string::npos);
  EXPECT_EQ(rowCount(), 0);
}

TEST_F(AuditLogTest, InvalidEntriesAreRefusedAndNothingIsWritten) {
  struct Case {
    std::string field;
    std::function<void(AuditEntry&)> edit;
  };
  const std::vector<Case> cases = {
      {"at_ms", [](AuditEntry& e) { e.at_ms = 0; }},
      {"kind", [](AuditEntry& e) { e.kind = "decided"; }},
      {"outcome", [](AuditEntry& e) { e.outcome = "maybe"; }},
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
    session_->begin();
    auto st = appender_.append(*session_, entries);
    session_->rollback();
    ASSERT_FALSE(st) << c.field;
    EXPECT_EQ(st.error().code, ErrorCode::Internal);
    EXPECT_EQ(st.error().where, "audit_log." + c.field);
    EXPECT_NE(st.error().message.find("entry 1"), std::string::npos) << st.error().message;
  }
  EXPECT_EQ(rowCount(), 0);
  // Empty optional fields are fine.
  AuditEntry minimal;
  minimal.at_ms = kBase;
  minimal.kind = "key-rotation";
  minimal.actor = "gateway";
  minimal.outcome = "ok";
  commit({minimal});
  EXPECT_EQ(rowCount(), 1);
}

// --- verification ----------------------------------------------------------------------------

TEST_F(AuditLogTest, EmptyLogVerifies) {
  const auto r = verify();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.rows, 0);
  EXPECT_EQ(r.last_seq, 0);
  EXPECT_EQ(r.head_hash, kGenesisHash);
}

TEST_F(AuditLogTest, AnAlteredRowIsReportedAtItsSeq) {
  commit(decisions(0, 5));
  commit(decisions(5, 5));
  *session_ << "UPDATE audit_log SET outcome='permit' WHERE seq=5", now;
  const auto r = verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.rows, 10);
  ASSERT_EQ(r.break_count, 1);
  EXPECT_EQ(r.breaks[0].seq, 5);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::HashMismatch);
  EXPECT_NE(r.breaks[0].message.find("altered"), std::string::npos);
}

TEST_F(AuditLogTest, ADeletedRowIsReportedAsAGap) {
  commit(decisions(0, 10));
  *session_ << "DELETE FROM audit_log WHERE seq=5", now;
  auto r = verify();
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.break_count, 1);
  EXPECT_EQ(r.breaks[0].seq, 5);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::SeqGap);

  *session_ << "DELETE FROM audit_log WHERE seq IN (1, 7, 8)", now;
  r = verify();
  ASSERT_EQ(r.break_count, 3);
  EXPECT_EQ(r.breaks[0].seq, 1);
  EXPECT_EQ(r.breaks[1].seq, 5);
  EXPECT_EQ(r.breaks[2].seq, 7);
  EXPECT_NE(r.breaks[2].message.find("7 to 8"), std::string::npos) << r.breaks[2].message;
}

TEST_F(AuditLogTest, DeletingAndRenumberingOrRehashingBreaksTheLink) {
  auto rows = commit(decisions(0, 10));
  // Row 5 altered and its hash recomputed: row 5 checks out, the link from row 6 does not.
  AuditEntry forged = rows[4];
  forged.outcome = "permit";
  std::string forged_hash = entryHash(forged);
  *session_ << "UPDATE audit_log SET outcome='permit', hash=? WHERE seq=5", use(forged_hash), now;
  auto r = verify();
  ASSERT_EQ(r.break_count, 1);
  EXPECT_EQ(r.breaks[0].seq, 6);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::PrevHashMismatch);
}

TEST_F(AuditLogTest, AnchorsDetectRewritesAndTruncation) {
  commit(decisions(0, 10));
  auto good = verify();
  ASSERT_TRUE(good.ok);
  const ChainAnchor anchor{good.last_seq, good.head_hash};
  EXPECT_TRUE(verify(anchor).ok);

  // Cut the tail: the chain alone still checks out, the anchor does not.
  *session_ << "DELETE FROM audit_log WHERE seq >= 9", now;
  EXPECT_TRUE(verify().ok);
  auto r = verify(anchor);
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::Truncated);
  EXPECT_EQ(r.breaks[0].seq, 9);

  // Rewrite the whole chain consistently from seq 3 on: only an anchor at or after 3 tells.
  auto page = queryAudit(*session_, AuditQuery{});
  ASSERT_TRUE(page);
  auto rows = page.value().entries;
  const ChainAnchor mid{6, rows[5].hash};
  for (std::size_t i = 2; i < rows.size(); ++i) {
    rows[i].prev_hash = rows[i - 1].hash;
    if (i == 2) rows[i].reason = "forged";
    rows[i].hash = entryHash(rows[i]);
    *session_ << "UPDATE audit_log SET reason=?, prev_hash=?, hash=? WHERE seq=?", use(rows[i].reason),
        use(rows[i].prev_hash), use(rows[i].hash), use(rows[i].seq), now;
  }
  EXPECT_TRUE(verify().ok);
  r = verify(mid);
  ASSERT_EQ(r.break_count, 1);
  EXPECT_EQ(r.breaks[0].seq, 6);
  EXPECT_EQ(r.breaks[0].problem, ChainProblem::AnchorMismatch);
}

TEST_F(AuditLogTest, VerifyReadsAcrossChunkBoundaries) {
  // 5000 rows: more than two verify chunks of 2048.
  for (int t = 0; t < 5; ++t) commit(decisions(t * 1000, 1000));
  auto r = verify();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.rows, 5000);
  *session_ << "UPDATE audit_log SET reason='x' WHERE seq IN (2048, 2049, 4097)", now;
  r = verify();
  ASSERT_EQ(r.break_count, 3);
  EXPECT_EQ(r.breaks[0].seq, 2048);
  EXPECT_EQ(r.breaks[1].seq, 2049);
  EXPECT_EQ(r.breaks[2].seq, 4097);
  EXPECT_EQ(r.rows, 5000);
}

TEST_F(AuditLogTest, BreakListIsCappedButCounted) {
  commit(decisions(0, 40));
  *session_ << "UPDATE audit_log SET reason='x'", now;
  const auto r = verify();
  EXPECT_EQ(r.break_count, 40);
  EXPECT_EQ(r.breaks.size(), kMaxReportedBreaks);
  EXPECT_EQ(r.breaks.front().seq, 1);
}

// --- queries ---------------------------------------------------------------------------------

// A varied data set: every filter value occurs with and without every other one, and at_ms is
// not in seq order, so the time filter is not secretly a seq range.
std::vector<AuditEntry> varied(int n) {
  const char* outcomes[] = {"permit", "deny", "redact", "delivered", "cancelled"};
  // kind varies independently of outcome here: the store filters, it does not check pairings.
  const char* kinds[] = {"decision", "decision", "disclosure", "cancel"};
  const char* classes[] = {"general", "sud", "mh", "sud,mh", "", "general,mh"};
  std::vector<AuditEntry> out;
  for (int i = 0; i < n; ++i) {
    AuditEntry e = decision(i);
    e.clinic = i % 2 ? "c1" : "c2";
    e.patient_key = "pat-" + std::to_string(i % 3);
    e.partner_id = i % 4 < 2 ? "p1" : "p2";
    e.outcome = outcomes[i % 5];
    e.kind = kinds[(i / 3) % 4];
    e.classes = classes[(i * 5) % 6];
    e.at_ms = kBase + ((i * 7) % n) * 1000LL;
    out.push_back(e);
  }
  return out;
}

bool matches(const AuditEntry& e, const AuditQuery& q) {
  if (!q.clinic.empty() && e.clinic != q.clinic) return false;
  if (!q.patient_key.empty() && e.patient_key != q.patient_key) return false;
  if (!q.partner_id.empty() && e.partner_id != q.partner_id) return false;
  if (!q.outcome.empty() && e.outcome != q.outcome) return false;
  if (!q.kind.empty() && e.kind != q.kind) return false;
  if (q.data_class) {
    auto set = privacy::parseClassSet(e.classes);
    if (!set || !set->has(*q.data_class)) return false;
  }
  if (q.from_ms && e.at_ms < *q.from_ms) return false;
  if (q.to_ms && e.at_ms >= *q.to_ms) return false;
  return true;
}

std::vector<std::int64_t> pageAll(Session& s, AuditQuery q, int* pages = nullptr) {
  std::vector<std::int64_t> seqs;
  q.after_seq = 0;
  for (int guard = 0; guard < 1000; ++guard) {
    auto page = queryAudit(s, q);
    EXPECT_TRUE(page);
    if (!page) break;
    if (pages) ++*pages;
    EXPECT_LE(page.value().entries.size(), static_cast<std::size_t>(q.limit));
    for (const auto& e : page.value().entries) seqs.push_back(e.seq);
    if (!page.value().next_after_seq) break;
    EXPECT_EQ(page.value().entries.size(), static_cast<std::size_t>(q.limit));  // only full pages have a next
    EXPECT_EQ(*page.value().next_after_seq, page.value().entries.back().seq);
    q.after_seq = *page.value().next_after_seq;
  }
  return seqs;
}

TEST_F(AuditLogTest, EveryFilterCombinationMatchesABruteForceFilterAcrossPages) {
  const auto rows = commit(varied(90));
  for (unsigned mask = 0; mask < (1u << 8); ++mask) {
    AuditQuery q;
    if (mask & 1) q.clinic = "c1";
    if (mask & 2) q.patient_key = "pat-1";
    if (mask & 4) q.partner_id = "p2";
    if (mask & 8) q.outcome = "deny";
    if (mask & 16) q.kind = "decision";
    if (mask & 32) q.data_class = privacy::DataClass::Mh;
    if (mask & 64) q.from_ms = kBase + 20'000;
    if (mask & 128) q.to_ms = kBase + 70'000;
    q.limit = 4;
    std::vector<std::int64_t> expected;
    for (const auto& e : rows) {
      if (matches(e, q)) expected.push_back(e.seq);
    }
    EXPECT_EQ(pageAll(*session_, q), expected) << "filter mask " << mask;
    if (mask == 0) {
      EXPECT_EQ(expected.size(), 90u);
    }
  }
}

TEST_F(AuditLogTest, EachFilterAloneSelectsSomethingAndNotEverything) {
  const auto rows = commit(varied(90));
  std::vector<AuditQuery> singles(8);
  singles[0].clinic = "c1";
  singles[1].patient_key = "pat-1";
  singles[2].partner_id = "p2";
  singles[3].outcome = "deny";
  singles[4].kind = "decision";
  singles[5].data_class = privacy::DataClass::Mh;
  singles[6].from_ms = kBase + 20'000;
  singles[7].to_ms = kBase + 70'000;
  for (std::size_t i = 0; i < singles.size(); ++i) {
    singles[i].limit = 1000;
    const auto got = pageAll(*session_, singles[i]);
    EXPECT_GT(got.size(), 0u) << i;
    EXPECT_LT(got.size(), rows.size()) << i;
  }
}

TEST_F(AuditLogTest, ClassFilterMatchesWholeClassNames) {
  std::vector<AuditEntry> rows;
  for (const char* c : {"general", "sud", "mh", "sud,mh", "general,sud", ""}) {
    rows.push_back(decision(static_cast<int>(rows.size())));
    rows.back().classes = c;
  }
  commit(rows);
  auto seqsFor = [&](privacy::DataClass c) {
    AuditQuery q;
    q.data_class = c;
    return pageAll(*session_, q);
  };
  EXPECT_EQ(seqsFor(privacy::DataClass::Sud), (std::vector<std::int64_t>{2, 4, 5}));
  EXPECT_EQ(seqsFor(privacy::DataClass::Mh), (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(seqsFor(privacy::DataClass::General), (std::vector<std::int64_t>{1, 5}));
}

TEST_F(AuditLogTest, KeysetPagingIsStableWhileRowsAreAppended) {
  commit(decisions(0, 12));
  AuditQuery q;
  q.patient_key = "pat-0";  // seq 1, 4, 7, 10, then the new rows
  q.limit = 2;
  auto first = queryAudit(*session_, q);
  ASSERT_TRUE(first && first.value().next_after_seq);
  EXPECT_EQ(first.value().entries[0].seq, 1);
  EXPECT_EQ(first.value().entries[1].seq, 4);

  commit(decisions(12, 6));  // 13..18; pat-0 at 13 and 16
  std::vector<std::int64_t> rest;
  q.after_seq = *first.value().next_after_seq;
  while (true) {
    auto page = queryAudit(*session_, q);
    ASSERT_TRUE(page);
    for (const auto& e : page.value().entries) rest.push_back(e.seq);
    if (!page.value().next_after_seq) break;
    q.after_seq = *page.value().next_after_seq;
  }
  EXPECT_EQ(rest, (std::vector<std::int64_t>{7, 10, 13, 16}));
}

TEST_F(AuditLogTest, PageSizeIsClampedAndAnExactFitHasNoNextPage) {
  commit(decisions(0, 1005));
  AuditQuery q;
  q.limit = 5000;
  auto page = queryAudit(*session_, q);
  ASSERT_TRUE(page);
  EXPECT_EQ(page.value().entries.size(), static_cast<std::size_t>(kMaxAuditPageSize));
  ASSERT_TRUE(page.value().next_after_seq);
  EXPECT_EQ(*page.value().next_after_seq, 1000);

  q.limit = 5;
  q.after_seq = 1000;
  page = queryAudit(*session_, q);
  ASSERT_TRUE(page);
  EXPECT_EQ(page.value().entries.size(), 5u);
  EXPECT_FALSE(page.value().next_after_seq);  // exactly the last 5 rows: no empty extra page

  q.limit = 0;
  q.after_seq = 0;
  page = queryAudit(*session_, q);
  ASSERT_TRUE(page);
  EXPECT_EQ(page.value().entries.size(), 1u);
}

}  // namespace
}  // namespace gw::store

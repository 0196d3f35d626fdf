// The store contract, part 5: operations (docs/operations.md). Listing the outbox by partner,
// state, clinic and age with paging; a dead item queued again; a partner paused (nothing due)
// across a reopen; records left invalid found by state; the readiness probe's write; the rows
// gateway instances keep about themselves.
#include <algorithm>

#include "store/store_contract.hpp"

namespace gw::store::test {
namespace {

class OperationsContract : public StoreContract {};

INSTANTIATE_TEST_SUITE_P(Backends, OperationsContract, ::testing::ValuesIn(storeBackends()), backendName);

IngestWrite clinicRecord(const std::string& clinic, const std::string& record_id, const std::string& patient) {
  auto w = StoreContract::write(record_id, "h-" + record_id, patient);
  w.clinic = clinic;
  w.payload = R"({"record_id":")" + record_id + R"(","clinic":")" + clinic + R"("})";
  return w;
}

TEST_P(OperationsContract, ListsItemsByPartnerStateClinicAndAgeWithPaging) {
  ASSERT_TRUE(store_->ingest({clinicRecord("c1", "r1", "pa"), clinicRecord("c2", "r2", "pb")}, t(0)));
  ASSERT_TRUE(store_->ingest({clinicRecord("c1", "r3", "pc")}, t(100)));
  auto due = store_->dueItems("p1", t(0), 10);
  ASSERT_TRUE(due && due.value().size() == 2);
  ASSERT_TRUE(store_->markDead(due.value()[0].id, 1, "HTTP 400 from partner", "{}", t(1)));

  OutboxQuery all;
  auto page = store_->listOutbox(all);
  ASSERT_TRUE(page) << page.error().describe();
  ASSERT_EQ(page.value().items.size(), 3u);
  const auto& first = page.value().items[0];
  EXPECT_EQ(first.record_id, "r1") << "the clinic's own id, read from the stored record";
  EXPECT_EQ(first.clinic, "c1");
  EXPECT_EQ(first.partner_id, "p1");
  EXPECT_EQ(first.record_type, "mat_prescription");
  EXPECT_EQ(first.state, OutboxState::Dead);
  EXPECT_EQ(first.attempts, 1);
  EXPECT_EQ(first.last_error, "HTTP 400 from partner");
  EXPECT_EQ(page.value().next_after_id, 0);

  OutboxQuery dead;
  dead.state = OutboxState::Dead;
  EXPECT_EQ(store_->listOutbox(dead).value().items.size(), 1u);
  OutboxQuery c2;
  c2.clinics = {"c2"};
  ASSERT_EQ(store_->listOutbox(c2).value().items.size(), 1u);
  EXPECT_EQ(store_->listOutbox(c2).value().items[0].record_id, "r2");
  OutboxQuery other_partner;
  other_partner.partner_id = "p2";
  EXPECT_TRUE(store_->listOutbox(other_partner).value().items.empty());
  OutboxQuery old;
  old.created_before_ms = toUnixMillis(t(50));
  EXPECT_EQ(store_->listOutbox(old).value().items.size(), 2u) << "r3 was queued at t(100)";

  OutboxQuery paged;
  paged.limit = 2;
  auto p1 = store_->listOutbox(paged).value();
  ASSERT_EQ(p1.items.size(), 2u);
  ASSERT_NE(p1.next_after_id, 0);
  paged.after_id = p1.next_after_id;
  auto p2 = store_->listOutbox(paged).value();
  ASSERT_EQ(p2.items.size(), 1u);
  EXPECT_EQ(p2.items[0].record_id, "r3");
  EXPECT_EQ(p2.next_after_id, 0);
}

TEST_P(OperationsContract, ADeadItemIsQueuedAgainOnceWithItsLogEntry) {
  ASSERT_TRUE(store_->ingest({clinicRecord("c1", "r1", "pa")}, t(0)));
  auto due = store_->dueItems("p1", t(0), 10).value();
  ASSERT_EQ(due.size(), 1u);
  const auto id = due[0].id;
  auto pending = store_->requeueDead(id, "replayed by op", t(1), {});
  ASSERT_TRUE(pending);
  EXPECT_FALSE(pending.value()) << "only a dead item is replayed";
  ASSERT_TRUE(store_->markDead(id, 3, "HTTP 400 from partner", R"({"resourceType":"OperationOutcome"})", t(1)));
  EXPECT_TRUE(store_->dueItems("p1", t(2), 10).value().empty());

  auto item = store_->outboxItem(id);
  ASSERT_TRUE(item && item.value());
  EXPECT_EQ(item.value()->state, OutboxState::Dead);
  EXPECT_EQ(item.value()->patient_key, "pa");

  auto entry = AuditEntryBuilder(AuditKind::Operation, AuditOutcome::Ok, "op-token", toUnixMillis(t(2)))
                   .partner("p1")
                   .reason("replay")
                   .build();
  auto replayed = store_->requeueDead(id, "replayed by op-token", t(2), {entry});
  ASSERT_TRUE(replayed && replayed.value());
  EXPECT_FALSE(store_->requeueDead(id, "again", t(2), {entry}).value()) << "a second replay changes nothing";
  due = store_->dueItems("p1", t(2), 10).value();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].id, id);
  EXPECT_EQ(due[0].attempts, 0);
  EXPECT_EQ(due[0].state, OutboxState::Queued);
  const auto log = auditLog();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.back().kind, AuditKind::Operation);
  EXPECT_EQ(log.back().actor, "op-token");
  EXPECT_EQ(std::count_if(log.begin(), log.end(), [](const auto& e) { return e.kind == AuditKind::Operation; }), 1);
}

TEST_P(OperationsContract, APausedPartnerHasNothingDueAcrossAReopen) {
  ASSERT_TRUE(store_->ingest({clinicRecord("c1", "r1", "pa")}, t(0)));
  ASSERT_TRUE(store_->setPartnerPaused({"p1", toUnixMillis(t(1)), "op-token", "hospital maintenance"}, true, {}));
  EXPECT_TRUE(store_->dueItems("p1", t(2), 10).value().empty());
  EXPECT_FALSE(store_->nextDueTime("p1").value()) << "a paused worker sleeps, it does not spin";

  store_.reset();
  store_ = open();
  ASSERT_TRUE(store_);
  auto pauses = store_->partnerPauses();
  ASSERT_TRUE(pauses);
  ASSERT_EQ(pauses.value().size(), 1u);
  EXPECT_EQ(pauses.value()[0].partner_id, "p1");
  EXPECT_EQ(pauses.value()[0].actor, "op-token");
  EXPECT_EQ(pauses.value()[0].reason, "hospital maintenance");
  EXPECT_TRUE(store_->dueItems("p1", t(3), 10).value().empty()) << "kept across a restart";

  ASSERT_TRUE(store_->setPartnerPaused({"p1", toUnixMillis(t(4)), "op-token", ""}, false, {}));
  EXPECT_TRUE(store_->partnerPauses().value().empty());
  EXPECT_EQ(store_->dueItems("p1", t(4), 10).value().size(), 1u);
}

TEST_P(OperationsContract, RecordsLeftInvalidAreFoundByStateAndType) {
  auto bad = clinicRecord("c1", "r1", "pa");
  bad.state = RecordState::Invalid;
  bad.outbox.clear();
  auto unmapped = clinicRecord("c1", "r2", "pb");
  unmapped.state = RecordState::Unmapped;
  unmapped.record_type = "encounter";
  unmapped.outbox.clear();
  ASSERT_TRUE(store_->ingest({bad, unmapped, clinicRecord("c2", "r3", "pc")}, t(0)));
  auto invalid = store_->recordsInState(RecordState::Invalid, "", "", "", 10);
  ASSERT_TRUE(invalid) << invalid.error().describe();
  ASSERT_EQ(invalid.value().size(), 1u);
  EXPECT_EQ(invalid.value()[0].payload, bad.payload) << "decrypted";
  EXPECT_EQ(invalid.value()[0].version, 1);
  EXPECT_EQ(store_->recordsInState(RecordState::Unmapped, "encounter", "", "", 10).value().size(), 1u);
  EXPECT_TRUE(store_->recordsInState(RecordState::Unmapped, "lab_result", "", "", 10).value().empty());
  const auto& last = invalid.value()[0];
  EXPECT_TRUE(store_->recordsInState(RecordState::Invalid, "", last.clinic, last.record_key, 10).value().empty())
      << "keyset paging moves past what was read";
}

TEST_P(OperationsContract, TheWriteProbeCommitsOrSaysWhyNot) {
  EXPECT_TRUE(store_->probeWrite(t(0)));
  EXPECT_TRUE(store_->probeWrite(t(1))) << "one row, replaced";
  faults_->arm("writeProbe");
  EXPECT_FALSE(store_->probeWrite(t(2)));
}

// Several instances (schema 9): each writes its row of versions; a row is replaced whole; rows
// not seen for a week go when an instance writes its own; a failed write leaves the old row.
TEST_P(OperationsContract, InstanceRowsAreReplacedListedAndForgotten) {
  const std::int64_t now = toUnixMillis(t(0));
  InstanceRow a{"gw-a", now, now, 0, "1.0.0", "sha256:c1", "sha256:m1", now, 0, ""};
  InstanceRow b{"gw-b", now - 1000, now, 0, "1.0.0", "sha256:c1", "sha256:m1", now - 1000, 0, ""};
  InstanceRow gone{"gw-gone", now - 9 * 86'400'000LL, now - 8 * 86'400'000LL, 0, "0.9.0", "x", "y", 0, 0, ""};
  ASSERT_TRUE(store_->putInstance(gone));
  ASSERT_TRUE(store_->putInstance(b));
  ASSERT_TRUE(store_->putInstance(a));
  auto rows = store_->instances();
  ASSERT_TRUE(rows) << rows.error().describe();
  ASSERT_EQ(rows.value().size(), 2u) << "gw-gone was last seen over a week before gw-b wrote its row";
  EXPECT_EQ(rows.value()[0], a) << "by instance id";
  EXPECT_EQ(rows.value()[1], b);

  // A reload that was refused: the old mapping set stays, with why.
  a.last_seen_at_ms = a.last_reload_at_ms = now + 5000;
  a.last_reload_error = "2 of 9 golden cases fail";
  ASSERT_TRUE(store_->putInstance(a));
  EXPECT_EQ(store_->instances().value()[0], a);

  auto failing = a;
  failing.mappers_version = "sha256:m2";
  faults_->arm("putInstance");
  EXPECT_FALSE(store_->putInstance(failing));
  EXPECT_EQ(store_->instances().value()[0], a) << "nothing of a failed write";
  store_.reset();
  store_ = open();
  EXPECT_EQ(store_->instances().value().size(), 2u) << "kept across a reopen";
}

// A reload announced on the database: SQLite (one process) has no one to tell, and says so by
// succeeding without a watcher ever being called; PostgreSQL's announcements are in
// postgres_instances_test.cpp (they need two processes' worth of connections).
TEST_P(OperationsContract, AnnouncingAReloadNeverFails) {
  ASSERT_TRUE(store_->watchReloads([](const std::string&) {}));
  EXPECT_TRUE(store_->announceReload(kContractInstance));
  EXPECT_TRUE(store_->watchReloads(nullptr));
}

}  // namespace
}  // namespace gw::store::test

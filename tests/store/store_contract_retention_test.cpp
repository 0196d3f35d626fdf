// The store contract, part 3: retention. Each class is purged after its own number of days,
// pending outbox items and the audit log never.
#include "store/store_contract.hpp"

namespace gw::store::test {
namespace {

using privacy::DataClass;

class RetentionContract : public StoreContract {};

INSTANTIATE_TEST_SUITE_P(Backends, RetentionContract, ::testing::ValuesIn(storeBackends()), backendName);

IngestWrite recordOf(DataClass c, const std::string& record_id) {
  auto w = StoreContract::write(record_id, "h-" + record_id, "pat-" + record_id, 1, c);
  w.resources.push_back({"Patient", "patient-" + record_id, "https://ids/mrn", "A1", "{}", c});
  return w;
}

TEST_P(RetentionContract, EachClassKeepsItsOwnRetention) {
  ASSERT_TRUE(store_->ingest(
      {recordOf(DataClass::General, "g1"), recordOf(DataClass::Sud, "s1"), recordOf(DataClass::Mh, "m1")}, day(0)));
  auto due = store_->dueItems("p1", day(0), 10);
  ASSERT_TRUE(due);
  for (const auto& item : due.value()) ASSERT_TRUE(store_->markDelivered(item.id, {{"201 Created", "X/1", ""}}, day(0)));

  const Retention retention{30, 365, 0};  // general 30 days, sud a year, mh forever
  auto early = store_->purgeExpired(day(29), retention);
  ASSERT_TRUE(early);
  EXPECT_EQ(early.value().record_versions + early.value().resources + early.value().outbox_items, 0);

  auto general = store_->purgeExpired(day(31), retention);
  ASSERT_TRUE(general) << general.error().describe();
  EXPECT_EQ(general.value().record_versions, 1);
  EXPECT_EQ(general.value().resources, 2);
  EXPECT_EQ(general.value().outbox_items, 1);
  EXPECT_EQ(general.value().records, 1);
  EXPECT_FALSE(store_->recordStatus("c1", "g1").value()) << "nothing of the general record is left";
  EXPECT_TRUE(store_->recordStatus("c1", "s1").value());
  EXPECT_EQ(count("SELECT COUNT(*) FROM deliveries"), 2) << "the general item's ledger rows went with it";

  auto sud = store_->purgeExpired(day(400), retention);
  ASSERT_TRUE(sud);
  EXPECT_EQ(sud.value().record_versions, 1);
  EXPECT_FALSE(store_->recordStatus("c1", "s1").value());
  auto mh = store_->recordPayload("c1", "m1", 1);
  ASSERT_TRUE(mh && mh.value()) << "retention 0 keeps mh forever";
  EXPECT_EQ(count("SELECT COUNT(*) FROM records"), 1);
}

TEST_P(RetentionContract, PendingOutboxItemsAreNeverPurgedAndTheAuditLogIsKept) {
  ASSERT_TRUE(store_->ingest(
      {recordOf(DataClass::Sud, "r1"), recordOf(DataClass::Sud, "r2"), recordOf(DataClass::Sud, "r3")}, day(0)));
  auto due = store_->dueItems("p1", day(0), 10);
  ASSERT_TRUE(due && due.value().size() == 3);
  ASSERT_TRUE(store_->markRetry(due.value()[0].id, 1, day(1), "HTTP 503", day(0)));                 // retrying
  ASSERT_TRUE(store_->markDead(due.value()[1].id, 1, "HTTP 400", "{}", day(0)));                    // dead
  ASSERT_TRUE(store_->markCancelled(due.value()[2].id, "consent revoked", day(0), {decision(1)}));  // cancelled
  auto purged = store_->purgeExpired(day(1000), Retention{1, 1, 1});
  ASSERT_TRUE(purged) << purged.error().describe();
  EXPECT_EQ(purged.value().outbox_items, 2);
  EXPECT_EQ(purged.value().record_versions, 3);
  EXPECT_EQ(store_->outboxCounts("p1").value().retrying, 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM outbox"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM records"), 1) << "r1 stays while its item is pending";
  EXPECT_EQ(count("SELECT COUNT(*) FROM audit_log"), 1);
  EXPECT_TRUE(verify().ok);
  auto still_due = store_->dueItems("p1", day(2), 10);
  ASSERT_TRUE(still_due && still_due.value().size() == 1);
  EXPECT_EQ(still_due.value()[0].bundle, "{\"resourceType\":\"Bundle\"}");
}

TEST_P(RetentionContract, ARecordsLastDecisionsGoWithIt) {
  auto kept = recordOf(DataClass::Sud, "r1");
  auto purged = recordOf(DataClass::Sud, "r2");
  for (auto* w : {&kept, &purged}) {
    ResourceDecision d;
    d.partner_id = "p2";
    d.resource_type = "MedicationRequest";
    d.resource_id = "rx-" + w->record_id;
    d.outcome = AuditOutcome::Deny;
    d.reason = "no-consent";
    w->decisions = {d};
  }
  kept.outbox.clear();
  ASSERT_TRUE(store_->ingest({kept}, day(0)));
  ASSERT_TRUE(store_->ingest({purged}, day(0)));
  auto due = store_->dueItems("p1", day(0), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  ASSERT_TRUE(store_->markDelivered(due.value()[0].id, {}, day(0)));
  // r1 is young enough: the purge keeps it and its decisions; r2 and its decisions go.
  ASSERT_TRUE(store_->ingest({[&] {
                               auto newer = kept;
                               newer.content_hash = "h-r1-v2";
                               return newer;
                             }()},
                             day(300)));
  auto result = store_->purgeExpired(day(400), Retention{0, 365, 0});
  ASSERT_TRUE(result) << result.error().describe();
  EXPECT_EQ(result.value().records, 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM resource_decisions"), 1);
  EXPECT_EQ(store_->lastDecisions("c1", "r1").value().size(), 1u);
  EXPECT_TRUE(store_->lastDecisions("c1", "r2").value().empty());
}

TEST_P(RetentionContract, LargePurgesRunInSeveralBatches) {
  std::vector<IngestWrite> writes;
  for (int i = 0; i < 1200; ++i) {
    auto w = recordOf(DataClass::General, "r" + std::to_string(i));
    w.resources.resize(1);
    w.outbox.clear();
    writes.push_back(std::move(w));
  }
  ASSERT_TRUE(store_->ingest(writes, day(0)));
  ASSERT_TRUE(store_->ingest({recordOf(DataClass::General, "fresh")}, day(10)));
  auto purged = store_->purgeExpired(day(10), Retention{5, 0, 0});
  ASSERT_TRUE(purged);
  EXPECT_EQ(purged.value().record_versions, 1200);
  EXPECT_EQ(purged.value().resources, 1200);
  EXPECT_EQ(purged.value().records, 1200);
  EXPECT_EQ(count("SELECT COUNT(*) FROM records"), 1);
  EXPECT_TRUE(store_->recordPayload("c1", "fresh", 1).value());
}

TEST_P(RetentionContract, AFailedPurgeBatchDeletesNothingOfIt) {
  auto w = recordOf(DataClass::General, "g1");
  w.outbox.clear();  // nothing pending: the whole record expires
  ASSERT_TRUE(store_->ingest({w}, day(0)));
  faults_->arm("deleteRecordsIfEmpty");
  EXPECT_FALSE(store_->purgeExpired(day(100), Retention{1, 0, 0}));
  EXPECT_TRUE(store_->recordPayload("c1", "g1", 1).value()) << "the batch's earlier deletes were rolled back";
  EXPECT_EQ(store_->resourceKeys("c1", "g1").value().size(), 2u);
  EXPECT_TRUE(store_->purgeExpired(day(100), Retention{1, 0, 0}));
  EXPECT_FALSE(store_->recordStatus("c1", "g1").value());
}

}  // namespace
}  // namespace gw::store::test

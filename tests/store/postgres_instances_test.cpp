// Several gateway instances on one PostgreSQL database (docs/architecture.md §5.3): each store
// here is one instance, with connections of its own. An item one instance is sending is offered to
// no other; the patient's later items wait behind it on every instance; a killed instance's items
// are taken over at once; and both instances append to one audit chain.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/ids.hpp"
#include "store/postgres_store.hpp"
#include "store/record_store.hpp"
#include "store/sample_audit_entries.hpp"
#include "support/postgres_cluster.hpp"
#include "support/test_keys.hpp"

namespace gw::store {
namespace {

class PostgresInstances : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = gw::test::PostgresCluster::unavailableReason(); !why.empty()) GTEST_SKIP() << why;
    dsn_ = gw::test::PostgresCluster::shared()->createDatabase();
  }

  std::unique_ptr<Store> instance(const std::string& id) {
    PostgresOptions options;
    options.dsn = dsn_;
    options.pool_size = 2;
    options.instance_id = id;
    options.master_key = gw::test::testMasterKey();
    auto s = openPostgresStore(options);
    EXPECT_TRUE(s) << (s ? "" : s.error().describe());
    return s ? std::move(s).value() : nullptr;
  }

  static SystemTime t(int seconds) { return fromUnixMillis(1'800'000'000'000 + seconds * 1000LL); }

  static IngestWrite write(const std::string& id, const std::string& patient) {
    IngestWrite w;
    w.clinic = "c1";
    w.record_id = id;
    w.record_type = "mat_prescription";
    w.content_hash = "h-" + id;
    w.payload = R"({"record":")" + id + R"("})";
    w.patient_key = patient;
    w.state = RecordState::Mapped;
    w.classes = privacy::DataClass::Sud;
    w.outbox.push_back({"p1", R"({"resourceType":"Bundle"})", 1, privacy::DataClass::Sud, ""});
    return w;
  }

  static std::vector<std::int64_t> ids(const Result<std::vector<OutboxItem>>& items) {
    std::vector<std::int64_t> out;
    EXPECT_TRUE(items) << (items ? "" : items.error().describe());
    if (items) {
      for (const auto& i : items.value()) out.push_back(i.id);
    }
    return out;
  }

  std::string dsn_;
};

TEST_F(PostgresInstances, AnItemBeingSentIsOfferedToNoOtherInstanceAndOrderPerPatientHolds) {
  auto a = instance("a");
  auto b = instance("b");
  ASSERT_TRUE(a && b);
  // Patient pa: items 1 then 3; patient pb: item 2.
  ASSERT_TRUE(a->ingest({write("r1", "pa"), write("r2", "pb")}, t(0)));
  ASSERT_TRUE(b->ingest({write("r3", "pa")}, t(1)));

  const auto first = ids(a->dueItems("p1", t(5), 1));
  ASSERT_EQ(first.size(), 1u);
  // b is not offered a's item, nor pa's next one (it waits behind it): only pb's.
  const auto offered_b = ids(b->dueItems("p1", t(5), 10));
  ASSERT_EQ(offered_b.size(), 1u);
  EXPECT_NE(offered_b[0], first[0]);
  // a keeps being offered what it holds; b's is not offered to a.
  EXPECT_THAT(ids(a->dueItems("p1", t(5), 10)), ::testing::ElementsAre(first[0]));

  // a delivers its item: pa's next item becomes due, for whoever claims it first.
  ASSERT_TRUE(a->markDelivered(first[0], {{"201 Created", "MedicationRequest/1", ""}}, t(6)));
  const auto next_b = ids(b->dueItems("p1", t(7), 10));
  EXPECT_EQ(next_b.size(), 2u) << "b holds pb's item and now pa's next one";
  EXPECT_THAT(ids(a->dueItems("p1", t(7), 10)), ::testing::IsEmpty());

  // b settles pb's item with a retry: it is offered again later, to any instance.
  ASSERT_TRUE(b->markRetry(offered_b[0], 1, t(8), "503 from the partner", t(7)));
  EXPECT_THAT(ids(a->dueItems("p1", t(9), 10)), ::testing::ElementsAre(offered_b[0]));
}

TEST_F(PostgresInstances, AKilledInstancesItemsAreTakenOverAtOnce) {
  auto a = instance("a");
  auto b = instance("b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->ingest({write("r1", "pa"), write("r2", "pb")}, t(0)));
  ASSERT_EQ(ids(a->dueItems("p1", t(5), 10)).size(), 2u);
  EXPECT_THAT(ids(b->dueItems("p1", t(5), 10)), ::testing::IsEmpty());
  a.reset();  // its connections close, as when the process is killed
  // The server drops a's locks when its session's process has ended, a moment after the
  // connection closed (libpq does not wait for that): a bounded wait, well under a second on a
  // busy machine; without the takeover the items are never offered and the test fails.
  std::size_t offered = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((offered = ids(b->dueItems("p1", t(5), 10)).size()) < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(offered, 2u);
}

TEST_F(PostgresInstances, InstancesAppendingAtOnceKeepOneVerifiableChain) {
  auto a = instance("a");
  auto b = instance("b");
  ASSERT_TRUE(a && b);
  auto append = [](Store& s, int from) {
    for (int i = 0; i < 25; ++i) {
      auto done = s.appendAudit({test::sampleDecision(from + i), test::sampleDecision(from + i + 1000)});
      EXPECT_TRUE(done) << (done ? "" : done.error().describe());
    }
  };
  std::thread ta([&] { append(*a, 0); });
  std::thread tb([&] { append(*b, 5000); });
  ta.join();
  tb.join();
  auto report = a->verifyAudit(std::nullopt);
  ASSERT_TRUE(report) << report.error().describe();
  EXPECT_TRUE(report.value().ok) << (report.value().breaks.empty() ? "" : report.value().breaks[0].message);
  EXPECT_EQ(report.value().rows, 100);
  auto from_b = b->verifyAudit(std::nullopt);
  ASSERT_TRUE(from_b);
  EXPECT_EQ(from_b.value().head_hash, report.value().head_hash);
}

}  // namespace
}  // namespace gw::store

namespace gw::store {
namespace {

TEST_F(PostgresInstances, AConsentCommittedByOneInstanceIsAnnouncedToTheOthers) {
  auto a = instance("a");
  auto b = instance("b");
  ASSERT_TRUE(a && b);
  std::mutex m;
  std::condition_variable heard_cv;
  std::vector<std::string> heard;
  ASSERT_TRUE(b->watchConsents([&](const std::string& patient_key) {
    std::lock_guard lock(m);
    heard.push_back(patient_key);
    heard_cv.notify_all();
  }));
  auto consent = write("consent-1", "pa");
  consent.record_type = "consent";
  consent.outbox.clear();
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
  row.recorded_at = 1'800'000'000'000;
  consent.consent = row;
  // A write without a consent announces nothing; a consent is announced once its commit is done.
  ASSERT_TRUE(a->ingest({write("r1", "pb")}, t(0)));
  ASSERT_TRUE(a->ingest({consent}, t(1)));
  std::unique_lock lock(m);
  ASSERT_TRUE(heard_cv.wait_for(lock, std::chrono::seconds(5), [&] { return !heard.empty(); }))
      << "no announcement within 5 s";
  EXPECT_EQ(heard, std::vector<std::string>{"pa"});
  lock.unlock();
  // b reads the new version from the database at once.
  auto consents = b->consents("pa");
  ASSERT_TRUE(consents);
  ASSERT_EQ(consents.value().size(), 1u);
  EXPECT_EQ(consents.value()[0].row.consent_id, "consent-1");
  EXPECT_TRUE(b->watchConsents(nullptr)) << "the watch stops";
}

// A reload asked of one instance reaches every other instance on the database (not itself: it
// has reloaded already), on the watch connection the consent watch shares; and each instance's
// log rows name it.
TEST_F(PostgresInstances, AReloadAnnouncedByOneInstanceReachesTheOthersAndRowsNameTheirInstance) {
  auto a = instance("a");
  auto b = instance("b");
  auto c = instance("c");
  ASSERT_TRUE(a && b && c);
  std::mutex m;
  std::condition_variable heard_cv;
  std::vector<std::string> heard_a, heard_b, heard_c;
  const auto watch = [&](std::vector<std::string>& heard) {
    return [&](const std::string& origin) {
      std::lock_guard lock(m);
      heard.push_back(origin);
      heard_cv.notify_all();
    };
  };
  ASSERT_TRUE(a->watchReloads(watch(heard_a)));
  ASSERT_TRUE(b->watchReloads(watch(heard_b)));
  ASSERT_TRUE(c->watchConsents([](const std::string&) {}));
  ASSERT_TRUE(c->watchReloads(watch(heard_c)));
  ASSERT_TRUE(a->announceReload("a"));
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(heard_cv.wait_for(lock, std::chrono::seconds(5), [&] { return !heard_b.empty() && !heard_c.empty(); }))
        << "no announcement within 5 s";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // time for a stray one to arrive
  {
    std::lock_guard lock(m);
    EXPECT_EQ(heard_b, std::vector<std::string>{"a"});
    EXPECT_EQ(heard_c, std::vector<std::string>{"a"});
    EXPECT_TRUE(heard_a.empty()) << "the instance that announced it has reloaded already";
  }
  EXPECT_TRUE(c->watchReloads(nullptr));
  EXPECT_TRUE(c->watchConsents(nullptr)) << "the shared watch stops once neither is watched";
  EXPECT_TRUE(a->watchReloads(nullptr));
  EXPECT_TRUE(b->watchReloads(nullptr));

  ASSERT_TRUE(a->appendAudit({test::sampleDecision(0)}));
  ASSERT_TRUE(b->appendAudit({test::sampleDecision(1)}));
  AuditQuery q;
  auto page = a->queryAudit(q);
  ASSERT_TRUE(page) << page.error().describe();
  ASSERT_EQ(page.value().entries.size(), 2u);
  EXPECT_EQ(page.value().entries[0].instance_id, "a");
  EXPECT_EQ(page.value().entries[1].instance_id, "b");
  EXPECT_TRUE(a->verifyAudit(std::nullopt).value().ok);
}

}  // namespace
}  // namespace gw::store

// Sends against consent changes across instances (docs/architecture.md §5.3, docs/privacy.md §8.3):
// a send on one instance holds (patient, partner) from before its consent re-read until its
// request ends; a consent committed through another instance waits for it, and a send that starts
// while the change is being committed waits for the commit and then reads it.
namespace gw::store {
namespace {

class PostgresSendHolds : public PostgresInstances {
 protected:
  static IngestWrite consentWrite(const std::string& patient, const std::string& status) {
    auto w = write("consent-" + patient + "-" + status, patient);
    w.record_type = "consent";
    w.outbox.clear();
    privacy::ConsentRow row;
    row.clinic = "c1";
    row.consent_id = "consent-" + patient;
    row.patient_key = patient;
    row.partner_id = "p1";
    row.status = status;
    row.purposes = "TREAT";
    row.classes = "sud";
    row.period_start = "2026-01-01";
    row.signed_on = "2025-12-30";
    row.resource_id = "consent-res-" + patient;
    row.recorded_at = 1'800'000'000'000;
    w.consent = row;
    return w;
  }
  static std::vector<std::string> statuses(Store& s, const std::string& patient) {
    std::vector<std::string> out;
    auto stored = s.consents(patient);
    EXPECT_TRUE(stored) << (stored ? "" : stored.error().describe());
    if (stored) {
      for (const auto& c : stored.value()) out.push_back(c.row.status);
    }
    return out;
  }
};

TEST_F(PostgresSendHolds, AConsentCommittedThroughOneInstanceWaitsForASendInFlightOnAnother) {
  auto a = instance("a");
  auto b = instance("b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->ingest({consentWrite("pa", "active")}, t(0)));

  // b is sending pa's data to p1: its hold is taken (before its re-check) and kept.
  auto hold = b->holdSend("pa", "p1");
  ASSERT_TRUE(hold) << hold.error().describe();
  ASSERT_TRUE(hold.value().held()) << "a PostgreSQL store holds for real";

  // a commits the revocation meanwhile: it must wait for b's send to end.
  std::atomic<bool> committed{false};
  std::thread revoke([&] {
    auto done = a->ingest({consentWrite("pa", "revoked")}, t(1));
    EXPECT_TRUE(done) << (done ? "" : done.error().describe());
    committed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_FALSE(committed) << "the revocation committed while a send of the patient was in flight on another instance";

  // Other patients, other partners, and every other write are not held up meanwhile.
  auto other = b->holdSend("pb", "p1");
  ASSERT_TRUE(other) << other.error().describe();
  auto other_partner = b->holdSend("pa", "p2");
  ASSERT_TRUE(other_partner) << other_partner.error().describe();
  EXPECT_TRUE(b->appendAudit({test::sampleDecision(1)})) << "the write lock is not held while the change waits";
  EXPECT_FALSE(committed);

  // A send of pa that starts now (its hold comes before its consent re-read) waits for the change
  // and then reads it: it is decided under the revocation.
  std::atomic<bool> second_held{false};
  std::vector<std::string> read_by_second;
  std::thread second([&] {
    auto h = b->holdSend("pa", "p1");
    EXPECT_TRUE(h) << (h ? "" : h.error().describe());
    second_held = true;
    read_by_second = statuses(*b, "pa");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(second_held) << "a send started while the change waits must wait for it";

  // b's first send ends (its request answered): the change commits, then the second send goes on.
  const auto released = std::chrono::steady_clock::now();
  hold.value().release();
  revoke.join();
  second.join();
  EXPECT_TRUE(committed);
  EXPECT_LT(std::chrono::steady_clock::now() - released, std::chrono::seconds(3));
  EXPECT_EQ(read_by_second, (std::vector<std::string>{"active", "revoked"}))
      << "the send that waited reads the revocation before its re-check";
}

TEST_F(PostgresSendHolds, AKilledInstancesHoldIsGoneAtOnce) {
  auto a = instance("a");
  auto b = instance("b");
  ASSERT_TRUE(a && b);
  auto hold = b->holdSend("pa", "p1");
  ASSERT_TRUE(hold) << hold.error().describe();
  // The hold's session ends as a killed process's would (its connection closed by the server).
  auto* cluster = gw::test::PostgresCluster::shared();
  const auto db = gw::test::PostgresCluster::databaseOf(dsn_);
  // pg_locks is the whole cluster's, and tests running beside this one hold locks in databases of
  // their own: only this database's are counted (and their sessions ended).
  ASSERT_EQ(cluster->count(db,
                           "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype='advisory' "
                           "AND classid=74124 AND mode='ShareLock' "
                           "AND database=(SELECT oid FROM pg_database WHERE datname=current_database())"),
            1);
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(a->ingest({consentWrite("pa", "revoked")}, t(1)));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  hold.value().release();  // the session is gone: logged, nothing else
  // The next hold is on a new connection.
  auto again = b->holdSend("pa", "p1");
  EXPECT_TRUE(again) << again.error().describe();
}

TEST_F(PostgresSendHolds, AClaimOnAnItemSupersededWhileHeldIsLetGo) {
  auto a = instance("a");
  auto b = instance("b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->ingest({write("r1", "pa")}, t(0)));
  const auto claimed = ids(a->dueItems("p1", t(5), 10));
  ASSERT_EQ(claimed.size(), 1u);
  auto* cluster = gw::test::PostgresCluster::shared();
  const auto db = gw::test::PostgresCluster::databaseOf(dsn_);
  const std::string held_sql =
      "SELECT count(*) FROM pg_locks WHERE locktype='advisory' AND classid=74123 "
      "AND database=(SELECT oid FROM pg_database WHERE datname=current_database()) AND objid=" +
      std::to_string(claimed[0]);
  ASSERT_EQ(cluster->count(db, held_sql), 1);
  // b stores a newer version of the record: a's item is superseded while a holds it.
  auto newer = write("r1", "pa");
  newer.content_hash = "h-r1-v2";
  ASSERT_TRUE(b->ingest({newer}, t(6)));
  // a's next look at the outbox (a second on) lets go of the claim it will never settle.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  (void)a->dueItems("p1", t(7), 10);
  EXPECT_EQ(cluster->count(db, held_sql), 0) << "the superseded item's claim is kept";
}

}  // namespace
}  // namespace gw::store

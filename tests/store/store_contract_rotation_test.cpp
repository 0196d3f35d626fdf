// The store contract, data key rotation (`fhir-gateway keys rotate-data`): every payload of the
// class is re-sealed under a new key version in short transactions, the old version's wrapped
// key is deleted once nothing uses it, a store already open (the running gateway) picks the new
// version up for reads and writes, and an interrupted rotation is finished by the next one.
#include <gmock/gmock.h>

#include <atomic>
#include <thread>

#include "store/keyring.hpp"
#include "store/store_contract.hpp"

namespace gw::store::test {
namespace {

using privacy::DataClass;
using ::testing::HasSubstr;

class RotationContract : public StoreContract {
 protected:
  // What the CLI passes: no pause, so the tests run fast; small batches, so there are many.
  static DataKeyRotationOptions fast(int batch_rows = 2) {
    DataKeyRotationOptions o;
    o.batch_rows = batch_rows;
    o.min_pause = std::chrono::milliseconds(0);
    o.pause_ratio = 0;
    return o;
  }

  // A second store on the same database, as another process would have it: `source` gives it
  // the master key again when it meets a data key version it has not loaded.
  std::unique_ptr<Store> another(MasterKeySource source) {
    auto backend = GetParam().open(dir_);
    EXPECT_TRUE(backend);
    auto s = openStore(std::move(backend).value(), gw::test::testMasterKey(), std::move(source));
    EXPECT_TRUE(s) << (s ? "" : s.error().describe());
    return s ? std::move(s).value() : nullptr;
  }
  static MasterKeySource masterSource() {
    return [] { return Result<crypto::SecretKey>(gw::test::testMasterKey()); };
  }

  static IngestWrite consentWrite(const std::string& consent_id) {
    IngestWrite w = write("consent-" + consent_id, "hc-" + consent_id, "pa", 0);
    w.record_type = "consent";
    privacy::ConsentRow row;
    row.clinic = "c1";
    row.consent_id = consent_id;
    row.patient_key = "pa";
    row.partner_id = "p1";
    row.status = "active";
    row.purposes = "TREAT";
    row.classes = "sud";
    row.period_start = "2026-01-01";
    row.signed_on = "2025-12-30";
    row.resource_id = "consent-res-" + consent_id;
    row.recorded_at = 1'800'000'000'000;
    w.consent = row;
    return w;
  }

  // Envelopes of `cls` under key `version` in every sealed column (the header: "GW1", the class
  // byte, the version big-endian), counted with plain SQL as an attacker holding the file would.
  std::int64_t sealedUnder(DataClass cls, std::uint32_t version) {
    char header[17];
    std::snprintf(header, sizeof header, "%02X%08X", static_cast<unsigned>(cls), version);
    const std::string h = "x'475731" + std::string(header) + "'";
    const auto under = [&](const std::string& column) { return "substr(" + column + ",1,8)=" + h; };
    return count("SELECT (SELECT COUNT(*) FROM record_versions WHERE " + under("payload") +
                 ") + (SELECT COUNT(*) FROM resources WHERE " + under("resource_id") + " OR " + under("identifier_value") +
                 " OR " + under("body") + ") + (SELECT COUNT(*) FROM outbox WHERE " + under("bundle") + " OR " +
                 under("disclosure") + " OR (typeof(outcome)='blob' AND " + under("outcome") +
                 ")) + (SELECT COUNT(*) FROM consents WHERE " + under("consent_id") + " OR " + under("resource_id") +
                 ") + (SELECT COUNT(*) FROM deployment_secrets WHERE typeof(value)='blob' AND " + under("value") + ")");
  }
  std::int64_t keyVersions(std::string_view cls) {
    return count("SELECT COUNT(*) FROM data_keys WHERE data_class='" + std::string(cls) + "'");
  }

  // A database with a payload in every sealed column: records of each class with resources and
  // items, a dead item with an outcome, a consent, a deployment secret.
  void fill(int records_per_class = 4) {
    std::vector<IngestWrite> writes;
    for (int i = 0; i < records_per_class; ++i) {
      for (DataClass c : {DataClass::Sud, DataClass::Mh, DataClass::General}) {
        const std::string id = std::string(privacy::className(c)) + "-" + std::to_string(i);
        writes.push_back(write(id, "h-" + id, "p-" + id, 1, c));
      }
    }
    writes.push_back(consentWrite("cn-1"));
    ASSERT_TRUE(store_->ingest(writes, t(0)));
    auto due = store_->dueItems("p1", t(0), 100);
    ASSERT_TRUE(due);
    for (const auto& item : due.value()) {
      if (item.clinic == "c1" && (item.record_key == recordKey("sud-0") || item.record_key == recordKey("mh-0"))) {
        ASSERT_TRUE(store_->markDead(item.id, 1, "HTTP 422", R"({"resourceType":"OperationOutcome"})", t(1)));
      }
    }
    secret_ = store_->deploymentSecret("record-key").value();
  }

  // Every payload opens through `s`, with the values it was written with.
  void expectEveryPayloadOpens(Store& s, int records_per_class = 4) {
    for (int i = 0; i < records_per_class; ++i) {
      for (DataClass c : {DataClass::Sud, DataClass::Mh, DataClass::General}) {
        const std::string id = std::string(privacy::className(c)) + "-" + std::to_string(i);
        auto payload = s.recordPayload("c1", id, 1);
        ASSERT_TRUE(payload) << payload.error().describe();
        ASSERT_TRUE(payload.value());
        EXPECT_THAT(*payload.value(), HasSubstr(id));
        auto status = s.recordStatus("c1", id);
        ASSERT_TRUE(status) << status.error().describe();
        ASSERT_TRUE(status.value());
        ASSERT_EQ(status.value()->resources.size(), 1u);
        auto body = s.resourceBody("MedicationRequest", status.value()->resources[0].resource_id);
        ASSERT_TRUE(body) << body.error().describe();
        EXPECT_EQ(body.value(), std::optional<std::string>("{}"));
        for (const auto& item : status.value()->deliveries) {
          if (item.state == OutboxState::Dead) {
            EXPECT_EQ(item.outcome, R"({"resourceType":"OperationOutcome"})");
          }
        }
      }
    }
    auto due = s.dueItems("p1", t(10), 100);
    ASSERT_TRUE(due) << due.error().describe();
    EXPECT_FALSE(due.value().empty());
    for (const auto& item : due.value()) EXPECT_EQ(item.bundle, "{\"resourceType\":\"Bundle\"}");
    auto consents = s.consents("pa");
    ASSERT_TRUE(consents) << consents.error().describe();
    ASSERT_EQ(consents.value().size(), 1u);
    EXPECT_EQ(consents.value()[0].row.consent_id, "cn-1");
    EXPECT_EQ(consents.value()[0].row.resource_id, "consent-res-cn-1");
    auto secret = s.deploymentSecret("record-key");
    ASSERT_TRUE(secret) << secret.error().describe();
    EXPECT_EQ(secret.value(), secret_);
  }

  std::string secret_;
};

INSTANTIATE_TEST_SUITE_P(Backends, RotationContract, ::testing::ValuesIn(storeBackends()), backendName);

TEST_P(RotationContract, ReSealsEveryPayloadOfTheClassAndDestroysTheOldVersion) {
  fill();
  const std::int64_t sud_before = sealedUnder(DataClass::Sud, 1);
  const std::int64_t mh_before = sealedUnder(DataClass::Mh, 1);
  ASSERT_GT(sud_before, 12);  // records, resources, items, an outcome, a consent, the secret
  auto rotation = store_->rotateDataKey(DataClass::Sud, gw::test::testMasterKey(), fast());
  ASSERT_TRUE(rotation) << rotation.error().describe();
  const auto& r = rotation.value();
  EXPECT_EQ(r.key_version, 2u);
  EXPECT_FALSE(r.resumed);
  EXPECT_EQ(r.destroyed, std::vector<std::uint32_t>{1});
  EXPECT_GE(r.payloads_resealed, sud_before);  // rows, not cells: a resource row holds three
  EXPECT_EQ(r.passes, 2);                      // the second found nothing left
  EXPECT_GT(r.batches, 10);

  EXPECT_EQ(sealedUnder(DataClass::Sud, 1), 0);
  EXPECT_EQ(sealedUnder(DataClass::Sud, 2), sud_before);
  EXPECT_EQ(sealedUnder(DataClass::Mh, 1), mh_before) << "another class is not touched";
  EXPECT_EQ(count("SELECT COUNT(*) FROM data_keys WHERE data_class='sud' AND key_version=1"), 0);
  EXPECT_EQ(keyVersions("sud"), 1);
  EXPECT_EQ(keyVersions("mh"), 1);
  expectEveryPayloadOpens(*store_);
  store_.reset();  // and after a restart, with only the new version in data_keys
  store_ = open();
  ASSERT_TRUE(store_);
  expectEveryPayloadOpens(*store_);

  // Each step has its audit row (versions and counts only), and the chain still verifies.
  std::vector<std::string> steps;
  for (const auto& e : auditLog()) {
    if (e.kind != AuditKind::KeyRotation) continue;
    EXPECT_EQ(e.actor, "cli");
    EXPECT_THAT(e.detail, HasSubstr(R"("data_class":"sud")"));
    steps.push_back(e.reason);
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"data-key-created", "data-key-destroyed"}));
  EXPECT_TRUE(verify().ok);

  // Again: version 3, version 2 destroyed.
  auto again = store_->rotateDataKey(DataClass::Sud, gw::test::testMasterKey(), fast(50));
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(again.value().key_version, 3u);
  EXPECT_EQ(again.value().destroyed, std::vector<std::uint32_t>{2});
  EXPECT_EQ(sealedUnder(DataClass::Sud, 2), 0);
  EXPECT_EQ(sealedUnder(DataClass::Sud, 3), sud_before);
  expectEveryPayloadOpens(*store_);
}

TEST_P(RotationContract, AnInterruptedRotationIsFinishedByTheNextOne) {
  fill();
  faults_->arm("replaceSealed", 5);  // the sixth re-sealed payload fails: its batch rolls back
  auto interrupted = store_->rotateDataKey(DataClass::Mh, gw::test::testMasterKey(), fast());
  ASSERT_FALSE(interrupted);
  faults_->disarm();
  // Half done: both versions in data_keys, payloads under each, every one still opens.
  EXPECT_EQ(keyVersions("mh"), 2);
  EXPECT_GT(sealedUnder(DataClass::Mh, 1), 0);
  EXPECT_GT(sealedUnder(DataClass::Mh, 2), 0);
  expectEveryPayloadOpens(*store_);
  store_.reset();
  store_ = open();
  expectEveryPayloadOpens(*store_);

  auto resumed = store_->rotateDataKey(DataClass::Mh, gw::test::testMasterKey(), fast());
  ASSERT_TRUE(resumed) << resumed.error().describe();
  EXPECT_TRUE(resumed.value().resumed);
  EXPECT_EQ(resumed.value().key_version, 2u) << "no third version: the interrupted one is finished";
  EXPECT_EQ(resumed.value().destroyed, std::vector<std::uint32_t>{1});
  EXPECT_EQ(sealedUnder(DataClass::Mh, 1), 0);
  EXPECT_EQ(keyVersions("mh"), 1);
  expectEveryPayloadOpens(*store_);
  std::vector<std::string> steps;
  for (const auto& e : auditLog()) {
    if (e.kind == AuditKind::KeyRotation) steps.push_back(e.reason);
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"data-key-created", "data-key-resumed", "data-key-destroyed"}));
}

TEST_P(RotationContract, TheWrongMasterKeyChangesNothing) {
  fill(1);
  auto wrong = store_->rotateDataKey(DataClass::Sud, gw::test::testMasterKey('x'), fast());
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::Config);
  EXPECT_THAT(wrong.error().message, HasSubstr("does not match"));
  EXPECT_EQ(keyVersions("sud"), 1);
  EXPECT_EQ(sealedUnder(DataClass::Sud, 2), 0);
}

// The running gateway is another store on the database, opened before the rotation.
TEST_P(RotationContract, AStoreOpenBeforeTheRotationReadsReSealedRowsAndWritesUnderTheNewVersion) {
  fill();
  auto gateway = another(masterSource());
  ASSERT_TRUE(gateway);
  ASSERT_TRUE(store_->rotateDataKey(DataClass::Sud, gw::test::testMasterKey(), fast()));
  expectEveryPayloadOpens(*gateway);  // rows re-sealed under version 2, which it loads on meeting it
  ASSERT_TRUE(gateway->ingest({write("sud-new", "h-new", "p-new", 1, DataClass::Sud)}, t(20)));
  EXPECT_EQ(sealedUnder(DataClass::Sud, 1), 0);
  EXPECT_THAT(*gateway->recordPayload("c1", "sud-new", 1).value(), HasSubstr("sud-new"));

  // A store that cannot get the master key again refuses to write rather than seal under a
  // version that may be destroyed: restarting it loads the new version.
  auto stale = another({});
  ASSERT_TRUE(stale);
  ASSERT_TRUE(store_->rotateDataKey(DataClass::Sud, gw::test::testMasterKey(), fast()));
  auto refused = stale->ingest({write("sud-late", "h-late", "p-late", 1, DataClass::Sud)}, t(30));
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("version 3"));
  EXPECT_THAT(refused.error().hint, HasSubstr("restart"));
  EXPECT_EQ(sealedUnder(DataClass::Sud, 2), 0);
}

// A write sealed ahead of its commit (on a request thread) under the version a rotation then
// replaces and destroys is sealed again under the new version when it commits.
TEST_P(RotationContract, AWriteSealedAheadUnderAVersionTheRotationDestroysIsSealedAgain) {
  fill(2);
  auto gateway = another(masterSource());
  ASSERT_TRUE(gateway);
  auto w = write("sealed-ahead", "h-ahead", "p-ahead", 1, DataClass::Sud);
  const IngestWrite plain = w;
  gateway->sealAhead(w);
  ASSERT_TRUE(w.sealed);
  ASSERT_TRUE(store_->rotateDataKey(DataClass::Sud, gw::test::testMasterKey(), fast()));
  ASSERT_TRUE(gateway->ingest({w}, t(20)));
  EXPECT_EQ(sealedUnder(DataClass::Sud, 1), 0);
  EXPECT_EQ(*gateway->recordPayload("c1", "sealed-ahead", 1).value(), plain.payload);
  EXPECT_EQ(*store_->resourceBody("MedicationRequest", plain.resources[0].resource_id).value(), plain.resources[0].body);
  expectEveryPayloadOpens(*store_, 2);
}

// The guarantee itself: a store writing all through the rotation (a running gateway under
// ingest) never leaves a payload under the version the rotation destroys.
TEST_P(RotationContract, WritesDuringTheRotationAreNeverLeftUnderTheDestroyedVersion) {
  fill(2);
  auto gateway = another(masterSource());
  ASSERT_TRUE(gateway);
  std::atomic<bool> rotating{true};
  std::atomic<int> written{0};
  std::thread ingest([&] {
    for (int i = 0; (rotating && i < 300) || i < 5; ++i) {
      const std::string id = "sud-load-" + std::to_string(i);
      auto done = gateway->ingest({write(id, "h-" + id, "p-" + id, 1, DataClass::Sud)}, t(40));
      EXPECT_TRUE(done) << done.error().describe();
      if (done) ++written;
      // Records arrive as a stream (a tight loop would keep the write lock from the rotation).
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  while (written < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // One row a batch and a pause after each: the writer gets in between batches many times.
  auto options = fast(1);
  options.min_pause = std::chrono::milliseconds(5);
  const int before = written;
  auto rotation = store_->rotateDataKey(DataClass::Sud, gw::test::testMasterKey(), options);
  const int during = written - before;
  rotating = false;
  ingest.join();
  ASSERT_TRUE(rotation) << rotation.error().describe();
  EXPECT_GT(during, 5) << "records written while the rotation ran";
  EXPECT_EQ(sealedUnder(DataClass::Sud, 1), 0);
  EXPECT_EQ(keyVersions("sud"), 1);
  store_.reset();
  store_ = open();  // only version 2 in data_keys now
  for (int i = 0; i < written.load(); ++i) {
    const std::string id = "sud-load-" + std::to_string(i);
    auto payload = store_->recordPayload("c1", id, 1);
    ASSERT_TRUE(payload) << id << ": " << payload.error().describe();
    EXPECT_TRUE(payload.value()) << id;
  }
  expectEveryPayloadOpens(*store_, 2);
}

}  // namespace
}  // namespace gw::store::test

#include "delivery/partner_worker.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/ids.hpp"
#include "fake_fhir_server.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_keys.hpp"
#include "support/test_pki.hpp"

namespace gw::delivery {
namespace {

using fakes::FakeFhirServer;
using fakes::ScriptedReply;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class FakeClock final : public Clock {
 public:
  SystemTime now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  SystemTime now_ = fromUnixMillis(1'800'000'000'000);
};

const std::string kOneEntryResponse =
    R"({"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created","location":"MedicationRequest/m1/_history/1"}}]})";

class PartnerWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-worker-" + ids::randomHex(6));
    fs::create_directories(dir_);
    auto store = store::openSqliteStore({(dir_ / "gw.db").string(), false, 2, test::testMasterKey()});
    ASSERT_TRUE(store);
    store_ = std::move(store).value();
    server_ = std::make_unique<FakeFhirServer>(
        fakes::FakeServerOptions{test::devPkiFile("partner.crt"), test::devPkiFile("partner.key"), ""});
    partner_.id = "p1";
    partner_.fhir_base_url = server_->baseUrl();
    partner_.ca_file = test::devPkiFile("ca.crt");
    partner_.retry = {std::chrono::milliseconds(1000), std::chrono::milliseconds(8000), 0};
  }
  void TearDown() override {
    worker_.reset();
    server_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  void makeWorker() {
    auto endpoint = endpointFor(partner_);
    ASSERT_TRUE(endpoint);
    auto client = FhirClient::create(endpoint.value());
    ASSERT_TRUE(client) << client.error().describe();
    worker_ = std::make_unique<PartnerWorker>(partner_, config::Delivery{}, *store_, clock_, std::move(client).value(),
                                              DisclosureCheck{&registry_, "test-policy"});
  }

  // The patient's consent naming p1 for sud data, in force around the fake clock's day.
  void consent(const std::string& patient, consent::ConsentStatus status = consent::ConsentStatus::Active,
               std::int64_t version = 1) {
    consent::ConsentVersion v;
    v.clinic = "c1";
    v.consent_id = "cn-" + patient;
    v.version = version;
    v.patient_key = patient;
    v.partner_id = "p1";
    v.status = status;
    v.purposes = consent::Purpose::Treat;
    v.classes = privacy::ClassSet(privacy::DataClass::General).add(privacy::DataClass::Sud);
    const auto today = consent::utcDate(clock_.now());
    v.period_start = today - std::chrono::days(10);
    v.period_end = today + std::chrono::days(10);
    v.signed_on = v.period_start.day;
    if (status == consent::ConsentStatus::Revoked) v.revoked_on = today;
    v.resource_id = "consent-" + patient;
    ASSERT_TRUE(registry_.upsert(v));
  }

  void queue(const std::string& record_id, int entries = 1) {
    store::IngestWrite w;
    w.clinic = "c1";
    w.record_id = record_id;
    w.record_type = "mat_prescription";
    w.content_hash = ids::sha256Hex(record_id);
    w.payload = "{}";
    w.patient_key = "patient-" + record_id;
    w.state = store::RecordState::Mapped;
    const std::string disclosure = R"({"purpose":"TREAT","patient":"patient-)" + record_id +
                                   R"(","resources":[{"type":"MedicationRequest","id":"m-)" + record_id +
                                   R"(","classes":"sud","outcome":"permit","consent":"c1/cn-patient-)" + record_id +
                                   R"(","consent_version":1}]})";
    w.outbox.push_back({"p1", R"({"resourceType":"Bundle","type":"transaction","entry":[]})", entries,
                        privacy::ClassSet(privacy::DataClass::Sud), disclosure});
    ASSERT_TRUE(store_->ingest({w}, clock_.now()));
    if (!registry_.current("c1", "cn-patient-" + record_id)) consent("patient-" + record_id);
  }

  store::OutboxItem item(const std::string& record_id) {
    auto status = store_->recordStatus("c1", record_id);
    EXPECT_TRUE(status && status.value());
    return status.value()->deliveries.at(0);
  }

  fs::path dir_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FakeFhirServer> server_;
  config::Partner partner_;
  consent::ConsentRegistry registry_;
  std::unique_ptr<PartnerWorker> worker_;
};

TEST_F(PartnerWorkerTest, RetriesWithBackoffUntilDelivered) {
  makeWorker();
  queue("r1");
  server_->push({ScriptedReply::Action::Respond, 503, "", {}});
  server_->push({ScriptedReply::Action::Respond, 503, "", {}});
  server_->push({ScriptedReply::Action::Respond, 200, kOneEntryResponse, {}});

  ASSERT_EQ(worker_->runOnce().value(), 1);
  auto first = item("r1");
  EXPECT_EQ(first.state, store::OutboxState::Retrying);
  EXPECT_EQ(first.attempts, 1);
  const auto delay = first.next_attempt_at_ms - toUnixMillis(clock_.now());
  EXPECT_GE(delay, 500);  // jittered within [initial/2, initial]
  EXPECT_LE(delay, 1000);
  EXPECT_THAT(first.last_error, HasSubstr("503"));

  EXPECT_EQ(worker_->runOnce().value(), 0) << "not due yet";
  // What GET /metrics shows: the partner failing since the first 503, its answers by class.
  const auto& stats = worker_->stats();
  EXPECT_EQ(stats.answers_5xx.value(), 1u);
  EXPECT_EQ(stats.consecutive_failures.value(), 1);
  EXPECT_EQ(stats.failing_since_ms.value(), toUnixMillis(clock_.now()));
  clock_.advance(std::chrono::milliseconds(1000));
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_EQ(stats.consecutive_failures.value(), 2);
  auto second = item("r1");
  EXPECT_EQ(second.attempts, 2);
  EXPECT_GE(second.next_attempt_at_ms - toUnixMillis(clock_.now()), 1000) << "the delay grows";

  clock_.advance(std::chrono::milliseconds(2000));
  ASSERT_EQ(worker_->runOnce().value(), 1);
  auto done = item("r1");
  EXPECT_EQ(done.state, store::OutboxState::Delivered);
  EXPECT_EQ(done.attempts, 3);
  EXPECT_EQ(stats.consecutive_failures.value(), 0) << "up again";
  EXPECT_EQ(stats.failing_since_ms.value(), 0);
  EXPECT_EQ(stats.answers_2xx.value(), 1u);
  EXPECT_EQ(stats.answers_5xx.value(), 2u);
  EXPECT_EQ(stats.delivery_latency_ms.count(), 1u) << "queued to delivered";
  ASSERT_EQ(done.entries.size(), 1u);
  EXPECT_EQ(done.entries[0].location, "MedicationRequest/m1/_history/1");
}

TEST_F(PartnerWorkerTest, RetryAfterIsAFloor) {
  makeWorker();
  queue("r1");
  server_->push({ScriptedReply::Action::Respond, 429, "", {{"Retry-After", "120"}}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_GE(item("r1").next_attempt_at_ms - toUnixMillis(clock_.now()), 120000);
}

TEST_F(PartnerWorkerTest, GivesUpAfterMaxAttempts) {
  partner_.retry.max_attempts = 2;
  makeWorker();
  queue("r1");
  server_->push({ScriptedReply::Action::Respond, 503, "", {}});
  server_->push({ScriptedReply::Action::Respond, 503, "", {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  clock_.advance(std::chrono::seconds(5));
  ASSERT_EQ(worker_->runOnce().value(), 1);
  auto dead = item("r1");
  EXPECT_EQ(dead.state, store::OutboxState::Dead);
  EXPECT_THAT(dead.last_error, HasSubstr("gave up after 2 attempts"));
}

TEST_F(PartnerWorkerTest, RejectionIsDeadWithThePartnersOutcome) {
  makeWorker();
  queue("r1");
  const std::string outcome =
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"nope"}]})";
  server_->push({ScriptedReply::Action::Respond, 422, outcome, {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  auto dead = item("r1");
  EXPECT_EQ(dead.state, store::OutboxState::Dead);
  EXPECT_EQ(dead.outcome, outcome);
}

TEST_F(PartnerWorkerTest, TooFewResponseEntriesIsDeadNotDelivered) {
  makeWorker();
  queue("r1", 2);
  server_->push({ScriptedReply::Action::Respond, 200, kOneEntryResponse, {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  auto dead = item("r1");
  EXPECT_EQ(dead.state, store::OutboxState::Dead);
  EXPECT_THAT(dead.last_error, HasSubstr("answered 1 entries for 2 requests"));
}

TEST_F(PartnerWorkerTest, MissingTokenVariableIsAStartUpError) {
  partner_.bearer_token_env = "GW_TEST_SURELY_UNSET_VARIABLE";
  auto credentials = credentialsFor(partner_);
  ASSERT_FALSE(credentials);
  EXPECT_THAT(credentials.error().message, HasSubstr("GW_TEST_SURELY_UNSET_VARIABLE"));
}

TEST_F(PartnerWorkerTest, ThreadDeliversWhenWoken) {
  partner_.retry.initial = std::chrono::milliseconds(10);
  makeWorker();
  // The thread reads the partner's CapabilityStatement first (transaction supported).
  server_->push({ScriptedReply::Action::Respond,
                 200,
                 R"({"resourceType":"CapabilityStatement","fhirVersion":"4.0.1","rest":[{"mode":"server",)"
                 R"("interaction":[{"code":"transaction"}]}]})",
                 {}});
  server_->push({ScriptedReply::Action::Respond, 200, kOneEntryResponse, {}});
  worker_->start();
  queue("r1");
  worker_->wake();
  EXPECT_TRUE(FakeFhirServer::eventually([&] { return item("r1").state == store::OutboxState::Delivered; }));
  worker_->stop();
}

}  // namespace
}  // namespace gw::delivery

namespace gw::delivery {
namespace {

TEST_F(PartnerWorkerTest, ItemsNoLongerPermittedAreCancelledNotSentAndTheCancellationIsLogged) {
  makeWorker();
  queue("r1");
  consent("patient-r1", consent::ConsentStatus::Revoked, 2);  // revoked after the item was queued
  ASSERT_EQ(worker_->runOnce().value(), 1);
  auto cancelled = item("r1");
  EXPECT_EQ(cancelled.state, store::OutboxState::Cancelled);
  EXPECT_THAT(cancelled.last_error, HasSubstr("revoked"));
  EXPECT_TRUE(server_->requests().empty()) << "nothing reached the partner";
  store::AuditQuery q;
  q.kind = store::AuditKind::Cancel;
  auto page = store_->queryAudit(q);
  ASSERT_TRUE(page);
  ASSERT_EQ(page.value().entries.size(), 1u);
  // The log names the resource and the consent by their lookup keys (docs/privacy.md §9.1).
  EXPECT_EQ(page.value().entries[0].resource_id, store_->lookupKeys().resource("MedicationRequest", "m-r1"));
  EXPECT_EQ(page.value().entries[0].reason, "revoked");
  EXPECT_EQ(page.value().entries[0].consent_id, store_->lookupKeys().consent("c1", "cn-patient-r1"));
}

TEST_F(PartnerWorkerTest, AnUnreadableDisclosureRecordIsADenyNotASend) {
  makeWorker();
  store::IngestWrite w;
  w.clinic = "c1";
  w.record_id = "r9";
  w.record_type = "mat_prescription";
  w.content_hash = "h";
  w.payload = "{}";
  w.patient_key = "patient-r9";
  w.state = store::RecordState::Mapped;
  w.outbox.push_back({"p1", R"({"resourceType":"Bundle","type":"transaction","entry":[]})", 1,
                      privacy::ClassSet(privacy::DataClass::Sud), "not json"});
  ASSERT_TRUE(store_->ingest({w}, clock_.now()));
  consent("patient-r9");
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_EQ(item("r9").state, store::OutboxState::Cancelled);
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(PartnerWorkerTest, EachDeliveryIsLoggedAsADisclosureWithThePartnersIds) {
  makeWorker();
  queue("r1");
  server_->push({ScriptedReply::Action::Respond, 200, kOneEntryResponse, {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  store::AuditQuery q;
  q.kind = store::AuditKind::Disclosure;
  auto page = store_->queryAudit(q);
  ASSERT_TRUE(page);
  ASSERT_EQ(page.value().entries.size(), 1u);
  const auto& e = page.value().entries[0];
  EXPECT_EQ(e.outcome, store::AuditOutcome::Delivered);
  EXPECT_EQ(e.partner_id, "p1");
  EXPECT_EQ(e.resource_type, "MedicationRequest");
  EXPECT_EQ(e.classes, "sud");
  EXPECT_THAT(e.detail, HasSubstr("MedicationRequest/m1/_history/1"));
  auto verified = store_->verifyAudit(std::nullopt);
  ASSERT_TRUE(verified);
  EXPECT_TRUE(verified.value().ok);
}

}  // namespace
}  // namespace gw::delivery

// ---- Write modes chosen from the partner's CapabilityStatement (docs/architecture.md §5.6) ----
namespace gw::delivery {
namespace {

std::string statement(bool transaction, bool batch, const std::string& types = R"("Patient","MedicationRequest")") {
  std::string resources;
  std::string list = types;
  std::size_t pos = 0;
  while ((pos = list.find('"')) != std::string::npos) {
    const auto end = list.find('"', pos + 1);
    const std::string type = list.substr(pos + 1, end - pos - 1);
    list = list.substr(end + 1);
    if (!resources.empty()) resources += ',';
    resources +=
        R"({"type":")" + type +
        R"(","interaction":[{"code":"create"},{"code":"update"}],"conditionalCreate":true,"conditionalUpdate":true})";
  }
  std::string interactions;
  if (transaction) interactions += R"({"code":"transaction"})";
  if (batch) interactions += std::string(interactions.empty() ? "" : ",") + R"({"code":"batch"})";
  return R"({"resourceType":"CapabilityStatement","fhirVersion":"4.0.1","rest":[{"mode":"server","resource":[)" + resources +
         R"(],"interaction":[)" + interactions + "]}]}";
}

// An outbox item as the outbox writes it: the MedicationRequest first, referring to the Patient
// by its urn:uuid (only a transaction resolves that), the Patient second.
const std::string kTwoEntryBundle =
    R"({"resourceType":"Bundle","type":"transaction","entry":[)"
    R"({"fullUrl":"urn:uuid:m1","resource":{"resourceType":"MedicationRequest","subject":{"reference":"urn:uuid:p1"}},)"
    R"("request":{"method":"PUT","url":"MedicationRequest?identifier=urn:rx|1"}},)"
    R"({"fullUrl":"urn:uuid:p1","resource":{"resourceType":"Patient"},)"
    R"("request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:mrn|7"}}]})";

std::string batchResponse(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out = R"({"resourceType":"Bundle","type":"batch-response","entry":[)";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += ',';
    out += R"({"response":{"status":")" + entries[i].first + R"(","location":")" + entries[i].second + R"("}})";
  }
  return out + "]}";
}

class WriteModeTest : public PartnerWorkerTest {
 protected:
  void queueBundle(const std::string& record_id, const std::string& bundle, int entries) {
    store::IngestWrite w;
    w.clinic = "c1";
    w.record_id = record_id;
    w.record_type = "mat_prescription";
    w.content_hash = ids::sha256Hex(record_id);
    w.payload = "{}";
    w.patient_key = "patient-" + record_id;
    w.state = store::RecordState::Mapped;
    const std::string disclosure = R"({"purpose":"TREAT","patient":"patient-)" + record_id +
                                   R"(","resources":[{"type":"MedicationRequest","id":"m-)" + record_id +
                                   R"(","classes":"sud","outcome":"permit","consent":"c1/cn-patient-)" + record_id +
                                   R"(","consent_version":1}]})";
    w.outbox.push_back({"p1", bundle, entries, privacy::ClassSet(privacy::DataClass::Sud), disclosure});
    ASSERT_TRUE(store_->ingest({w}, clock_.now()));
    consent("patient-" + record_id);
  }
  void readStatement(const std::string& body) {
    server_->push({ScriptedReply::Action::Respond, 200, body, {}});
    ASSERT_TRUE(worker_->refreshCapability());
  }
  // Requests after the metadata reads.
  std::vector<fakes::RecordedRequest> writes() {
    std::vector<fakes::RecordedRequest> out;
    for (auto& r : server_->requests()) {
      if (r.target.find("/metadata") == std::string::npos) out.push_back(std::move(r));
    }
    return out;
  }
};

TEST_F(WriteModeTest, DiscoveryPicksTransactionThenBatchThenPerResource) {
  makeWorker();
  EXPECT_EQ(worker_->capabilityReport().write_mode, "transaction");  // nothing read yet
  EXPECT_FALSE(worker_->capabilityReport().statement_read);
  readStatement(statement(true, true));
  EXPECT_EQ(worker_->capabilityReport().write_mode, "transaction");
  EXPECT_EQ(worker_->capabilityReport().fhir_version, "4.0.1");
  readStatement(statement(false, true));
  EXPECT_EQ(worker_->capabilityReport().write_mode, "batch");
  readStatement(statement(false, false));
  EXPECT_EQ(worker_->capabilityReport().write_mode, "per-resource");
  // An unreadable statement keeps the mode known before, and says why in the report.
  server_->push(
      {ScriptedReply::Action::Respond, 200, R"({"resourceType":"CapabilityStatement","fhirVersion":"5.0.0"})", {}});
  EXPECT_FALSE(worker_->refreshCapability());
  EXPECT_EQ(worker_->capabilityReport().write_mode, "per-resource");
  EXPECT_THAT(worker_->capabilityReport().error, HasSubstr("not R4"));
  const auto requests = server_->requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.back().method, "GET");
  EXPECT_THAT(requests.back().target, HasSubstr("/metadata"));
}

TEST_F(WriteModeTest, ConfiguredWriteModeOverridesTheStatement) {
  partner_.write_mode = "per-resource";
  makeWorker();
  EXPECT_EQ(worker_->capabilityReport().write_mode, "per-resource");
  readStatement(statement(true, true));
  EXPECT_EQ(worker_->capabilityReport().write_mode, "per-resource");
  EXPECT_THAT(worker_->capabilityReport().why, HasSubstr("write_mode"));
}

TEST_F(WriteModeTest, BatchSendsThePatientFirstThenWhatRefersToItWithThePartnersId) {
  makeWorker();
  readStatement(statement(false, true));
  queueBundle("r1", kTwoEntryBundle, 2);
  server_->push({ScriptedReply::Action::Respond, 200, batchResponse({{"201 Created", "Patient/px/_history/1"}}), {}});
  server_->push({ScriptedReply::Action::Respond, 200, batchResponse({{"200 OK", "MedicationRequest/mx/_history/3"}}), {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  const auto sent = writes();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_THAT(sent[0].body, HasSubstr(R"("type":"batch")"));
  EXPECT_THAT(sent[0].body, HasSubstr(R"("url":"Patient")"));
  EXPECT_THAT(sent[0].body, ::testing::Not(HasSubstr("MedicationRequest")));
  EXPECT_THAT(sent[1].body, HasSubstr(R"("reference":"Patient/px")"));
  EXPECT_THAT(sent[1].body, ::testing::Not(HasSubstr("urn:uuid:p1\"}")));
  const auto delivered = item("r1");
  EXPECT_EQ(delivered.state, store::OutboxState::Delivered);
  ASSERT_EQ(delivered.entries.size(), 2u);  // in the Bundle's order
  EXPECT_EQ(delivered.entries[0].location, "MedicationRequest/mx/_history/3");
  EXPECT_EQ(delivered.entries[1].location, "Patient/px/_history/1");
}

TEST_F(WriteModeTest, BatchRetriesOnlyTheEntriesThatFailed) {
  makeWorker();
  readStatement(statement(false, true));
  queueBundle("r1", kTwoEntryBundle, 2);
  server_->push({ScriptedReply::Action::Respond, 200, batchResponse({{"201 Created", "Patient/px/_history/1"}}), {}});
  server_->push({ScriptedReply::Action::Respond, 200, batchResponse({{"503", ""}}), {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_EQ(item("r1").state, store::OutboxState::Retrying);
  EXPECT_THAT(item("r1").last_error, HasSubstr("MedicationRequest"));
  clock_.advance(std::chrono::seconds(60));
  server_->push(
      {ScriptedReply::Action::Respond, 200, batchResponse({{"201 Created", "MedicationRequest/mx/_history/1"}}), {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  const auto sent = writes();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_THAT(sent[2].body, ::testing::Not(HasSubstr(R"("url":"Patient")"))) << "the accepted Patient is not resent";
  EXPECT_THAT(sent[2].body, HasSubstr(R"("reference":"Patient/px")"));
  EXPECT_EQ(item("r1").state, store::OutboxState::Delivered);
}

TEST_F(WriteModeTest, BatchEntryRefusedMakesTheItemDead) {
  makeWorker();
  readStatement(statement(false, true));
  queueBundle("r1", kTwoEntryBundle, 2);
  server_->push({ScriptedReply::Action::Respond, 200, batchResponse({{"400 Bad Request", ""}}), {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_EQ(item("r1").state, store::OutboxState::Dead);
  EXPECT_THAT(item("r1").last_error, HasSubstr("Patient"));
  EXPECT_EQ(writes().size(), 1u) << "nothing that refers to a refused Patient is sent";
}

TEST_F(WriteModeTest, PerResourceSendsConditionalRequestsPatientFirstAndResumes) {
  makeWorker();
  readStatement(statement(false, false));
  queueBundle("r1", kTwoEntryBundle, 2);
  server_->push({ScriptedReply::Action::Respond,
                 201,
                 R"({"resourceType":"Patient","id":"px"})",
                 {{"Location", "https://partner/fhir/Patient/px/_history/1"}}});
  server_->push({ScriptedReply::Action::Respond, 503, "", {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_EQ(item("r1").state, store::OutboxState::Retrying);
  clock_.advance(std::chrono::seconds(60));
  server_->push({ScriptedReply::Action::Respond, 200, R"({"resourceType":"MedicationRequest","id":"mx"})", {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  const auto sent = writes();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].method, "POST");
  EXPECT_THAT(sent[0].target, ::testing::EndsWith("/Patient"));
  EXPECT_EQ(sent[0].headers.at("if-none-exist"), "identifier=urn:mrn|7");
  for (int i : {1, 2}) {
    EXPECT_EQ(sent[i].method, "PUT");
    EXPECT_THAT(sent[i].target, ::testing::EndsWith("/MedicationRequest?identifier=urn:rx|1"));
    EXPECT_THAT(sent[i].body, HasSubstr(R"("reference":"Patient/px")"));
  }
  const auto delivered = item("r1");
  EXPECT_EQ(delivered.state, store::OutboxState::Delivered);
  ASSERT_EQ(delivered.entries.size(), 2u);
  EXPECT_EQ(delivered.entries[0].location, "MedicationRequest/mx");
}

TEST_F(WriteModeTest, ItemsOfATypeThePartnerCannotTakeWaitWithTheReasonUntilItCan) {
  partner_.retry.max_attempts = 1;  // waiting is not a failed attempt: it must not use this up
  makeWorker();
  readStatement(statement(true, true, R"("Patient")"));
  queueBundle("r1", kTwoEntryBundle, 2);
  ASSERT_EQ(worker_->runOnce().value(), 1);
  auto waiting = item("r1");
  EXPECT_EQ(waiting.state, store::OutboxState::Retrying) << "waiting, not dead";
  EXPECT_EQ(waiting.attempts, 0);
  EXPECT_THAT(waiting.last_error, HasSubstr("partner does not accept MedicationRequest"));
  EXPECT_TRUE(writes().empty());
  const auto report = worker_->capabilityReport();
  ASSERT_EQ(report.unsupported.size(), 1u);
  EXPECT_THAT(report.unsupported[0], HasSubstr("MedicationRequest"));
  EXPECT_EQ(report.waiting_items, 1u);
  // Not before the next read of the statement...
  clock_.advance(std::chrono::minutes(30));
  ASSERT_EQ(worker_->runOnce().value(), 0);
  // ...which finds the partner changed.
  clock_.advance(std::chrono::hours(6));
  readStatement(statement(true, true));
  server_->push({ScriptedReply::Action::Respond,
                 200,
                 R"({"resourceType":"Bundle","type":"transaction-response","entry":[)"
                 R"({"response":{"status":"200 OK","location":"MedicationRequest/mx/_history/2"}},)"
                 R"({"response":{"status":"201 Created","location":"Patient/px/_history/1"}}]})",
                 {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_EQ(item("r1").state, store::OutboxState::Delivered);
  EXPECT_TRUE(worker_->capabilityReport().unsupported.empty());
}

}  // namespace
}  // namespace gw::delivery

namespace gw::delivery {
namespace {

// Flow control (docs/architecture.md §5.7): the breaker stops requests to a partner that fails
// every one, items wait without using up their retries, and one probe per open period decides.
TEST_F(PartnerWorkerTest, CircuitBreakerStopsRequestsAndKeepsItemsAlive) {
  partner_.retry.max_attempts = 2;  // without the breaker, two failures each would make both items dead
  partner_.circuit_breaker = {2, std::chrono::seconds(30), std::chrono::seconds(600)};
  makeWorker();
  queue("r1");
  queue("r2");
  for (int i = 0; i < 3; ++i) server_->push({ScriptedReply::Action::Respond, 503, "", {}});

  ASSERT_EQ(worker_->runOnce().value(), 2);
  EXPECT_EQ(server_->requests().size(), 2u);
  auto circuit = worker_->circuitReport();
  ASSERT_EQ(circuit.state, CircuitState::Open);
  EXPECT_EQ(circuit.last_error, "http 503");
  EXPECT_EQ(worker_->capabilityReport().circuit.state, CircuitState::Open) << "what /readyz shows";
  EXPECT_EQ(item("r1").attempts, 1) << "a failure before the breaker opened counts";
  EXPECT_EQ(item("r2").attempts, 0) << "the failure that opened it does not";
  EXPECT_THAT(item("r2").last_error, HasSubstr("waiting: partner circuit open since"));

  // While open: items that come due wait for the probe, no request goes out.
  clock_.advance(std::chrono::seconds(5));
  ASSERT_EQ(worker_->runOnce().value(), 1) << "r1, due again after its backoff, is parked";
  EXPECT_EQ(worker_->runOnce().value(), 0);
  EXPECT_EQ(server_->requests().size(), 2u);
  EXPECT_EQ(item("r1").state, store::OutboxState::Retrying);
  EXPECT_EQ(item("r1").attempts, 1);
  EXPECT_THAT(item("r1").last_error, HasSubstr("last error: http 503"));
  EXPECT_EQ(item("r1").next_attempt_at_ms, toUnixMillis(circuit.probe_at));

  // open_seconds later: one probe; it fails, the breaker opens again for twice as long.
  clock_.advance(std::chrono::seconds(25));
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_EQ(server_->requests().size(), 3u) << "one probe";
  circuit = worker_->circuitReport();
  EXPECT_EQ(circuit.state, CircuitState::Open);
  EXPECT_EQ(circuit.openings, 2);
  EXPECT_EQ(circuit.probe_at, clock_.now() + std::chrono::seconds(60));
  EXPECT_EQ(worker_->runOnce().value(), 1) << "the other item is parked until the next probe";
  EXPECT_EQ(server_->requests().size(), 3u);
  EXPECT_NE(item("r1").state, store::OutboxState::Dead);
  EXPECT_NE(item("r2").state, store::OutboxState::Dead);

  // The partner is back: the probe succeeds, the breaker closes, everything arrives once.
  clock_.advance(std::chrono::seconds(60));
  server_->push({ScriptedReply::Action::Respond, 200, kOneEntryResponse, {}});
  server_->push({ScriptedReply::Action::Respond, 200, kOneEntryResponse, {}});
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_EQ(worker_->circuitReport().state, CircuitState::Closed);
  ASSERT_EQ(worker_->runOnce().value(), 1);
  EXPECT_EQ(item("r1").state, store::OutboxState::Delivered);
  EXPECT_EQ(item("r2").state, store::OutboxState::Delivered);
  EXPECT_EQ(server_->requests().size(), 5u);
}

TEST_F(PartnerWorkerTest, RequestsPerSecondSpacesTheRequests) {
  partner_.max_requests_per_second = 5;
  makeWorker();
  for (int i = 0; i < 8; ++i) {
    queue("r" + std::to_string(i));
    server_->push({ScriptedReply::Action::Respond, 200, kOneEntryResponse, {}});
  }
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(worker_->runOnce().value(), 8);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  // Five from the full bucket, then one every 200 ms.
  EXPECT_GE(elapsed, std::chrono::milliseconds(590));
  EXPECT_EQ(server_->requests().size(), 8u);
}

TEST_F(PartnerWorkerTest, SendsABatchOnSeveralConnectionsAtOnce) {
  partner_.max_concurrent_requests = 4;
  auto endpoint = endpointFor(partner_);
  ASSERT_TRUE(endpoint);
  std::vector<std::unique_ptr<FhirClient>> clients;
  for (int i = 0; i < 4; ++i) {
    auto client = FhirClient::create(endpoint.value());
    ASSERT_TRUE(client);
    clients.push_back(std::move(client).value());
  }
  worker_ = std::make_unique<PartnerWorker>(partner_, config::Delivery{}, *store_, clock_, std::move(clients),
                                            DisclosureCheck{&registry_, "test-policy"});
  EXPECT_EQ(worker_->concurrency(), 4);
  for (int i = 0; i < 8; ++i) {
    queue("r" + std::to_string(i));
    server_->push({ScriptedReply::Action::Respond, 200, kOneEntryResponse, {}});
  }
  ASSERT_EQ(worker_->runOnce().value(), 8);
  std::set<int> connections;
  for (const auto& r : server_->requests()) connections.insert(r.connection);
  EXPECT_GT(connections.size(), 1u) << "the batch went out over more than one connection";
  for (int i = 0; i < 8; ++i) EXPECT_EQ(item("r" + std::to_string(i)).state, store::OutboxState::Delivered);
}

}  // namespace
}  // namespace gw::delivery

// End to end: clinic -> (mTLS, token) -> fhir-gateway binary -> (mTLS) -> Medplum FHIR partner.
// Everything runs on 127.0.0.1 with the test PKI; the partner validates every resource it stores.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "gateway_fixture.hpp"
#include "support/test_pki.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

std::string oneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

class GatewayEndToEnd : public PartnerSuite {
 protected:
  Gateway& startGateway(GatewayOptions options = {}) {
    PartnerSuite::startGateway(std::move(options));
    consentToEverything();
    return *gateway_;
  }

  static int partnerWrites() {
    auto r = partner_->admin("GET", "requests");
    auto d = parseJson(r.body);
    int posts = 0;
    const auto& list = d.IsArray() ? d : d["requests"];
    for (const auto& req : list.GetArray()) {
      if (std::string(req["method"].GetString()) == "POST") ++posts;
    }
    return posts;
  }
};

TEST_F(GatewayEndToEnd, PatientAndPrescriptionReachThePartner) {
  auto& gw = startGateway();
  auto r = gw.post(oneLine(patientRecord()) + "\n" + oneLine(prescriptionRecord()) + "\n", "application/x-ndjson");
  ASSERT_EQ(r.status, 202) << r.body;
  auto reply = parseJson(r.body);
  EXPECT_EQ(reply["accepted"].GetInt(), 2);
  EXPECT_STREQ(reply["results"][1]["state"].GetString(), "mapped");
  EXPECT_STREQ(reply["results"][1]["queued_for"][0].GetString(), "st-mary");

  ASSERT_TRUE(gw.waitForDeliveries("c1:pt:A12345", "delivered"));
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered"));

  // The partner holds exactly one of each, found by business identifier.
  auto patients = partner_->search("Patient", kMrnSystem, "A12345");
  ASSERT_EQ(patients["entry"].Size(), 1u);
  const auto& patient = patients["entry"][0]["resource"];
  EXPECT_STREQ(patient["name"][0]["family"].GetString(), "Rivera") << "the full patient, not the stub";
  auto requests = partner_->search("MedicationRequest", kRxSystem, "9001");
  ASSERT_EQ(requests["entry"].Size(), 1u);
  const auto& rx = requests["entry"][0]["resource"];
  EXPECT_STREQ(rx["status"].GetString(), "active");
  EXPECT_STREQ(rx["intent"].GetString(), "order");
  EXPECT_EQ(std::string(rx["subject"]["reference"].GetString()), "Patient/" + std::string(patient["id"].GetString()));

  // The status endpoint names the partner's resource ids.
  auto status = parseJson(gw.status("c1:rx:9001").body);
  const auto& delivery = status["deliveries"][0];
  EXPECT_STREQ(delivery["partner"].GetString(), "st-mary");
  EXPECT_EQ(delivery["attempts"].GetInt(), 1);
  bool names_request = false;
  for (const auto& e : delivery["partner_resources"].GetArray()) {
    names_request |= std::string(e["location"].GetString()).find("MedicationRequest/" + std::string(rx["id"].GetString())) ==
                     0;
  }
  EXPECT_TRUE(names_request) << gw.status("c1:rx:9001").body;

  // No PHI in the gateway's log.
  const std::string log = gw.log();
  EXPECT_THAT(log, Not(HasSubstr("Rivera")));
  EXPECT_THAT(log, Not(HasSubstr("A12345")));
  EXPECT_THAT(log, Not(HasSubstr("1988-04-02")));
  EXPECT_THAT(log, Not(HasSubstr("dev-ingest-c1")));
  // The test deployment is a development one: every start says so, and names its published tokens.
  EXPECT_THAT(log, HasSubstr("WARN config insecure_setting key=deployment"));
  EXPECT_THAT(log, HasSubstr("key=auth.tokens problem=\"token 'admin' is a published development token\""));
}

TEST_F(GatewayEndToEnd, PrescriptionBeforePatientCreatesStubThenFullPatient) {
  auto& gw = startGateway();
  ASSERT_EQ(gw.post(prescriptionRecord("77", "B2")).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:77", "delivered"));
  auto stub = partner_->search("Patient", kMrnSystem, "B2");
  ASSERT_EQ(stub["entry"].Size(), 1u);
  EXPECT_STREQ(stub["entry"][0]["resource"]["gender"].GetString(), "unknown");

  ASSERT_EQ(gw.post(patientRecord("B2", "Núñez")).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:pt:B2", "delivered"));
  auto full = partner_->search("Patient", kMrnSystem, "B2");
  ASSERT_EQ(full["entry"].Size(), 1u) << "updated in place, not duplicated";
  EXPECT_STREQ(full["entry"][0]["resource"]["name"][0]["family"].GetString(), "Núñez");
  EXPECT_STREQ(full["entry"][0]["resource"]["gender"].GetString(), "female");
}

TEST_F(GatewayEndToEnd, DuplicateResendChangesNothingNewContentUpdatesInPlace) {
  auto& gw = startGateway();
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered"));
  const int writes = partnerWrites();

  auto again = gw.post(prescriptionRecord());
  ASSERT_EQ(again.status, 202);
  auto reply = parseJson(again.body);
  EXPECT_STREQ(reply["results"][0]["disposition"].GetString(), "unchanged");
  EXPECT_EQ(reply["results"][0]["queued_for"].Size(), 0u);
  // A later record of the same patient is sent only once every earlier item of that patient is
  // settled (per-patient order), so once it is delivered anything the resend had queued would
  // have reached the partner too: the partner has exactly one more write, this one.
  ASSERT_EQ(gw.post(prescriptionRecord("9002")).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9002", "delivered"));
  EXPECT_EQ(partnerWrites(), writes + 1) << "an unchanged resend sends nothing";

  auto changed = gw.post(prescriptionRecord("9001", "A12345", "stopped"));
  ASSERT_EQ(changed.status, 202);
  reply = parseJson(changed.body);
  EXPECT_STREQ(reply["results"][0]["disposition"].GetString(), "new-version");
  EXPECT_EQ(reply["results"][0]["version"].GetInt(), 2);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered"));
  auto requests = partner_->search("MedicationRequest", kRxSystem, "9001");
  ASSERT_EQ(requests["entry"].Size(), 1u);
  EXPECT_STREQ(requests["entry"][0]["resource"]["status"].GetString(), "stopped");
  EXPECT_EQ(partner_->count("Patient", kMrnSystem, "A12345"), 1);
}

TEST_F(GatewayEndToEnd, PartnerUnavailableThenBackIsDeliveredOnce) {
  auto& gw = startGateway();
  ASSERT_EQ(partner_->admin("POST", "faults", R"({"status":503,"count":2})").status / 100, 2);
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered"));
  auto status = parseJson(gw.status("c1:rx:9001").body);
  EXPECT_EQ(status["deliveries"][0]["attempts"].GetInt(), 3);
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 1);
  EXPECT_THAT(gw.log(), HasSubstr("retry partner=st-mary"));
}

TEST_F(GatewayEndToEnd, ResponseLostAfterThePartnerCommittedIsNotDuplicated) {
  auto& gw = startGateway();
  // The partner applies the transaction, then the connection drops before the answer.
  ASSERT_EQ(partner_->admin("POST", "faults", R"({"count":1,"drop":true,"commit":true})").status / 100, 2);
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered"));
  // The Bundle was sent again: as a new attempt, or at once on a new connection when the lost
  // answer was on a kept-alive one (the CapabilityStatement read opened it), which looks stale.
  auto stats = parseJson(partner_->admin("GET", "stats").body);
  EXPECT_EQ(stats["transactions"].GetInt(), 2);
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 1);
  EXPECT_EQ(partner_->count("Patient", kMrnSystem, "A12345"), 1);
}

TEST_F(GatewayEndToEnd, PartnerRejectionIsDeadLetteredWithItsOutcome) {
  auto& gw = startGateway();
  ASSERT_EQ(
      partner_->admin(
                  "POST", "faults",
                  R"({"status":400,"count":1,"body":{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"prescriber unknown here"}]}})")
              .status /
          100,
      2);
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "dead"));
  auto status = parseJson(gw.status("c1:rx:9001").body);
  const auto& d = status["deliveries"][0];
  EXPECT_EQ(d["attempts"].GetInt(), 1) << "a 4xx is not retried";
  EXPECT_STREQ(d["outcome"]["issue"][0]["diagnostics"].GetString(), "prescriber unknown here");
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 0);
}

TEST_F(GatewayEndToEnd, KilledWhileDeliveringThenRestartedDeliversEverythingExactlyOnce) {
  auto& gw = startGateway();
  // Slow partner: each answer takes 300 ms, so the kill lands with deliveries in flight.
  ASSERT_EQ(partner_->admin("POST", "faults", R"({"count":1000,"delay_ms":300})").status / 100, 2);
  std::string batch;
  std::string consents;
  constexpr int kRecords = 12;
  for (int i = 0; i < kRecords; ++i) {
    const std::string mrn = "M" + std::to_string(i);
    consents += oneLine(consentRecord(mrn, "st-mary", R"(["general","sud"])", "active", "e2e-" + mrn)) + "\n";
    batch += oneLine(prescriptionRecord("k" + std::to_string(i), mrn)) + "\n";
  }
  ASSERT_EQ(gw.post(consents, "application/x-ndjson").status, 202);
  ASSERT_EQ(gw.post(batch, "application/x-ndjson").status, 202);
  // Deliveries under way: the first is through (the others queue behind the partner's delays).
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:k0", "delivered"));
  // Still work left at the moment of the kill, or the test would prove nothing.
  auto last = parseJson(gw.status("c1:rx:k" + std::to_string(kRecords - 1)).body);
  ASSERT_STREQ(last["deliveries"][0]["state"].GetString(), "queued");
  gw.kill();
  partner_->admin("DELETE", "faults");

  gw.start();
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(gw.waitForDeliveries("c1:rx:k" + std::to_string(i), "delivered")) << i;
  }
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "k" + std::to_string(i)), 1) << i;
    EXPECT_EQ(partner_->count("Patient", kMrnSystem, "M" + std::to_string(i)), 1) << i;
  }
}

TEST_F(GatewayEndToEnd, BadInputGetsClearAnswersAndStoresNothing) {
  auto& gw = startGateway();
  auto malformed = gw.post(R"({"record_id": "x",})");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(malformed.body, HasSubstr("byte 18"));

  std::string bad = prescriptionRecord("bad1");
  bad.replace(bad.find("\"daily\""), 7, "\"hourly\"");
  auto schema = gw.post(bad);
  EXPECT_EQ(schema.status, 422);
  EXPECT_THAT(schema.body, HasSubstr("prescription.frequency"));
  EXPECT_EQ(gw.status("c1:rx:bad1").status, 404) << "nothing of a rejected record is stored";

  // One good and one bad record: 202, each with its own result.
  auto mixed = gw.post("[" + prescriptionRecord("good") + "," + bad + "]");
  EXPECT_EQ(mixed.status, 202);
  auto reply = parseJson(mixed.body);
  EXPECT_STREQ(reply["results"][0]["status"].GetString(), "accepted");
  EXPECT_STREQ(reply["results"][1]["status"].GetString(), "rejected");

  std::string other = prescriptionRecord("c2rx");
  other.replace(other.find("\"clinic\":\"c1\""), 13, "\"clinic\":\"c2\"");
  auto other_clinic = gw.post(other);
  EXPECT_EQ(other_clinic.status, 422);
  EXPECT_THAT(other_clinic.body, HasSubstr("may not post records for clinic 'c2'"));

  auto oversize = gw.post(std::string(2 << 20, ' '));
  EXPECT_EQ(oversize.status, 413);
}

// Every record type of the reference format: posted, mapped, validated, delivered, and found
// exactly once at the partner by its business identifier (the golden cases are the records).
TEST_F(GatewayEndToEnd, EveryRecordTypeFlowsEndToEnd) {
  auto& gw = startGateway();
  const fs::path golden = fs::path(GW_REPO_DIR) / "mappers/clinic-v1/golden";
  std::vector<fs::path> inputs;
  for (const auto& entry : fs::directory_iterator(golden)) {
    if (entry.path().string().ends_with(".input.json")) inputs.push_back(entry.path());
  }
  std::sort(inputs.begin(), inputs.end());
  ASSERT_GE(inputs.size(), 8u);
  std::set<std::string> types;
  for (const auto& input : inputs) types.insert(parseJson(readFile(input.string()))["record_type"].GetString());
  EXPECT_EQ(types.size(), 9u) << "a golden case for each of the nine record types";
  // Consent records are not sent on their own (a Consent travels with the Part 2 data it
  // permits), and the golden ones would replace the test consents: see privacy_e2e_test.cpp.
  std::erase_if(inputs, [](const fs::path& p) { return p.filename().string().rfind("consent_", 0) == 0; });
  std::string batch;
  for (const auto& input : inputs) batch += json::toString(parseJson(readFile(input.string()))) + "\n";
  auto r = gw.post(batch, "application/x-ndjson");
  ASSERT_EQ(r.status, 202) << r.body;
  auto reply = parseJson(r.body);
  for (const auto& result : reply["results"].GetArray()) {
    EXPECT_STREQ(result["state"].GetString(), "mapped") << json::toString(result);
  }
  for (const auto& input : inputs) {
    const std::string record_id = parseJson(readFile(input.string()))["record_id"].GetString();
    ASSERT_TRUE(gw.waitForDeliveries(record_id, "delivered")) << record_id << ": " << gw.status(record_id).body;
  }
  // Each mapped resource is at the partner once (several golden records share resources, e.g.
  // the same patient, so count distinct identifiers).
  std::set<std::string> checked;
  for (const auto& input : inputs) {
    std::string expected_path = input.string();
    expected_path.replace(expected_path.size() - std::string(".input.json").size(), std::string::npos, ".expected.json");
    auto expected = parseJson(readFile(expected_path));
    std::vector<const rapidjson::Value*> resources;
    if (expected.IsArray()) {
      for (const auto& v : expected.GetArray()) resources.push_back(&v);
    } else {
      resources.push_back(&expected);
    }
    for (const auto* resource : resources) {
      const auto& id = (*resource)["identifier"][0];
      // The golden files were made with another clinic identifier base than this gateway's.
      std::string system = id["system"].GetString();
      const std::string golden_base = "https://ids.clinic-c1.example/";
      if (system.rfind(golden_base, 0) == 0) system = "https://ids.c1.example.org/" + system.substr(golden_base.size());
      const std::string key = std::string((*resource)["resourceType"].GetString()) + "|" + system + "|" +
                              id["value"].GetString();
      if (!checked.insert(key).second) continue;
      EXPECT_EQ(partner_->count((*resource)["resourceType"].GetString(), system, id["value"].GetString()), 1) << key;
    }
  }
  EXPECT_GT(checked.size(), 20u);
}

// A newer version of a harm-reduction service without one of its items deletes that item's
// Observation at the partner (conditional DELETE in the same transaction), and keeps the rest.
TEST_F(GatewayEndToEnd, AnItemDroppedByANewVersionIsDeletedAtThePartner) {
  auto& gw = startGateway();
  const auto service = [](const std::string& items) {
    return R"({"record_id":"c1:hr:H-7","record_type":"harm_reduction_service","clinic":"c1","program":"otp",
      "recorded_at":"2026-11-20T17:00:00-05:00","patient":{"mrn":"A12345"},
      "service":{"id":"H-7","date":"2026-11-20","items":[)" +
           items + "]}}";
  };
  ASSERT_EQ(gw.post(service(R"({"kind":"naloxone_kit","quantity":2},{"kind":"syringes","quantity":50})")).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:hr:H-7", "delivered"));
  const std::string system = "https://ids.c1.example.org/harm-reduction-service";
  ASSERT_EQ(partner_->count("Observation", system, "H-7:syringes"), 1);
  ASSERT_EQ(gw.post(service(R"({"kind":"naloxone_kit","quantity":2})")).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:hr:H-7", "delivered")) << gw.status("c1:hr:H-7").body;
  EXPECT_EQ(partner_->count("Observation", system, "H-7:syringes"), 0) << "deleted with the new version";
  EXPECT_EQ(partner_->count("Observation", system, "H-7:naloxone_kit"), 1);
}

TEST_F(GatewayEndToEnd, CredentialsAreChecked) {
  auto& gw = startGateway();
  EXPECT_EQ(gw.post(prescriptionRecord(), "application/json", "wrong-token-xxxxxxxx").status, 401);
  auto no_token = tlsRequest(gw.port(), gw.clientTls(), "POST", "/v1/records", prescriptionRecord(),
                             {{"Content-Type", "application/json"}});
  EXPECT_EQ(no_token.status, 401);
  EXPECT_THAT(no_token.header("WWW-Authenticate"), ::testing::StartsWith("Bearer"));
  EXPECT_EQ(gw.post(prescriptionRecord(), "application/json", "dev-compliance").status, 403);
  EXPECT_THAT(gw.log(), Not(HasSubstr("wrong-token-xxxxxxxx")));
  EXPECT_THAT(gw.log(), HasSubstr("auth_failed"));

  // TLS: the listener requires a client certificate from the configured CA, still valid.
  auto tls = gw.clientTls();
  tls.cert_file.clear();
  tls.key_file.clear();
  EXPECT_TRUE(tlsRequest(gw.port(), tls, "GET", "/healthz").error) << "no client certificate";
  tls.cert_file = devPkiFile("expired-client.crt");
  tls.key_file = devPkiFile("expired-client.key");
  EXPECT_TRUE(tlsRequest(gw.port(), tls, "GET", "/healthz").error) << "expired client certificate";
  tls.cert_file = devPkiFile("rogue-client.crt");
  tls.key_file = devPkiFile("rogue-client.key");
  EXPECT_TRUE(tlsRequest(gw.port(), tls, "GET", "/healthz").error) << "client certificate from another CA";
  tls = gw.clientTls();
  tls.max_tls_version = TLS1_1_VERSION;
  tls.allow_legacy = true;
  EXPECT_TRUE(tlsRequest(gw.port(), tls, "GET", "/healthz").error) << "TLS 1.1";
  EXPECT_EQ(tlsRequest(gw.port(), gw.clientTls(), "GET", "/healthz").status, 200);
}

// Minimum necessary: a compliance + admin token for clinic c1 reads nothing of clinic c2, on any
// route, and a route that would read every clinic needs a token for every clinic.
TEST_F(GatewayEndToEnd, AComplianceAndAdminTokenForOneClinicReadsNothingOfAnother) {
  auto& gw = startGateway();
  const std::string c1_only = "test-compliance-c1";
  for (const char* target :
       {"/v1/consents?clinic=c2&mrn=A12345", "/v1/records/c2:rx:1?clinic=c2", "/v1/audit/decisions?clinic=c2",
        "/v1/audit/decisions?clinic=c2&mrn=A12345", "/v1/audit/decisions"}) {
    auto r = gw.request("GET", target, "", c1_only);
    EXPECT_EQ(r.status, 403) << target << ": " << r.body;
  }
  EXPECT_EQ(gw.request("GET", "/v1/consents?clinic=c1&mrn=A12345", "", c1_only).status, 200);
  EXPECT_EQ(gw.request("GET", "/v1/audit/decisions?clinic=c1", "", c1_only).status, 200);
}

TEST_F(GatewayEndToEnd, RetryingItemsShowWhyAndWhen) {
  auto& gw = startGateway();
  ASSERT_EQ(partner_->admin("POST", "faults", R"({"status":503,"count":100000})").status / 100, 2);
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "retrying"));
  auto status = parseJson(gw.status("c1:rx:9001").body);
  const auto& d = status["deliveries"][0];
  EXPECT_THAT(d["last_error"].GetString(), HasSubstr("503"));
  EXPECT_TRUE(d.HasMember("next_attempt_at"));
  partner_->admin("DELETE", "faults");
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered"));
}

TEST_F(GatewayEndToEnd, RecordStatusIsReadableOnlyByItsClinicOrCompliance) {
  auto& gw = startGateway();
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  auto own = gw.status("c1:rx:9001");
  EXPECT_EQ(own.status, 200);
  auto other_clinic = tlsRequest(gw.port(), gw.clientTls(), "GET", "/v1/records/c1:rx:9001?clinic=c2", {},
                                 {{"Authorization", "Bearer dev-ingest-c1"}});
  EXPECT_EQ(other_clinic.status, 403);
  EXPECT_EQ(gw.status("c1:rx:9001", "dev-compliance").status, 200);
  auto no_clinic = tlsRequest(gw.port(), gw.clientTls(), "GET", "/v1/records/c1:rx:9001", {},
                              {{"Authorization", "Bearer dev-ingest-c1"}});
  EXPECT_EQ(no_clinic.status, 400);
  EXPECT_THAT(no_clinic.body, HasSubstr("OperationOutcome"));
  EXPECT_EQ(gw.status("c1:rx:nope").status, 404);

  // Each answered read is in the audit log with its caller; refused and empty reads return no data.
  auto reads = gw.request("GET", "/v1/audit/decisions?kind=record-read&clinic=c1&mrn=A12345", "", "dev-compliance");
  ASSERT_EQ(reads.status, 200) << reads.body;
  const auto page = parseJson(reads.body);
  std::vector<std::string> actors;
  for (const auto& e : page["entries"].GetArray()) {
    actors.emplace_back(e["actor"].GetString());
    EXPECT_STREQ(e["clinic"].GetString(), "c1");
    EXPECT_THAT(e["detail"]["record_key"].GetString(), Not(HasSubstr("9001"))) << "a pseudonym, not the record id";
  }
  EXPECT_THAT(actors, ::testing::UnorderedElementsAre("clinic-c1", "compliance"));
}

TEST_F(GatewayEndToEnd, GracefulStopExitsCleanly) {
  auto& gw = startGateway();
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  EXPECT_EQ(gw.stop(), 0);
  EXPECT_THAT(gw.log(), HasSubstr("INFO main stopped"));
}

TEST_F(GatewayEndToEnd, MappingTestEndpointDryRunsForEngineersOnly) {
  auto& gw = startGateway();
  auto single = gw.request("POST", "/v1/mappings/mat_prescription/$test", prescriptionRecord("7001"), "dev-engineer");
  ASSERT_EQ(single.status, 200) << single.body;
  auto d = parseJson(single.body);
  ASSERT_TRUE(d.IsObject()) << single.body;
  EXPECT_EQ(d["passed"].GetUint(), 1u) << single.body;
  EXPECT_STREQ(d["results"][0]["resources"][0]["resourceType"].GetString(), "MedicationRequest");
  EXPECT_TRUE(d["results"][0]["outcomes"][0].IsObject());
  // The encoded form of "$" reaches the same route.
  EXPECT_EQ(gw.request("POST", "/v1/mappings/mat_prescription/%24test", prescriptionRecord("7001"), "dev-engineer").status,
            200);

  // Golden cases: one that matches, one whose expectation differs at one element.
  const std::string repo = GW_REPO_DIR;
  const std::string input = readFile(repo + "/mappers/clinic-v1/golden/prescription_full.input.json");
  const std::string expected = readFile(repo + "/mappers/clinic-v1/golden/prescription_full.expected.json");
  std::string wrong = expected;
  const auto at = wrong.find("\"intent\"");
  ASSERT_NE(at, std::string::npos);
  wrong.replace(wrong.find("\"order\"", at), 7, "\"plan\"");
  auto cases = gw.request("POST", "/v1/mappings/mat_prescription/$test",
                          "[{\"input\":" + input + ",\"expected\":" + expected + "},{\"input\":" + input +
                              ",\"expected\":" + wrong + "}]",
                          "dev-engineer");
  ASSERT_EQ(cases.status, 200) << cases.body;
  auto c = parseJson(cases.body);
  EXPECT_EQ(c["passed"].GetUint(), 1u) << cases.body;
  EXPECT_EQ(c["failed"].GetUint(), 1u);
  ASSERT_EQ(c["results"][1]["differences"].Size(), 1u) << cases.body;
  EXPECT_STREQ(c["results"][1]["differences"][0]["path"].GetString(), "$[0].intent");

  EXPECT_EQ(gw.request("POST", "/v1/mappings/no_such_type/$test", prescriptionRecord(), "dev-engineer").status, 404);
  EXPECT_EQ(gw.request("POST", "/v1/mappings/mat_prescription/$test", prescriptionRecord(), "dev-ingest-c1").status, 403);
  EXPECT_EQ(gw.request("POST", "/v1/mappings/mat_prescription/$test", prescriptionRecord(), "dev-admin").status, 403);
  // A dry run stores and sends nothing.
  EXPECT_EQ(gw.status("c1:rx:7001").status, 404);
  EXPECT_EQ(partnerWrites(), 0);
}

TEST_F(GatewayEndToEnd, ReloadKeepsTheRunningSetOnABrokenMapperAndSwapsInAFixedOne) {
  const std::string format = dir_ + "/format";
  fs::copy(std::string(GW_REPO_DIR) + "/mappers/clinic-v1", format, fs::copy_options::recursive);
  GatewayOptions options;
  options.format_dir = format;
  auto& gw = startGateway(options);
  auto test_overdose = [&] { return gw.request("POST", "/v1/mappings/overdose_event/$test", "{}", "dev-engineer").status; };
  ASSERT_EQ(test_overdose(), 200);

  // A broken mapper: rejected with file:line:column, the running set keeps mapping.
  const std::string patient_mapper = readFile(format + "/patient.mapper.json");
  std::ofstream(format + "/patient.mapper.json") << "{\n  \"record_type\": \"patient\",\n  oops\n}\n";
  fs::rename(format + "/overdose_event.mapper.json", dir_ + "/overdose_event.mapper.json");
  auto rejected = gw.request("POST", "/v1/admin/reload", "", "dev-engineer");
  EXPECT_EQ(rejected.status, 422) << rejected.body;
  EXPECT_THAT(rejected.body, HasSubstr("patient.mapper.json:3:"));
  EXPECT_THAT(rejected.body, HasSubstr("running mapping set stays"));
  EXPECT_THAT(gw.log(), HasSubstr("reload_rejected"));
  EXPECT_EQ(gw.post(patientRecord()).status, 202);
  EXPECT_EQ(test_overdose(), 200);

  // A set that loads but maps wrongly (a misspelt FHIR element would make every later patient
  // invalid): its golden cases fail, so it is refused and the running set keeps serving.
  std::string misspelt = patient_mapper;
  ASSERT_NE(misspelt.find("\"birthDate\""), std::string::npos);
  misspelt.replace(misspelt.find("\"birthDate\""), 11, "\"birthdate\"");
  std::ofstream(format + "/patient.mapper.json") << misspelt;
  auto misspelt_reload = gw.request("POST", "/v1/admin/reload", "", "dev-admin");
  EXPECT_EQ(misspelt_reload.status, 422) << misspelt_reload.body;
  EXPECT_THAT(misspelt_reload.body, HasSubstr("golden cases fail"));
  EXPECT_THAT(misspelt_reload.body, HasSubstr("patient_full"));
  auto still_valid = gw.post(patientRecord());
  EXPECT_EQ(still_valid.status, 202);
  EXPECT_THAT(still_valid.body, HasSubstr("\"state\":\"mapped\""));

  // Fixed: the new set (without the overdose mapper) takes effect.
  std::ofstream(format + "/patient.mapper.json") << patient_mapper;
  EXPECT_EQ(gw.request("POST", "/v1/admin/reload", "", "dev-ingest-c1").status, 403);
  auto reloaded = gw.request("POST", "/v1/admin/reload", "", "dev-admin");
  EXPECT_EQ(reloaded.status, 200) << reloaded.body;
  EXPECT_THAT(reloaded.body, HasSubstr("\"status\":\"reloaded\""));
  EXPECT_EQ(test_overdose(), 404);
  EXPECT_EQ(gw.post(prescriptionRecord()).status, 202);

  // SIGHUP reloads too: the mapper is back.
  fs::rename(dir_ + "/overdose_event.mapper.json", format + "/overdose_event.mapper.json");
  gw.signal(SIGHUP);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (test_overdose() != 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(test_overdose(), 200);
  EXPECT_EQ(gw.stop(), 0);  // SIGHUP did not stop it
}

TEST_F(GatewayEndToEnd, IngestKeepsWorkingWhileTheMappingSetIsReloaded) {
  auto& gw = startGateway();
  std::atomic<bool> done{false};
  std::atomic<int> reloads{0};
  std::thread reloader([&] {
    while (!done) {
      if (gw.request("POST", "/v1/admin/reload", "", "dev-engineer").status == 200) ++reloads;
    }
  });
  int accepted = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = gw.post(prescriptionRecord(std::to_string(8000 + i)));
    if (r.status == 202 && r.body.find("\"status\":\"accepted\"") != std::string::npos) ++accepted;
  }
  done = true;
  reloader.join();
  EXPECT_EQ(accepted, 20);
  EXPECT_GT(reloads.load(), 0);
  EXPECT_TRUE(gw.waitForDeliveries("c1:rx:8019", "delivered"));
}

TEST_F(GatewayEndToEnd, ABurstOfReloadRequestsSharesReloads) {
  auto& gw = startGateway();
  constexpr int kRequests = 6;
  std::atomic<int> ok{0};
  std::atomic<int> coalesced{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < kRequests; ++i) {
    callers.emplace_back([&] {
      auto r = gw.request("POST", "/v1/admin/reload", "", "dev-engineer");
      if (r.status == 200) ++ok;
      if (r.body.find("\"coalesced\":true") != std::string::npos) ++coalesced;
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok.load(), kRequests);
  const std::string log = gw.log();
  int reloads = 0;
  for (std::size_t p = 0; (p = log.find("mapping reloaded", p)) != std::string::npos; ++p) ++reloads;
  EXPECT_EQ(reloads + coalesced.load(), kRequests) << "each request is answered by its own or a shared reload";
  EXPECT_GE(coalesced.load(), 1) << log;
}

TEST_F(GatewayEndToEnd, CsvExportRowsReachThePartnerAsObservations) {
  auto& gw = startGateway();
  const std::string csv = readFile(std::string(GW_REPO_DIR) + "/mappers/harm-reduction-weekly/examples/weekly.csv");
  auto r = gw.postCsv(csv, "harm-reduction-weekly/weekly-export");
  ASSERT_EQ(r.status, 202) << r.body;
  auto reply = parseJson(r.body);
  EXPECT_EQ(reply["accepted"].GetInt(), 3) << r.body;
  ASSERT_EQ(reply["results"].Size(), 3u);
  for (rapidjson::SizeType i = 0; i < 3; ++i) {
    EXPECT_EQ(reply["results"][i]["index"].GetUint(), i);
    EXPECT_EQ(reply["results"][i]["line"].GetUint(), i + 2) << "the CSV line of the row";
    EXPECT_STREQ(reply["results"][i]["state"].GetString(), "mapped");
  }
  for (const char* record_id : {"hrw:W47-001", "hrw:W47-002", "hrw:W47-003"}) {
    ASSERT_TRUE(gw.waitForDeliveries(record_id, "delivered")) << record_id << ": " << gw.status(record_id).body;
  }
  // One Observation per item given, found at the partner by its business identifier.
  const std::string system = "https://ids.c1.example.org/harm-reduction-service";
  for (const char* id : {"W47-001:naloxone_kit", "W47-001:syringes", "W47-001:fentanyl_test_strips", "W47-001:education",
                         "W47-002:naloxone_kit", "W47-002:fentanyl_test_strips", "W47-003:education", "W47-003:referral"}) {
    EXPECT_EQ(partner_->count("Observation", system, id), 1) << id;
  }
  EXPECT_EQ(partner_->count("Observation", system, "W47-002:syringes"), 0) << "a 0 in the export is no item";
  auto naloxone = partner_->search("Observation", system, "W47-001:naloxone_kit");
  EXPECT_EQ(naloxone["entry"][0]["resource"]["valueQuantity"]["value"].GetInt(), 2);
  // Each row's client became (a stub of) its Patient, by MRN.
  EXPECT_EQ(partner_->count("Patient", kMrnSystem, "HR-1001"), 1);

  // Errors: an unknown mapper names the available ones; a bad cell rejects its row only.
  auto unknown = gw.postCsv(csv, "nope");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr("harm-reduction-weekly/weekly-export"));
  auto bad = gw.postCsv(
      "Visit ID,Client ID,Visit Date,Site,Naloxone Kits,Syringes,FTS,Education,Referral\n"
      "W47-009,HR-1009,2026-11-20,,lots,,,,\n",
      "harm-reduction-weekly/weekly-export");
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_THAT(bad.body, HasSubstr("line 2, column 'Naloxone Kits'"));
  EXPECT_THAT(bad.body, Not(HasSubstr("lots")));
  EXPECT_THAT(gw.log(), Not(HasSubstr("HR-1001")));
}

}  // namespace
}  // namespace gw::test

// End to end, segmented disclosure: two real FHIR partners (Node + Medplum), one patient of a
// 42 CFR Part 2 program with a consent naming partner A for general and substance-use data.
// A receives the Part 2 data with its labels, the redisclosure notice and the Consent; B receives
// nothing; mental-health data reaches neither; a revocation stops what is queued; every decision
// is in the hash-chained log, and editing one log row makes verification fail at that row.
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/ids.hpp"
#include "gateway_fixture.hpp"
#include "store/audit_log.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

constexpr const char* kPartnerA = "st-mary";
constexpr const char* kPartnerB = "county-general";
constexpr const char* kConsentSystem = "https://ids.c1.example.org/consent";

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

std::string consent(const std::string& status, const std::string& categories, const std::string& recipient = kPartnerA) {
  return consentRecord("A12345", recipient, categories, status, "77");
}

std::string phq9(const std::string& id) {
  return R"({"record_id":"c1:scr:)" + id + R"(","record_type":"screening","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:00:00-05:00","patient":{"mrn":"A12345"},
 "screening":{"id":")" +
         id + R"(","instrument":"phq9","total_score":14,"administered_at":"2026-11-20T09:10:00-05:00"}})";
}

bool hasSecurity(const rapidjson::Value& resource, const std::string& code) {
  if (!resource.HasMember("meta") || !resource["meta"].HasMember("security")) return false;
  for (const auto& c : resource["meta"]["security"].GetArray()) {
    if (code == c["code"].GetString()) return true;
  }
  return false;
}

int writesTo(Partner& partner) {
  auto d = parseJson(partner.admin("GET", "requests").body);
  int writes = 0;
  for (const auto& req : d.GetArray()) {
    if (std::string(req["method"].GetString()) != "GET") ++writes;
  }
  return writes;
}

class PrivacyEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_dir_ = (fs::temp_directory_path() / ("gw-privacy-" + ids::randomHex(6))).string();
    fs::create_directories(suite_dir_);
    partner_a_ = new Partner(suite_dir_, "partner-a");
    partner_b_ = new Partner(suite_dir_, "partner-b");
  }
  static void TearDownTestSuite() {
    delete partner_a_;
    delete partner_b_;
    fs::remove_all(suite_dir_);
  }
  void SetUp() override {
    partner_a_->reset();
    partner_b_->reset();
    dir_ = suite_dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
    GatewayOptions options;
    options.partner_url = partner_a_->baseUrl();
    options.second_partner_url = partner_b_->baseUrl();
    // The anchor sink lives outside the database folder (the config refuses it inside).
    fs::create_directories(anchorDir());
    options.anchor_file = anchorFile();
    gateway_ = std::make_unique<Gateway>(dir_, options);
    gateway_->start();
  }
  void TearDown() override {
    if (HasFailure() && gateway_) std::cerr << "---- gateway log ----\n" << gateway_->log();
    gateway_.reset();
  }

  std::string anchorDir() const { return dir_ + ".anchors"; }
  std::string anchorFile() const { return anchorDir() + "/audit-anchors.log"; }

  HttpResponse accepted(const std::string& record) {
    auto r = gateway_->post(record);
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_THAT(r.body, HasSubstr("\"status\":\"accepted\"")) << r.body;
    return r;
  }
  rapidjson::Document decisions(const std::string& query) {
    auto r = gateway_->request("GET", "/v1/audit/decisions?" + query, "", "dev-compliance");
    EXPECT_EQ(r.status, 200) << r.body;
    return parseJson(r.body);
  }
  // Proves a negative without sleeping: another patient's record, consented for partner A and
  // posted last, is delivered. Partner A's worker sends its due items in the order they were
  // queued, so by then it has sent anything (wrongly) queued for partner A before the marker.
  void deliverMarkerToPartnerA() {
    accepted(consentRecord("M-1", kPartnerA, R"(["general","sud"])", "active", "marker-consent"));
    accepted(prescriptionRecord("marker", "M-1"));
    ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:marker", "delivered")) << gateway_->status("c1:rx:marker").body;
  }
  // Entries of the audit answer matching kind/partner/outcome (and resource type when given).
  static int count(const rapidjson::Document& page, const std::string& kind, const std::string& partner,
                   const std::string& outcome, const std::string& resource_type = "") {
    int n = 0;
    for (const auto& e : page["entries"].GetArray()) {
      if (kind == e["kind"].GetString() && partner == e["partner_id"].GetString() && outcome == e["outcome"].GetString() &&
          (resource_type.empty() || resource_type == e["resource_type"].GetString())) {
        ++n;
      }
    }
    return n;
  }

  static inline std::string suite_dir_;
  static inline Partner* partner_a_ = nullptr;
  static inline Partner* partner_b_ = nullptr;
  std::string dir_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(PrivacyEndToEnd, AConsentNamingOnePartnerDecidesWhatEachPartnerReceives) {
  accepted(consent("active", R"(["general","sud"])"));
  accepted(patientRecord());
  accepted(prescriptionRecord("9001"));
  auto screening = accepted(phq9("S-1"));
  EXPECT_THAT(screening.body, HasSubstr("\"queued_for\":[]")) << "PHQ-9 is mental-health data: not covered";

  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9001", "delivered")) << gateway_->status("c1:rx:9001").body;
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:pt:A12345", "delivered"));

  // Partner A: the Part 2 data, labelled, with the notice and the Consent in the same Bundle.
  auto rx = partner_a_->search("MedicationRequest", kRxSystem, "9001");
  ASSERT_EQ(rx["entry"].Size(), 1u);
  const auto& med = rx["entry"][0]["resource"];
  for (const char* code : {"R", "SUD", "OPIOIDUD", "42CFRPart2", "NORDSCLCD", "CPLYCD"}) {
    EXPECT_TRUE(hasSecurity(med, code)) << code;
  }
  EXPECT_THAT(partner_a_->get("MedicationRequest?identifier=" + std::string(kRxSystem) + "%7C9001").body,
              HasSubstr("42 CFR part 2 prohibits unauthorized use or disclosure of these records"));
  EXPECT_EQ(partner_a_->count("Consent", kConsentSystem, "77"), 1) << "the consent travels with Part 2 data";
  EXPECT_EQ(partner_a_->count("Patient", kMrnSystem, "A12345"), 1);
  auto requests = parseJson(partner_a_->admin("GET", "requests?bodies=1").body);
  bool bundle_labelled = false;
  for (const auto& req : requests.GetArray()) {
    if (req.HasMember("body") && req["body"].IsString()) {
      auto bundle = parseJson(req["body"].GetString());
      if (bundle.IsObject() && bundle.HasMember("meta") && hasSecurity(bundle, "R")) bundle_labelled = true;
    }
  }
  EXPECT_TRUE(bundle_labelled) << "a Bundle carries the highest confidentiality of its entries";

  // Partner B has no consent: nothing at all; the screening reached neither partner.
  EXPECT_EQ(writesTo(*partner_b_), 0);
  EXPECT_EQ(partner_a_->count("Observation", "https://ids.c1.example.org/screening", "S-1"), 0);

  // The log has every decision, with the reason.
  auto page = decisions("clinic=c1&mrn=A12345&limit=1000");
  EXPECT_GE(count(page, "decision", kPartnerA, "permit", "MedicationRequest"), 1);
  EXPECT_GE(count(page, "decision", kPartnerB, "deny", "MedicationRequest"), 1);
  EXPECT_GE(count(page, "decision", kPartnerA, "deny", "Observation"), 1);
  EXPECT_GE(count(page, "disclosure", kPartnerA, "delivered"), 1);
  EXPECT_EQ(count(page, "consent", kPartnerA, "ok", "Consent"), 1) << "the consent's registration";
  bool mh_reason = false;
  for (const auto& e : page["entries"].GetArray()) {
    if (std::string(e["reason"].GetString()) == "class-not-covered:mh") mh_reason = true;
    EXPECT_FALSE(e.HasMember("detail") && e["detail"].IsObject() && e["detail"].HasMember("name"));
  }
  EXPECT_TRUE(mh_reason);
  auto verify = gateway_->request("GET", "/v1/audit/verify", "", "dev-compliance");
  EXPECT_EQ(verify.status, 200) << verify.body;
  EXPECT_THAT(verify.body, HasSubstr("\"ok\":true"));
  EXPECT_EQ(gateway_->request("GET", "/v1/audit/decisions?clinic=c1&mrn=A12345", "", "dev-ingest-c1").status, 403);
  auto csv = gateway_->request("GET", "/v1/audit/decisions?clinic=c1&mrn=A12345&format=csv", "", "dev-compliance");
  EXPECT_EQ(csv.status, 200);
  EXPECT_THAT(csv.body, HasSubstr("permit"));
  // Reading the log is itself logged.
  EXPECT_GE(count(decisions("kind=audit-read&limit=1000"), "audit-read", "", "ok"), 2);
  EXPECT_THAT(gateway_->log(), Not(HasSubstr("A12345")));
}

TEST_F(PrivacyEndToEnd, ARevocationCancelsWhatIsQueuedAndStopsWhatFollows) {
  accepted(consent("active", R"(["general","sud"])"));
  accepted(patientRecord());
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:pt:A12345", "delivered"));
  // Partner A is down: the next prescription waits in the outbox.
  ASSERT_EQ(partner_a_->admin("POST", "faults", R"({"status":503,"count":100000})").status / 100, 2);
  accepted(prescriptionRecord("9002"));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9002", "retrying"));
  accepted(consent("revoked", R"(["general","sud"])"));
  EXPECT_TRUE(gateway_->waitForDeliveries("c1:rx:9002", "cancelled")) << gateway_->status("c1:rx:9002").body;
  partner_a_->admin("DELETE", "faults");
  auto after = accepted(prescriptionRecord("9003"));
  EXPECT_THAT(after.body, HasSubstr("\"queued_for\":[]"));
  deliverMarkerToPartnerA();
  EXPECT_EQ(partner_a_->count("MedicationRequest", kRxSystem, "9002"), 0);
  EXPECT_EQ(partner_a_->count("MedicationRequest", kRxSystem, "9003"), 0);

  auto page = decisions("clinic=c1&mrn=A12345&partner_id=st-mary&limit=1000");
  EXPECT_GE(count(page, "cancel", kPartnerA, "cancelled", "MedicationRequest"), 1);
  bool revoked_reason = false;
  for (const auto& e : page["entries"].GetArray()) {
    if (std::string(e["reason"].GetString()) == "revoked") revoked_reason = true;
  }
  EXPECT_TRUE(revoked_reason);

  // Consent history for the compliance officer: both versions, newest first.
  auto consents = gateway_->request("GET", "/v1/consents?clinic=c1&mrn=A12345", "", "dev-compliance");
  ASSERT_EQ(consents.status, 200) << consents.body;
  EXPECT_THAT(consents.body, HasSubstr("\"status\":\"inactive\""));
  EXPECT_THAT(consents.body, HasSubstr("\"status\":\"active\""));
}

TEST_F(PrivacyEndToEnd, DataPostedBeforeItsConsentIsSentOnceTheConsentArrives) {
  auto early = accepted(prescriptionRecord("9004"));
  EXPECT_THAT(early.body, HasSubstr("\"queued_for\":[]")) << "no consent yet: nothing may leave";
  deliverMarkerToPartnerA();
  EXPECT_EQ(writesTo(*partner_a_), 1) << "the marker's transaction only";
  accepted(consent("active", R"(["general","sud"])"));
  EXPECT_TRUE(gateway_->waitForDeliveries("c1:rx:9004", "delivered")) << gateway_->status("c1:rx:9004").body;
  EXPECT_EQ(partner_a_->count("MedicationRequest", kRxSystem, "9004"), 1);
  EXPECT_EQ(writesTo(*partner_b_), 0);
}

std::string encounterRecord(const std::string& id, const std::string& program, const std::string& mrn,
                            const std::string& visit_type, const std::string& modality = "telehealth_video") {
  return R"({"record_id":"c1:enc:)" + id + R"(","record_type":"encounter","clinic":"c1","program":")" + program +
         R"(","recorded_at":"2026-12-01T10:00:00-05:00","patient":{"mrn":")" + mrn + R"("},
 "encounter":{"id":")" +
         id + R"(","status":"finished","visit_type":")" + visit_type + R"(","modality":")" + modality +
         R"(","start":"2026-12-01T09:00:00-05:00","end":"2026-12-01T09:50:00-05:00"}})";
}

constexpr const char* kEncounterSystem = "https://ids.c1.example.org/encounter";

// Encounters (issue 10 point 6): a Part 2 program's visit reaches the partner its consent names,
// labelled as Part 2 data; a psychiatric visit waits for a consent that covers mh, a court-
// mandated program's visit (not a Part 2 program) for one that covers sud, and each then arrives
// with its labels and, for the court-mandated one, its setting. Partner B, with no consent, gets
// nothing. The record of a visit names it by identifier.
TEST_F(PrivacyEndToEnd, AnEncounterReachesThePartnerWithItsLabelsOnlyWhenAConsentCoversIt) {
  // A court-mandated program that is not Part 2: its setting alone must make its data sud.
  ASSERT_EQ(gateway_->stop(), 0);
  {
    std::ifstream in(gateway_->configPath());
    std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string hr = R"({"id": "hr", "part2": false})";
    ASSERT_NE(config.find(hr), std::string::npos);
    config.replace(config.find(hr), hr.size(), hr + R"(, {"id": "dc", "part2": false, "setting": "court-mandated"})");
    std::ofstream(gateway_->configPath(), std::ios::trunc) << config;
  }
  gateway_->start();

  accepted(consent("active", R"(["general","sud"])"));                                  // A12345: no mh
  accepted(consentRecord("G-1", kPartnerA, R"(["general"])", "active", "g1-consent"));  // G-1: no sud
  accepted(encounterRecord("E-1", "otp", "A12345", "counseling_group"));
  accepted(R"({"record_id":"c1:lab:L-9","record_type":"lab_result","clinic":"c1","program":"otp",
 "recorded_at":"2026-12-01T10:00:00-05:00","patient":{"mrn":"A12345"},"encounter_id":"E-1",
 "result":{"id":"L-9","loinc":"59673-4","name":"fentaNYL [Presence] in Urine by Screen method","value":"negative",
   "collected_at":"2026-12-01T09:10:00-05:00","status":"final"}})");
  auto psychiatric = accepted(encounterRecord("E-2", "otp", "A12345", "psychiatric"));
  EXPECT_THAT(psychiatric.body, HasSubstr("\"queued_for\":[]")) << "mh is not covered";
  auto court = accepted(encounterRecord("E-3", "dc", "G-1", "intake", "telephone"));
  EXPECT_THAT(court.body, HasSubstr("\"queued_for\":[]")) << "court-mandated is sud, the consent covers general only";
  accepted(encounterRecord("E-4", "hr", "G-1", "medical", "in_person"));

  ASSERT_TRUE(gateway_->waitForDeliveries("c1:enc:E-1", "delivered")) << gateway_->status("c1:enc:E-1").body;
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:lab:L-9", "delivered")) << gateway_->status("c1:lab:L-9").body;
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:enc:E-4", "delivered")) << gateway_->status("c1:enc:E-4").body;
  deliverMarkerToPartnerA();

  auto e1 = partner_a_->search("Encounter", kEncounterSystem, "E-1");
  ASSERT_EQ(e1["entry"].Size(), 1u);
  const auto& visit = e1["entry"][0]["resource"];
  for (const char* code : {"R", "SUD", "42CFRPart2", "NORDSCLCD", "CPLYCD"}) EXPECT_TRUE(hasSecurity(visit, code)) << code;
  EXPECT_FALSE(hasSecurity(visit, "MH"));
  EXPECT_STREQ(visit["class"]["code"].GetString(), "VR");
  EXPECT_THAT(partner_a_->get("Encounter?identifier=" + std::string(kEncounterSystem) + "%7CE-1").body,
              HasSubstr(R"("code":"VIDEOCONF")"));
  auto lab = partner_a_->search("Observation", "https://ids.c1.example.org/lab-result", "L-9");
  ASSERT_EQ(lab["entry"].Size(), 1u);
  EXPECT_STREQ(lab["entry"][0]["resource"]["encounter"]["identifier"]["value"].GetString(), "E-1");
  auto e4 = partner_a_->search("Encounter", kEncounterSystem, "E-4");
  ASSERT_EQ(e4["entry"].Size(), 1u);
  EXPECT_TRUE(hasSecurity(e4["entry"][0]["resource"], "N")) << "a medical visit of a program that is not Part 2";
  EXPECT_EQ(partner_a_->count("Encounter", kEncounterSystem, "E-2"), 0);
  EXPECT_EQ(partner_a_->count("Encounter", kEncounterSystem, "E-3"), 0);
  EXPECT_EQ(writesTo(*partner_b_), 0);
  auto page = decisions("clinic=c1&limit=1000");
  bool mh_denied = false;
  bool sud_denied = false;
  for (const auto& e : page["entries"].GetArray()) {
    if (std::string(e["resource_type"].GetString()) != "Encounter") continue;
    if (std::string(e["reason"].GetString()) == "class-not-covered:mh") mh_denied = true;
    if (std::string(e["reason"].GetString()) == "class-not-covered:sud") sud_denied = true;
  }
  EXPECT_TRUE(mh_denied);
  EXPECT_TRUE(sud_denied);

  // Consents that cover them: each held visit then arrives once, labelled.
  accepted(consent("active", R"(["general","sud","mh"])"));
  accepted(consentRecord("G-1", kPartnerA, R"(["general","sud"])", "active", "g1-consent"));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:enc:E-2", "delivered")) << gateway_->status("c1:enc:E-2").body;
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:enc:E-3", "delivered")) << gateway_->status("c1:enc:E-3").body;
  auto e2 = partner_a_->search("Encounter", kEncounterSystem, "E-2");
  ASSERT_EQ(e2["entry"].Size(), 1u);
  for (const char* code : {"R", "SUD", "MH", "42CFRPart2"})
    EXPECT_TRUE(hasSecurity(e2["entry"][0]["resource"], code)) << code;
  auto e3 = partner_a_->search("Encounter", kEncounterSystem, "E-3");
  ASSERT_EQ(e3["entry"].Size(), 1u);
  const auto& mandated = e3["entry"][0]["resource"];
  EXPECT_TRUE(hasSecurity(mandated, "R"));
  EXPECT_TRUE(hasSecurity(mandated, "SUD"));
  EXPECT_FALSE(hasSecurity(mandated, "42CFRPart2")) << "not a Part 2 program";
  EXPECT_THAT(partner_a_->get("Encounter?identifier=" + std::string(kEncounterSystem) + "%7CE-3").body,
              HasSubstr(R"("url":"https://fhir-gateway.dev/fhir/StructureDefinition/program-setting")"));
  EXPECT_EQ(writesTo(*partner_b_), 0);
}

TEST_F(PrivacyEndToEnd, AnInvalidPart2ConsentIsRejectedNamingEachMissingElement) {
  std::string record = consent("active", R"(["general","sud"])");
  // No end, no purposes: both named.
  const auto end = record.find(R"(,"end":")");
  record.erase(end, record.find('}', end) - end);
  record.replace(record.find(R"("purposes":["TREAT"])"), 20, R"("purposes":[])");
  auto r = gateway_->post(record);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_THAT(r.body, HasSubstr("consent.effective.end"));
  EXPECT_THAT(r.body, HasSubstr("consent.purposes"));
  EXPECT_EQ(gateway_->request("GET", "/v1/consents?clinic=c1&mrn=A12345", "", "dev-compliance").body.find("\"77\""),
            std::string::npos);
}

// Issue 9, defect 10: whoever copies the running gateway's database, WAL and shared memory finds
// no MRN, no record id (c1:pt:A12345 embeds the MRN) and no patient FHIR id (a UUIDv5 of clinic +
// MRN) in clear, and a compliance officer still finds the patient by clinic + MRN.
TEST_F(PrivacyEndToEnd, TheDatabaseFilesHoldNoMrnNoRecordIdAndNoPatientIdInClear) {
  accepted(consent("active", R"(["general","sud"])"));
  accepted(patientRecord("A12345"));
  accepted(prescriptionRecord("9006"));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9006", "delivered")) << gateway_->status("c1:rx:9006").body;
  const std::vector<std::string> clear = {"A12345", "c1:pt:A12345", "c1:rx:9006", "c1:cn:77",
                                          ids::resourceId("c1", "Patient", "A12345")};
  int files = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string file = dir_ + "/gateway.db" + suffix;
    if (!fs::exists(file)) continue;
    ++files;
    const std::string bytes = readFile(file);
    for (const auto& c : clear) EXPECT_EQ(bytes.find(c), std::string::npos) << c << " is in clear in " << file;
  }
  EXPECT_EQ(files, 3) << "the gateway runs: its WAL and shared memory exist";
  auto consents = gateway_->request("GET", "/v1/consents?clinic=c1&mrn=A12345", "", "dev-compliance");
  EXPECT_EQ(consents.status, 200) << consents.body;
  EXPECT_THAT(consents.body, HasSubstr(R"("consent_id":"77")"));
  EXPECT_GE(count(decisions("clinic=c1&mrn=A12345"), "disclosure", kPartnerA, "delivered"), 1);
  EXPECT_EQ(gateway_->status("c1:pt:A12345").status, 200);
}

TEST_F(PrivacyEndToEnd, EditingOneLogRowMakesVerifyFailAtThatRow) {
  accepted(consent("active", R"(["general","sud"])"));
  accepted(prescriptionRecord("9005"));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9005", "delivered"));
  ASSERT_EQ(gateway_->stop(), 0);

  const std::string cli = std::string(GW_GATEWAY_BIN) + " audit verify --config " + gateway_->configPath();
  EXPECT_EQ(std::system((cli + " > " + dir_ + "/verify-ok.txt 2>&1").c_str()), 0) << readFile(dir_ + "/verify-ok.txt");
  {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session db("SQLite", dir_ + "/gateway.db");
    // Flip one decision, as someone hiding a disclosure (or inventing a permit) would.
    db << "UPDATE audit_log SET outcome = CASE outcome WHEN 'permit' THEN 'deny' ELSE 'permit' END WHERE seq = 3",
        Poco::Data::Keywords::now;
  }
  const int status = std::system((cli + " > " + dir_ + "/verify-broken.txt 2>&1").c_str());
  EXPECT_NE(status, 0);
  const std::string broken = readFile(dir_ + "/verify-broken.txt");
  EXPECT_THAT(broken, HasSubstr(R"("seq":3,)")) << broken;
  EXPECT_THAT(broken, HasSubstr("hash-mismatch")) << broken;
  EXPECT_THAT(broken, HasSubstr("first broken row seq 3")) << broken;
}

struct CliResult {
  int status;
  std::string out;
};

// The whole file's bytes and its mtime: what a read-only verify must leave as it was.
std::string fileState(const std::string& path) {
  std::error_code ec;
  const auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
  return readFile(path) + "|" + std::to_string(mtime);
}

// The anchors the gateway publishes catch what the chain alone cannot: a log cut short, a log
// rewritten from seq 1 by someone without the master key (with plain SHA-256, the published
// unkeyed format) and a doctored anchor line. `audit verify --read-only` and `--database COPY`
// leave the database untouched.
TEST_F(PrivacyEndToEnd, PublishedAnchorsCatchACutOrRewrittenLogAndAForgedAnchorLine) {
  accepted(consent("active", R"(["general","sud"])"));
  accepted(prescriptionRecord("9006"));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9006", "delivered"));

  // Published while running (every second here): GET /v1/audit/verify checks against it.
  std::string body;
  for (int i = 0; i < 100; ++i) {
    auto verify = gateway_->request("GET", "/v1/audit/verify", "", "dev-compliance");
    ASSERT_EQ(verify.status, 200) << verify.body;
    body = verify.body;
    if (body.find(R"("anchor_check":{"status":"ok","source":"file )" + anchorFile()) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_THAT(body, HasSubstr(R"("anchor_check":{"status":"ok","source":"file )" + anchorFile())) << body;
  EXPECT_THAT(body, HasSubstr(R"("ok":true)"));
  EXPECT_THAT(body, HasSubstr(R"("keyed_from_seq":1,"unkeyed_rows":0)"));
  auto forged_param = gateway_->request("GET", "/v1/audit/verify?anchor=1:v2:" + std::string(64, 'a'), "", "dev-admin");
  EXPECT_THAT(forged_param.body, HasSubstr(R"("anchor_check":{"status":"rewritten","source":"argument")"))
      << forged_param.body;
  ASSERT_EQ(gateway_->stop(), 0);  // publishes the head once more
  EXPECT_EQ(fs::status(anchorFile()).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);

  const std::string db = dir_ + "/gateway.db";
  const auto cli = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {GW_GATEWAY_BIN, "audit", "verify", "--config", gateway_->configPath()};
    args.insert(args.end(), extra.begin(), extra.end());
    ChildProcess p(args, dir_ + "/cli.out", dir_ + "/cli.err");
    return CliResult{p.wait(std::chrono::seconds(30)).value_or(-1),
                     readFile(dir_ + "/cli.out") + readFile(dir_ + "/cli.err")};
  };

  // Read-only against the anchor published at shutdown: the database is not touched.
  ASSERT_FALSE(fs::exists(db + "-wal"));
  const auto before = fileState(db);
  auto intact = cli({"--read-only"});
  EXPECT_EQ(intact.status, 0) << intact.out;
  EXPECT_THAT(intact.out, HasSubstr(R"("anchor_check":{"status":"ok","source":"file )" + anchorFile()));
  rapidjson::Document report = parseJson(intact.out.substr(0, intact.out.find('\n')));
  ASSERT_TRUE(report.IsObject()) << intact.out;
  EXPECT_EQ(report["anchor_check"]["seq"].GetInt64(), report["last_seq"].GetInt64()) << "the head at shutdown";
  EXPECT_EQ(fileState(db), before) << "verify --read-only changed the database";
  EXPECT_FALSE(fs::exists(db + "-wal"));
  EXPECT_FALSE(fs::exists(db + "-shm"));
  const std::int64_t head = report["last_seq"].GetInt64();

  // A copy with its tail cut: truncated.
  const std::string cut = dir_ + ".anchors/cut.db";
  fs::copy_file(db, cut);
  {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session s("SQLite", cut);
    s << "DELETE FROM audit_log WHERE seq > " + std::to_string(head - 2), Poco::Data::Keywords::now;
  }
  const auto cut_before = fileState(cut);
  auto truncated = cli({"--database", cut});
  EXPECT_EQ(truncated.status, 1) << truncated.out;
  EXPECT_THAT(truncated.out, HasSubstr(R"("anchor_check":{"status":"truncated")"));
  EXPECT_THAT(truncated.out, HasSubstr("anchor check truncated"));
  EXPECT_EQ(fileState(cut), cut_before) << "verifying a copy changed it";

  // A doctored anchor line (it names the cut copy's head, to hide the cut): caught by its MAC.
  std::string anchors = readFile(anchorFile());
  const auto last = anchors.rfind("\"seq\":" + std::to_string(head) + ",");
  ASSERT_NE(last, std::string::npos) << anchors;
  anchors.replace(last, 7 + std::to_string(head).size(), "\"seq\":" + std::to_string(head - 2) + ",");
  std::ofstream(dir_ + ".anchors/doctored.log", std::ios::binary) << anchors;
  auto doctored = cli({"--database", cut, "--anchor-file", dir_ + ".anchors/doctored.log"});
  EXPECT_EQ(doctored.status, 1) << doctored.out;
  EXPECT_THAT(doctored.out, HasSubstr("anchor-forged"));

  // The whole log rewritten from seq 1 without the master key: one decision flipped and every
  // hash recomputed with plain SHA-256.
  {
    Poco::Data::Session s("SQLite", db);
    std::vector<std::string> kinds, actors, clinics, patients, partners, purposes, types, ids, classes, labels, consents,
        outcomes, reasons, policies, details;
    std::vector<Poco::Int64> seqs, ats, versions;
    using Poco::Data::Keywords::into;
    s << "SELECT seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, "
         "labels, consent_id, consent_version, outcome, reason, policy_version, detail FROM audit_log ORDER BY seq",
        into(seqs), into(ats), into(kinds), into(actors), into(clinics), into(patients), into(partners), into(purposes),
        into(types), into(ids), into(classes), into(labels), into(consents), into(versions), into(outcomes), into(reasons),
        into(policies), into(details), Poco::Data::Keywords::now;
    std::string prev(store::kGenesisHash);
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      store::AuditRow row{seqs[i],     ats[i],     kinds[i],    actors[i],  clinics[i], patients[i], partners[i],
                          purposes[i], types[i],   ids[i],      classes[i], labels[i],  consents[i], versions[i],
                          outcomes[i], reasons[i], policies[i], details[i], prev,       ""};
      if (row.outcome == "permit" && row.kind == "decision") row.outcome = "deny";
      auto entry = store::fromAuditRow(row);
      ASSERT_TRUE(entry);
      const std::string hash = store::entryHash(entry.value());
      s << "UPDATE audit_log SET outcome=?, prev_hash=?, hash=? WHERE seq=?", Poco::Data::Keywords::use(row.outcome),
          Poco::Data::Keywords::use(prev), Poco::Data::Keywords::bind(hash), Poco::Data::Keywords::use(seqs[i]),
          Poco::Data::Keywords::now;
      prev = hash;
    }
  }
  auto rewritten = cli({"--read-only"});
  EXPECT_EQ(rewritten.status, 1) << rewritten.out;
  EXPECT_THAT(rewritten.out, HasSubstr(R"("anchor_check":{"status":"rewritten")"));
  EXPECT_THAT(rewritten.out, HasSubstr("unkeyed-row")) << "the keyed chain tells on its own too";
  EXPECT_THAT(rewritten.out, HasSubstr("anchor check rewritten"));
}

}  // namespace
}  // namespace gw::test

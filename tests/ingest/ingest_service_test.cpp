#include "ingest/ingest_service.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_files.hpp"
#include "support/test_keys.hpp"

namespace gw::ingest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

const std::string kFormat = std::string(GW_REPO_DIR) + "/mappers/clinic-v1";

const char* kPatient = R"({"record_id":"c1:pt:A12345","record_type":"patient","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:00:00-05:00",
 "patient":{"mrn":"A12345","family_name":"Rivera","given_names":["Ana","M"],
            "birth_date":"1988-04-02","sex":"female"}})";

const char* kRx = R"({"record_id":"c1:rx:9001","record_type":"mat_prescription","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":"A12345"},
 "prescription":{"id":"9001","medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},
   "dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","status":"active","written_on":"2026-11-20",
   "prescriber":{"npi":"1234567893","name":"Dr. Lee"}}})";

// A MAT prescription record for the patient, with the prescription id `id`.
std::string prescriptionRecord(const std::string& id, const std::string& mrn) {
  return R"({"record_id":"c1:rx:)" + id + R"(","record_type":"mat_prescription","clinic":"c1","program":"otp",
    "recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":")" +
         mrn + R"("},
    "prescription":{"id":")" +
         id + R"(","medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},
    "dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","status":"active","written_on":"2026-11-20",
    "prescriber":{"npi":"1234567893","name":"Dr. Lee"}}})";
}

class IngestServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-ingest-" + ids::randomHex(6));
    fs::create_directories(dir_);
    config_.mapping.format_dir = kFormat;
    config_.clinics.push_back({"c1", "Clinic 1", "https://ids.c1.example.org/", {{"otp", true}}});
    config_.clinics.push_back({"c2", "Clinic 2", "https://ids.c2.example.org/", {}});
    config::Partner a;
    a.id = "st-mary";
    config::Partner b;
    b.id = "other";
    config_.partners = {a, b};
    auto store = store::openSqliteStore({(dir_ / "gw.db").string(), false, 2, test::testMasterKey()});
    ASSERT_TRUE(store);
    store_ = std::move(store).value();
    auto rules = loadRuleSet({formatDir(), profilesDir(), {}});
    ASSERT_TRUE(rules) << rules.error().describe();
    rules_ = std::move(rules).value();
    committer_ = std::make_unique<GroupCommitter>(*store_, clock_, &memory_);
    makeService();
    consentFor("A12345");  // st-mary may receive A12345's general and sud data; "other" nothing
  }

  void makeService(std::shared_ptr<const mapping::CsvMapperSet> csv = nullptr) {
    auto rules = std::make_shared<RuleSet>(*rules_);  // the loaded parts are shared
    rules->csv_mappers = csv ? std::move(csv) : std::make_shared<const mapping::CsvMapperSet>();
    service_.reset();
    settings_.pipeline.clinics = config_.clinics;
    settings_.pipeline.partner_ids.clear();
    for (const auto& partner : config_.partners) settings_.pipeline.partner_ids.push_back(partner.id);
    settings_.partners = config_.partners;
    settings_.policy = {"42 CFR part 2 prohibits unauthorized use or disclosure of these records.", "test-policy"};
    settings_.record_key_secret = "test-secret";
    settings_.private_dirs = {kFormat, std::string(GW_REPO_DIR) + "/mappers"};
    service_ = std::make_unique<IngestService>(
        IngestParts{settings_, std::move(rules), formats_, *committer_, *store_, registry_,
                    [this](const consent::ConsentVersion& v) { changed_consents_.push_back(v); }});
  }

  // What the app answers for a BatchResult (app/views.cpp), which these tests read.
  struct Reply {
    int status = 0;
    std::string body;
  };
  static Reply reply(const BatchResult& r) {
    const int status = r.failure ? httpStatusFor(r.failure->code) : (r.accepted() > 0 ? 202 : 422);
    return {status, batchResultJson(r)};
  }

  // Posts the patient's consent naming `partner` for TREAT, in force around today, through the
  // service like any clinic record (so its Consent resource is stored and the registry updated).
  void consentFor(const std::string& mrn, const std::string& partner = "st-mary",
                  const std::string& categories = R"(["general","sud"])", const std::string& status = "active") {
    const auto day = [&](int offset) {
      return consent::formatDate(consent::utcDate(clock_.now()) + std::chrono::days(offset));
    };
    const std::string revoked = status == "revoked" ? R"(,"revoked_on":")" + day(0) + "\"" : "";
    const std::string record = R"({"record_id":"c1:cn:)" + mrn + "-" + partner +
                               R"(","record_type":"consent","clinic":"c1","program":"otp",
      "recorded_at":"2026-11-20T08:55:00-05:00","patient":{"mrn":")" +
                               mrn + R"("},
      "consent":{"id":")" + mrn +
                               "-" + partner + R"(","recipient":")" + partner + R"(","purposes":["TREAT"],"categories":)" +
                               categories + R"(,"effective":{"start":")" + day(-3) + R"(","end":")" + day(300) +
                               R"("},"signed_on":")" + day(-3) + R"(","signed_by":"patient","status":")" + status + "\"" +
                               revoked + "}}";
    auto reply = post(record);
    ASSERT_EQ(reply.status, 202) << reply.body;
  }

  virtual std::string profilesDir() { return std::string(GW_REPO_DIR) + "/fhir-profiles"; }
  virtual std::string formatDir() { return kFormat; }

  void TearDown() override {
    service_.reset();
    committer_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  Reply post(const std::string& body, const std::string& content_type = "application/json", Submitter who = {"t", {"c1"}},
             const std::string& mapper = "") {
    std::promise<Reply> promise;
    service_->ingest({body, content_type, mapper}, who, [&](BatchResult r) { promise.set_value(reply(r)); });
    return promise.get_future().get();
  }

  static rapidjson::Document parse(const std::string& s) {
    rapidjson::Document d;
    d.Parse(s.c_str());
    return d;
  }

  fs::path dir_;
  SystemClock clock_;
  config::GatewayConfig config_;
  std::unique_ptr<store::Store> store_;
  std::shared_ptr<const RuleSet> rules_;
  IngestSettings settings_;
  InputFormatRegistry formats_ = InputFormatRegistry::builtins();
  consent::ConsentRegistry registry_;
  std::vector<consent::ConsentVersion> changed_consents_;
  MemoryReturner memory_;
  std::unique_ptr<GroupCommitter> committer_;
  std::unique_ptr<IngestService> service_;
};

TEST_F(IngestServiceTest, AcceptsMapsAndQueuesForPartnersOfTheClinic) {
  auto reply = post(std::string("[") + kPatient + "," + kRx + "]");
  ASSERT_EQ(reply.status, 202) << reply.body;
  auto d = parse(reply.body);
  EXPECT_EQ(d["accepted"].GetInt(), 2);
  const auto& rx = d["results"][1];
  EXPECT_STREQ(rx["disposition"].GetString(), "created");
  EXPECT_EQ(rx["resources"][0].GetString(), "MedicationRequest/" + ids::resourceId("c1", "MedicationRequest", "9001"));
  ASSERT_EQ(rx["queued_for"].Size(), 1u);
  EXPECT_STREQ(rx["queued_for"][0].GetString(), "st-mary");

  auto due = store_->dueItems("st-mary", clock_.now(), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value().size(), 1u) << "the prescription waits behind its patient";
  auto bundle = parse(due.value()[0].bundle);
  EXPECT_STREQ(bundle["entry"][0]["request"]["method"].GetString(), "PUT");
  EXPECT_STREQ(bundle["entry"][0]["request"]["url"].GetString(), "Patient?identifier=https://ids.c1.example.org/mrn|A12345");
  EXPECT_EQ(store_->outboxCounts("other").value().queued, 0) << "a partner not listing c1 gets nothing";
}

TEST_F(IngestServiceTest, PrescriptionCarriesItsPatientAsConditionalCreate) {
  ASSERT_EQ(post(kRx).status, 202);
  auto due = store_->dueItems("st-mary", clock_.now(), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  auto bundle = parse(due.value()[0].bundle);
  ASSERT_EQ(bundle["entry"].Size(), 3u) << "stub Patient, MedicationRequest, and the Consent of this Part 2 disclosure";
  EXPECT_STREQ(bundle["entry"][2]["resource"]["resourceType"].GetString(), "Consent");
  const auto& patient = bundle["entry"][0];
  EXPECT_STREQ(patient["request"]["method"].GetString(), "POST");
  EXPECT_STREQ(patient["request"]["ifNoneExist"].GetString(), "identifier=https://ids.c1.example.org/mrn|A12345");
  EXPECT_STREQ(patient["resource"]["gender"].GetString(), "unknown");
  const std::string patient_url = patient["fullUrl"].GetString();
  EXPECT_EQ(patient_url, "urn:uuid:" + ids::resourceId("c1", "Patient", "A12345"));
  EXPECT_EQ(std::string(bundle["entry"][1]["resource"]["subject"]["reference"].GetString()), patient_url);
}

rapidjson::Document recordWithItems(const std::vector<std::string>& kinds) {
  std::string items;
  for (const auto& k : kinds) items += (items.empty() ? "" : ",") + std::string(R"({"kind":")") + k + R"("})";
  rapidjson::Document d;
  d.Parse(R"({"record_id":"c1:hr:H-1","record_type":"harm_reduction_service","clinic":"c1",
    "program":"otp","recorded_at":"2026-11-20T17:00:00-05:00","patient":{"mrn":"A12345"},
    "service":{"id":"H-1","date":"2026-11-20","items":[)" +
          items + "]}}");
  return d;
}

std::vector<store::AuditEntry> auditOf(store::Store& store, store::AuditKind kind, const std::string& partner = {}) {
  store::AuditQuery q;
  q.kind = kind;
  q.partner_id = partner;
  q.limit = 1000;
  auto page = store.queryAudit(q);
  EXPECT_TRUE(page) << page.error().describe();
  return page ? page.value().entries : std::vector<store::AuditEntry>{};
}

TEST_F(IngestServiceTest, PartnersWithoutAConsentGetNothingAndEachDenyIsLogged) {
  auto reply = parse(post(kRx).body);
  ASSERT_EQ(reply["results"][0]["queued_for"].Size(), 1u);
  EXPECT_EQ(store_->outboxCounts("other").value().queued, 0);
  int denied = 0;
  for (const auto& e : auditOf(*store_, store::AuditKind::Decision, "other")) {
    EXPECT_EQ(e.outcome, store::AuditOutcome::Deny);
    EXPECT_EQ(e.reason, "no-consent");
    EXPECT_EQ(e.patient_key, store_->lookupKeys().patient("c1", "A12345"));
    EXPECT_EQ(e.policy_version, "test-policy");
    ++denied;
  }
  EXPECT_EQ(denied, 2) << "the stub Patient and the MedicationRequest";
  for (const auto& e : auditOf(*store_, store::AuditKind::Decision, "st-mary")) {
    if (e.resource_type != "MedicationRequest") continue;
    EXPECT_EQ(e.outcome, store::AuditOutcome::Permit);
    EXPECT_EQ(e.consent_id, store_->lookupKeys().consent("c1", "A12345-st-mary"));
    EXPECT_EQ(e.consent_version, 1);
    EXPECT_EQ(e.classes, "sud");
    EXPECT_EQ(e.labels, "R,SUD,OPIOIDUD,42CFRPart2,NORDSCLCD,CPLYCD");
  }
}

TEST_F(IngestServiceTest, Part2DataTravelsLabelledWithItsNotice) {
  ASSERT_EQ(post(kRx).status, 202);
  auto due = store_->dueItems("st-mary", clock_.now(), 10);
  ASSERT_TRUE(due && due.value().size() == 1);
  auto bundle = parse(due.value()[0].bundle);
  ASSERT_TRUE(bundle.HasMember("meta"));
  EXPECT_STREQ(bundle["meta"]["security"][0]["code"].GetString(), "R") << "the Bundle's high-water mark";
  const auto& rx = bundle["entry"][1]["resource"];
  std::set<std::string> codes;
  for (const auto& c : rx["meta"]["security"].GetArray()) codes.insert(c["code"].GetString());
  EXPECT_EQ(codes, (std::set<std::string>{"R", "SUD", "OPIOIDUD", "42CFRPart2", "NORDSCLCD", "CPLYCD"}));
  EXPECT_THAT(json::toString(rx["meta"]), HasSubstr("42 CFR part 2 prohibits unauthorized use or disclosure"));
}

std::string encounterRecord(const std::string& id, const std::string& program, const std::string& mrn,
                            const std::string& visit_type = "counseling_individual") {
  return R"({"record_id":"c1:enc:)" + id + R"(","record_type":"encounter","clinic":"c1","program":")" + program +
         R"(","recorded_at":"2026-12-01T10:00:00-05:00","patient":{"mrn":")" + mrn + R"("},
    "encounter":{"id":")" +
         id + R"(","status":"finished","visit_type":")" + visit_type +
         R"(","modality":"telephone","start":"2026-12-01T09:00:00-05:00"}})";
}

std::set<std::string> securityCodes(const rapidjson::Value& resource) {
  std::set<std::string> codes;
  for (const auto& c : resource["meta"]["security"].GetArray()) codes.insert(c["code"].GetString());
  return codes;
}

// A resource goes only with its Patient: a consent covering a psychiatric visit's class (mh) but
// not the Patient's (general, outside a Part 2 program) discloses neither, and the log says why.
TEST_F(IngestServiceTest, WhenThePatientIsDeniedEveryResourceOfThePatientIsDenied) {
  config_.clinics[0].programs.push_back({"bh", false, ""});
  makeService();
  consentFor("B-1", "other", R"(["mh"])");
  auto reply = parse(post(encounterRecord("71", "bh", "B-1", "psychiatric")).body);
  ASSERT_EQ(reply["results"][0]["queued_for"].Size(), 0u) << json::toString(reply);
  EXPECT_EQ(store_->outboxCounts("other").value().queued, 0);
  std::map<std::string, std::string> reasons;
  for (const auto& e : auditOf(*store_, store::AuditKind::Decision, "other")) {
    EXPECT_EQ(e.outcome, store::AuditOutcome::Deny) << e.resource_type;
    reasons[e.resource_type] = e.reason;
  }
  EXPECT_EQ(reasons["Patient"], "class-not-covered:general");
  EXPECT_EQ(reasons["Encounter"], "patient-not-disclosed:class-not-covered:general");
}

// A program's setting travels on every resource of its records (not the Patient), and a court-
// mandated setting makes them sud even from a program that is not Part 2: a general-only consent
// does not release it.
TEST_F(IngestServiceTest, ProgramSettingTravelsAndCourtMandatedIsSud) {
  config_.clinics[0].programs.push_back({"iop", false, "intensive-outpatient"});
  config_.clinics[0].programs.push_back({"dc", false, "court-mandated"});
  makeService();
  consentFor("G-1", "other", R"(["general"])");  // "other" may receive G-1's general data only

  auto reply = post(std::string("[") + encounterRecord("E-1", "iop", "G-1") + "," + encounterRecord("E-2", "dc", "G-1") +
                    "]");
  ASSERT_EQ(reply.status, 202) << reply.body;
  auto d = parse(reply.body);
  ASSERT_EQ(d["accepted"].GetInt(), 2) << reply.body;
  ASSERT_EQ(d["results"][0]["queued_for"].Size(), 1u) << "intensive outpatient, not Part 2: general";
  EXPECT_STREQ(d["results"][0]["queued_for"][0].GetString(), "other");
  EXPECT_EQ(d["results"][1]["queued_for"].Size(), 0u) << "court-mandated is sud: no sud consent, nothing queued";

  const auto stored = [&](const std::string& id) {
    auto body = store_->resourceBody("Encounter", ids::resourceId("c1", "Encounter", id));
    EXPECT_TRUE(body && body.value().has_value());
    return parse(body && body.value() ? *body.value() : std::string("{}"));
  };
  const auto iop = stored("E-1");
  EXPECT_THAT(json::toString(iop["extension"]),
              HasSubstr(R"({"url":"https://fhir-gateway.dev/fhir/StructureDefinition/program-setting","valueCoding":)"
                        R"({"system":"https://fhir-gateway.dev/fhir/CodeSystem/program-setting",)"
                        R"("code":"intensive-outpatient","display":"Intensive outpatient"}})"));
  EXPECT_EQ(securityCodes(iop), (std::set<std::string>{"N"}));
  const auto dc = stored("E-2");
  EXPECT_THAT(json::toString(dc["extension"]), HasSubstr(R"("code":"court-mandated")"));
  EXPECT_EQ(securityCodes(dc), (std::set<std::string>{"R", "SUD"}));
  bool denied = false;
  for (const auto& e : auditOf(*store_, store::AuditKind::Decision, "other")) {
    if (e.resource_type == "Encounter" && e.reason == "class-not-covered:sud") denied = true;
  }
  EXPECT_TRUE(denied) << "the court-mandated encounter is denied for want of sud";

  // What "other" receives: the (stub) Patient without the setting, the Encounter with it.
  auto due = store_->dueItems("other", clock_.now(), 10);
  ASSERT_TRUE(due);
  int encounters = 0;
  for (const auto& item : due.value()) {
    auto bundle = parse(item.bundle);
    for (const auto& entry : bundle["entry"].GetArray()) {
      const std::string text = json::toString(entry["resource"]);
      const std::string type = entry["resource"]["resourceType"].GetString();
      if (type == "Patient") {
        EXPECT_THAT(text, Not(HasSubstr("program-setting")));
      } else if (type == "Encounter") {
        EXPECT_THAT(text, HasSubstr(R"("code":"intensive-outpatient")"));
        ++encounters;
      }
    }
  }
  EXPECT_EQ(encounters, 1) << "only the intensive outpatient visit";
}

// A Part 2 program's encounter is sud (the consent must cover sud) and a psychiatric visit is mh too.
TEST_F(IngestServiceTest, EncounterIsClassifiedLikeItsProgram) {
  auto reply = parse(post(std::string("[") + encounterRecord("E-3", "otp", "A12345") + "," +
                          encounterRecord("E-4", "otp", "A12345", "psychiatric") + "]")
                         .body);
  ASSERT_EQ(reply["accepted"].GetInt(), 2);
  ASSERT_EQ(reply["results"][0]["queued_for"].Size(), 1u) << "general+sud consent covers a Part 2 counseling visit";
  EXPECT_EQ(reply["results"][1]["queued_for"].Size(), 0u) << "a psychiatric visit needs mh as well";
  auto body = store_->resourceBody("Encounter", ids::resourceId("c1", "Encounter", "E-4"));
  ASSERT_TRUE(body && body.value().has_value());
  EXPECT_EQ(securityCodes(parse(*body.value())),
            (std::set<std::string>{"R", "SUD", "MH", "42CFRPart2", "NORDSCLCD", "CPLYCD"}));
}

TEST_F(IngestServiceTest, MentalHealthDataNeedsAConsentThatNamesIt) {
  auto reply = post(R"({"record_id":"c1:scr:S-1","record_type":"screening","clinic":"c1","program":"otp",
    "recorded_at":"2026-11-20T09:00:00-05:00","patient":{"mrn":"A12345"},
    "screening":{"id":"S-1","instrument":"phq9","total_score":14,"administered_at":"2026-11-20T09:10:00-05:00"}})");
  ASSERT_EQ(reply.status, 202) << reply.body;
  EXPECT_EQ(parse(reply.body)["results"][0]["queued_for"].Size(), 0u);
  bool mh = false;
  for (const auto& e : auditOf(*store_, store::AuditKind::Decision, "st-mary")) {
    if (e.resource_type == "Observation") mh = mh || e.reason == "class-not-covered:mh";
  }
  EXPECT_TRUE(mh);
}

TEST_F(IngestServiceTest, AConsentRecordIsVersionedInTheRegistryAndNotSentOnItsOwn) {
  ASSERT_EQ(changed_consents_.size(), 1u) << "SetUp's consent";
  EXPECT_EQ(changed_consents_[0].version, 1);
  EXPECT_EQ(store_->outboxCounts("st-mary").value().queued, 0);
  consentFor("A12345");  // the same record again: unchanged, no new version
  EXPECT_EQ(changed_consents_.size(), 1u);
  consentFor("A12345", "st-mary", R"(["general","sud"])", "revoked");
  ASSERT_EQ(changed_consents_.size(), 2u);
  EXPECT_EQ(changed_consents_[1].version, 2);
  EXPECT_EQ(changed_consents_[1].status, consent::ConsentStatus::Revoked);
  EXPECT_EQ(registry_.current("c1", "A12345-st-mary")->version, 2);
  const auto registered = auditOf(*store_, store::AuditKind::Consent);
  ASSERT_EQ(registered.size(), 2u) << "each stored version is in the log, resends are not";
  EXPECT_EQ(registered[1].consent_id, store_->lookupKeys().consent("c1", "A12345-st-mary"));
  EXPECT_EQ(registered[1].consent_version, 2);
  EXPECT_EQ(registered[1].reason, "revoked");
  EXPECT_EQ(registered[1].partner_id, "st-mary");
  auto stored = store_->consents(store_->lookupKeys().patient("c1", "A12345"));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored.value().size(), 2u);
  // Revocation is final: the same consent cannot become active again.
  auto again = post(R"({"record_id":"c1:cn:A12345-st-mary","record_type":"consent","clinic":"c1","program":"otp",
    "recorded_at":"2026-11-21T08:55:00-05:00","patient":{"mrn":"A12345"},
    "consent":{"id":"A12345-st-mary","recipient":"st-mary","purposes":["TREAT"],"categories":["general"],
    "effective":{"start":"2026-11-01"},"signed_on":"2026-11-01","signed_by":"patient","status":"active"}})");
  EXPECT_EQ(again.status, 422) << again.body;
  EXPECT_THAT(again.body, HasSubstr("consent.status"));
}

TEST_F(IngestServiceTest, AConsentForAnUnknownPartnerIsRejected) {
  std::string record = R"({"record_id":"c1:cn:9","record_type":"consent","clinic":"c1","program":"otp",
    "recorded_at":"2026-11-21T08:55:00-05:00","patient":{"mrn":"A12345"},
    "consent":{"id":"9","recipient":"nowhere","purposes":["TREAT"],"categories":["general"],
    "effective":{"start":"2026-11-01"},"signed_on":"2026-11-01","signed_by":"patient","status":"active"}})";
  auto reply = post(record);
  EXPECT_EQ(reply.status, 422);
  EXPECT_THAT(reply.body, HasSubstr("consent.recipient"));
  EXPECT_THAT(reply.body, HasSubstr("'nowhere' is not configured"));
}

TEST_F(IngestServiceTest, ReconcileQueuesWhatANewConsentPermitsAndCancelsWhatARevocationStops) {
  ASSERT_EQ(post(prescriptionRecord("B1", "B20001")).status, 202);
  const std::string patient = store_->lookupKeys().patient("c1", "B20001");
  EXPECT_EQ(store_->pendingItems("st-mary", patient).value().size(), 0u) << "no consent yet";
  consentFor("B20001");
  ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
  ASSERT_EQ(store_->pendingItems("st-mary", patient).value().size(), 1u) << "held data goes once consented";
  ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
  EXPECT_EQ(store_->pendingItems("st-mary", patient).value().size(), 1u) << "reconciling twice queues nothing twice";
  consentFor("B20001", "st-mary", R"(["general","sud"])", "revoked");
  ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
  EXPECT_EQ(store_->pendingItems("st-mary", patient).value().size(), 0u);
  const auto cancels = auditOf(*store_, store::AuditKind::Cancel, "st-mary");
  ASSERT_FALSE(cancels.empty());
  EXPECT_EQ(cancels[0].reason, "revoked");
  auto chain = store_->verifyAudit(std::nullopt);
  ASSERT_TRUE(chain);
  EXPECT_TRUE(chain.value().ok);
}

// A Part 2 treatment plan whose activity 2 (psychiatric care) is mh data.
const char* kPlan = R"({"record_id":"c1:tp:TP-1","record_type":"treatment_plan","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:00:00-05:00","patient":{"mrn":"A12345"},
 "plan":{"id":"TP-1","status":"active","period":{"start":"2026-11-20"},"goals":["Stay on buprenorphine"],
  "activities":[{"kind":"moud","detail":"Buprenorphine daily","status":"in-progress"},
   {"kind":"peer_support","detail":"Peer coach","status":"not-started"},
   {"kind":"psychiatric_care","detail":"Evaluate for depression","status":"on-hold"}],
  "author":{"npi":"1245319599","name":"Dr. Ortiz"}}})";

TEST_F(IngestServiceTest, AHeldPartOfAPlanGoesOnceWhenAConsentNowPermitsIt) {
  const std::string patient = store_->lookupKeys().patient("c1", "A12345");
  ASSERT_EQ(post(kPlan).status, 202);
  // The decisions are kept per partner and resource: redacted for st-mary, denied for "other".
  const auto last = store_->lastDecisions("c1", "c1:tp:TP-1").value();
  const auto find = [&](const std::string& partner, const std::string& type) {
    for (const auto& d : last) {
      if (d.partner_id == partner && d.resource_type == type) return d;
    }
    ADD_FAILURE() << "no decision for " << partner << " " << type;
    return store::ResourceDecision{};
  };
  EXPECT_EQ(find("st-mary", "CarePlan").outcome, store::AuditOutcome::Redact);
  EXPECT_EQ(find("st-mary", "CarePlan").removed_activities, (std::vector<std::uint32_t>{2}));
  EXPECT_THAT(find("st-mary", "CarePlan").reason, HasSubstr("class-not-covered"));
  EXPECT_EQ(find("other", "CarePlan").outcome, store::AuditOutcome::Deny);
  auto due = store_->dueItems("st-mary", clock_.now(), 10).value();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_THAT(due[0].bundle, Not(HasSubstr("Evaluate for depression")));
  ASSERT_TRUE(store_->markDelivered(due[0].id, {}, clock_.now()));

  // Nothing changed: reconciling queues nothing.
  ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
  EXPECT_TRUE(store_->pendingItems("st-mary", patient).value().empty());

  // The consent now covers mh: the full plan is queued once, however often reconciled.
  consentFor("A12345", "st-mary", R"(["general","sud","mh"])");
  ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
  ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
  due = store_->dueItems("st-mary", clock_.now(), 10).value();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_THAT(due[0].bundle, HasSubstr("Evaluate for depression"));
  ASSERT_TRUE(store_->markDelivered(due[0].id, {}, clock_.now()));
  EXPECT_EQ(store_->lastDecisions("c1", "c1:tp:TP-1").value().size(), last.size());

  // The clinic resends the same plan: unchanged, and nothing more goes.
  auto resend = post(kPlan);
  EXPECT_THAT(resend.body, HasSubstr("\"disposition\":\"unchanged\""));
  EXPECT_THAT(resend.body, HasSubstr("\"queued_for\":[]"));
  EXPECT_TRUE(store_->pendingItems("st-mary", patient).value().empty());
}

TEST_F(IngestServiceTest, AResendAfterAConsentWidenedIsQueuedBeforeAnyReconcile) {
  const std::string patient = store_->lookupKeys().patient("c1", "A12345");
  ASSERT_EQ(post(kPlan).status, 202);
  auto due = store_->dueItems("st-mary", clock_.now(), 10).value();
  ASSERT_EQ(due.size(), 1u);
  ASSERT_TRUE(store_->markDelivered(due[0].id, {}, clock_.now()));
  consentFor("A12345", "st-mary", R"(["general","sud","mh"])");  // not reconciled yet
  auto resend = post(kPlan);
  EXPECT_THAT(resend.body, HasSubstr("\"disposition\":\"unchanged\""));
  EXPECT_THAT(resend.body, HasSubstr("\"queued_for\":[\"st-mary\"]")) << resend.body;
  due = store_->dueItems("st-mary", clock_.now(), 10).value();
  ASSERT_EQ(due.size(), 1u);
  EXPECT_THAT(due[0].bundle, HasSubstr("Evaluate for depression"));
  // The reconcile that follows finds nothing held any more.
  ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
  EXPECT_EQ(store_->pendingItems("st-mary", patient).value().size(), 1u);
}

TEST_F(IngestServiceTest, ANewVersionWithoutAnItemDeletesItsObservationAtThePartner) {
  ASSERT_EQ(post(json::toString(recordWithItems({"naloxone_kit", "syringes"}))).status, 202);
  ASSERT_EQ(post(json::toString(recordWithItems({"naloxone_kit"}))).status, 202);
  auto due = store_->pendingItems("st-mary", store_->lookupKeys().patient("c1", "A12345"));
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value().size(), 1u) << "the first version was superseded";
  auto items = store_->dueItems("st-mary", clock_.now(), 10);
  ASSERT_TRUE(items && items.value().size() == 1);
  auto bundle = parse(items.value()[0].bundle);
  int deletes = 0;
  for (const auto& e : bundle["entry"].GetArray()) {
    if (std::string(e["request"]["method"].GetString()) != "DELETE") continue;
    ++deletes;
    EXPECT_THAT(std::string(e["request"]["url"].GetString()), HasSubstr("Observation?identifier="));
    EXPECT_THAT(std::string(e["request"]["url"].GetString()), HasSubstr("syringes"));
  }
  EXPECT_EQ(deletes, 1);
}

TEST_F(IngestServiceTest, EveryPartOfASplitPart2DisclosureCarriesTheConsent) {
  config_.partners[0].max_bundle_entries = 3;  // stub Patient + Consent + one Observation per part
  makeService();                               // ingest reads its settings when it is made
  ASSERT_EQ(post(json::toString(recordWithItems({"naloxone_kit", "syringes", "education"}))).status, 202);
  auto pending = store_->pendingItems("st-mary", store_->lookupKeys().patient("c1", "A12345"));
  ASSERT_TRUE(pending);
  ASSERT_EQ(pending.value().size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    auto due = store_->dueItems("st-mary", clock_.now(), 10);
    ASSERT_TRUE(due && due.value().size() == 1);
    auto bundle = parse(due.value()[0].bundle);
    int consents = 0;
    for (const auto& e : bundle["entry"].GetArray()) {
      if (e.HasMember("resource") && std::string(e["resource"]["resourceType"].GetString()) == "Consent") ++consents;
    }
    EXPECT_EQ(consents, 1) << "part " << i;
    ASSERT_TRUE(store_->markDelivered(due.value()[0].id, {}, clock_.now()));
  }
}

TEST_F(IngestServiceTest, RejectedRecordsNamePathAndStoreNothing) {
  std::string bad = kRx;
  bad.replace(bad.find("\"daily\""), 7, "\"hourly\"");
  auto reply = post(bad);
  EXPECT_EQ(reply.status, 422);
  EXPECT_THAT(reply.body, HasSubstr("prescription.frequency"));
  auto status = store_->recordStatus("c1", "c1:rx:9001");
  ASSERT_TRUE(status);
  EXPECT_FALSE(status.value().has_value());
}

TEST_F(IngestServiceTest, MappingErrorsRejectWithPath) {
  std::string bad = kPatient;
  bad.replace(bad.find("1988-04-02"), 10, "1988-02-30");
  auto reply = post(bad);
  EXPECT_EQ(reply.status, 422);
  EXPECT_THAT(reply.body, HasSubstr("patient.birth_date"));
  EXPECT_THAT(reply.body, Not(HasSubstr("Rivera")));
  EXPECT_THAT(reply.body, HasSubstr("patient.mapper.json")) << "the engineer can find the mapper";
  EXPECT_THAT(reply.body, Not(HasSubstr(GW_REPO_DIR))) << "but the client learns nothing of the server's folders";
}

TEST_F(IngestServiceTest, ClinicMustBeConfiguredAndAllowedForTheToken) {
  std::string other = kRx;
  other.replace(other.find("\"clinic\":\"c1\""), 13, "\"clinic\":\"c9\"");
  EXPECT_THAT(post(other).body, HasSubstr("clinic 'c9' is not configured"));
  other = kRx;
  other.replace(other.find("\"clinic\":\"c1\""), 13, "\"clinic\":\"c2\"");
  other.replace(other.find("\"program\":\"otp\","), 16, "");
  EXPECT_THAT(post(other).body, HasSubstr("may not post records for clinic 'c2'"));
  EXPECT_EQ(post(other, "application/json", {"t", {"*"}}).status, 202);
  std::string program = kRx;
  program.replace(program.find("\"otp\""), 5, "\"nope\"");
  EXPECT_THAT(post(program).body, HasSubstr("program 'nope' is not configured"));
}

TEST_F(IngestServiceTest, KeyOrderDoesNotMakeANewVersion) {
  ASSERT_EQ(post(kPatient).status, 202);
  auto d = parse(kPatient);
  // Same content, members in reverse order.
  rapidjson::Document reversed(rapidjson::kObjectType);
  std::vector<std::pair<std::string, std::string>> members;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it)
    members.emplace_back(it->name.GetString(), json::toString(it->value));
  std::string text = "{";
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    text += (text.size() > 1 ? "," : "") + std::string("\"") + it->first + "\":" + it->second;
  }
  text += "}";
  auto reply = parse(post(text).body);
  EXPECT_STREQ(reply["results"][0]["disposition"].GetString(), "unchanged");
}

// Issue 9, defect 10: whoever copies the database file, its WAL or its shared memory finds no MRN,
// no record id (ids may embed the MRN), no patient's FHIR id (a UUIDv5 of clinic + MRN, which a
// guessed MRN recomputes), no resource or consent id and no deployment secret in clear. The files
// are read while the store is open, so the WAL holds the newest pages.
TEST_F(IngestServiceTest, TheDatabaseFilesHoldNoIdentifierInClear) {
  const std::string secret = store_->deploymentSecret("record-key").value();
  auto reply = post(std::string("[") + kPatient + "," + kRx + "]");
  ASSERT_EQ(reply.status, 202) << reply.body;
  std::vector<std::string> clear = {"A12345",       "c1:pt:A12345",   "c1:rx:9001",
                                    "c1:cn:A12345", "A12345-st-mary", ids::resourceId("c1", "Patient", "A12345"),
                                    secret};
  const auto d = parse(reply.body);
  for (const auto& r : d["results"].GetArray()) {
    for (const auto& res : r["resources"].GetArray()) {
      const std::string reference = res.GetString();
      clear.push_back(reference.substr(reference.find('/') + 1));
    }
  }
  const auto consents = store_->consents("").value();
  ASSERT_EQ(consents.size(), 1u);
  clear.push_back(consents[0].row.resource_id);

  std::size_t files = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const fs::path file = dir_ / ("gw.db" + std::string(suffix));
    if (!fs::exists(file)) continue;
    ++files;
    const std::string bytes = test::readFile(file);
    for (const auto& c : clear) EXPECT_EQ(bytes.find(c), std::string::npos) << c << " is in clear in " << file.filename();
  }
  EXPECT_EQ(files, 3u) << "the database, its WAL and its shared memory";

  // Every lookup still works from the clear values callers have: clinic + record id (status,
  // a resend found unchanged by its content hash), clinic + MRN (consents, the decision log), a
  // resource id (the Consent a disclosure carries).
  auto status = store_->recordStatus("c1", "c1:rx:9001");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->record_id, "c1:rx:9001");
  EXPECT_EQ(status.value()->resources.at(0).resource_id, ids::resourceId("c1", "MedicationRequest", "9001"));
  const auto resent = parse(post(kRx).body);
  EXPECT_STREQ(resent["results"][0]["disposition"].GetString(), "unchanged");
  const std::string patient = store_->lookupKeys().patient("c1", "A12345");
  EXPECT_EQ(store_->consents(patient).value().size(), 1u);
  store::AuditQuery q;
  q.patient_key = patient;
  EXPECT_FALSE(store_->queryAudit(q).value().entries.empty());
  EXPECT_TRUE(store_->resourceBody("Consent", consents[0].row.resource_id).value());
}

TEST_F(IngestServiceTest, MalformedBodyIs400WithOffset) {
  auto reply = post("{\"record_id\": }");
  EXPECT_EQ(reply.status, 400);
  EXPECT_THAT(reply.body, HasSubstr("byte 14"));
}

// Issue 9, defect 6: a body that is not strict JSON (invalid UTF-8, bytes after a NUL, a key twice)
// is refused whole with 400 naming the byte or path, and nothing of it is stored.
TEST_F(IngestServiceTest, NonStrictJsonIs400NamesWhereAndStoresNothing) {
  const std::string patient = json::toString(parse(kPatient));  // one line, for NDJSON too
  const std::string rx = json::toString(parse(kRx));
  const std::size_t family = patient.find("Rivera");
  const auto withFamily = [&](const std::string& bytes) {
    std::string body = patient;
    return body.replace(family, 6, bytes);
  };
  std::string clinic_twice = patient;
  clinic_twice.replace(clinic_twice.find("\"clinic\":\"c1\""), 13, "\"clinic\":\"c1\",\"clinic\":\"c2\"");
  const std::string nul_then_garbage = patient + '\0' + "{garbage";
  struct Case {
    std::string name;
    std::string body;
    std::string content_type;
    std::string where;
  };
  const std::string at_family = "byte " + std::to_string(family + 3);
  const std::string line2 = "line 2 (byte " + std::to_string(rx.size() + 1 + family + 3) + ")";
  const std::vector<Case> cases = {
      {"invalid UTF-8", withFamily("Riv\xff\xfe"), "application/json", at_family},
      {"overlong", withFamily("Riv\xc0\xaf"), "application/fhir+json", at_family},
      {"UTF-8 surrogate", withFamily("Riv\xed\xa0\x80"), "application/json", at_family},
      {"lone escaped surrogate", withFamily("Riv\\udc00"), "application/json", at_family},
      {"NUL then garbage", nul_then_garbage, "application/json", "byte " + std::to_string(patient.size())},
      {"clinic twice", clinic_twice, "application/json", "$.clinic"},
      {"clinic twice in an array", "[" + rx + "," + clinic_twice + "]", "application/json", "$[1].clinic"},
      {"NDJSON invalid UTF-8", rx + "\n" + withFamily("Riv\xff\xfe") + "\n", "application/x-ndjson", line2},
      {"NDJSON overlong", rx + "\n" + withFamily("Riv\xc0\xaf"), "application/x-ndjson", line2},
      {"NDJSON NUL then garbage", rx + "\n" + nul_then_garbage + "\n", "application/x-ndjson",
       "line 2 (byte " + std::to_string(rx.size() + 1 + patient.size()) + ")"},
      {"NDJSON clinic twice", rx + "\n" + clinic_twice, "application/x-ndjson", "line 2, $.clinic"},
      {"NDJSON without its type", rx + "\n" + clinic_twice, "", "line 2, $.clinic"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto reply = post(c.body, c.content_type);
    EXPECT_EQ(reply.status, 400) << reply.body;
    rapidjson::Document outcome;
    ASSERT_TRUE(json::parseStrict(reply.body, outcome)) << "the answer itself is valid UTF-8 JSON";
    EXPECT_EQ(json::getString(outcome, "resourceType"), "OperationOutcome") << reply.body;
    EXPECT_THAT(reply.body, HasSubstr("\"expression\":[\"" + c.where + "\"]")) << reply.body;
    EXPECT_THAT(reply.body, Not(HasSubstr("Rivera")));
    for (const char* id : {"c1:pt:A12345", "c1:rx:9001"}) {
      auto status = store_->recordStatus("c1", id);
      ASSERT_TRUE(status);
      EXPECT_FALSE(status.value().has_value()) << id << " was stored";
    }
  }
  EXPECT_EQ(post(patient).status, 202) << "the same record, well formed, is accepted";
}

TEST_F(IngestServiceTest, ConcurrentRequestsShareCommits) {
  constexpr int kRequests = 200;
  std::vector<std::future<Reply>> replies;
  std::vector<std::unique_ptr<std::promise<Reply>>> promises;
  for (int i = 0; i < kRequests; ++i) {
    std::string rx = kRx;
    rx.replace(rx.find("c1:rx:9001"), 10, "c1:rx:" + std::to_string(10000 + i));
    promises.push_back(std::make_unique<std::promise<Reply>>());
    replies.push_back(promises.back()->get_future());
    service_->ingest({rx, "application/json", ""}, {"t", {"c1"}},
                     [p = promises.back().get()](BatchResult r) { p->set_value(reply(r)); });
  }
  for (auto& r : replies) EXPECT_EQ(r.get().status, 202);
  EXPECT_LT(committer_->commitCount(), static_cast<std::uint64_t>(kRequests)) << "requests arriving together share a commit";
  EXPECT_EQ(store_->outboxCounts("st-mary").value().queued, kRequests);
}

// A large group's freed payloads are handed back to the system (off the committer thread); small
// groups, the single POSTs' traffic, do not pay for a trim.
TEST_F(IngestServiceTest, ALargeCommitAsksForItsFreedMemoryToBeReturned) {
  ASSERT_EQ(post(kRx).status, 202);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(memory_.trims(), 0U) << "a group of one record asked for a trim";

  std::string ndjson;
  for (std::size_t i = 0; i < GroupCommitter::kReturnMemoryAfterRecords; ++i) {
    ndjson += json::toString(parse(prescriptionRecord(std::to_string(20000 + i), "A12345"))) + "\n";
  }
  ASSERT_EQ(post(ndjson, "application/x-ndjson").status, 202);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (memory_.trims() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(memory_.trims(), 1U);
}

}  // namespace
}  // namespace gw::ingest

namespace gw::ingest {
namespace {

// A deployment whose format ships no mapper for some record type: such records are kept.
class IngestWithoutSomeMappersTest : public IngestServiceTest {
 protected:
  void SetUp() override {
    format_copy_ = fs::temp_directory_path() / ("gw-format-" + ids::randomHex(6));
    fs::create_directories(format_copy_);
    fs::copy(kFormat + "/schemas", format_copy_ / "schemas");
    for (const char* m : {"patient.mapper.json", "mat_prescription.mapper.json"})
      fs::copy(kFormat + "/" + m, format_copy_ / m);
    IngestServiceTest::SetUp();
    use_copy_ = true;
    auto rules = loadRuleSet({formatDir(), profilesDir(), {}});
    ASSERT_TRUE(rules) << rules.error().describe();
    rules_ = std::move(rules).value();
    makeService();
  }
  // The base SetUp posts a consent with the whole format; the service then runs on the copy.
  std::string formatDir() override { return use_copy_ ? format_copy_.string() : kFormat; }
  bool use_copy_ = false;
  void TearDown() override {
    IngestServiceTest::TearDown();
    fs::remove_all(format_copy_);
  }
  fs::path format_copy_;
};

TEST_F(IngestWithoutSomeMappersTest, UnmappedTypesWaitInTheInbox) {
  auto reply = post(
      R"({"record_id":"c1:lab:1","record_type":"lab_result","clinic":"c1","recorded_at":"2026-11-20T10:00:00-05:00",
    "patient":{"mrn":"A12345"},"result":{"id":"1","loinc":"59673-4","name":"fentanyl screen","value":"negative",
    "collected_at":"2026-11-20T09:30:00-05:00","status":"final"}})");
  ASSERT_EQ(reply.status, 202) << reply.body;
  auto status = store_->recordStatus("c1", "c1:lab:1");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->state, store::RecordState::Unmapped);
  EXPECT_TRUE(status.value()->deliveries.empty());
}

TEST_F(IngestWithoutSomeMappersTest, AConsentIsNeverHeldUnmappedItIsRejected) {
  // Held as "unmapped", a revocation would leave the earlier active version in force.
  auto reply = post(R"({"record_id":"c1:cn:A12345-st-mary","record_type":"consent","clinic":"c1","program":"otp",
    "recorded_at":"2026-11-21T08:55:00-05:00","patient":{"mrn":"A12345"},
    "consent":{"id":"A12345-st-mary","recipient":"st-mary","purposes":["TREAT"],"categories":["general","sud"],
    "effective":{"start":"2026-11-01","end":"2027-11-01"},"signed_on":"2026-11-01","signed_by":"patient",
    "status":"revoked","revoked_on":"2026-11-21"}})");
  EXPECT_EQ(reply.status, 422) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("no consent mapper"));
  EXPECT_EQ(registry_.current("c1", "A12345-st-mary")->status, consent::ConsentStatus::Active) << "nothing recorded";
}

// Profiles stricter than the mapper (dispenseRequest required): a prescription without quantity,
// supply or refills maps to a MedicationRequest that fails, and must not be queued.
class IngestWithStrictProfileTest : public IngestServiceTest {
 protected:
  std::string profilesDir() override {
    profiles_copy_ = fs::temp_directory_path() / ("gw-profiles-" + ids::randomHex(6));
    fs::copy(std::string(GW_REPO_DIR) + "/fhir-profiles", profiles_copy_, fs::copy_options::recursive);
    const auto file = profiles_copy_ / "StructureDefinition" / "gw-medicationrequest.json";
    std::string text = gw::test::readFile(file);
    rapidjson::Document d;
    d.Parse(text.c_str());
    auto& elements = d["differential"]["element"];
    rapidjson::Value e(rapidjson::kObjectType);
    e.AddMember("id", "MedicationRequest.dispenseRequest", d.GetAllocator());
    e.AddMember("path", "MedicationRequest.dispenseRequest", d.GetAllocator());
    e.AddMember("min", 1, d.GetAllocator());
    elements.PushBack(e, d.GetAllocator());
    std::ofstream(file) << json::toString(d);
    return profiles_copy_.string();
  }
  void TearDown() override {
    IngestServiceTest::TearDown();
    fs::remove_all(profiles_copy_);
  }
  fs::path profiles_copy_;
};

TEST_F(IngestWithStrictProfileTest, InvalidResourcesKeepTheRecordButQueueNothing) {
  auto reply = post(kRx);  // kRx has no quantity, days_supply or refills
  ASSERT_EQ(reply.status, 202) << reply.body;
  auto d = parse(reply.body);
  EXPECT_STREQ(d["results"][0]["state"].GetString(), "invalid");
  EXPECT_THAT(json::toString(d["results"][0]["outcome"]), HasSubstr("MedicationRequest.dispenseRequest"));
  auto status = store_->recordStatus("c1", "c1:rx:9001");
  ASSERT_TRUE(status && status.value());
  EXPECT_EQ(status.value()->state, store::RecordState::Invalid);
  EXPECT_TRUE(status.value()->deliveries.empty()) << "an invalid resource is never delivered";
  EXPECT_EQ(store_->outboxCounts("st-mary").value().queued, 0);
}

// text/csv: each row of a CSV export becomes one record through the same checks as JSON.
class IngestCsvTest : public IngestServiceTest {
 protected:
  void SetUp() override {
    IngestServiceTest::SetUp();
    config_.clinics[0].programs.push_back({"hr", false});
    auto csv = mapping::CsvMapperSet::loadDirectory(std::string(GW_REPO_DIR) + "/mappers");
    ASSERT_TRUE(csv) << csv.error().describe();
    csv_ = std::make_shared<const mapping::CsvMapperSet>(std::move(csv).value());
    makeService(csv_);
  }
  Reply postCsv(const std::string& body, const std::string& mapper,
                const std::string& content_type = "text/csv; charset=utf-8") {
    return post(body, content_type, {"t", {"c1"}}, mapper);
  }
  std::shared_ptr<const mapping::CsvMapperSet> csv_;
};

constexpr const char* kWeekly = "harm-reduction-weekly/weekly-export";
constexpr const char* kHeader = "Visit ID,Client ID,Visit Date,Site,Naloxone Kits,Syringes,FTS,Education,Referral\n";

TEST_F(IngestCsvTest, EachRowIsARecordWithItsOwnResult) {
  const std::string csv = std::string(kHeader) +
                          "V1,HR-1,2026-11-16,Elm St,2,,,Y,\n"
                          "V2,HR-2,2026-11-17,,two,,,,\n"    // bad number: rejected with line and column
                          "V3,HR-3,2026-11-18,,0,0,0,N,N\n"  // converts, but the schema wants items
                          "V4,HR-4,2026-11-19,,1,,,,\n";
  const auto reply = postCsv(csv, kWeekly);
  ASSERT_EQ(reply.status, 202) << reply.body;
  const auto doc = parse(reply.body);
  ASSERT_TRUE(doc.IsObject()) << reply.body;
  EXPECT_EQ(doc["accepted"].GetUint(), 2u);
  EXPECT_EQ(doc["rejected"].GetUint(), 2u);
  const auto& results = doc["results"];
  ASSERT_EQ(results.Size(), 4u);
  for (rapidjson::SizeType i = 0; i < 4; ++i) {
    EXPECT_EQ(results[i]["index"].GetUint(), i);
    EXPECT_EQ(results[i]["line"].GetUint(), i + 2);
  }
  EXPECT_STREQ(results[0]["status"].GetString(), "accepted");
  EXPECT_STREQ(results[0]["record_id"].GetString(), "hrw:V1");
  EXPECT_EQ(results[0]["resources"].Size(), 2u);  // naloxone + education Observations
  EXPECT_STREQ(results[1]["status"].GetString(), "rejected");
  EXPECT_STREQ(results[1]["errors"][0]["path"].GetString(), "line 3, column 'Naloxone Kits'");
  EXPECT_THAT(reply.body, Not(HasSubstr("two")));
  EXPECT_STREQ(results[2]["status"].GetString(), "rejected");
  EXPECT_STREQ(results[2]["errors"][0]["path"].GetString(), "service.items");
  EXPECT_STREQ(results[3]["status"].GetString(), "accepted");
  auto st = store_->recordStatus("c1", "hrw:V1");
  ASSERT_TRUE(st && st.value());
  EXPECT_EQ(st.value()->record_type, "harm_reduction_service");
  auto rejected = store_->recordStatus("c1", "hrw:V3");
  ASSERT_TRUE(rejected);
  EXPECT_FALSE(rejected.value()) << "a rejected row leaves nothing behind";
}

TEST_F(IngestCsvTest, MapperMustBeNamedAndKnown) {
  const std::string csv = std::string(kHeader) + "V1,HR-1,2026-11-16,,2,,,,\n";
  auto missing = postCsv(csv, "");
  EXPECT_EQ(missing.status, 400);
  EXPECT_THAT(missing.body, HasSubstr(kWeekly));
  auto unknown = postCsv(csv, "nope/weekly");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr("unknown CSV mapper 'nope/weekly'"));
  EXPECT_THAT(unknown.body, HasSubstr(kWeekly));
  EXPECT_EQ(postCsv(csv, kWeekly, "TEXT/CSV").status, 202);
}

TEST_F(IngestCsvTest, UnreadableCsvIs400AndStoresNothing) {
  auto reply = postCsv(std::string(kHeader) + "V1,HR-1,2026-11-16,\"open,2,,,,\n", kWeekly);
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_THAT(reply.body, HasSubstr("line 2"));
  auto no_column = postCsv("Visit ID,Client ID\nV1,HR-1\n", kWeekly);
  EXPECT_EQ(no_column.status, 400);
  EXPECT_THAT(no_column.body, HasSubstr("'Visit Date'"));
}

TEST_F(IngestCsvTest, WithoutCsvMappersTextCsvIsRefused) {
  makeService();
  auto reply = postCsv(std::string(kHeader) + "V1,HR-1,2026-11-16,,2,,,,\n", kWeekly);
  EXPECT_EQ(reply.status, 400);
  EXPECT_THAT(reply.body, HasSubstr("csv_mappers_dir"));
  // JSON bodies are unaffected by the mapper parameter.
  EXPECT_EQ(post(kPatient, "application/json", {"t", {"c1"}}, kWeekly).status, 202);
}

// The decision rows about MedicationRequests for a partner, oldest first, as "outcome:reason".
std::vector<std::string> prescriptionDecisions(store::Store& store, const std::string& partner) {
  std::vector<std::string> rows;
  for (const auto& e : auditOf(store, store::AuditKind::Decision, partner)) {
    if (e.resource_type == "MedicationRequest") {
      rows.push_back(std::string(store::auditOutcomeName(e.outcome)) + ":" + e.reason);
    }
  }
  return rows;
}

// A request's records are decided under the consents of the same request, in either order: the
// commit holds both, so the log shows one permit, not a deny followed by a permit.
TEST_F(IngestServiceTest, RecordsAreDecidedUnderTheConsentsOfTheSameRequest) {
  const auto day = [&](int offset) {
    return consent::formatDate(consent::utcDate(clock_.now()) + std::chrono::days(offset));
  };
  const auto consentRecord = [&](const std::string& mrn) {
    return R"({"record_id":"c1:cn:)" + mrn + R"(","record_type":"consent","clinic":"c1","program":"otp",
      "recorded_at":"2026-11-20T08:55:00-05:00","patient":{"mrn":")" +
           mrn + R"("},"consent":{"id":")" + mrn +
           R"(","recipient":"st-mary","purposes":["TREAT"],"categories":["general","sud"],"effective":{"start":")" +
           day(-3) + R"(","end":")" + day(300) + R"("},"signed_on":")" + day(-3) +
           R"(","signed_by":"patient","status":"active"}})";
  };
  for (const bool consent_first : {true, false}) {
    SCOPED_TRACE(consent_first ? "consent first" : "consent last");
    const std::string mrn = consent_first ? "B20002" : "B20004";
    const std::string rx = consent_first ? "B2" : "B4";
    const std::string body = consent_first ? "[" + consentRecord(mrn) + "," + prescriptionRecord(rx, mrn) + "]"
                                           : "[" + prescriptionRecord(rx, mrn) + "," + consentRecord(mrn) + "]";
    auto reply = post(body);
    ASSERT_EQ(reply.status, 202) << reply.body;
    EXPECT_THAT(reply.body, HasSubstr(R"("queued_for":["st-mary"])"));
    const std::string patient = store_->lookupKeys().patient("c1", mrn);
    EXPECT_EQ(store_->pendingItems("st-mary", patient).value().size(), 1u);
    // The Part 2 data carries its Consent, taken from the request.
    const auto due = store_->dueItems("st-mary", clock_.now(), 10).value();
    for (const auto& item : due) {
      if (item.patient_key == patient) {
        EXPECT_THAT(item.bundle, HasSubstr(R"("resourceType":"Consent")"));
      }
    }
    // The consent change's reconciliation (the runtime runs it after the commit) finds nothing to do.
    ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
    EXPECT_EQ(store_->pendingItems("st-mary", patient).value().size(), 1u);
  }
  EXPECT_EQ(prescriptionDecisions(*store_, "st-mary"), (std::vector<std::string>{"permit:none", "permit:none"}));
  EXPECT_EQ(prescriptionDecisions(*store_, "other"), (std::vector<std::string>{"deny:no-consent", "deny:no-consent"}));
}

TEST_F(IngestServiceTest, AReDecisionLogsEachDecisionOnce) {
  ASSERT_EQ(post(prescriptionRecord("B3", "B20003")).status, 202);
  const std::string patient = store_->lookupKeys().patient("c1", "B20003");
  EXPECT_EQ(prescriptionDecisions(*store_, "st-mary"), (std::vector<std::string>{"deny:no-consent"}));
  consentFor("B20003");
  // Reconciled twice, as a consent change and a stale decision may both ask: one new row.
  ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
  ASSERT_TRUE(service_->reconcile(patient, "st-mary"));
  ASSERT_TRUE(service_->reconcile(patient, "other"));
  EXPECT_EQ(prescriptionDecisions(*store_, "st-mary"), (std::vector<std::string>{"deny:no-consent", "permit:none"}));
  EXPECT_EQ(prescriptionDecisions(*store_, "other"), (std::vector<std::string>{"deny:no-consent"}));
}

}  // namespace
}  // namespace gw::ingest

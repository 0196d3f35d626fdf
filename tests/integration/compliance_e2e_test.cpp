// End to end, the compliance console's API (docs/console-api.md) on the real binary and partner:
// the patient view in plain language, the accounting of disclosures as JSON, CSV and FHIR
// AuditEvents (the partner's validator takes them), accounting requests, the partner view, and a
// break-glass that lets held data through with the emergency label until it is ended. Officers
// see only their clinics, text typed by people comes back escaped, and every view is logged.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <thread>

#include "gateway_fixture.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kOfficer = "test-compliance-c1";  // compliance + admin, clinic c1 only
constexpr const char* kEveryClinic = "dev-compliance";

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

std::string phq9(const std::string& id, const std::string& mrn = "A12345") {
  return R"({"record_id":"c1:scr:)" + id + R"(","record_type":"screening","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:00:00-05:00","patient":{"mrn":")" +
         mrn + R"("},
 "screening":{"id":")" +
         id + R"(","instrument":"phq9","total_score":14,"administered_at":"2026-11-20T09:10:00-05:00"}})";
}

class ComplianceEndToEnd : public PartnerSuite {
 protected:
  HttpResponse get(const std::string& target, const std::string& token = kOfficer) {
    return gateway_->request("GET", target, "", token);
  }
  HttpResponse post(const std::string& target, const std::string& body, const std::string& token = kOfficer) {
    return gateway_->request("POST", target, body, token);
  }
  // Posts a patient with a Part 2 prescription (consented: sud) and a PHQ-9 (mh: not consented).
  void disclosedAndDenied() {
    ASSERT_EQ(gateway_->post(consentRecord("A12345", "st-mary", R"(["general","sud"])")).status, 202);
    ASSERT_EQ(gateway_->post(patientRecord()).status, 202);
    ASSERT_EQ(gateway_->post(prescriptionRecord()).status, 202);
    ASSERT_EQ(gateway_->post(phq9("s1")).status, 202);
    ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9001", "delivered"));
  }
};

TEST_F(ComplianceEndToEnd, PatientViewShowsConsentsAndEveryDecisionInPlainLanguage) {
  startGateway({.partner_keys = R"("name": "St. Mary's Hospital",)"});
  disclosedAndDenied();

  auto r = get("/v1/compliance/patient?clinic=c1&mrn=A12345");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, Not(HasSubstr("A12345"))) << "the MRN never comes back";
  auto d = parseJson(r.body);
  ASSERT_TRUE(d.IsObject());
  ASSERT_GE(d["consents"].Size(), 1u);
  const auto& c = d["consents"][0];
  EXPECT_STREQ(c["consent_id"].GetString(), "77");
  EXPECT_STREQ(c["partner_name"].GetString(), "St. Mary's Hospital");
  EXPECT_STREQ(c["recipients"][0]["partner_name"].GetString(), "St. Mary's Hospital");
  bool denied_mh = false, disclosed = false;
  for (const auto& e : d["events"].GetArray()) {
    const std::string text = e["text"].GetString(), outcome = e["outcome"].GetString();
    EXPECT_GT(e["seq"].GetInt64(), 0);
    if (outcome == "denied" && text == "Not sent to St. Mary's Hospital: the consent does not cover mental-health data") {
      denied_mh = true;
    }
    if (outcome == "disclosed") {
      disclosed = true;
      EXPECT_STREQ(e["consent_id"].GetString(), "77") << "linked to the consent version it went under";
      EXPECT_EQ(e["consent_version"].GetInt(), 1);
      EXPECT_TRUE(e["break_glass_id"].IsNull());
    }
  }
  EXPECT_TRUE(denied_mh) << r.body;
  EXPECT_TRUE(disclosed) << r.body;

  // The drill-down by key answers the same patient; an unknown patient is a clear 404.
  const std::string key = d["patient_key"].GetString();
  EXPECT_EQ(get("/v1/compliance/patient?clinic=c1&patient_key=" + key).status, 200);
  auto missing = get("/v1/compliance/patient?clinic=c1&mrn=NOBODY");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("no consent and no log entry"));
  // A c1 officer asking about clinic c2 is refused before anything is read.
  EXPECT_EQ(get("/v1/compliance/patient?clinic=c2&mrn=A12345").status, 403);
  EXPECT_EQ(get("/v1/compliance/accounting?clinic=c2&mrn=A12345").status, 403);
  EXPECT_EQ(get("/v1/compliance/patient?clinic=c1&mrn=A12345", "dev-ingest-c1").status, 403) << "ingest role";

  // Each view is itself logged, with who looked, and without a partner id.
  auto reads = parseJson(get("/v1/audit/decisions?clinic=c1&kind=audit-read&limit=1000", kEveryClinic).body);
  int console_reads = 0;
  for (const auto& e : reads["entries"].GetArray()) {
    if (std::string(e["reason"].GetString()).rfind("console:", 0) != 0) continue;
    ++console_reads;
    EXPECT_STREQ(e["actor"].GetString(), "compliance-c1");
    EXPECT_STREQ(e["partner_id"].GetString(), "");
  }
  EXPECT_EQ(console_reads, 2);
}

TEST_F(ComplianceEndToEnd, AccountingListsOnlyDisclosuresAsJsonCsvAndValidAuditEvents) {
  // A partner name that a spreadsheet would run as a formula.
  startGateway({.partner_keys = R"x("name": "=HYPERLINK(\"http://x\")",)x"});
  disclosedAndDenied();

  auto r = get("/v1/compliance/accounting?clinic=c1&mrn=A12345");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parseJson(r.body);
  ASSERT_GE(d["count"].GetInt(), 2) << "the Patient and the MedicationRequest (and the Consent copy)";
  bool rx = false;
  for (const auto& l : d["disclosures"].GetArray()) {
    const std::string description = l["description"].GetString();
    EXPECT_THAT(description, Not(HasSubstr("Observation"))) << "the PHQ-9 was denied: never in an accounting";
    if (description.rfind("MedicationRequest", 0) == 0) {
      rx = true;
      EXPECT_THAT(description, HasSubstr("buprenorphine"));
      EXPECT_THAT(description, HasSubstr("42 CFR Part 2"));
      EXPECT_STREQ(l["purpose"].GetString(), "TREAT");
      EXPECT_STREQ(l["consent_id"].GetString(), "77");
      EXPECT_FALSE(l["break_glass"].GetBool());
    }
  }
  EXPECT_TRUE(rx) << r.body;
  EXPECT_EQ(d["years"].GetInt(), 3);
  EXPECT_EQ(get("/v1/compliance/accounting?clinic=c1&mrn=A12345&years=0").status, 400);
  EXPECT_EQ(get("/v1/compliance/accounting?clinic=c1&mrn=A12345&format=xml").status, 400);
  EXPECT_EQ(get("/v1/compliance/accounting?clinic=c1&mrn=A12345&bogus=1").status, 400);
  const auto unknown = get("/v1/compliance/accounting?clinic=c1&mrn=NO-SUCH-MRN");
  EXPECT_EQ(unknown.status, 404) << "an empty accounting is never handed out for a mistyped MRN";
  EXPECT_THAT(unknown.body, HasSubstr("check the MRN"));

  auto csv = get("/v1/compliance/accounting?clinic=c1&mrn=A12345&format=csv");
  ASSERT_EQ(csv.status, 200);
  EXPECT_EQ(csv.body.rfind("date,recipient,recipient_id,description,purpose,consent,consent_version,break_glass,log_seq\r\n",
                           0),
            0u);
  EXPECT_THAT(csv.body, HasSubstr("\"'=HYPERLINK(\"\"http://x\"\")\"")) << "formula-safe: a leading quote";
  EXPECT_THAT(csv.body, Not(HasSubstr("{"))) << "no JSON blobs";
  EXPECT_THAT(csv.body, HasSubstr("st-mary"));

  auto fhir = get("/v1/compliance/accounting?clinic=c1&mrn=A12345&format=fhir");
  ASSERT_EQ(fhir.status, 200);
  auto bundle = parseJson(fhir.body);
  EXPECT_STREQ(bundle["resourceType"].GetString(), "Bundle");
  ASSERT_EQ(bundle["entry"].Size(), d["disclosures"].Size());
  // The partner is a strict FHIR R4 server (Medplum's validator): it stores each AuditEvent only if valid.
  for (const auto& entry : bundle["entry"].GetArray()) {
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    entry["resource"].Accept(w);
    auto created = partner_->request("POST", "/fhir/R4/AuditEvent", b.GetString(),
                                     {{"Content-Type", "application/fhir+json"}});
    EXPECT_EQ(created.status, 201) << created.body;
  }
}

TEST_F(ComplianceEndToEnd, AccountingRequestsAreRecordedListedAndDelivered) {
  startGateway();
  disclosedAndDenied();
  auto created = post("/v1/compliance/accounting-requests?clinic=c1",
                      R"({"clinic":"c1","mrn":"A12345","received_on":"2026-11-02","note":"<script>alert(1)</script>"})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_THAT(created.body, Not(HasSubstr("<script>"))) << "escaped as \\u003c";
  auto d = parseJson(created.body);
  EXPECT_STREQ(d["note"].GetString(), "<script>alert(1)</script>") << "the same text once parsed";
  EXPECT_STREQ(d["state"].GetString(), "open");
  EXPECT_STREQ(d["due_on"].GetString(), "2026-12-02");
  const std::string id = d["id"].GetString();

  EXPECT_EQ(post("/v1/compliance/accounting-requests?clinic=c1",
                 R"({"clinic":"c2","mrn":"A12345","received_on":"2026-11-02"})")
                .status,
            403)
      << "the body's clinic must be the one the token was checked for";
  EXPECT_EQ(post("/v1/compliance/accounting-requests?clinic=c1", R"({"mrn":"A12345","received_on":"2026-02-30"})").status,
            400);

  auto list = get("/v1/compliance/accounting-requests?clinic=c1&state=open");
  ASSERT_EQ(list.status, 200);
  EXPECT_THAT(list.body, HasSubstr(id));
  EXPECT_THAT(list.body, Not(HasSubstr("A12345")));
  auto delivered = post("/v1/compliance/accounting-requests/" + id + "/delivered?clinic=c1",
                        R"({"delivered_on":"2026-11-20"})");
  ASSERT_EQ(delivered.status, 200) << delivered.body;
  EXPECT_STREQ(parseJson(delivered.body)["state"].GetString(), "delivered");
  EXPECT_THAT(get("/v1/compliance/accounting-requests?clinic=c1&state=open").body, Not(HasSubstr(id)));
  EXPECT_EQ(post("/v1/compliance/accounting-requests/ar-nope/delivered?clinic=c1", "{}").status, 404);

  auto log = get("/v1/audit/decisions?clinic=c1&kind=operation", kEveryClinic);
  EXPECT_THAT(log.body, HasSubstr("accounting-request-recorded"));
  EXPECT_THAT(log.body, HasSubstr("accounting-request-delivered"));
  EXPECT_THAT(log.body, HasSubstr("compliance-c1")) << "with the token id";
}

TEST_F(ComplianceEndToEnd, PartnerViewCountsByOutcomeClassAndReasonAndDrillsDownToPatients) {
  startGateway();
  disclosedAndDenied();
  auto r = get("/v1/compliance/partner?clinic=c1&partner=st-mary&from=2020-01-01&to=2099-12-31");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parseJson(r.body);
  EXPECT_GT(d["counts"]["by_outcome"]["disclosed"].GetInt(), 0);
  EXPECT_GT(d["counts"]["by_outcome"]["denied"].GetInt(), 0);
  EXPECT_GT(d["counts"]["by_class"]["mh"].GetInt(), 0);
  EXPECT_GT(d["counts"]["by_reason"]["class-not-covered:mh"].GetInt(), 0);
  EXPECT_EQ(d["counts"]["by_kind"].HasMember("audit-read"), false) << "reads never count";
  auto denied = parseJson(
      get("/v1/compliance/partner?clinic=c1&partner=st-mary&from=2020-01-01&to=2099-12-31&outcome=denied&class=mh").body);
  ASSERT_GT(denied["rows"].Size(), 0u);
  for (const auto& row : denied["rows"].GetArray()) EXPECT_STREQ(row["outcome"].GetString(), "denied");
  const std::string key = denied["rows"][0]["patient_key"].GetString();
  EXPECT_EQ(get("/v1/compliance/patient?clinic=c1&patient_key=" + key).status, 200);
  EXPECT_EQ(get("/v1/compliance/partner?clinic=c1&partner=nobody&from=2020-01-01&to=2099-12-31").status, 404);
  EXPECT_EQ(get("/v1/compliance/partner?clinic=c1&partner=st-mary&from=2020-01-01").status, 400);
}

TEST_F(ComplianceEndToEnd, BreakGlassSendsHeldDataWithTheEmergencyLabelUntilItEnds) {
  startGateway();
  // No consent: the patient's prescription is held (no-consent).
  ASSERT_EQ(gateway_->post(patientRecord("E-1")).status, 202);
  ASSERT_EQ(gateway_->post(prescriptionRecord("7001", "E-1")).status, 202);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "7001"), 0);

  const std::string xss = "<img src=x onerror=alert(1)>";
  auto opened =
      post("/v1/compliance/break-glass?clinic=c1",
           R"({"clinic":"c1","mrn":"E-1","partner":"st-mary","recipient":")" + xss +
               R"(","authorised_by":"J. Chen, medical director","nature":"unresponsive, suspected overdose","minutes":30})");
  ASSERT_EQ(opened.status, 201) << opened.body;
  EXPECT_THAT(opened.body, Not(HasSubstr("<img")));
  auto g = parseJson(opened.body);
  EXPECT_EQ(std::string(g["recipient"].GetString()), xss);
  EXPECT_TRUE(g["active"].GetBool());
  const std::string id = g["id"].GetString();
  EXPECT_EQ(post("/v1/compliance/break-glass?clinic=c1",
                 R"({"mrn":"E-1","partner":"st-mary","recipient":"x","authorised_by":"y","nature":"z","minutes":1441})")
                .status,
            400)
      << "at most 24 hours";

  // The held prescription goes now, labelled as an emergency disclosure with the notice.
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:7001", "delivered")) << gateway_->status("c1:rx:7001").body;
  auto found = partner_->search("MedicationRequest", kRxSystem, "7001");
  ASSERT_EQ(found["total"].GetInt(), 1);
  const auto& rx = found["entry"][0]["resource"];
  bool etreat = false;
  for (const auto& s : rx["meta"]["security"].GetArray()) etreat |= std::string(s["code"].GetString()) == "ETREAT";
  EXPECT_TRUE(etreat);
  EXPECT_THAT(rx["meta"]["extension"][0]["valueAnnotation"]["text"].GetString(), HasSubstr("42 CFR 2.51"));

  // Flagged in the accounting and the patient view.
  auto accounting = parseJson(get("/v1/compliance/accounting?clinic=c1&mrn=E-1").body);
  ASSERT_GT(accounting["count"].GetInt(), 0);
  for (const auto& l : accounting["disclosures"].GetArray()) {
    EXPECT_TRUE(l["break_glass"].GetBool());
    EXPECT_STREQ(l["break_glass_id"].GetString(), id.c_str());
  }
  EXPECT_THAT(get("/v1/compliance/patient?clinic=c1&mrn=E-1").body, HasSubstr("\"outcome\":\"emergency\""));
  EXPECT_THAT(get("/v1/compliance/break-glass?clinic=c1&active=true").body, HasSubstr(id));

  // Ended: what arrives next for the patient is held again.
  auto ended = post("/v1/compliance/break-glass/" + id + "/end?clinic=c1", "");
  ASSERT_EQ(ended.status, 200) << ended.body;
  EXPECT_FALSE(parseJson(ended.body)["active"].GetBool());
  EXPECT_EQ(post("/v1/compliance/break-glass/" + id + "/end?clinic=c1", "").status, 422) << "over already";
  ASSERT_EQ(gateway_->post(prescriptionRecord("7002", "E-1")).status, 202);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "7002"), 0);
  EXPECT_THAT(get("/v1/compliance/break-glass?clinic=c1&active=true").body, Not(HasSubstr(id)));
  auto log = get("/v1/audit/decisions?clinic=c1&kind=operation", kEveryClinic).body;
  EXPECT_THAT(log, HasSubstr("break-glass-opened"));
  EXPECT_THAT(log, HasSubstr("break-glass-ended"));
  EXPECT_EQ(get("/v1/compliance/break-glass?clinic=c2", kOfficer).status, 403);
}

}  // namespace
}  // namespace gw::test

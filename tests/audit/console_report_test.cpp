// The compliance console's rendering of the log (audit/console_report.hpp): rows in plain
// language, resource descriptions, the accounting's CSV (named columns, formula-safe, no JSON)
// and AuditEvents, the partner view's counts, and read rows that carry no partner id.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "audit/console_report.hpp"

namespace gw::audit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

store::AuditEntry row(store::AuditKind kind, store::AuditOutcome outcome, std::string reason, std::string classes) {
  store::AuditEntry e;
  e.seq = 42;
  e.at_ms = 1'800'000'000'000;
  e.kind = kind;
  e.outcome = outcome;
  e.reason = std::move(reason);
  e.classes = std::move(classes);
  e.partner_id = "st-mary";
  e.purpose = "TREAT";
  e.resource_type = "MedicationRequest";
  e.resource_id = "key-1";
  return e;
}

TEST(ConsoleReport, RowsInPlainLanguage) {
  using enum store::AuditKind;
  using enum store::AuditOutcome;
  EXPECT_EQ(plainText(row(Decision, Deny, "class-not-covered:mh", "mh"), "St. Mary's"),
            "Not sent to St. Mary's: the consent does not cover mental-health data");
  EXPECT_EQ(plainText(row(Decision, Deny, "no-consent", "sud"), "St. Mary's"),
            "Not sent to St. Mary's: there is no consent naming this recipient");
  EXPECT_EQ(plainText(row(Cancel, Cancelled, "revoked", "sud"), "St. Mary's"),
            "Stopped before sending to St. Mary's: the consent was revoked");
  EXPECT_EQ(plainText(row(Disclosure, Delivered, "", "sud"), "St. Mary's"), "Sent to St. Mary's");
  auto glass = row(Disclosure, Delivered, "break-glass", "sud");
  glass.detail = R"({"break_glass":"bg-1","outbox_item":3})";
  EXPECT_THAT(plainText(glass, "St. Mary's"), HasSubstr("emergency access"));
  EXPECT_EQ(consoleOutcome(glass), "emergency");
  EXPECT_EQ(breakGlassOf(glass), "bg-1");
  EXPECT_EQ(consoleOutcome(row(Disclosure, Delivered, "", "sud")), "disclosed");
  EXPECT_EQ(classesInWords("sud,mh"), "substance use disorder (42 CFR Part 2) and mental-health data");
  ASSERT_TRUE(parseOutcomeFilter("emergency"));
  EXPECT_TRUE(parseOutcomeFilter("emergency")->emergency_only);
  EXPECT_EQ(parseOutcomeFilter("denied")->outcome, Deny);
  EXPECT_FALSE(parseOutcomeFilter("maybe"));
}

TEST(ConsoleReport, DescribesAResourceFromWhatWasSent) {
  rapidjson::Document rx;
  rx.Parse(R"({"resourceType":"MedicationRequest","id":"abc","medicationCodeableConcept":{"coding":[
    {"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"1010604","display":"buprenorphine 8 MG / naloxone 2 MG"}]},
    "subject":{"display":"Jane Rivera"}})");
  EXPECT_EQ(describeResource(rx, "sud"), "MedicationRequest buprenorphine 8 MG / naloxone 2 MG, 42 CFR Part 2");
  EXPECT_EQ(describeResourceType("Observation", "mh"), "Observation, mental health");
  std::map<std::string, SentResource> sent;
  describeBundle(R"({"resourceType":"Bundle","entry":[{"resource":)" +
                     std::string(R"({"resourceType":"Patient","id":"p1","name":[{"family":"Rivera"}]})") + R"(}]})",
                 [](std::string_view type, std::string_view id) { return std::string(type) + "|" + std::string(id); }, sent);
  describeBundle(
      R"({"entry":[{"fullUrl":"urn:uuid:m9","resource":{"resourceType":"MedicationRequest","status":"active"}}]})",
      [](std::string_view type, std::string_view id) { return std::string(type) + "|" + std::string(id); }, sent);
  EXPECT_EQ(sent["MedicationRequest|m9"].reference, "MedicationRequest/m9") << "a conditional write's id is its fullUrl";
  ASSERT_EQ(sent.count("Patient|p1"), 1u);
  EXPECT_EQ(sent["Patient|p1"].description, "Patient demographics") << "never the name";
  EXPECT_EQ(sent["Patient|p1"].reference, "Patient/p1");
}

Accounting sampleAccounting(std::string recipient) {
  Accounting a;
  a.clinic = "c1";
  a.patient_key = "pk";
  a.from_ms = 1'700'000'000'000;
  a.to_ms = 1'800'000'100'000;
  AccountingLine l;
  l.entry = row(store::AuditKind::Disclosure, store::AuditOutcome::Delivered, "", "sud");
  l.recipient = std::move(recipient);
  l.description = "MedicationRequest buprenorphine, 42 CFR Part 2";
  l.reference = "MedicationRequest/abc";
  l.consent_id = "77";
  l.entry.consent_version = 2;
  a.lines.push_back(l);
  l.break_glass_id = "bg-9";
  l.entry.seq = 43;
  a.lines.push_back(l);
  return a;
}

TEST(ConsoleReport, AccountingCsvHasNamedColumnsAndIsFormulaSafe) {
  const auto csv = accountingCsv(sampleAccounting("=cmd|' /C calc'!A0"));
  EXPECT_EQ(csv.rfind("date,recipient,recipient_id,description,purpose,consent,consent_version,break_glass,log_seq\r\n", 0),
            0u);
  EXPECT_THAT(csv, HasSubstr(",'=cmd|' /C calc'!A0,st-mary,"));
  EXPECT_THAT(csv, HasSubstr("\"MedicationRequest buprenorphine, 42 CFR Part 2\",TREAT,77,2,no,42\r\n"));
  EXPECT_THAT(csv, HasSubstr("yes (bg-9),43\r\n"));
  EXPECT_THAT(csv, Not(HasSubstr("{")));
  for (const char* lead : {"+1", "-1", "@x", "\tx", "\rx"}) {
    EXPECT_EQ(accountingCsv(sampleAccounting(lead)).find(std::string(",") + lead), std::string::npos) << lead;
  }
}

TEST(ConsoleReport, AccountingAuditEventsAreBalpDisclosures) {
  rapidjson::Document d;
  d.Parse(accountingAuditEvents(sampleAccounting("St. Mary's"), "fhir-gateway").c_str());
  ASSERT_TRUE(d.IsObject());
  EXPECT_STREQ(d["resourceType"].GetString(), "Bundle");
  EXPECT_STREQ(d["type"].GetString(), "collection");
  ASSERT_EQ(d["entry"].Size(), 2u);
  const auto& e = d["entry"][0]["resource"];
  EXPECT_STREQ(e["resourceType"].GetString(), "AuditEvent");
  EXPECT_STREQ(e["type"]["code"].GetString(), "110106");
  EXPECT_STREQ(e["subtype"][0]["code"].GetString(), "disclose");
  EXPECT_STREQ(e["purposeOfEvent"][0]["coding"][0]["code"].GetString(), "TREAT");
  EXPECT_STREQ(e["agent"][1]["who"]["display"].GetString(), "St. Mary's");
  EXPECT_THAT(e["agent"][1]["policy"][0].GetString(), HasSubstr("c1/77/2"));
  EXPECT_STREQ(e["entity"][0]["what"]["identifier"]["value"].GetString(), "pk");
  EXPECT_STREQ(e["entity"][1]["what"]["reference"].GetString(), "MedicationRequest/abc");
  const auto& emergency = d["entry"][1]["resource"];
  EXPECT_STREQ(emergency["purposeOfEvent"][0]["coding"][0]["code"].GetString(), "ETREAT");
}

// Several instances on one database: each event says which gateway wrote it (null on rows from
// before schema 9), in the patient view and the partner view alike.
TEST(ConsoleReport, EventsNameTheGatewayInstanceThatWroteThem) {
  using enum store::AuditKind;
  using enum store::AuditOutcome;
  auto east = row(Disclosure, Delivered, "", "sud");
  east.instance_id = "gw-east-1";
  auto old = row(Decision, Permit, "", "sud");
  const auto describe = [](const store::AuditEntry&) { return std::string("MedicationRequest"); };
  rapidjson::Document patient;
  patient.Parse(patientJson(
                    "c1", "pk", {}, {east, old}, [](std::string_view) { return std::string("St. Mary's"); }, {}, describe)
                    .c_str());
  ASSERT_TRUE(patient.IsObject());
  ASSERT_EQ(patient["events"].Size(), 2u);
  EXPECT_STREQ(patient["events"][0]["instance_id"].GetString(), "gw-east-1");
  EXPECT_TRUE(patient["events"][1]["instance_id"].IsNull());

  store::AuditPage page;
  page.entries = {east};
  rapidjson::Document partner;
  partner.Parse(partnerViewJson("st-mary", "St. Mary's", 0, 86'400'000, {}, page).c_str());
  ASSERT_TRUE(partner.IsObject());
  EXPECT_STREQ(partner["rows"][0]["instance_id"].GetString(), "gw-east-1");
}

TEST(ConsoleReport, PartnerViewCountsAndReadRowsWithoutPartner) {
  std::vector<store::PartnerLogCount> counts = {{"decision", "deny", "sud,mh", "class-not-covered:mh", 3},
                                                {"disclosure", "delivered", "sud", "break-glass", 2}};
  rapidjson::Document d;
  d.Parse(partnerViewJson("st-mary", "St. Mary's", 0, 86'400'000, counts, {}).c_str());
  EXPECT_EQ(d["total"].GetInt(), 5);
  EXPECT_EQ(d["counts"]["by_outcome"]["denied"].GetInt(), 3);
  EXPECT_EQ(d["counts"]["by_outcome"]["emergency"].GetInt(), 2);
  EXPECT_EQ(d["counts"]["by_class"]["sud"].GetInt(), 5);
  EXPECT_EQ(d["counts"]["by_class"]["mh"].GetInt(), 3);
  const auto read = consoleReadEntry("patient", "c1", "pk", "officer", 1, 4);
  EXPECT_EQ(read.kind, store::AuditKind::AuditRead);
  EXPECT_EQ(read.partner_id, "");
  EXPECT_EQ(read.actor, "officer");
  EXPECT_EQ(read.patient_key, "pk");
}

}  // namespace
}  // namespace gw::audit

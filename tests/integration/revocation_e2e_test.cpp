// Revocations reach the partner (issue 11, point 6; docs/privacy.md §8.4): the real gateway
// binary and the real partner (Node + Medplum). A partner that received a Part 2 prescription
// holds the Consent it went with; when the patient revokes it, the partner's copy becomes
// inactive, and nothing else about the patient reaches the partner after the revocation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/ids.hpp"
#include "gateway_fixture.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

class RevocationEndToEnd : public PartnerSuite {
 protected:
  void SetUp() override {
    PartnerSuite::SetUp();
    startGateway();
  }
  void accepted(const std::string& record) {
    auto r = gateway_->post(record);
    EXPECT_EQ(r.status, 202) << r.body;
  }
  // The statuses of the Consents the partner holds.
  std::vector<std::string> partnerConsentStatuses() {
    auto bundle = parseJson(partner_->get("Consent").body);
    std::vector<std::string> statuses;
    if (!bundle.IsObject() || !bundle.HasMember("entry")) return statuses;
    for (const auto& e : bundle["entry"].GetArray()) statuses.push_back(e["resource"]["status"].GetString());
    return statuses;
  }
  // The patient the partner's (only) Consent is about, as the partner names it.
  std::string partnerConsentPatient() {
    auto bundle = parseJson(partner_->get("Consent").body);
    if (!bundle.IsObject() || !bundle.HasMember("entry") || bundle["entry"].Size() != 1) return {};
    return bundle["entry"][0]["resource"]["patient"]["reference"].GetString();
  }
  // The bodies of the partner's write requests, in the order received.
  std::vector<std::string> writes() {
    auto requests = parseJson(partner_->admin("GET", "requests?bodies=1").body);
    std::vector<std::string> bodies;
    for (const auto& req : requests.GetArray()) {
      if (std::string(req["method"].GetString()) == "GET" || !req.HasMember("body") || !req["body"].IsString()) continue;
      bodies.push_back(req["body"].GetString());
    }
    return bodies;
  }
};

TEST_F(RevocationEndToEnd, ARevokedConsentBecomesInactiveAtThePartnerAndNothingElseFollows) {
  accepted(consentRecord("A12345", "st-mary", R"(["general","sud"])", "active", "77"));
  accepted(prescriptionRecord("9001"));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9001", "delivered")) << gateway_->status("c1:rx:9001").body;
  ASSERT_EQ(partnerConsentStatuses(), std::vector<std::string>{"active"}) << "the Consent travels with Part 2 data";
  const std::size_t before = writes().size();
  const std::string patient = partnerConsentPatient();
  ASSERT_THAT(patient, HasSubstr("Patient/"));
  ASSERT_EQ(partner_->get(patient).status, 200) << patient;

  // The patient revokes; the clinic also sends a new prescription, which must not go.
  accepted(consentRecord("A12345", "st-mary", R"(["general","sud"])", "revoked", "77"));
  accepted(prescriptionRecord("9002"));
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (partnerConsentStatuses() != std::vector<std::string>{"inactive"} && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(partnerConsentStatuses(), std::vector<std::string>{"inactive"})
      << "the partner's copy of the Consent is updated, not duplicated";
  EXPECT_EQ(partnerConsentPatient(), patient) << "still about the partner's own Patient";

  // After the revocation: one request, a Bundle holding the Consent alone.
  const auto after = writes();
  ASSERT_EQ(after.size(), before + 1);
  auto bundle = parseJson(after.back());
  ASSERT_TRUE(bundle.IsObject()) << after.back();
  ASSERT_EQ(bundle["entry"].Size(), 1u) << after.back();
  EXPECT_STREQ(bundle["entry"][0]["resource"]["resourceType"].GetString(), "Consent");
  EXPECT_THAT(std::string(bundle["entry"][0]["request"]["url"].GetString()), HasSubstr("Consent?identifier="));
  EXPECT_EQ(after.back().find("MedicationRequest"), std::string::npos) << after.back();
  EXPECT_EQ(after.back().find("\"Patient\""), std::string::npos) << "no Patient entry: " << after.back();

  // Logged as a disclosure of the revocation, and passed on once.
  EXPECT_THAT(gateway_->log(), HasSubstr("consent_updates=1"));
  // The partner has the write; the gateway records its outcome right after the answer.
  auto log = gateway_->request("GET", "/v1/audit/decisions?clinic=c1&mrn=A12345", "", "dev-compliance");
  for (const auto give_up = std::chrono::steady_clock::now() + 10s;
       log.body.find(R"("outcome":"delivered","reason":"consent-update")") == std::string::npos &&
       std::chrono::steady_clock::now() < give_up;) {
    std::this_thread::sleep_for(100ms);
    log = gateway_->request("GET", "/v1/audit/decisions?clinic=c1&mrn=A12345", "", "dev-compliance");
  }
  ASSERT_EQ(log.status, 200) << log.body;
  EXPECT_THAT(log.body, HasSubstr("consent-update")) << log.body;
  EXPECT_THAT(log.body, HasSubstr(R"("resource_type":"Consent")"));
  EXPECT_THAT(log.body, HasSubstr(R"("outcome":"delivered","reason":"consent-update")")) << log.body;
  gateway_->stop();
  gateway_->start();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(writes().size(), before + 1) << "a restart passes nothing on twice";
}

}  // namespace
}  // namespace gw::test

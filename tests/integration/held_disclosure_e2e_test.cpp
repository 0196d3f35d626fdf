// Held disclosures per resource and partner (issue 10, point 2; docs/privacy.md §8.2): the real
// gateway binary and the real partner (Node + Medplum). A Part 2 treatment plan with a
// psychiatric activity goes redacted to a partner whose consent covers general and sud data;
// when the consent is widened to mh, the full plan goes exactly once (a resend of the same
// content sends nothing more); when it is narrowed again, later versions go redacted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/ids.hpp"
#include "gateway_fixture.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kPartner = "st-mary";
constexpr const char* kPlanSystem = "https://ids.c1.example.org/treatment-plan";
constexpr const char* kPsychiatricDetail = "Evaluate for co-occurring depression";  // the plan's only mh part

// A Part 2 program's treatment plan: sud activities, general ones and one psychiatric (mh) activity.
std::string treatmentPlan(const std::string& housing_status = "completed") {
  return R"({"record_id":"c1:tp:TP-3","record_type":"treatment_plan","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:00:00-05:00","patient":{"mrn":"A12345"},
 "plan":{"id":"TP-3","status":"active","period":{"start":"2026-11-20","end":"2027-05-20"},
  "goals":["Stay on buprenorphine"],
  "activities":[{"kind":"moud","detail":"Buprenorphine/naloxone 16 mg daily","status":"in-progress"},
   {"kind":"peer_support","detail":"Peer coach","status":"not-started"},
   {"kind":"psychiatric_care","detail":")" +
         std::string(kPsychiatricDetail) + R"(","status":"on-hold"},
   {"kind":"housing_support","detail":"Referral to a housing program","status":")" +
         housing_status + R"("}],
  "author":{"npi":"1245319599","name":"Dr. Ortiz"}}})";
}

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

class HeldDisclosureEndToEnd : public PartnerSuite {
 protected:
  void SetUp() override {
    PartnerSuite::SetUp();
    startGateway();
  }

  HttpResponse accepted(const std::string& record) {
    auto r = gateway_->post(record);
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_THAT(r.body, HasSubstr("\"status\":\"accepted\"")) << r.body;
    return r;
  }
  // The bodies of the partner's write requests that carry the plan, in the order received.
  std::vector<std::string> planSends() {
    auto requests = parseJson(partner_->admin("GET", "requests?bodies=1").body);
    std::vector<std::string> sends;
    for (const auto& req : requests.GetArray()) {
      if (std::string(req["method"].GetString()) == "GET" || !req.HasMember("body") || !req["body"].IsString()) continue;
      const std::string body = req["body"].GetString();
      if (body.find(kPlanSystem) != std::string::npos) sends.push_back(body);
    }
    return sends;
  }
  std::vector<std::string> waitForPlanSends(std::size_t n, std::chrono::milliseconds timeout = 20s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    auto sends = planSends();
    while (sends.size() < n && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(100ms);
      sends = planSends();
    }
    return sends;
  }
  // Proves a negative without sleeping: the partner's worker sends due items in the order they
  // were queued, so once this later record is delivered, anything queued before it was sent.
  void deliverMarker(const std::string& id) {
    accepted(consentRecord("M-1", kPartner, R"(["general","sud"])", "active", "marker-consent"));
    accepted(prescriptionRecord(id, "M-1"));
    ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:" + id, "delivered")) << gateway_->status("c1:rx:" + id).body;
  }
  std::string storedPlan() { return partner_->get("CarePlan?identifier=" + std::string(kPlanSystem) + "%7CTP-3").body; }
};

TEST_F(HeldDisclosureEndToEnd, ARedactedPlanGoesInFullOnceWhenTheConsentWidensAndRedactedAgainAfterItNarrows) {
  // 1. Consent for general and sud data: the plan goes without its psychiatric activity.
  accepted(consentRecord("A12345", kPartner, R"(["general","sud"])", "active", "77"));
  accepted(treatmentPlan());
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:tp:TP-3", "delivered")) << gateway_->status("c1:tp:TP-3").body;
  auto sends = planSends();
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_THAT(sends[0], Not(HasSubstr(kPsychiatricDetail)));
  EXPECT_THAT(sends[0], HasSubstr("REDACTED"));

  // 2. The consent now covers mh too: the held part goes, as the full plan, once.
  accepted(consentRecord("A12345", kPartner, R"(["general","sud","mh"])", "active", "77"));
  sends = waitForPlanSends(2);
  ASSERT_EQ(sends.size(), 2u) << "the full plan was never sent after the consent widened";
  EXPECT_THAT(sends[1], HasSubstr(kPsychiatricDetail));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:tp:TP-3", "delivered")) << gateway_->status("c1:tp:TP-3").body;
  EXPECT_THAT(storedPlan(), HasSubstr(kPsychiatricDetail));
  // The clinic resends the same content: nothing is held any more, so nothing more goes.
  auto resend = accepted(treatmentPlan());
  EXPECT_THAT(resend.body, HasSubstr("\"disposition\":\"unchanged\"")) << resend.body;
  EXPECT_THAT(resend.body, HasSubstr("\"queued_for\":[]")) << resend.body;
  deliverMarker("marker-1");
  EXPECT_EQ(planSends().size(), 2u) << "the full plan goes exactly once";

  // 3. Narrowed back to general and sud: a later version of the plan goes redacted again.
  accepted(consentRecord("A12345", kPartner, R"(["general","sud"])", "active", "77"));
  accepted(treatmentPlan("in-progress"));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:tp:TP-3", "delivered")) << gateway_->status("c1:tp:TP-3").body;
  deliverMarker("marker-2");
  sends = planSends();
  ASSERT_EQ(sends.size(), 3u);
  EXPECT_THAT(sends[2], Not(HasSubstr(kPsychiatricDetail)));
  EXPECT_THAT(storedPlan(), Not(HasSubstr(kPsychiatricDetail))) << "the partner's current version is the redacted one";
}

}  // namespace
}  // namespace gw::test

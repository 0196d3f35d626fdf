// Per-partner flow control end to end (docs/architecture.md §5.7), against the Medplum partner:
// a partner answering 503 to everything trips the circuit breaker, after which it sees at most
// one probe per open period, /readyz and the record status say so, and when the partner recovers
// the breaker closes and every item arrives exactly once (none went dead meanwhile). With
// max_concurrent_requests 4 the partner sees several requests at once, never two for one patient,
// and each patient's records in order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "gateway_fixture.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

rapidjson::Document parseJsonText(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

const std::vector<std::string> kMrns = {"A12345", "B2", "B-77", "B20001", "C30777", "P-77", "HR-1001", "HR-1002"};

class FlowControlEndToEnd : public PartnerSuite {
 protected:
  Gateway& startConsentedGateway(GatewayOptions options) {
    auto& gw = startGateway(std::move(options));
    consentToEverything();
    return gw;
  }

  rapidjson::Document circuit(Gateway& gw) {
    auto r = gw.request("GET", "/readyz", "", "dev-admin");
    EXPECT_EQ(r.status, 200) << "one partner's outage is not the gateway's: " << r.body;
    auto d = parseJsonText(r.body);
    rapidjson::Document out;
    if (d.IsObject() && d.HasMember("capabilities")) out.CopyFrom(d["capabilities"][0]["circuit"], out.GetAllocator());
    return out;
  }

  bool waitForCircuit(Gateway& gw, const std::string& state, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      auto c = circuit(gw);
      if (c.IsObject() && c["state"].GetString() == state) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  int stat(const char* key) {
    auto d = parseJsonText(partner_->admin("GET", "stats").body);
    return d[key].GetInt();
  }
};

TEST_F(FlowControlEndToEnd, BreakerStopsRequestsToAFailingPartnerAndClosesWhenItRecovers) {
  // Everything answers 503 (the statement read at start too).
  ASSERT_EQ(partner_->admin("POST", "faults", R"({"status":503,"count":100000000})").status, 200);
  GatewayOptions options;
  options.retry_initial_ms = 50;
  options.retry_max_ms = 100;
  options.max_attempts = 4;  // without the breaker every item would be dead within a second
  options.partner_keys =
      R"("max_concurrent_requests": 2, "circuit_breaker": {"failure_threshold": 3, "open_seconds": 2, "max_open_seconds": 2},)";
  auto& gw = startConsentedGateway(options);
  std::vector<std::string> records;
  for (std::size_t i = 0; i < 5; ++i) {
    const std::string id = "95" + std::to_string(i);
    records.push_back("c1:rx:" + id);
    ASSERT_EQ(gw.post(prescriptionRecord(id, kMrns[i])).status, 202);
  }
  ASSERT_TRUE(waitForCircuit(gw, "open", 10s)) << json::toString(circuit(gw));
  auto open = circuit(gw);
  EXPECT_STREQ(open["last_error"].GetString(), "http 503");
  EXPECT_GE(open["consecutive_failures"].GetInt(), 3);
  {
    // The partner's health says it too, for dashboards that read only `partners`.
    auto ready = parseJsonText(gw.request("GET", "/readyz", "", "dev-admin").body);
    const auto& health = ready["partners"][0];
    EXPECT_STREQ(health["circuit"].GetString(), "open") << json::toString(ready);
    EXPECT_STREQ(health["state"].GetString(), "failing") << json::toString(ready);
  }

  // The request rate while open: at most one probe per 2 s open period (the window may take in
  // the edges of four periods). Without the breaker: 5 items every 50..100 ms.
  const int before = stat("faults_injected");
  std::this_thread::sleep_for(6500ms);
  const int during = stat("faults_injected") - before;
  std::cout << "requests to the failing partner in 6.5 s with the breaker open: " << during << "\n";
  EXPECT_LE(during, 4);
  EXPECT_GE(during, 2) << "the probes go on";

  // The items wait, alive, saying why.
  bool saw_reason = false;
  for (const auto& id : records) {
    auto status = parseJsonText(gw.status(id).body);
    const auto& d = status["deliveries"][0];
    EXPECT_STRNE(d["state"].GetString(), "dead") << json::toString(status);
    if (d.HasMember("last_error") && std::string(d["last_error"].GetString()).find("circuit open") != std::string::npos) {
      saw_reason = true;
    }
  }
  EXPECT_TRUE(saw_reason) << "record status names the open circuit: " << gw.status(records[0]).body;

  // The partner recovers: the next probe closes the breaker and everything arrives, once.
  ASSERT_EQ(partner_->admin("DELETE", "faults").status, 200);
  for (const auto& id : records) ASSERT_TRUE(gw.waitForDeliveries(id, "delivered", 20s)) << gw.status(id).body;
  EXPECT_TRUE(waitForCircuit(gw, "closed", 2s)) << json::toString(circuit(gw));
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "95" + std::to_string(i)), 1);
  }
  const auto log = gw.log();
  EXPECT_THAT(log, HasSubstr("circuit_open"));
  EXPECT_THAT(log, HasSubstr("circuit_closed"));
}

TEST_F(FlowControlEndToEnd, ConcurrentRequestsButOnePatientAtATimeAndInOrder) {
  // Slow answers, so requests that can overlap do.
  ASSERT_EQ(partner_->admin("POST", "faults", R"({"delay_ms":40,"count":100000})").status, 200);
  GatewayOptions options;
  options.partner_keys = R"("max_concurrent_requests": 4, "write_mode": "transaction",)";
  auto& gw = startConsentedGateway(options);
  // Three prescriptions for each of eight patients, in one request: ids 9<patient><n>.
  std::string batch;
  std::vector<std::string> ids;
  for (std::size_t n = 0; n < 3; ++n) {
    for (std::size_t p = 0; p < kMrns.size(); ++p) {
      const std::string id = "9" + std::to_string(p) + std::to_string(n);
      ids.push_back(id);
      batch += json::toString(parseJsonText(prescriptionRecord(id, kMrns[p]))) + "\n";
    }
  }
  ASSERT_EQ(gw.post(batch, "application/x-ndjson").status, 202);
  for (const auto& id : ids) ASSERT_TRUE(gw.waitForDeliveries("c1:rx:" + id, "delivered", 30s)) << gw.status(id).body;

  auto stats = parseJsonText(partner_->admin("GET", "stats").body);
  const auto& concurrency = stats["concurrency"];
  std::cout << "partner saw: " << json::toString(concurrency) << "\n";
  EXPECT_GT(concurrency["max_in_flight"].GetInt(), 1) << "requests in flight at once";
  EXPECT_LE(concurrency["max_in_flight"].GetInt(), 4);
  EXPECT_EQ(concurrency["max_same_patient"].GetInt(), 1) << "never two at once for one patient";
  EXPECT_EQ(concurrency["same_patient_overlaps"].GetInt(), 0);

  // Each patient's prescriptions arrived in the order they were recorded, each once.
  auto requests = parseJsonText(partner_->admin("GET", "requests?bodies=1").body);
  std::map<std::size_t, std::vector<int>> order;  // patient -> n in arrival order
  for (const auto& r : requests.GetArray()) {
    if (!r.HasMember("body") || !r["body"].IsString()) continue;
    const std::string body = r["body"].GetString();
    for (std::size_t p = 0; p < kMrns.size(); ++p) {
      for (int n = 0; n < 3; ++n) {
        if (body.find("\"value\":\"9" + std::to_string(p) + std::to_string(n) + "\"") != std::string::npos) {
          order[p].push_back(n);
        }
      }
    }
  }
  for (std::size_t p = 0; p < kMrns.size(); ++p) {
    EXPECT_EQ(order[p], (std::vector<int>{0, 1, 2})) << "patient " << p;
  }
  for (const auto& id : ids) EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, id), 1) << id;
}

}  // namespace
}  // namespace gw::test

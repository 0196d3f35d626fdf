// No send starts after a revocation is acknowledged (issue 10, point 3; docs/privacy.md §8.3).
// The real gateway binary delivers to the real partner (Node + Medplum) through a proxy that
// delays every new connection, and the partner holds every request open and then closes the
// connection: so each send has a connect phase and an in-flight phase, and a revocation posted
// at a random moment lands in either. After its 202, the partner's request log must show no
// request for that patient that began later. Repeated 50 times, one patient each.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/ids.hpp"
#include "delaying_proxy.hpp"
#include "gateway_fixture.hpp"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

std::string mrnOf(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "RC%03dX", i);
  return buf;
}

TEST(SendRace, NoRequestForAPatientStartsAfterItsRevocationIsAnswered) {
  const auto dir = (fs::temp_directory_path() / ("gw-send-race-" + ids::randomHex(6))).string();
  fs::create_directories(dir);
  {
    Partner partner(dir, "partner");
    constexpr auto kConnectDelay = 60ms;
    constexpr int kHoldMs = 60;
    DelayingProxy proxy(partner.port(), kConnectDelay);
    // Every request is held open, then answered with Connection: close: each send reconnects
    // through the proxy's delay.
    ASSERT_EQ(partner.admin("POST", "faults",
                            R"({"delay_ms":)" + std::to_string(kHoldMs) + R"(,"close":true,"count":100000})")
                      .status /
                  100,
              2);
    GatewayOptions options;
    options.partner_url = "https://127.0.0.1:" + std::to_string(proxy.port()) + "/fhir/R4";
    fs::create_directories(dir + "/gw");
    Gateway gateway(dir + "/gw", options);
    gateway.start();

    std::mt19937 random(12345);
    std::uniform_int_distribution<int> pause_ms(0, 2 * (60 + kHoldMs));
    std::vector<std::int64_t> answered_at(50);
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i) {
      const std::string mrn = mrnOf(i);
      const std::string consent_id = "race-" + std::to_string(i);
      ASSERT_EQ(gateway.post(consentRecord(mrn, "st-mary", R"(["general","sud"])", "active", consent_id)).status, 202);
      for (int k = 0; k < 3; ++k) {
        ASSERT_EQ(gateway.post(prescriptionRecord(mrn + "-" + std::to_string(k), mrn)).status, 202);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(random)));
      const auto revoked = gateway.post(consentRecord(mrn, "st-mary", R"(["general","sud"])", "revoked", consent_id));
      answered_at[static_cast<std::size_t>(i)] = nowMs();
      ASSERT_EQ(revoked.status, 202) << revoked.body;
      // The patient's items all reach a final state before the next patient starts.
      for (int k = 0; k < 3; ++k) {
        const std::string record = "c1:rx:" + mrn + "-" + std::to_string(k);
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
          const auto body = gateway.status(record).body;
          if (body.find("\"queued\"") == std::string::npos && body.find("\"retrying\"") == std::string::npos) break;
          std::this_thread::sleep_for(10ms);
        }
      }
    }
    const auto elapsed = std::chrono::steady_clock::now() - started;

    // The partner's request log: when each request for each patient began.
    auto log = parseJson(partner.admin("GET", "requests?bodies=1").body);
    ASSERT_TRUE(log.IsArray());
    int requests = 0, late = 0;
    std::string first_late;
    for (const auto& req : log.GetArray()) {
      if (!req.HasMember("body") || !req["body"].IsString()) continue;
      const std::string body = req["body"].GetString();
      for (int i = 0; i < 50; ++i) {
        if (body.find("\"" + mrnOf(i) + "\"") == std::string::npos) continue;
        ++requests;
        const auto began = isoToMs(req["time"].GetString());
        if (began > answered_at[static_cast<std::size_t>(i)]) {
          ++late;
          if (first_late.empty()) {
            first_late = "patient " + std::to_string(i) + ": request at " + std::to_string(began) +
                         " ms, revocation answered at " + std::to_string(answered_at[static_cast<std::size_t>(i)]) + " ms";
          }
        }
      }
    }
    std::cerr << "send race: " << requests << " requests for the 50 patients, " << late
              << " began after their revocation was answered; "
              << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms\n";
    EXPECT_GT(requests, 0) << "some sends happened before the revocations";
    EXPECT_EQ(late, 0) << first_late;
    if (HasFailure()) std::cerr << "---- gateway log ----\n" << gateway.log();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gw::test

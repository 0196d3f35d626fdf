// The compliance console with the real gateway binary on its own TLS listener: its sessions and
// headers over HTTPS (ConsoleListener), and the pages in Debian's headless chromium driven by
// tests/console/console.test.mjs (ConsoleBrowser), with consents and records delivered to the
// sandbox partner first. Screenshots, the PDF and the exports land in <build>/console-artifacts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <thread>

#include "gateway_fixture.hpp"
#include "support/test_files.hpp"
#include "support/test_pki.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string kRepo = GW_REPO_DIR;
const std::string kXss = R"(<img src=x onerror=\"window.__xss=1\">)";  // JSON-escaped

std::string consoleKeys(int idle_seconds) {
  return R"("console": {"directory": ")" + kRepo + R"(/console", "session_idle_timeout_seconds": )" +
         std::to_string(idle_seconds) + R"(,
    "listen": {"address": "127.0.0.1", "port": 0,
               "tls": {"cert_file": ")" +
         devPkiFile("server.crt") + R"(", "key_file": ")" + devPkiFile("server.key") + R"("}}},)";
}

std::uint16_t consolePort(const Gateway& gateway) {
  std::smatch m;
  const std::string log = gateway.log();
  if (!std::regex_search(log, m, std::regex(R"(console_started .*port=(\d+))"))) return 0;
  return static_cast<std::uint16_t>(std::stoi(m[1]));
}

std::string screening(const std::string& id, const std::string& mrn) {
  return R"({"record_id":"c1:scr:)" + id + R"(","record_type":"screening","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:00:00-05:00","patient":{"mrn":")" +
         mrn + R"("},"screening":{"id":")" + id +
         R"(","instrument":"phq9","total_score":14,"administered_at":"2026-11-20T09:10:00-05:00"}})";
}

// "gw_console=<id>; Path=/; ..." -> id
std::string cookieId(const HttpResponse& r) {
  const std::string set = r.header("Set-Cookie");
  const auto eq = set.find('=');
  const auto semi = set.find(';');
  return eq == std::string::npos ? std::string() : set.substr(eq + 1, semi - eq - 1);
}

std::string csrfOf(const std::string& body) {
  std::smatch m;
  return std::regex_search(body, m, std::regex(R"re("csrf_token":"([0-9a-f]+)")re")) ? std::string(m[1]) : std::string();
}

class ConsoleTest : public PartnerSuite {
 protected:
  void startConsole(int idle_seconds) {
    GatewayOptions options;
    options.top_level_keys = consoleKeys(idle_seconds);
    options.partner_keys = R"("name": "St. Mary's Hospital",)";
    options.anchor_file = dir_ + "-anchors/anchors.log";
    std::filesystem::create_directories(dir_ + "-anchors");
    startGateway(options);
    port_ = consolePort(*gateway_);
    ASSERT_NE(port_, 0) << gateway_->log();
    tls_.ca_file = devPkiFile("ca.crt");
  }
  HttpResponse call(const std::string& method, const std::string& target, const std::string& body = {},
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    return tlsRequest(port_, tls_, method, target, body, headers);
  }
  HttpResponse login(const std::string& token, std::vector<std::pair<std::string, std::string>> headers = {}) {
    headers.emplace_back("Content-Type", "application/json");
    return call("POST", "/console/login", R"({"token":")" + token + "\"}", headers);
  }
  static std::pair<std::string, std::string> cookie(const std::string& id) { return {"Cookie", "gw_console=" + id}; }

  std::uint16_t port_ = 0;
  TlsClientOptions tls_;
};

TEST_F(ConsoleTest, ListenerServesTheConsoleWithStrictHeadersAndSessionsThatHoldTheTokensRights) {
  startConsole(2);

  // The page and its files, each with the security headers; so is a 404.
  for (const std::string target : {"/console/", "/console/app.js", "/console/missing.js", "/console/..%2Fgateway.json"}) {
    auto r = call("GET", target);
    SCOPED_TRACE(target);
    EXPECT_EQ(r.status, target.find("missing") != std::string::npos || target.find("..") != std::string::npos ? 404 : 200);
    EXPECT_THAT(r.header("Content-Security-Policy"), HasSubstr("default-src 'self'"));
    EXPECT_THAT(r.header("Content-Security-Policy"), HasSubstr("frame-ancestors 'none'"));
    EXPECT_THAT(r.header("Content-Security-Policy"), ::testing::Not(HasSubstr("unsafe-inline")));
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(r.header("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(r.header("X-Frame-Options"), "DENY");
    EXPECT_EQ(r.header("Cache-Control"), "no-store");
  }
  auto page = call("GET", "/console/");
  EXPECT_THAT(page.header("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(page.body, ::testing::Not(HasSubstr("<script>"))) << "no inline script";
  EXPECT_THAT(page.body, ::testing::Not(HasSubstr("style="))) << "no inline style";
  EXPECT_EQ(call("GET", "/console/app.js").header("Content-Type"), "text/javascript; charset=utf-8");

  // Only the console's routes: no ingest, no operator routes; bearer tokens do not work here.
  EXPECT_EQ(call("POST", "/v1/records", "{}", {{"Authorization", "Bearer dev-ingest-c1"}}).status, 404);
  EXPECT_EQ(call("GET", "/v1/outbox", {}, {{"Authorization", "Bearer dev-admin"}}).status, 404);
  EXPECT_EQ(call("GET", "/v1/consents?clinic=c1&mrn=A12345", {}, {{"Authorization", "Bearer dev-compliance"}}).status, 401);

  // Sign-in: unknown tokens, tokens without the role, sign-ins posted from another site.
  EXPECT_EQ(login("not-a-token").status, 401);
  EXPECT_EQ(login("dev-ingest-c1").status, 403);
  EXPECT_EQ(login("dev-compliance", {{"Origin", "https://evil.example"}}).status, 403);

  // Fixation: a planted cookie is replaced by a fresh id and never becomes a session.
  const std::string planted(64, 'a');
  auto signed_in = login("test-compliance-c1", {cookie(planted)});
  ASSERT_EQ(signed_in.status, 200) << signed_in.body;
  const std::string set_cookie = signed_in.header("Set-Cookie");
  EXPECT_THAT(set_cookie, HasSubstr("HttpOnly"));
  EXPECT_THAT(set_cookie, HasSubstr("Secure"));
  EXPECT_THAT(set_cookie, HasSubstr("SameSite=Strict"));
  EXPECT_THAT(set_cookie, HasSubstr("Path=/"));
  const std::string id = cookieId(signed_in);
  const std::string csrf = csrfOf(signed_in.body);
  ASSERT_EQ(id.size(), 64u);
  ASSERT_EQ(csrf.size(), 64u);
  EXPECT_NE(id, planted);
  EXPECT_EQ(call("GET", "/console/session", {}, {cookie(planted)}).status, 401);
  EXPECT_EQ(call("GET", "/console/session", {}, {cookie(id)}).status, 200);

  // The session has the token's clinic scope: c1 yes, c2 no (the route table decides, unchanged).
  EXPECT_NE(call("GET", "/v1/consents?clinic=c1&mrn=A12345", {}, {cookie(id)}).status, 403);
  auto c2 = call("GET", "/v1/consents?clinic=c2&mrn=C2-1", {}, {cookie(id)});
  EXPECT_EQ(c2.status, 403) << c2.body;
  EXPECT_EQ(call("GET", "/v1/compliance/patient?clinic=c2&mrn=C2-1", {}, {cookie(id)}).status, 403);

  // CSRF: a change needs the synchronizer token, and a browser's Origin must be this listener's.
  EXPECT_EQ(call("POST", "/console/logout", {}, {cookie(id)}).status, 403);
  EXPECT_EQ(call("POST", "/console/logout", {}, {cookie(id), {"X-CSRF-Token", std::string(64, '0')}}).status, 403);
  EXPECT_EQ(
      call("POST", "/console/logout", {}, {cookie(id), {"X-CSRF-Token", csrf}, {"Origin", "https://evil.example"}}).status,
      403);
  auto out = call("POST", "/console/logout", {}, {cookie(id), {"X-CSRF-Token", csrf}, {"Origin", "https://localhost"}});
  EXPECT_EQ(out.status, 200) << out.body;
  EXPECT_THAT(out.header("Set-Cookie"), HasSubstr("Max-Age=0"));
  EXPECT_EQ(call("GET", "/console/session", {}, {cookie(id)}).status, 401) << "signed out";

  // Expiry (idle timeout 2 s here): use keeps a session alive, idleness ends it.
  const std::string second = cookieId(login("dev-compliance"));
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(1200ms);
    EXPECT_EQ(call("GET", "/console/session", {}, {cookie(second)}).status, 200) << i;
  }
  std::this_thread::sleep_for(2200ms);
  EXPECT_EQ(call("GET", "/console/session", {}, {cookie(second)}).status, 401) << "idle too long";
  EXPECT_EQ(call("GET", "/v1/audit/verify", {}, {cookie(second)}).status, 401);

  // The same in the browser: the page notices and offers the sign-in again.
  if (std::system("command -v chromium >/dev/null") != 0) return;
  const std::string artifacts = GW_CONSOLE_ARTIFACTS;
  std::filesystem::create_directories(artifacts);
  ::setenv("GW_CONSOLE_URL", ("https://127.0.0.1:" + std::to_string(port_)).c_str(), 1);
  ::setenv("GW_TOKEN", "dev-compliance", 1);
  ::setenv("GW_SESSION_IDLE_MS", "2000", 1);
  ::setenv("GW_ARTIFACTS", artifacts.c_str(), 1);
  ChildProcess node({"node", "--test", "--test-reporter=spec", "session.test.mjs"}, artifacts + "/session.out",
                    artifacts + "/session.err", kRepo + "/tests/console");
  const auto status = node.wait(std::chrono::seconds(60));
  ASSERT_TRUE(status.has_value()) << "the session browser test did not finish in 60 s";
  EXPECT_EQ(*status, 0) << readFile(artifacts + "/session.out") << readFile(artifacts + "/session.err");
}

// The browser suite: real data first (two c1 patients, one with a revoked consent, and a c2
// patient), then tests/console/console.test.mjs in chromium.
TEST_F(ConsoleTest, BrowserSuite) {
  if (std::system("command -v chromium >/dev/null && command -v pdftotext >/dev/null") != 0) {
    GTEST_SKIP() << "chromium or pdftotext missing: gateway/scripts/install-deps.sh installs them";
  }
  startConsole(900);
  const auto accepted = [&](const std::string& record, const std::string& token = "dev-ingest-c1") {
    auto r = gateway_->post(record, "application/json", token);
    ASSERT_EQ(r.status, 202) << r.body;
  };
  accepted(consentRecord("A12345", "st-mary", R"(["general","sud"])"));
  accepted(patientRecord("A12345", kXss));
  accepted(prescriptionRecord("9001", "A12345"));
  accepted(screening("S-1", "A12345"));  // mental-health data: not covered, so not sent
  accepted(consentRecord("B2002", "st-mary", R"(["general","sud"])", "active", "88"));
  accepted(prescriptionRecord("9002", "B2002"));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9001", "delivered")) << gateway_->status("c1:rx:9001").body;
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9002", "delivered")) << gateway_->status("c1:rx:9002").body;
  accepted(consentRecord("B2002", "st-mary", R"(["general","sud"])", "revoked", "88"));
  std::string c2_patient = patientRecord("C2-1", "Okafor");
  for (std::size_t p; (p = c2_patient.find("c1")) != std::string::npos;) c2_patient.replace(p, 2, "c2");
  accepted(c2_patient, "test-ingest-c2");
  // A one-minute emergency (the shortest there is), opened now so that it has run out by the end
  // of the browser suite, which checks that it ended by itself.
  auto emergency = gateway_->request("POST", "/v1/compliance/break-glass?clinic=c1",
                                     R"({"clinic":"c1","mrn":"B2002","partner":"st-mary","recipient":"Dr. Test, ED",
                                         "authorised_by":"Clinic director","nature":"Expiring test emergency","minutes":1})",
                                     "dev-compliance");
  ASSERT_EQ(emergency.status, 201) << emergency.body;
  std::smatch expires;
  ASSERT_TRUE(std::regex_search(emergency.body, expires, std::regex(R"re("expires_at":"([^"]+)")re"))) << emergency.body;
  // Under it, B2002's prescription goes out although the consent is revoked: flagged as an emergency.
  accepted(prescriptionRecord("9003", "B2002"));
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:9003", "delivered")) << gateway_->status("c1:rx:9003").body;
  std::this_thread::sleep_for(1200ms);  // an anchor is published (interval 1 s)

  const std::string artifacts = GW_CONSOLE_ARTIFACTS;
  std::filesystem::create_directories(artifacts);
  const std::pair<const char*, std::string> vars[] = {
      {"GW_CONSOLE_URL", "https://127.0.0.1:" + std::to_string(port_)},
      {"GW_ARTIFACTS", artifacts},
      {"GW_TOKEN", "dev-compliance"},
      {"GW_TOKEN_C1", "test-compliance-c1"},
      {"GW_CLINIC", "c1"},
      {"GW_MRN", "A12345"},
      {"GW_PARTNER", "st-mary"},
      {"GW_PARTNER_NAME", "St. Mary's Hospital"},
      {"GW_EXPECT_DESCRIPTION", "MedicationRequest buprenorphine 8 MG / naloxone 2 MG"},
      {"GW_C2_MRN", "C2-1"},
      {"GW_EMERGENCY_MRN", "B2002"},
      {"GW_PARTNER_VALIDATOR", kRepo + "/tests/partner/lib/validator.js"},
      {"GW_EXPIRING_BREAK_GLASS_AT", expires[1]},
  };
  for (const auto& [name, value] : vars) ::setenv(name, value.c_str(), 1);
  const auto started = std::chrono::steady_clock::now();
  ChildProcess node({"node", "--test", "--test-reporter=spec", "console.test.mjs"}, artifacts + "/node.out",
                    artifacts + "/node.err", kRepo + "/tests/console");
  const auto status = node.wait(std::chrono::seconds(240));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::cout << readFile(artifacts + "/node.out") << readFile(artifacts + "/node.err") << "browser suite: " << took.count()
            << " ms\n";
  ASSERT_TRUE(status.has_value()) << "the browser suite did not finish in 240 s";
  EXPECT_EQ(*status, 0) << gateway_->log();
}

}  // namespace
}  // namespace gw::test

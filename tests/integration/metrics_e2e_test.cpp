// GET /metrics end to end (docs/operations.md): a real Prometheus scrapes the real gateway while
// its partner refuses every connection, and the shipped "partner failing" alert fires; a full
// run's scrape passes `promtool check metrics` and, like the log, holds none of the PHI or
// record ids that were posted. Needs Debian's `prometheus` package (promtool and prometheus).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>

#include "child_process.hpp"
#include "common/ids.hpp"
#include "gateway_fixture.hpp"
#include "support/test_files.hpp"
#include "support/test_pki.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char* kMetricsToken = "dev-metrics";

std::uint16_t freePort() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// Runs a shell command; its stdout, and its exit status in `status`.
std::string run(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> chunk{};
  while (std::size_t n = std::fread(chunk.data(), 1, chunk.size(), pipe)) out.append(chunk.data(), n);
  const int rc = ::pclose(pipe);
  if (status != nullptr) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

void writeText(const fs::path& file, const std::string& text) { std::ofstream(file, std::ios::binary) << text; }

std::string oneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

bool haveProm() { return fs::exists("/usr/bin/prometheus") && fs::exists("/usr/bin/promtool"); }

// A Prometheus server on 127.0.0.1 scraping every second, with the shipped alert rules (their
// `for:` windows shortened to 3 s so an alert fires within the test).
class Prometheus {
 public:
  Prometheus(const std::string& dir, const std::string& scrape_configs) : dir_(dir), port_(freePort()) {
    std::string rules = readFile(repoPath("docker/monitoring/alerts.yml"));
    for (std::size_t p; (p = rules.find("for: 15m")) != std::string::npos;) rules.replace(p, 8, "for: 3s");
    writeText(dir_ + "/alerts.yml", rules);
    writeText(dir_ + "/prometheus.yml",
              "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
              "rule_files: [alerts.yml]\n"
              "scrape_configs:\n" +
                  scrape_configs);
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/prometheus", "--config.file=" + dir_ + "/prometheus.yml",
                                 "--storage.tsdb.path=" + dir_ + "/data",
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
        dir_ + "/prometheus.out", dir_ + "/prometheus.log");
  }
  std::string log() const { return readFile(dir_ + "/prometheus.log"); }

  /// The value of an instant query's first sample; nullopt when it has none (yet).
  std::optional<double> query(const std::string& promql) const {
    rapidjson::Document d;
    const std::string body = run("curl -s --max-time 5 http://127.0.0.1:" + std::to_string(port_) +
                                 "/api/v1/query --data-urlencode 'query=" + promql + "'");
    d.Parse(body.c_str());
    if (d.HasParseError() || !d.HasMember("data") || !d["data"]["result"].IsArray() || d["data"]["result"].Empty()) {
      return std::nullopt;
    }
    return std::stod(d["data"]["result"][0]["value"][1].GetString());
  }

  /// The state ("pending", "firing") of alert `name` with label partner=`partner`, or "".
  std::string alertState(const std::string& name, const std::string& partner) const {
    rapidjson::Document d;
    const std::string body = run("curl -s --max-time 5 http://127.0.0.1:" + std::to_string(port_) + "/api/v1/alerts");
    d.Parse(body.c_str());
    if (d.HasParseError() || !d.HasMember("data")) return "";
    for (const auto& a : d["data"]["alerts"].GetArray()) {
      if (std::string(a["labels"]["alertname"].GetString()) == name && a["labels"].HasMember("partner") &&
          std::string(a["labels"]["partner"].GetString()) == partner) {
        return a["state"].GetString();
      }
    }
    return "";
  }

 private:
  std::string dir_;
  std::uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
};

class MetricsEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!haveProm()) GTEST_SKIP() << "prometheus and promtool are missing: run gateway/scripts/install-deps.sh";
    dir_ = (fs::temp_directory_path() / ("gw-metrics-" + ids::randomHex(6))).string();
    fs::create_directories(dir_ + "/prom");
  }
  void TearDown() override {
    if (HasFailure() && gateway_) std::cerr << "---- gateway log ----\n" << gateway_->log();
    if (HasFailure() && prometheus_) std::cerr << "---- prometheus log ----\n" << prometheus_->log();
    prometheus_.reset();
    gateway_.reset();
    if (!HasFailure() && !dir_.empty()) fs::remove_all(dir_);
  }

  // The main listener over mutual TLS with the metrics token, and the loopback listener.
  std::string scrapeConfigs(std::uint16_t metrics_port) const {
    writeText(dir_ + "/prom/token", kMetricsToken);
    return "  - job_name: fhir-gateway\n"
           "    scheme: https\n"
           "    authorization: {type: Bearer, credentials_file: " +
           dir_ + "/prom/token}\n" + "    tls_config: {ca_file: " + devPkiFile("ca.crt") +
           ", cert_file: " + devPkiFile("client.crt") + ", key_file: " + devPkiFile("client.key") +
           "}\n"
           "    static_configs: [{targets: ['127.0.0.1:" +
           std::to_string(gateway_->port()) +
           "']}]\n"
           "  - job_name: fhir-gateway-loopback\n"
           "    static_configs: [{targets: ['127.0.0.1:" +
           std::to_string(metrics_port) + "']}]\n";
  }

  // The page without the instance_id label every series carries (its value is the gateway's
  // default id, host name and process id), so the lines below read as the families write them.
  static std::string withoutInstance(const std::string& page) {
    static const std::regex only(R"(\{instance_id="[^"]*"\})"), first(R"(instance_id="[^"]*",)"),
        last(R"(,instance_id="[^"]*")");
    return std::regex_replace(std::regex_replace(std::regex_replace(page, only, ""), first, ""), last, "");
  }

  std::string loopbackScrape(std::uint16_t port) const {
    return withoutInstance(run("curl -s --max-time 10 http://127.0.0.1:" + std::to_string(port) + "/metrics"));
  }

  std::string dir_;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<Prometheus> prometheus_;
};

TEST_F(MetricsEndToEnd, PrometheusSeesAFailingPartnerAndThePartnerFailingAlertFires) {
  GatewayOptions options;
  options.partner_url = "https://127.0.0.1:" + std::to_string(freePort()) + "/fhir/R4";  // nothing listens
  options.retry_initial_ms = 200;
  options.retry_max_ms = 500;
  const std::uint16_t metrics_port = freePort();
  options.server_keys = R"("metrics_listen": "127.0.0.1:)" + std::to_string(metrics_port) + R"(",)";
  gateway_ = std::make_unique<Gateway>(dir_, options);
  gateway_->start();

  // Without the metrics role: refused; with it: the page.
  EXPECT_EQ(gateway_->request("GET", "/metrics", "", "dev-admin").status, 403);
  auto page = gateway_->request("GET", "/metrics", "", kMetricsToken);
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, ::testing::ContainsRegex("instance_id=\"[^\"]+\"")) << "every series names its instance";
  EXPECT_THAT(withoutInstance(page.body), HasSubstr("gw_outbox_items{partner=\"st-mary\",state=\"queued\"} 0"));
  EXPECT_THAT(withoutInstance(page.body),
              HasSubstr("gw_delivery_attempts_total{partner=\"st-mary\",status_class=\"none\"} 0"));

  ASSERT_EQ(gateway_->post(consentRecord("MZ48213", "st-mary", R"(["general","sud"])", "active", "m-1")).status, 202);
  auto r = gateway_->post(oneLine(patientRecord("MZ48213", "Quillfeather")) + "\n" +
                              oneLine(prescriptionRecord("RX55501", "MZ48213")) + "\n",
                          "application/x-ndjson");
  ASSERT_EQ(r.status, 202) << r.body;

  prometheus_ = std::make_unique<Prometheus>(dir_ + "/prom", scrapeConfigs(metrics_port));
  const std::string job = R"(job="fhir-gateway",partner="st-mary")";
  std::optional<double> queued, age, refused;
  ASSERT_TRUE(waitUntil(
      [&] {
        queued = prometheus_->query(R"(sum(gw_outbox_items{)" + job + R"(,state=~"queued|retrying"}))");
        age = prometheus_->query(R"(gw_outbox_oldest_pending_age_seconds{)" + job + "}");
        refused = prometheus_->query(R"(gw_delivery_attempts_total{)" + job + R"(,status_class="none"})");
        return queued && *queued >= 2 && age && *age > 0 && refused && *refused >= 2;
      },
      60s))
      << "queued " << queued.value_or(-1) << " age " << age.value_or(-1) << " refused " << refused.value_or(-1);
  EXPECT_TRUE(waitUntil([&] { return prometheus_->query(R"(up{job="fhir-gateway-loopback"})").value_or(0) == 1; }, 20s))
      << "the loopback listener";

  // The same items keep waiting: the age grows. (The failures stop growing once the partner's
  // circuit breaker opens: it holds the items instead of sending them.)
  const double first_age = *age, first_refused = *refused;
  std::string state;
  ASSERT_TRUE(waitUntil(
      [&] {
        state = prometheus_->alertState("GatewayPartnerFailing", "st-mary");
        return state == "firing";
      },
      40s))
      << "alert state: '" << state << "'";
  EXPECT_GT(prometheus_->query(R"(gw_outbox_oldest_pending_age_seconds{)" + job + "}").value_or(0), first_age);
  EXPECT_GE(prometheus_->query(R"(gw_delivery_attempts_total{)" + job + R"(,status_class="none"})").value_or(0),
            first_refused);
  EXPECT_EQ(prometheus_->query(R"(gw_partner_state{)" + job + R"(,state="circuit_open"})").value_or(-1), 1);
  EXPECT_GT(prometheus_->query(R"(gw_delivery_outcomes_total{)" + job + R"(,outcome="retry"})").value_or(0), 0);
  EXPECT_EQ(prometheus_->query(R"(gw_partner_state{)" + job + R"(,state="up"})").value_or(-1), 0);
  EXPECT_EQ(prometheus_->query(R"(gw_outbox_items{)" + job + R"(,state="delivered"})").value_or(-1), 0);
  // Nobody asked for a verify: the gateway's own (audit.verify_interval_minutes, first 10 s after
  // start) keeps the chain's metrics current.
  EXPECT_TRUE(waitUntil([&] { return prometheus_->query("gw_audit_chain_verify_result").value_or(-1) == 1; }, 30s));
  EXPECT_GT(prometheus_->query("gw_audit_chain_verify_timestamp_seconds").value_or(0), 0);

  // The operator's view, for the record (the issue asks for the scrape and the alert firing).
  const std::string scrape = loopbackScrape(metrics_port);
  std::cout << "---- scrape excerpt (loopback listener) ----\n";
  for (std::size_t at = 0, end; (end = scrape.find('\n', at)) != std::string::npos; at = end + 1) {
    const std::string line = scrape.substr(at, end - at);
    for (const char* shown : {"gw_outbox_items{", "gw_outbox_oldest", "gw_delivery_attempts_total{", "gw_delivery_outcomes",
                              "gw_partner_state", "gw_partner_consecutive", "gw_ingest_records_total{",
                              "gw_consent_decisions_total{", "gw_group_commit_duration_seconds_count"}) {
      if (line.starts_with(shown)) std::cout << line << "\n";
    }
  }
  std::cout << "---- GatewayPartnerFailing{partner=\"st-mary\"}: " << state << " ----\n";
}

// A full run: records delivered to the real partner, one rejected, a record type made of an MRN;
// then nothing the clinic sent about the patient appears in a metric or a log line.
TEST_F(MetricsEndToEnd, AFullRunsScrapePassesPromtoolAndHoldsNoPhiNorRecordIds) {
  Partner partner(dir_);
  GatewayOptions options;
  options.partner_url = partner.baseUrl();
  const std::uint16_t metrics_port = freePort();
  options.server_keys = R"("metrics_listen": "127.0.0.1:)" + std::to_string(metrics_port) + R"(",)";
  gateway_ = std::make_unique<Gateway>(dir_, options);
  gateway_->start();

  const std::string mrn = "MZ48213", family = "Quillfeather", birth_date = "1988-04-02";
  ASSERT_EQ(gateway_->post(consentRecord(mrn, "st-mary", R"(["general","sud"])", "active", "m-2")).status, 202);
  auto r = gateway_->post(oneLine(patientRecord(mrn, family)) + "\n" + oneLine(prescriptionRecord("RX55501", mrn)) + "\n",
                          "application/x-ndjson");
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(gateway_->waitForDeliveries("c1:rx:RX55501", "delivered", 30s));
  // Rejected: a clinic this token may not post for, and a record type that is an MRN.
  std::string other_clinic = oneLine(patientRecord("MZ48214", "Quillfeather"));
  other_clinic.replace(other_clinic.find(R"("clinic":"c1")"), 13, R"("clinic":"c2")");
  std::string odd_type = oneLine(patientRecord("MZ48215", "Quillfeather"));
  odd_type.replace(odd_type.find(R"("record_type":"patient")"), 23, R"("record_type":"MZ48215")");
  r = gateway_->post(other_clinic + "\n" + odd_type + "\n", "application/x-ndjson");
  ASSERT_EQ(r.status, 422) << r.body;  // every record rejected
  EXPECT_EQ(gateway_->request("GET", "/v1/records/c1:pt:" + mrn + "?clinic=c1", "", "dev-ingest-c1").status, 200);

  const std::string scrape = loopbackScrape(metrics_port);
  ASSERT_THAT(scrape, HasSubstr("gw_delivery_outcomes_total{outcome=\"delivered\",partner=\"st-mary\"} 2"));
  EXPECT_THAT(scrape,
              HasSubstr(R"(gw_ingest_records_total{outcome="rejected",reason_class="clinic",record_type="patient"} 1)"));
  EXPECT_THAT(scrape,
              HasSubstr(R"(gw_ingest_records_total{outcome="rejected",reason_class="schema",record_type="other"} 1)"));
  EXPECT_THAT(scrape, HasSubstr(R"(gw_http_requests_total{code="200",method="GET",route="/v1/records/{record_id}"})"));
  EXPECT_THAT(scrape, HasSubstr("gw_delivery_latency_seconds_count{partner=\"st-mary\"} 2"));
  EXPECT_THAT(scrape, HasSubstr("gw_certificate_not_after_timestamp_seconds{use=\"server\"}"));
  const std::string log = gateway_->log();
  for (const std::string& phi :
       {mrn, std::string("MZ48214"), std::string("MZ48215"), family, birth_date, std::string("RX55501"),
        std::string("c1:pt:"), std::string("c1:rx:"), std::string("555-0100"), std::string("Elm St")}) {
    EXPECT_THAT(scrape, Not(HasSubstr(phi))) << "in the scrape";
    EXPECT_THAT(log, Not(HasSubstr(phi))) << "in the gateway log";
  }

  writeText(dir_ + "/scrape.txt", scrape);
  int status = -1;
  const std::string lint = run("promtool check metrics < " + dir_ + "/scrape.txt 2>&1", &status);
  EXPECT_EQ(status, 0) << lint;
}

}  // namespace
}  // namespace gw::test

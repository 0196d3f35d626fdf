#include "gateway_fixture.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <stdexcept>
#include <thread>

#include "common/ids.hpp"
#include "common/time_zone.hpp"
#include "support/test_pki.hpp"

namespace gw::test {
namespace {

const std::string kRepo = GW_REPO_DIR;

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace

Partner::Partner(const std::string& work_dir, const std::string& name) {
  // The partner fetches the gateway's JWKS over HTTPS (jose, Node's fetch): it must trust the
  // development CA, which Node reads from this variable at start only.
  ::setenv("NODE_EXTRA_CA_CERTS", devPkiFile("ca.crt").c_str(), 1);
  const std::string script = kRepo + "/tests/partner/server.js";
  process_ = std::make_unique<ChildProcess>(std::vector<std::string>{"node", script, "--port", "0", "--cert",
                                                                     devPkiFile("partner.crt"), "--key",
                                                                     devPkiFile("partner.key"), "--ca", devPkiFile("ca.crt"),
                                                                     "--require-client-cert", "--exit-with-parent"},
                                            work_dir + "/" + name + ".out", work_dir + "/" + name + ".err");
  std::smatch m;
  const std::regex ready(R"re("ready":true,"port":(\d+))re");
  const bool up = waitUntil(
      [&] {
        const std::string out = readFile(process_->stdoutFile());
        if (std::regex_search(out, m, ready)) {
          port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
          return true;
        }
        return !process_->running();
      },
      std::chrono::seconds(60));
  if (!up || port_ == 0) {
    throw std::runtime_error("the FHIR partner did not start (is `npm ci` done in tests/partner?): " +
                             readFile(process_->stderrFile()));
  }
  tls_.ca_file = devPkiFile("ca.crt");
  tls_.cert_file = devPkiFile("client.crt");
  tls_.key_file = devPkiFile("client.key");
  tls_.timeout = std::chrono::seconds(20);
}

HttpResponse Partner::get(const std::string& target) {
  // The inspector token lets the tests read back through a partner that requires OAuth tokens
  // (reads only); a partner without auth ignores it.
  return tlsRequest(port_, tls_, "GET", "/fhir/R4/" + target, {},
                    {{"Accept", "application/fhir+json"}, {"Authorization", "Bearer test-inspector"}});
}

HttpResponse Partner::admin(const std::string& method, const std::string& path, const std::string& body) {
  return tlsRequest(port_, tls_, method, "/__admin/" + path, body, {{"Content-Type", "application/json"}});
}

HttpResponse Partner::request(const std::string& method, const std::string& target, const std::string& body,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
  return tlsRequest(port_, tls_, method, target, body, headers);
}

void Partner::reset() {
  auto r = admin("POST", "reset");
  if (r.status != 200 && r.status != 204) throw std::runtime_error("partner reset failed: " + r.body);
}

rapidjson::Document Partner::search(const std::string& type, const std::string& system, const std::string& value) {
  auto r = get(type + "?identifier=" + system + "%7C" + value);
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  if (r.status != 200 || d.HasParseError() || !d.IsObject()) {
    throw std::runtime_error("partner search failed: HTTP " + std::to_string(r.status) + " " + r.body);
  }
  return d;
}

int Partner::count(const std::string& type, const std::string& system, const std::string& value) {
  auto d = search(type, system, value);
  return d.HasMember("entry") ? static_cast<int>(d["entry"].Size()) : 0;
}

Gateway::Gateway(const std::string& work_dir, GatewayOptions options) : dir_(work_dir), options_(std::move(options)) {
  config_path_ = dir_ + "/gateway.json";
  // The master key of data at rest: one per work dir (or the one the instances share), kept
  // across restarts, private (0600).
  const std::string master_key = options_.master_key_file.empty() ? dir_ + "/master.key" : options_.master_key_file;
  if (!std::filesystem::exists(master_key)) {
    writeFile(master_key, ids::randomHex(32) + "\n");
    std::filesystem::permissions(master_key, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::replace);
  }
  const std::string pki = devPkiDir();
  std::string config = R"({
  "deployment": "development",
  "server": {"address": "127.0.0.1", "port": 0, "threads": 2, "max_body_bytes": @BODY@, @SERVERKEYS@
             "tls": {"cert_file": "@PKI@/server.crt", "key_file": "@PKI@/server.key",
                     "client_ca_file": "@PKI@/ca.crt", "client_cert": "@CLIENTCERT@"}},
  "auth": {"tokens": [
    {"id": "clinic-c1", "sha256": "16fe3168dfc75472f79c00f62f719efaa73e9881e57cca363e1d0f945b24d372", "roles": ["ingest"], "clinics": ["c1"]},
    {"id": "compliance", "sha256": "8ca17ac4a03ec98104dea63e6883110b4fefb792703b2e80e914823a346e5c35", "roles": ["compliance"], "clinics": ["*"]},
    {"id": "compliance-c1", "sha256": "304c64018151cc6c5f0e116fbe56f9f4043cb0fb47a2094cddbdb56e705e8ea9", "roles": ["compliance", "admin"], "clinics": ["c1"]},
    {"id": "engineer", "sha256": "072aeefbbcadedf5862c1c118fee074556b9c8d496817a6d9b5a370cadc560e2", "roles": ["engineer"]},
    {"id": "admin", "sha256": "de72d648e29b247c1875138a7140256dbe5df3e6c9f37d592b07d9de509d2878", "roles": ["admin"]},
    {"id": "operator", "sha256": "1a3bde4175d7cfb457a7710efe93909a67389f0b4b64e25ce75d182308f2f738", "roles": ["operator"], "clinics": ["*"]},
    {"id": "ingest-c2", "sha256": "8a56de740f6e8cb059e7aaac1b09a27461f49d1dc5c6d52a103dc51e536d5d42", "roles": ["ingest"], "clinics": ["c2"]},
    {"id": "operator-c1", "sha256": "522687c653f1c09c6bf9309c7f9250d9bdaadb4ba3813b007b1e34714b44184e", "roles": ["operator"], "clinics": ["c1"]},
    {"id": "metrics", "sha256": "3f53de80c06dd769f4a2b7b3018b9a4d6837c6895cfd1d7715ff0caeb4d83eb6", "roles": ["metrics"]}]},
  "storage": @STORAGE@, @INSTANCE@
  "mapping": {"format_dir": "@FORMAT@", "profiles_dir": "@REPO@/fhir-profiles", "csv_mappers_dir": "@REPO@/mappers"},
  "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c1.example.org/", "programs": [{"id": "otp", "part2": true}, {"id": "hr", "part2": false}]},
              {"id": "c2", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c2.example.org/", "programs": [{"id": "otp", "part2": true}]}],
  "partners": [{"id": "st-mary", "fhir_base_url": "@PARTNER@", "ca_file": "@PKI@/ca.crt",
                "client_cert_file": "@PKI@/gateway-client.crt", "client_key_file": "@PKI@/gateway-client.key",
                "request_timeout_ms": 10000, @PARTNERKEYS@
                "retry": {"initial_ms": @RETRY@, "max_ms": @RETRYMAX@, "max_attempts": @ATTEMPTS@}}@SECOND@],
  @TOPKEYS@
  "delivery": {"poll_interval_ms": @POLL@},
  "privacy": {"master_key_file": "@MASTERKEY@"},
  "audit": {"anchor": {"file": "@ANCHOR@", "interval_seconds": @ANCHORINT@}},
  "logging": {"level": "info"}
})";
  auto replace = [&](const std::string& key, const std::string& value) {
    for (std::size_t p; (p = config.find(key)) != std::string::npos;) config.replace(p, key.size(), value);
  };
  replace("@STORAGE@", !options_.storage_json.empty() ? options_.storage_json
                       : options_.postgres_dsn_file.empty()
                           ? std::string(R"({"sqlite_path": "@DATABASE@"})")
                           : R"({"postgres": {"dsn_file": ")" + options_.postgres_dsn_file + R"(", "sslmode": "disable"}})");
  replace("@INSTANCE@", options_.instance_id.empty() ? std::string() : R"("instance_id": ")" + options_.instance_id + "\",");
  replace("@POLL@", std::to_string(options_.poll_interval_ms));
  replace("@MASTERKEY@", master_key);
  replace("@DATABASE@", options_.database_path.empty() ? dir_ + "/gateway.db" : options_.database_path);
  replace("@PARTNERKEYS@", options_.partner_keys);
  replace("@TOPKEYS@", options_.top_level_keys);
  replace("@CLIENTCERT@", options_.client_cert_mode);
  replace("@FORMAT@", options_.format_dir.empty() ? kRepo + "/mappers/clinic-v1" : options_.format_dir);
  replace("@PKI@", pki);
  replace("@DIR@", dir_);
  replace("@REPO@", kRepo);
  replace("@SECOND@", options_.second_partner_url.empty() ? std::string()
                                                          : R"(,
               {"id": "county-general", "fhir_base_url": ")" + options_.second_partner_url +
                                                                R"(", "ca_file": "@PKI@/ca.crt",
                "client_cert_file": "@PKI@/gateway-client.crt", "client_key_file": "@PKI@/gateway-client.key",
                "request_timeout_ms": 10000, "retry": {"initial_ms": 100, "max_ms": 1000}})");
  replace("@PKI@", pki);
  replace("@PARTNER@", options_.partner_url);
  replace("@RETRY@", std::to_string(options_.retry_initial_ms));
  replace("@RETRYMAX@", std::to_string(options_.retry_max_ms));
  replace("@ATTEMPTS@", std::to_string(options_.max_attempts));
  replace("@BODY@", std::to_string(options_.max_body_bytes));
  replace("@SERVERKEYS@", options_.server_keys);
  replace("@ANCHOR@", options_.anchor_file);
  replace("@ANCHORINT@", std::to_string(options_.anchor_interval_seconds));
  writeFile(config_path_, config);
}

Gateway::~Gateway() {
  if (process_) process_->terminate();
}

void Gateway::start() {
  ++starts_;
  const std::string log_file = dir_ + "/gateway-" + std::to_string(starts_) + ".log";
  // GW_TEST_GATEWAY_BIN: another build of the binary (e.g. an older one, to show a test fails there).
  const char* other_binary = std::getenv("GW_TEST_GATEWAY_BIN");
  const std::string binary = other_binary != nullptr && *other_binary != '\0' ? other_binary : GW_GATEWAY_BIN;
  process_ = std::make_unique<ChildProcess>(std::vector<std::string>{binary, "serve", "--config", config_path_},
                                            dir_ + "/gateway.out", log_file);
  std::smatch m;
  const std::regex started(R"(INFO main started .*port=(\d+))");
  port_ = 0;
  waitUntil(
      [&] {
        const std::string text = readFile(log_file);
        if (std::regex_search(text, m, started)) {
          port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
          return true;
        }
        return !process_->running();
      },
      std::chrono::seconds(20));
  if (port_ == 0) throw std::runtime_error("the gateway did not start: " + readFile(log_file));
}

void Gateway::kill() { process_->kill(); }

int Gateway::stop() { return process_->terminate().value_or(-1); }

std::string Gateway::log() const {
  std::string all;
  for (int i = 1; i <= starts_; ++i) all += readFile(dir_ + "/gateway-" + std::to_string(i) + ".log");
  return all;
}

TlsClientOptions Gateway::clientTls() const {
  TlsClientOptions tls;
  tls.ca_file = devPkiFile("ca.crt");
  tls.cert_file = devPkiFile("client.crt");
  tls.key_file = devPkiFile("client.key");
  tls.timeout = std::chrono::seconds(20);
  return tls;
}

HttpResponse Gateway::post(const std::string& body, const std::string& content_type, const std::string& token) {
  return tlsRequest(port_, clientTls(), "POST", "/v1/records", body,
                    {{"Content-Type", content_type}, {"Authorization", "Bearer " + token}});
}

HttpResponse Gateway::request(const std::string& method, const std::string& target, const std::string& body,
                              const std::string& token) {
  return tlsRequest(port_, clientTls(), method, target, body,
                    {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}});
}

void Gateway::signal(int sig) { process_->signal(sig); }

HttpResponse Gateway::postCsv(const std::string& csv, const std::string& mapper, const std::string& token) {
  return tlsRequest(port_, clientTls(), "POST", "/v1/records?mapper=" + mapper, csv,
                    {{"Content-Type", "text/csv; charset=utf-8"}, {"Authorization", "Bearer " + token}});
}

HttpResponse Gateway::status(const std::string& record_id, const std::string& token) {
  return tlsRequest(port_, clientTls(), "GET", "/v1/records/" + record_id + "?clinic=c1", {},
                    {{"Authorization", "Bearer " + token}});
}

bool Gateway::waitForDeliveries(const std::string& record_id, const std::string& state, std::chrono::milliseconds timeout) {
  return waitUntil(
      [&] {
        auto r = status(record_id);
        if (r.status != 200) return false;
        rapidjson::Document d;
        d.Parse(r.body.c_str());
        if (d.HasParseError() || !d.HasMember("deliveries") || d["deliveries"].Empty()) return false;
        for (const auto& item : d["deliveries"].GetArray()) {
          const std::string s = item["state"].GetString();
          if (s != state && s != "superseded") return false;
        }
        return true;
      },
      timeout);
}

std::string consentRecord(const std::string& mrn, const std::string& recipient, const std::string& categories,
                          const std::string& status, const std::string& id) {
  // Periods are dates around today, so the consent is in force whenever the tests run.
  const auto day = [](int offset) {
    const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + std::chrono::hours(24 * offset));
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return std::string(buf);
  };
  // Revoked today in the clinic's zone (America/New_York, as the config says): a date-only
  // revocation takes effect at the start of that local day, so the UTC date would lie in the
  // future between 00:00 and 05:00 UTC and leave the consent in force.
  const auto local_today = [] {
    static const auto zone = tz::TimeZone::load("America/New_York");
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::time_t midnight = static_cast<std::time_t>((zone ? zone.value()->localDay(now) : now / 86400) * 86400);
    std::tm tm{};
    gmtime_r(&midnight, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return std::string(buf);
  };
  const std::string revoked = status == "revoked" ? R"(,"revoked_on":")" + local_today() + "\"" : "";
  return R"({"record_id":"c1:cn:)" + id + R"(","record_type":"consent","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T08:55:00-05:00","patient":{"mrn":")" +
         mrn + R"("},
 "consent":{"id":")" +
         id + R"(","recipient":")" + recipient + R"(","purposes":["TREAT"],"categories":)" + categories +
         R"(,"effective":{"start":")" + day(-3) + R"(","end":")" + day(365) + R"("},
   "signed_on":")" +
         day(-3) + R"(","signed_by":"patient","status":")" + status + "\"" + revoked + "}}";
}

std::string patientRecord(const std::string& mrn, const std::string& family) {
  return R"({"record_id":"c1:pt:)" + mrn + R"(","record_type":"patient","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:00:00-05:00",
 "patient":{"mrn":")" +
         mrn + R"(","family_name":")" + family + R"(","given_names":["Ana","M"],
            "birth_date":"1988-04-02","sex":"female","phone":"555-0100",
            "address":{"lines":["12 Elm St"],"city":"Dayton","state":"OH","postal_code":"45402"}}})";
}

std::string prescriptionRecord(const std::string& id, const std::string& mrn, const std::string& status) {
  return R"({"record_id":"c1:rx:)" + id + R"(","record_type":"mat_prescription","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:05:00-05:00","patient":{"mrn":")" +
         mrn + R"("},
 "prescription":{"id":")" +
         id + R"(","medication":{"rxnorm":"1010604","name":"buprenorphine 8 MG / naloxone 2 MG sublingual film"},
   "dose":{"value":1,"unit":"film"},"frequency":"daily","route":"sublingual","quantity":14,
   "days_supply":14,"refills":0,"status":")" +
         status + R"(","written_on":"2026-11-20",
   "prescriber":{"npi":"1234567893","name":"Dr. Lee"},"diagnosis":{"system":"icd10","code":"F11.20"}}})";
}

void PartnerSuite::SetUpTestSuite() {
  const std::string suite = ::testing::UnitTest::GetInstance()->current_test_suite()->name();
  suite_dir_ = (std::filesystem::temp_directory_path() / ("gw-" + suite + "-" + ids::randomHex(6))).string();
  std::filesystem::create_directories(suite_dir_);
  partner_ = new Partner(suite_dir_);
}

void PartnerSuite::TearDownTestSuite() {
  delete partner_;
  partner_ = nullptr;
  std::filesystem::remove_all(suite_dir_);
}

void PartnerSuite::SetUp() {
  partner_->reset();
  dir_ = suite_dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::filesystem::create_directories(dir_);
}

void PartnerSuite::TearDown() {
  if (HasFailure() && gateway_) std::cerr << "---- gateway log ----\n" << gateway_->log();
  gateway_.reset();
}

Gateway& PartnerSuite::startGateway(GatewayOptions options) {
  options.partner_url = partner_->baseUrl();
  gateway_ = std::make_unique<Gateway>(dir_, options);
  gateway_->start();
  return *gateway_;
}

void PartnerSuite::consentToEverything() {
  for (const char* mrn : {"A12345", "B2", "B-77", "B20001", "C30777", "P-77", "HR-1001", "HR-1002"}) {
    auto r = gateway_->post(consentRecord(mrn, "st-mary", R"(["general","sud","mh"])", "active", std::string("e2e-") + mrn));
    EXPECT_EQ(r.status, 202) << r.body;
  }
}

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t isoToMs(const std::string& iso) {
  std::tm tm{};
  int ms = 0;
  std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
              &tm.tm_sec, &ms);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + ms;
}

}  // namespace gw::test

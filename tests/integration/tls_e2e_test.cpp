// The TLS front of the real fhir-gateway binary on 127.0.0.1 with the test PKI: the server key's
// file mode, certificate-bound tokens, the client CRL, the access log, and testssl.sh's view of the
// listener. Needs no FHIR partner (the config lists none).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "child_process.hpp"
#include "common/ids.hpp"
#include "gateway_fixture.hpp"
#include "support/test_pki.hpp"
#include "support/tls_test_client.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

const std::string kRepo = GW_REPO_DIR;
constexpr const char* kC1Subject = "CN=clinic-c1,O=fhir-gateway development";

// "AB:CD:..." as `openssl x509 -fingerprint -sha256` prints it; the config accepts that form.
std::string opensslFingerprint(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i < hex.size(); ++i) {
    if (i > 0 && i % 2 == 0) out += ':';
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i])));
  }
  return out;
}

struct GatewaySetup {
  std::string client_cert = "required";
  bool crl = true;
};

class TlsGateway : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-tls-" + ids::randomHex(6));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "master.key") << ids::randomHex(32) << "\n";
    fs::permissions(dir_ / "master.key", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    // A copy of the server key whose mode each test may change.
    fs::copy_file(devPkiFile("server.key"), dir_ / "server.key");
    fs::permissions(dir_ / "server.key", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  }
  void TearDown() override {
    process_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string writeConfig(const GatewaySetup& setup = {}) {
    const std::string pki = devPkiDir();
    const std::string crl = setup.crl ? R"(, "client_crl_file": ")" + pki + R"(/ca-crl.pem")" : "";
    const std::string c1_fingerprint = opensslFingerprint(devCertFingerprint("client"));
    std::string config = R"({
  "server": {"address": "127.0.0.1", "port": 0, "threads": 2,
             "tls": {"cert_file": "@PKI@/server.crt", "key_file": "@DIR@/server.key",
                     "client_ca_file": "@PKI@/ca.crt", "client_cert": "@MODE@"@CRL@}},
  "auth": {"tokens": [
    {"id": "clinic-c1", "sha256": "@C1@", "roles": ["ingest"], "clinics": ["c1"], "client_certs": ["subject:@C1SUBJECT@"]},
    {"id": "clinic-c1-fp", "sha256": "@C1FP@", "roles": ["ingest"], "clinics": ["c1"], "client_certs": ["sha256:@C1FINGERPRINT@"]},
    {"id": "clinic-c2", "sha256": "@C2@", "roles": ["ingest"], "clinics": ["c2"],
     "client_certs": ["subject:CN=clinic-c2,O=fhir-gateway development"]},
    {"id": "admin", "sha256": "@ADMIN@", "roles": ["admin"]}]},
  "storage": {"sqlite_path": "@DIR@/gateway.db"},
  "mapping": {"format_dir": "@REPO@/mappers/clinic-v1", "profiles_dir": "@REPO@/fhir-profiles"},
  "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c1.example.org/", "programs": [{"id": "otp", "part2": true}]},
              {"id": "c2", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c2.example.org/"}],
  "partners": [],
  "privacy": {"master_key_file": "@DIR@/master.key"},
  "logging": {"level": "info"}
})";
    const std::map<std::string, std::string> values = {
        {"@PKI@", pki},
        {"@DIR@", dir_.string()},
        {"@REPO@", kRepo},
        {"@MODE@", setup.client_cert},
        {"@CRL@", crl},
        {"@C1@", ids::sha256Hex("secret-token-c1")},
        {"@C1FP@", ids::sha256Hex("secret-token-c1-fp")},
        {"@C2@", ids::sha256Hex("secret-token-c2")},
        {"@ADMIN@", ids::sha256Hex("secret-token-admin")},
        {"@C1SUBJECT@", kC1Subject},
        {"@C1FINGERPRINT@", c1_fingerprint},
    };
    for (const auto& [key, value] : values) {
      for (std::size_t p; (p = config.find(key)) != std::string::npos;) config.replace(p, key.size(), value);
    }
    const auto path = (dir_ / "gateway.json").string();
    std::ofstream(path) << config;
    return path;
  }

  // Starts `serve`; returns false (with the log in log()) if it exited instead of listening.
  bool start(const GatewaySetup& setup = {}) {
    const std::string config = writeConfig(setup);
    process_ = std::make_unique<ChildProcess>(std::vector<std::string>{GW_GATEWAY_BIN, "serve", "--config", config},
                                              (dir_ / "gateway.out").string(), logFile());
    const std::regex started(R"(INFO main started .*port=(\d+))");
    std::smatch m;
    port_ = 0;
    waitUntil(
        [&] {
          const std::string text = log();
          if (std::regex_search(text, m, started)) {
            port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
            return true;
          }
          return !process_->running();
        },
        std::chrono::seconds(30));
    return port_ != 0;
  }

  std::string logFile() const { return (dir_ / "gateway.log").string(); }
  std::string log() const { return readFile(logFile()); }

  TlsClientOptions client(const std::string& cert) const {
    TlsClientOptions tls;
    tls.ca_file = devPkiFile("ca.crt");
    if (!cert.empty()) {
      tls.cert_file = devPkiFile(cert + ".crt");
      tls.key_file = devPkiFile(cert + ".key");
    }
    tls.timeout = std::chrono::seconds(20);
    return tls;
  }

  HttpResponse post(const std::string& cert, const std::string& token) {
    return tlsRequest(port_, client(cert), "POST", "/v1/records", patientRecord(),
                      {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}});
  }

  // True if the gateway refused the connection: a failed handshake, or (TLS 1.3, where the client
  // finishes before the server checked its certificate) no answer to the first request.
  bool refusedAtHandshake(const std::string& cert) {
    TlsTestClient c(client(cert));
    if (c.connect(port_)) return true;
    auto r = c.request("GET", "/healthz");
    return r.error && r.status == 0;
  }

  fs::path dir_;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

// Defect 8: the server's private key at 0644 is refused at start, naming the file, its mode and
// the fix; at 0600 the same config starts.
TEST_F(TlsGateway, ServerKeyReadableByOthersIsRefusedAtStart) {
  fs::permissions(dir_ / "server.key", fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  const std::string config = writeConfig();
  ChildProcess serve({GW_GATEWAY_BIN, "serve", "--config", config}, (dir_ / "refused.out").string(), logFile());
  const auto status = serve.wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "a server key readable by others must be refused, not served: " << log();
  EXPECT_NE(*status, 0);
  const std::string key = (dir_ / "server.key").string();
  EXPECT_THAT(log(), HasSubstr(key));
  EXPECT_THAT(log(), HasSubstr("mode 0644"));
  EXPECT_THAT(log(), HasSubstr("chmod 600 '" + key + "'"));
  EXPECT_THAT(log(), Not(HasSubstr("main started")));

  fs::permissions(dir_ / "server.key", fs::perms::group_read | fs::perms::others_read, fs::perm_options::remove);
  ASSERT_TRUE(start()) << log();
}

// Defect 9: c1's token with c2's certificate no longer posts as c1.
TEST_F(TlsGateway, TokenBoundToClinicC1CertificateIsRefusedWithClinicC2Certificate) {
  ASSERT_TRUE(start()) << log();
  auto stolen = post("client-c2", "secret-token-c1");
  ASSERT_FALSE(stolen.error) << stolen.error.message();
  EXPECT_EQ(stolen.status, 401) << stolen.body;
  EXPECT_THAT(stolen.body, HasSubstr("bound to client certificates"));
  EXPECT_THAT(stolen.body, HasSubstr("client_certs"));
  EXPECT_EQ(post("client-c2", "secret-token-c1-fp").status, 401) << "fingerprint form";

  auto own = post("client", "secret-token-c1");
  EXPECT_EQ(own.status, 202) << own.body;
  auto by_fingerprint = post("client", "secret-token-c1-fp");
  EXPECT_EQ(by_fingerprint.status, 202) << by_fingerprint.body;

  // The access log names the certificate that connected, never the token.
  const std::string fingerprint = devCertFingerprint("client");
  EXPECT_TRUE(waitUntil(
      [&] {
        return log().find("route=/v1/records status=202") != std::string::npos &&
               log().find("status=401") != std::string::npos;
      },
      std::chrono::seconds(5)));
  const std::string text = log();
  EXPECT_TRUE(std::regex_search(text, std::regex("request .*route=/v1/records status=202 .*token=clinic-c1 client=\"" +
                                                 std::string(kC1Subject) + "\" client_sha256=" + fingerprint)))
      << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("request .*status=401 .*client_sha256=" + devCertFingerprint("client-c2"))))
      << text;
  EXPECT_THAT(text, HasSubstr("auth_failed reason=certificate_not_bound token=clinic-c1"));
  EXPECT_THAT(text, Not(HasSubstr("secret-token"))) << "a token never reaches the log";
  // The unbound admin token is named in a start-up warning, the bound ones are not.
  EXPECT_THAT(text, HasSubstr("insecure_setting key=auth.tokens problem=\"token 'admin' is not bound to client "
                              "certificates"));
  EXPECT_THAT(text, Not(HasSubstr("token 'clinic-c1' is not bound")));
}

TEST_F(TlsGateway, BoundTokenWithoutCertificateIsRefusedInOptionalMode) {
  ASSERT_TRUE(start({"optional", true})) << log();
  auto anonymous = post("", "secret-token-c1");
  ASSERT_FALSE(anonymous.error) << anonymous.error.message();
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  EXPECT_THAT(anonymous.body, HasSubstr("presented none"));
}

// The CRL made by certs/make-dev-certs.sh revokes revoked-client.crt: its handshake fails.
TEST_F(TlsGateway, RevokedCertificateIsRefusedAtHandshake) {
  ASSERT_TRUE(start()) << log();
  EXPECT_TRUE(refusedAtHandshake("revoked-client"));
  EXPECT_TRUE(waitUntil([&] { return log().find("verify_error=\"certificate revoked\"") != std::string::npos; },
                        std::chrono::seconds(5)))
      << log();
  EXPECT_FALSE(refusedAtHandshake("client"));
}

TEST_F(TlsGateway, RevokedCertificateIsServedWithoutTheCrl) {
  // Control: without client_crl_file the same certificate gets through.
  ASSERT_TRUE(start({"required", false})) << log();
  EXPECT_FALSE(refusedAtHandshake("revoked-client"));
}

// testssl.sh (Debian package testssl.sh) against the listener: protocols, cipher categories,
// renegotiation and compression (under a minute; forward secrecy of the TLS 1.2 suites is
// tls_test's Tls12OffersOnlyEcdheAead). testssl 3.0 cannot present a client
// certificate, so the listener runs with client_cert "optional" (same protocols and ciphers).
// testssl exits 0 whatever it finds: the findings are read from its flat JSON output.
TEST_F(TlsGateway, TestsslFindsOnlyTls12PlusStrongCiphersNoRenegotiationNoCompression) {
  if (std::system("command -v testssl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "testssl is not installed (Debian package testssl.sh; gateway/scripts/install-deps.sh)";
  }
  ASSERT_TRUE(start({"optional", false})) << log();
  const std::string json = (dir_ / "testssl.json").string();
  const std::string command = "testssl --quiet --color 0 --warnings off -n none -p -s -R -C --jsonfile '" + json +
                              "' 127.0.0.1:" + std::to_string(port_) + " > '" + (dir_ / "testssl.out").string() + "' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << readFile((dir_ / "testssl.out").string());
  const std::string output = readFile((dir_ / "testssl.out").string());

  rapidjson::Document findings;
  findings.Parse(readFile(json).c_str());
  ASSERT_TRUE(!findings.HasParseError() && findings.IsArray()) << readFile(json);
  std::map<std::string, std::pair<std::string, std::string>> by_id;  // id -> (severity, finding)
  for (const auto& f : findings.GetArray()) {
    if (f.IsObject() && f.HasMember("id") && f["id"].IsString() && f.HasMember("finding") && f["finding"].IsString()) {
      by_id[f["id"].GetString()] = {f.HasMember("severity") ? f["severity"].GetString() : "", f["finding"].GetString()};
    }
  }
  auto finding = [&](const std::string& id) {
    auto it = by_id.find(id);
    return it == by_id.end() ? std::string("<no finding '" + id + "'>") : it->second.second;
  };

  // TLS 1.2 and 1.3 only.
  for (const char* old : {"SSLv2", "SSLv3", "TLS1", "TLS1_1"}) EXPECT_EQ(finding(old), "not offered") << old << output;
  EXPECT_EQ(finding("TLS1_2"), "offered") << output;
  EXPECT_THAT(finding("TLS1_3"), HasSubstr("offered")) << output;
  // No weak cipher category: NULL, anonymous, export, LOW (DES, RC2, RC4), 3DES/IDEA, nor the
  // obsolete CBC ones ("AVERAGE"); only AEAD ("STRONG").
  for (const char* weak : {"cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                           "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"}) {
    EXPECT_EQ(finding(weak), "not offered") << weak << output;
  }
  EXPECT_EQ(finding("cipherlist_STRONG"), "offered") << output;
  // No client-initiated renegotiation; RFC 5746 secure renegotiation indicated.
  EXPECT_EQ(finding("secure_client_renego"), "not vulnerable") << output;
  EXPECT_EQ(finding("secure_renego"), "supported") << output;
  // No TLS compression (CRIME).
  EXPECT_EQ(finding("CRIME_TLS"), "not vulnerable") << output;
  // Nothing else it checked rates above LOW.
  for (const auto& [id, value] : by_id) {
    EXPECT_THAT((std::vector<std::string>{"MEDIUM", "HIGH", "CRITICAL"}), Not(::testing::Contains(value.first)))
        << id << ": " << value.second;
  }
}

}  // namespace
}  // namespace gw::test

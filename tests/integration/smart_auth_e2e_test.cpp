// Partner authorization end to end: the real gateway against the partner's real token endpoint,
// which verifies the gateway's client assertions with `jose` (an independent JWT implementation)
// against the JWKS it fetches from the gateway over HTTPS (GET /.well-known/jwks.json), and
// whose FHIR API then requires the short-lived tokens it issued. All on 127.0.0.1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/ids.hpp"
#include "delivery/signing_key.hpp"
#include "gateway_fixture.hpp"
#include "support/test_pki.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

constexpr const char* kClientId = "gw-test-client";

class SmartAuthEndToEnd : public PartnerSuite {
 protected:
  void TearDown() override {
    if (HasFailure()) std::cerr << "---- partner auth ----\n" << partner_->admin("GET", "auth").body << "\n";
    PartnerSuite::TearDown();
    configurePartner("null");
  }

  // `fhir-gateway keys new-signing-key`, as an operator would make the key.
  std::string newKey(const std::string& alg, const std::string& kid) {
    const std::string file = dir_ + "/" + kid + ".pem";
    const std::string command = std::string(GW_GATEWAY_BIN) + " keys new-signing-key --alg " + alg + " --out '" + file +
                                "' --kid " + kid + " > '" + file + ".out' 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << readFile(file + ".out");
    EXPECT_EQ(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
    return file;
  }

  static std::string smartAuth(const std::string& key_file, const std::string& alg, const std::string& kid,
                               bool discover = false) {
    return R"("auth": {"type": "smart-backend", )" +
           (discover ? std::string() : R"("token_url": ")" + partner_->tokenUrl() + R"(", )") + R"("client_id": ")" +
           kClientId + R"(", "scope": "system/Patient.u system/MedicationRequest.u system/Consent.u",
           "private_key_file": ")" +
           key_file + R"(", "alg": ")" + alg + R"(", "kid": ")" + kid + R"("},)";
  }

  Gateway& startGateway(GatewayOptions options, const std::string& subdir = "gw") {
    options.partner_url = partner_->baseUrl();
    options.client_cert_mode = "optional";  // the partner fetches the JWKS without a client certificate
    const std::string dir = dir_ + "/" + subdir;
    fs::create_directories(dir);
    gateway_ = std::make_unique<Gateway>(dir, options);
    gateway_->start();
    return *gateway_;
  }
  std::string jwksUrl() const { return "https://127.0.0.1:" + std::to_string(gateway_->port()) + "/.well-known/jwks.json"; }
  static void configurePartner(const std::string& json) {
    auto r = partner_->admin("POST", "auth", json);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  void configureSmartPartner(int token_lifetime_s = 60, int jwks_cache_ms = 600000) {
    configurePartner(R"({"mode":"smart","client_id":")" + std::string(kClientId) + R"(","jwks_url":")" + jwksUrl() +
                     R"(","token_lifetime_s":)" + std::to_string(token_lifetime_s) + R"(,"jwks_cache_ms":)" +
                     std::to_string(jwks_cache_ms) + R"(,"inspector_token":"test-inspector"})");
  }
  static rapidjson::Document authStats() { return parse(partner_->admin("GET", "auth").body); }

  // A patient (and the consent that lets it go to st-mary) delivered through the partner's auth.
  void deliverPatient(const std::string& mrn) {
    auto r = gateway_->post(consentRecord(mrn, "st-mary", R"(["general","sud","mh"])", "active", "c-" + mrn));
    ASSERT_EQ(r.status, 202) << r.body;
    r = gateway_->post(patientRecord(mrn));
    ASSERT_EQ(r.status, 202) << r.body;
    ASSERT_TRUE(gateway_->waitForDeliveries("c1:pt:" + mrn, "delivered")) << gateway_->status("c1:pt:" + mrn).body;
    EXPECT_EQ(partner_->count("Patient", kMrnSystem, mrn), 1);
  }

  // The partner's token endpoint, asked directly with an assertion the test made.
  static HttpResponse askForToken(const std::string& assertion) {
    return partner_->request("POST", "/oauth2/token",
                             "grant_type=client_credentials&scope=system%2FPatient.u&client_assertion_type="
                             "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" +
                                 assertion,
                             {{"Content-Type", "application/x-www-form-urlencoded"}});
  }
  static delivery::SigningKey loadKey(const std::string& file, delivery::JwsAlg alg, const std::string& kid) {
    auto key = delivery::SigningKey::load(file, alg, kid, "test");
    EXPECT_TRUE(key) << key.error().describe();
    return key.value();
  }
};

TEST_F(SmartAuthEndToEnd, Rs384AndEs384AssertionsVerifiedByJoseEarnTheTokensTheFhirApiRequires) {
  struct Case {
    const char* alg;
    bool discover;
  };
  for (const auto& c : {Case{"RS384", false}, Case{"ES384", true}}) {
    SCOPED_TRACE(c.alg);
    partner_->reset();
    const std::string kid = std::string("gw-") + c.alg;
    const std::string key = newKey(c.alg, kid);
    auto& gw = startGateway({.partner_keys = smartAuth(key, c.alg, kid, c.discover)}, kid);

    // The JWKS: public keys only, no authentication, cacheable.
    TlsClientOptions anonymous;
    anonymous.ca_file = devPkiFile("ca.crt");
    auto jwks = tlsRequest(gw.port(), anonymous, "GET", "/.well-known/jwks.json");
    ASSERT_EQ(jwks.status, 200) << jwks.body;
    EXPECT_THAT(jwks.body, HasSubstr(R"("kid":")" + kid + "\""));
    EXPECT_THAT(jwks.body, Not(HasSubstr(R"("d":)")));
    EXPECT_THAT(jwks.header("cache-control"), HasSubstr("max-age"));

    // Without a token the partner's FHIR API refuses; the partner's token endpoint verifies
    // the gateway's assertion against that JWKS.
    configureSmartPartner();
    EXPECT_EQ(partner_->request("GET", "/fhir/R4/Patient", "", {}).status, 401);
    deliverPatient("A12345");
    const auto stats = authStats();
    EXPECT_GE(stats["issued"].GetInt(), 1);
    EXPECT_GE(stats["kids"][kid.c_str()].GetInt(), 1) << "the assertion was signed with the configured kid";
    EXPECT_EQ(stats["refused"].MemberCount(), 0u);
    const std::string log = gw.log();
    EXPECT_THAT(log, HasSubstr("token_obtained"));
    EXPECT_THAT(log, Not(HasSubstr("client_assertion=")));
    EXPECT_THAT(log, Not(HasSubstr("Bearer ")));
    if (c.discover) {
      EXPECT_THAT(log, HasSubstr("token_endpoint_discovered"));
    }
    gateway_.reset();
    configurePartner("null");
  }
}

TEST_F(SmartAuthEndToEnd, TokensAreRenewedBeforeExpiryAndOnceAfterARevocation) {
  const std::string key = newKey("ES384", "gw-exp");
  startGateway({.partner_keys = smartAuth(key, "ES384", "gw-exp")});
  configureSmartPartner(4);  // four-second tokens: renewed at 3.2 s
  deliverPatient("A12345");
  EXPECT_EQ(authStats()["issued"].GetInt(), 1);

  std::this_thread::sleep_for(4500ms);  // the first token has expired
  deliverPatient("B2");
  auto stats = authStats();
  EXPECT_EQ(stats["issued"].GetInt(), 2) << "a fresh token before the old one expired";
  EXPECT_EQ(stats["fhir_rejected"].GetInt(), 0) << "no request went out with an expired token";

  // The hospital revokes the gateway's token: the next request gets 401, the gateway drops the
  // token, fetches a new one and sends once more; the record is delivered, nothing dies.
  auto revoked = partner_->admin("POST", "auth/revoke");
  ASSERT_EQ(revoked.status, 200);
  EXPECT_THAT(revoked.body, HasSubstr(R"("revoked":1)"));
  deliverPatient("B-77");
  stats = authStats();
  EXPECT_EQ(stats["issued"].GetInt(), 3);
  EXPECT_EQ(stats["fhir_rejected"].GetInt(), 1);
  EXPECT_THAT(gateway_->log(), HasSubstr("credential_refused"));
}

TEST_F(SmartAuthEndToEnd, TheTokenEndpointRefusesReplayedMisaddressedExpiredAndWronglySignedAssertions) {
  const std::string file = newKey("RS384", "gw-neg");
  startGateway({.partner_keys = smartAuth(file, "RS384", "gw-neg")});
  configureSmartPartner();
  const auto key = loadKey(file, delivery::JwsAlg::RS384, "gw-neg");
  const auto now = std::chrono::system_clock::now();
  const std::string token_url = partner_->tokenUrl();

  auto good = delivery::clientAssertion(key, kClientId, token_url, now);
  ASSERT_TRUE(good);
  EXPECT_EQ(askForToken(good.value()).status, 200);
  auto replay = askForToken(good.value());
  EXPECT_EQ(replay.status, 401);
  EXPECT_THAT(replay.body, HasSubstr("replayed_jti"));

  auto wrong_aud = delivery::clientAssertion(key, kClientId, "https://127.0.0.1:1/elsewhere/token", now);
  EXPECT_THAT(askForToken(wrong_aud.value()).body, HasSubstr("wrong_aud"));
  auto expired = delivery::clientAssertion(key, kClientId, token_url, now - 10min);
  EXPECT_THAT(askForToken(expired.value()).body, HasSubstr("expired"));
  auto too_long = delivery::clientAssertion(key, kClientId, token_url, now, std::chrono::hours(1));
  EXPECT_THAT(askForToken(too_long.value()).body, HasSubstr("exp_too_far"));
  auto impostor_key = delivery::SigningKey::generate(delivery::JwsAlg::RS384);
  ASSERT_TRUE(impostor_key);
  const std::string impostor_pem = dir_ + "/impostor.pem";
  {
    std::ofstream out(impostor_pem);
    out << impostor_key.value().privatePem().value();
  }
  fs::permissions(impostor_pem, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  const auto forged_key = loadKey(impostor_pem, delivery::JwsAlg::RS384, "gw-neg");  // the same kid, another key
  auto forged = delivery::clientAssertion(forged_key, kClientId, token_url, now);
  EXPECT_THAT(askForToken(forged.value()).body, HasSubstr("bad_signature"));
  auto wrong_client = delivery::clientAssertion(key, "someone-else", token_url, now);
  EXPECT_THAT(askForToken(wrong_client.value()).body, HasSubstr("wrong_iss"));

  const auto stats = authStats();
  EXPECT_EQ(stats["issued"].GetInt(), 1) << "only the one good assertion earned a token";
}

TEST_F(SmartAuthEndToEnd, KeyRotationKeepsTheOldKidPublishedAndAcceptedUntilItIsRemoved) {
  const std::string old_file = newKey("RS384", "gw-2025");
  startGateway({.partner_keys = smartAuth(old_file, "RS384", "gw-2025")}, "before");
  configureSmartPartner(60, 300);  // the partner refreshes its JWKS copy after 0.3 s
  deliverPatient("A12345");

  // Rotation: the partner now signs with the new key; the old one is listed as retired.
  const std::string new_file = newKey("ES384", "gw-2026");
  gateway_.reset();
  GatewayOptions overlap{.partner_keys = smartAuth(new_file, "ES384", "gw-2026"),
                         .top_level_keys = R"("signing_keys": [{"kid": "gw-2025", "alg": "RS384", "private_key_file": ")" +
                                           old_file + R"(", "status": "retired"}],)"};
  startGateway(overlap, "overlap");
  configureSmartPartner(60, 300);
  const std::string jwks_cli = dir_ + "/jwks.json";
  ASSERT_EQ(std::system(
                (std::string(GW_GATEWAY_BIN) + " keys jwks --config '" + gateway_->configPath() + "' > '" + jwks_cli + "'")
                    .c_str()),
            0);
  const std::string printed = readFile(jwks_cli);
  EXPECT_THAT(printed, HasSubstr(R"("kid":"gw-2025")"));
  EXPECT_THAT(printed, HasSubstr(R"("kid":"gw-2026")"));
  deliverPatient("B2");
  EXPECT_GE(authStats()["kids"]["gw-2026"].GetInt(), 1);
  // During the overlap an assertion under the old kid (a second gateway instance not yet
  // restarted, say) is still accepted.
  const auto old_key = loadKey(old_file, delivery::JwsAlg::RS384, "gw-2025");
  auto old_assertion = delivery::clientAssertion(old_key, kClientId, partner_->tokenUrl(), std::chrono::system_clock::now());
  EXPECT_EQ(askForToken(old_assertion.value()).status, 200) << "old kid accepted during the overlap";

  // Once the retired key is removed, its kid leaves the JWKS and is refused.
  gateway_.reset();
  GatewayOptions after{.partner_keys = smartAuth(new_file, "ES384", "gw-2026")};
  startGateway(after, "after");
  configureSmartPartner(60, 300);
  deliverPatient("B-77");
  old_assertion = delivery::clientAssertion(old_key, kClientId, partner_->tokenUrl(), std::chrono::system_clock::now());
  const auto refused = askForToken(old_assertion.value());
  EXPECT_EQ(refused.status, 401);
  EXPECT_THAT(refused.body, HasSubstr("unknown_kid"));
}

TEST_F(SmartAuthEndToEnd, ClientSecretBasicAndPost) {
  const std::string secret_file = dir_ + "/client.secret";
  {
    std::ofstream out(secret_file);
    out << "s3cr3t:with spaces&symbols\n";
  }
  fs::permissions(secret_file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  ::setenv("GW_TEST_CLIENT_SECRET", "env-secret/42", 1);

  struct Case {
    const char* method;
    std::string source;
    const char* secret;
  };
  int n = 0;
  for (const auto& c :
       {Case{"client_secret_basic", R"("client_secret_file": ")" + secret_file + "\"", "s3cr3t:with spaces&symbols"},
        Case{"client_secret_post", R"("client_secret_env": "GW_TEST_CLIENT_SECRET")", "env-secret/42"}}) {
    SCOPED_TRACE(c.method);
    partner_->reset();
    const std::string auth = R"("auth": {"type": "client-credentials", "token_url": ")" + partner_->tokenUrl() +
                             R"(", "client_id": "cloud-gw", "scope": "system/*.write", )" + c.source +
                             R"(, "client_auth_method": ")" + c.method + R"("},)";
    startGateway({.partner_keys = auth}, c.method);
    configurePartner(R"({"mode":"client-secret","client_id":"cloud-gw","client_secret":")" + std::string(c.secret) +
                     R"(","auth_method":")" + c.method + R"(","inspector_token":"test-inspector"})");
    deliverPatient("HR-100" + std::to_string(++n));
    const auto stats = authStats();
    EXPECT_EQ(stats["issued"].GetInt(), 1);
    EXPECT_EQ(stats["refused"].MemberCount(), 0u);
    EXPECT_THAT(gateway_->log(), Not(HasSubstr(c.secret)));
    gateway_.reset();
  }
}

}  // namespace
}  // namespace gw::test

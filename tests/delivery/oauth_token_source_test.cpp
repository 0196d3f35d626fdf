// OAuth 2.0 token sources against the in-process HTTPS fake: what goes to the token endpoint,
// the token cache and its expiry, the one renewal after a 401, discovery, and what never reaches
// a log. (The real token endpoint, verifying with an independent JWT library, is the partner's:
// tests/integration/smart_auth_e2e_test.cpp.)
#include "delivery/oauth_token_source.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "delivery/attempt_outcome.hpp"
#include "fake_fhir_server.hpp"
#include "support/log_capture.hpp"
#include "support/test_json.hpp"
#include "support/test_pki.hpp"

namespace gw::delivery {
namespace {

using fakes::FakeFhirServer;
using fakes::ScriptedReply;
using test::LogCapture;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

class FakeClock final : public Clock {
 public:
  SystemTime now() const override { return now_; }
  void advance(std::chrono::seconds d) { now_ += d; }

 private:
  SystemTime now_ = fromUnixMillis(1'800'000'000'000);
};

ScriptedReply reply(int status, std::string body) {
  return {ScriptedReply::Action::Respond, status, std::move(body), {{"Content-Type", "application/json"}}};
}
ScriptedReply tokenReply(const std::string& token, int expires_in = 300) {
  return reply(200, R"({"access_token":")" + token + R"(","token_type":"bearer","expires_in":)" +
                        std::to_string(expires_in) + R"(,"scope":"system/Patient.u"})");
}

std::string formValue(const std::string& form, const std::string& name) {
  const std::string key = name + "=";
  for (std::size_t start = 0; start < form.size();) {
    const auto end = std::min(form.find('&', start), form.size());
    if (form.compare(start, key.size(), key) == 0) return form.substr(start + key.size(), end - start - key.size());
    start = end + 1;
  }
  return {};
}

std::string decodeSegment(std::string text) {
  for (char& c : text) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (text.size() % 4 != 0) text += '=';
  std::string out(text.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  std::size_t pad = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

class OAuthTokenSourceTest : public ::testing::Test {
 protected:
  OAuthTokenSourceTest()
      : server_(fakes::FakeServerOptions{test::devPkiFile("partner.crt"), test::devPkiFile("partner.key"), ""}) {}

  OAuthSettings settings(bool with_token_url = true) {
    OAuthSettings s;
    s.partner.id = "ehr";
    s.partner.base_url = server_.baseUrl();
    s.partner.ca_file = test::devPkiFile("ca.crt");
    s.partner.request_timeout = 5000ms;
    if (with_token_url) s.token_url = tokenUrl();
    s.client_id = "gw-client";
    s.scope = "system/Patient.u system/MedicationRequest.u";
    s.clock = &clock_;
    return s;
  }
  OAuthSettings smartSettings(bool with_token_url = true) {
    auto s = settings(with_token_url);
    auto key = SigningKey::generate(JwsAlg::ES384);
    EXPECT_TRUE(key);
    s.signing_key = key.value();
    return s;
  }
  std::string tokenUrl() const { return "https://127.0.0.1:" + std::to_string(server_.port()) + "/oauth2/token"; }
  static std::unique_ptr<CredentialSource> make(OAuthSettings s) {
    auto created = oauthTokenSource(std::move(s));
    EXPECT_TRUE(created) << created.error().describe();
    return std::move(created).value();
  }
  static std::string header(CredentialSource& source) {
    auto h = source.authorization();
    EXPECT_TRUE(h) << h.error().describe();
    return h && h.value() ? *h.value() : std::string();
  }

  FakeClock clock_;
  FakeFhirServer server_;
};

TEST_F(OAuthTokenSourceTest, SmartBackendPostsASignedAssertionAndCachesTheToken) {
  auto s = smartSettings();
  const std::string kid = s.signing_key->kid();
  auto source = make(std::move(s));
  server_.push(tokenReply("tok-1"));
  EXPECT_EQ(header(*source), "Bearer tok-1");
  EXPECT_EQ(header(*source), "Bearer tok-1") << "cached: no second request";
  clock_.advance(260s);
  EXPECT_EQ(header(*source), "Bearer tok-1") << "still well before expiry";

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/oauth2/token");
  EXPECT_EQ(r.headers.at("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(r.headers.count("authorization"), 0u);
  EXPECT_EQ(formValue(r.body, "grant_type"), "client_credentials");
  EXPECT_EQ(formValue(r.body, "scope"), "system%2FPatient.u+system%2FMedicationRequest.u");
  EXPECT_EQ(formValue(r.body, "client_assertion_type"), "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer");
  const std::string jwt = formValue(r.body, "client_assertion");
  ASSERT_EQ(std::count(jwt.begin(), jwt.end(), '.'), 2);
  const auto header_json = test::parseJson(decodeSegment(jwt.substr(0, jwt.find('.'))));
  EXPECT_STREQ(header_json["alg"].GetString(), "ES384");
  EXPECT_EQ(std::string(header_json["kid"].GetString()), kid);
  const auto claims = test::parseJson(decodeSegment(jwt.substr(jwt.find('.') + 1, jwt.rfind('.') - jwt.find('.') - 1)));
  EXPECT_STREQ(claims["iss"].GetString(), "gw-client");
  EXPECT_STREQ(claims["sub"].GetString(), "gw-client");
  EXPECT_EQ(std::string(claims["aud"].GetString()), tokenUrl());
  EXPECT_LE(claims["exp"].GetInt64() - toUnixMillis(clock_.now()) / 1000 + 260, 300);
}

TEST_F(OAuthTokenSourceTest, TokenIsRenewedShortlyBeforeItExpiresWithAFreshJti) {
  auto source = make(smartSettings());
  server_.push(tokenReply("tok-1", 300));
  server_.push(tokenReply("tok-2", 300));
  EXPECT_EQ(header(*source), "Bearer tok-1");
  clock_.advance(271s);  // 30 s before expiry
  EXPECT_EQ(header(*source), "Bearer tok-2");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  const auto jti = [](const std::string& body) {
    const std::string jwt = formValue(body, "client_assertion");
    return std::string(
        test::parseJson(decodeSegment(jwt.substr(jwt.find('.') + 1, jwt.rfind('.') - jwt.find('.') - 1)))["jti"]
            .GetString());
  };
  EXPECT_NE(jti(requests[0].body), jti(requests[1].body));
  EXPECT_EQ(tokenRefreshMargin(300s), 30s);
  EXPECT_EQ(tokenRefreshMargin(10s), 2s) << "a short-lived token is used for most of its life";
}

TEST_F(OAuthTokenSourceTest, ARejectedTokenIsDroppedAndRenewedOnceByTheClient) {
  LogCapture logs;
  auto source = oauthTokenSource(smartSettings());
  ASSERT_TRUE(source);
  PartnerEndpoint ep;
  ep.id = "ehr";
  ep.base_url = server_.baseUrl();
  ep.ca_file = test::devPkiFile("ca.crt");
  auto client = FhirClient::create(ep, std::move(source).value());
  ASSERT_TRUE(client);
  const std::string ok_bundle =
      R"({"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created"}}]})";
  server_.push(tokenReply("tok-revoked"));
  server_.push(reply(401, R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login"}]})"));
  server_.push(tokenReply("tok-fresh"));
  server_.push(reply(200, ok_bundle));
  auto result = client.value()->postBundle(R"({"resourceType":"Bundle","type":"transaction","entry":[]})");
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value().status, 200);
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[1].headers.at("authorization"), "Bearer tok-revoked");
  EXPECT_EQ(requests[2].target, "/oauth2/token");
  EXPECT_EQ(requests[3].headers.at("authorization"), "Bearer tok-fresh");

  // A fresh token refused as well is the partner's answer: no loop.
  server_.push(reply(401, "{}"));
  server_.push(tokenReply("tok-3"));
  server_.push(reply(401, "{}"));
  result = client.value()->postBundle("{}");
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value().status, 401);
  EXPECT_EQ(server_.requests().size(), 7u);
  const std::string text = logs.all();
  EXPECT_THAT(text, HasSubstr("token_obtained"));
  for (const char* secret : {"tok-revoked", "tok-fresh", "tok-3", "client_assertion", "eyJ"}) {
    EXPECT_THAT(text, Not(HasSubstr(secret))) << "tokens and assertions are never logged";
  }
}

TEST_F(OAuthTokenSourceTest, ClientSecretBasicAndPost) {
  auto basic = settings();
  basic.client_secret = "s3cret:with/odd chars";
  basic.client_id = "gw client";
  auto source = make(std::move(basic));
  server_.push(tokenReply("tok-b"));
  EXPECT_EQ(header(*source), "Bearer tok-b");
  auto post = settings();
  post.client_secret = "p0st-secret";
  post.secret_in_body = true;
  auto source2 = make(std::move(post));
  server_.push(tokenReply("tok-p"));
  EXPECT_EQ(header(*source2), "Bearer tok-p");

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  // RFC 6749 §2.3.1: id and secret form-encoded, then base64.
  EXPECT_EQ(requests[0].headers.at("authorization"), "Basic Z3crY2xpZW50OnMzY3JldCUzQXdpdGglMkZvZGQrY2hhcnM=");
  EXPECT_THAT(requests[0].body, Not(HasSubstr("s3cret")));
  EXPECT_EQ(formValue(requests[0].body, "client_assertion"), "");
  EXPECT_EQ(requests[1].headers.count("authorization"), 0u);
  EXPECT_EQ(formValue(requests[1].body, "client_id"), "gw-client");
  EXPECT_EQ(formValue(requests[1].body, "client_secret"), "p0st-secret");
}

TEST_F(OAuthTokenSourceTest, ARefusedTokenRequestIsARetryableFailureNamingTheOAuthError) {
  LogCapture logs;
  auto s = settings();
  s.client_secret = "never-shown";
  auto source = make(std::move(s));
  server_.push(reply(401, R"({"error":"invalid_client","error_description":"unknown client\u0000 gw-client"})"));
  auto h = source->authorization();
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, ErrorCode::Unavailable);
  EXPECT_THAT(h.error().message, HasSubstr("HTTP 401 invalid_client: unknown client? gw-client"));
  EXPECT_THAT(h.error().hint, HasSubstr("retried"));
  EXPECT_EQ(classify(Result<HttpResult>(h.error())).kind, AttemptOutcome::Kind::Retry);
  EXPECT_THAT(logs.all() + h.error().describe(), Not(HasSubstr("never-shown")));

  server_.push(reply(200, R"({"access_token":"a b","token_type":"bearer"})"));
  h = source->authorization();
  ASSERT_FALSE(h);
  EXPECT_THAT(h.error().message, HasSubstr("access_token"));
}

TEST_F(OAuthTokenSourceTest, DiscoversTheTokenEndpointFromTheSmartConfiguration) {
  auto source = make(smartSettings(false));
  server_.push(reply(200, R"({"token_endpoint":")" + tokenUrl() +
                              R"(","token_endpoint_auth_methods_supported":["private_key_jwt"],
                              "token_endpoint_auth_signing_alg_values_supported":["RS384","ES384"]})"));
  server_.push(tokenReply("tok-d"));
  EXPECT_EQ(header(*source), "Bearer tok-d");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/fhir/R4/.well-known/smart-configuration");
  EXPECT_EQ(requests[1].target, "/oauth2/token");
  const std::string jwt = formValue(requests[1].body, "client_assertion");
  const auto claims = test::parseJson(decodeSegment(jwt.substr(jwt.find('.') + 1, jwt.rfind('.') - jwt.find('.') - 1)));
  EXPECT_EQ(std::string(claims["aud"].GetString()), tokenUrl()) << "aud is the discovered token URL";

  auto refuses = make(smartSettings(false));
  server_.push(reply(200, R"({"token_endpoint":")" + tokenUrl() +
                              R"(","token_endpoint_auth_methods_supported":["client_secret_basic"]})"));
  auto h = refuses->authorization();
  ASSERT_FALSE(h);
  EXPECT_THAT(h.error().message, HasSubstr("does not list private_key_jwt"));
}

TEST(OAuthParsing, TokenResponsesAreParsedStrictly) {
  auto ok = parseTokenResponse(R"({"access_token":"abc.DEF-_~+/=","token_type":"Bearer","expires_in":60})");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok.value().expires_in, 60s);
  EXPECT_EQ(parseTokenResponse(R"({"access_token":"a","token_type":"bearer"})").value().expires_in, 300s);
  for (const char* bad : {
           R"({"access_token":"a","token_type":"bearer","access_token":"b"})",  // a key twice
           R"({"access_token":"a","token_type":"bearer"} x)",                   // trailing bytes
           R"({"access_token":"a","token_type":"mac"})",
           R"({"access_token":"a\r\nX-Evil: 1","token_type":"bearer"})",
           R"({"access_token":"","token_type":"bearer"})",
           R"({"access_token":"a","token_type":"bearer","expires_in":-5})",
           R"({"access_token":"a","token_type":"bearer","expires_in":"60"})",
           R"({"access_token":"a","token_type":"bearer","expires_in":1e9})",
           R"(["access_token"])",
           "\xff",
       }) {
    EXPECT_FALSE(parseTokenResponse(bad)) << bad;
  }
  EXPECT_EQ(tokenErrorSummary(400, "<html>"), "HTTP 400");
  EXPECT_EQ(tokenErrorSummary(400, R"({"error":"invalid_scope"})"), "HTTP 400 invalid_scope");
}

TEST(OAuthParsing, SmartConfigurationNeedsAnHttpsTokenEndpoint) {
  EXPECT_TRUE(parseSmartConfiguration(R"({"token_endpoint":"https://a.example/token","capabilities":[]})"));
  EXPECT_FALSE(parseSmartConfiguration(R"({"token_endpoint":"http://a.example/token"})"));
  EXPECT_FALSE(parseSmartConfiguration(R"({"issuer":"https://a.example"})"));
  EXPECT_FALSE(parseSmartConfiguration(R"({"token_endpoint":"https://a","token_endpoint":"https://b"})"));
  EXPECT_FALSE(parseSmartConfiguration(R"({"token_endpoint":"https://a","token_endpoint_auth_methods_supported":"x"})"));
}

}  // namespace
}  // namespace gw::delivery

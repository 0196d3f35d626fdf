#include "delivery/fhir_client.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "common/log.hpp"
#include "delivery/attempt_outcome.hpp"
#include "delivery/fake_fhir_server.hpp"
#include "support/test_pki.hpp"

namespace gw::delivery {
namespace {

using namespace std::chrono_literals;
using fakes::FakeFhirServer;
using fakes::ScriptedReply;
using ::testing::HasSubstr;
using ::testing::Not;
using Action = ScriptedReply::Action;

const std::string kBundle =
    R"({"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]})";
const std::string kTransactionResponse =
    R"({"resourceType":"Bundle","type":"transaction-response","entry":[)"
    R"({"response":{"status":"201 Created","location":"Patient/p1/_history/1","etag":"W/\"1\"","lastModified":"2026-01-02T03:04:05Z"}},)"
    R"({"response":{"status":"200 OK","location":"Observation/o1/_history/3","etag":"W/\"3\""}}]})";

std::string pki(const std::string& file) { return test::devPkiFile(file); }

fakes::FakeServerOptions partnerServer() { return {pki("partner.crt"), pki("partner.key"), ""}; }

// Captures every log line written while alive (logging is behaviour here: no secrets, no PHI).
class LogCapture {
 public:
  LogCapture() {
    log::setLevel(log::Level::Debug);
    log::setSink([this](std::string_view line) {
      std::lock_guard lock(mutex_);
      text_ += line;
    });
  }
  ~LogCapture() {
    log::setSink({});
    log::setLevel(log::Level::Info);
  }
  std::string text() const {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  mutable std::mutex mutex_;
  std::string text_;
};

class FhirClientTest : public ::testing::Test {
 protected:
  static PartnerEndpoint endpointFor(const FakeFhirServer& server, const std::string& host = "127.0.0.1") {
    PartnerEndpoint ep;
    ep.id = "partner-a";
    ep.base_url = server.baseUrl(host);
    ep.ca_file = pki("ca.crt");
    ep.connect_timeout = 2000ms;
    ep.request_timeout = 5000ms;
    return ep;
  }
  static std::unique_ptr<FhirClient> makeClient(PartnerEndpoint ep,
                                                std::unique_ptr<CredentialSource> credentials = noCredential()) {
    auto created = FhirClient::create(std::move(ep), std::move(credentials));
    if (!created) ADD_FAILURE() << created.error().describe();
    return created ? std::move(created).value() : nullptr;
  }
  static ScriptedReply reply(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
    return ScriptedReply{Action::Respond, status, std::move(body), std::move(headers)};
  }
};

// --- create(): configuration errors say what, where and what to do ---------------------------

TEST_F(FhirClientTest, RejectsPlainHttpBaseUrl) {
  PartnerEndpoint ep{"partner-a", "http://127.0.0.1:8080/fhir", pki("ca.crt")};
  auto created = FhirClient::create(ep);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::Config);
  EXPECT_THAT(created.error().message, HasSubstr("https://"));
  EXPECT_THAT(created.error().message, HasSubstr("partner-a"));
  EXPECT_EQ(created.error().where, "base_url");
}

TEST_F(FhirClientTest, RejectsMalformedBaseUrls) {
  for (const std::string url :
       {"127.0.0.1/fhir", "https://:443/fhir", "https://h:99999/", "https://h:12ab/", "https://user:pw@h/fhir",
        "https://h/fhir?x=1", "ftp://h/", "https://h\r\nX: y/", "https://h/fhir R4", "https://[::1/fhir"}) {
    PartnerEndpoint ep{"partner-a", url, pki("ca.crt")};
    auto created = FhirClient::create(ep);
    EXPECT_FALSE(created) << url;
    if (!created) {
      EXPECT_EQ(created.error().code, ErrorCode::Config) << url;
    }
  }
}

TEST_F(FhirClientTest, AcceptsUsualBaseUrls) {
  for (const std::string url : {"https://fhir.example.org/fhir/R4/", "HTTPS://Fhir.Example.org:8443",
                                "https://[::1]:9443/fhir", "https://10.1.2.3/r4"}) {
    PartnerEndpoint ep{"partner-a", url, pki("ca.crt")};
    auto created = FhirClient::create(ep);
    EXPECT_TRUE(created) << url << ": " << (created ? "" : created.error().describe());
  }
}

TEST_F(FhirClientTest, RequiresCaFileAndNamesAMissingOne) {
  PartnerEndpoint ep{"partner-a", "https://127.0.0.1:9443/fhir/R4", ""};
  auto created = FhirClient::create(ep);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().where, "ca_file");

  ep.ca_file = "/nonexistent/partner-ca.pem";
  created = FhirClient::create(ep);
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr("/nonexistent/partner-ca.pem"));
  EXPECT_FALSE(created.error().hint.empty());

  ep.ca_file = pki("ca.key");  // a file, but not a certificate
  created = FhirClient::create(ep);
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr("cannot load CA file"));
}

TEST_F(FhirClientTest, ClientCertificateNeedsItsOwnKey) {
  PartnerEndpoint ep{"partner-a", "https://127.0.0.1:9443/fhir/R4", pki("ca.crt")};
  ep.client_cert_file = pki("client.crt");
  auto created = FhirClient::create(ep);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().where, "client_key_file");

  ep.client_key_file = pki("partner.key");
  created = FhirClient::create(ep);
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr("does not match"));

  ep.client_key_file = pki("client.key");
  EXPECT_TRUE(FhirClient::create(ep));
}

TEST_F(FhirClientTest, RejectsBearerTokenThatCouldSplitHeaders) {
  auto created = staticBearerToken("abc\r\nX-Evil: 1", "partners.partner-a.bearer_token_env");
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, ErrorCode::Config);
  EXPECT_EQ(created.error().where, "partners.partner-a.bearer_token_env");
  EXPECT_THAT(created.error().message, Not(HasSubstr("abc")));
  EXPECT_TRUE(staticBearerToken("abc.DEF-123_~+/=", "x"));
}

// --- requests and classification against the fake partner ---------------------------------

TEST_F(FhirClientTest, DeliversTransactionAndSendsFhirHeaders) {
  FakeFhirServer server(partnerServer());
  server.push(reply(200, kTransactionResponse));
  auto client = makeClient(endpointFor(server));
  ASSERT_TRUE(client);

  auto result = client->postBundle(kBundle);
  ASSERT_TRUE(result) << result.error().describe();
  EXPECT_EQ(result.value().status, 200);
  EXPECT_EQ(result.value().headers.at("content-type"), "application/fhir+json");

  const auto outcome = classify(result);
  EXPECT_EQ(outcome.kind, AttemptOutcome::Kind::Delivered);
  ASSERT_EQ(outcome.entries.size(), 2u);
  EXPECT_EQ(outcome.entries[0].location, "Patient/p1/_history/1");
  EXPECT_EQ(outcome.entries[0].etag, "W/\"1\"");
  EXPECT_EQ(outcome.entries[0].last_modified, "2026-01-02T03:04:05Z");
  EXPECT_EQ(outcome.entries[1].location, "Observation/o1/_history/3");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& req = requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/fhir/R4");
  EXPECT_EQ(req.body, kBundle);
  EXPECT_EQ(req.headers.at("content-type"), "application/fhir+json");
  EXPECT_EQ(req.headers.at("accept"), "application/fhir+json");
  EXPECT_EQ(req.headers.at("user-agent"), std::string("fhir-gateway/") + GW_VERSION);
  EXPECT_EQ(req.headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(req.headers.count("authorization"), 0u);
  EXPECT_EQ(req.sni, "");  // no SNI for IP literals (RFC 6066), but the IP SAN was verified
}

TEST_F(FhirClientTest, ServiceUnavailableIsRetry) {
  FakeFhirServer server(partnerServer());
  server.push(reply(503, ""));
  auto client = makeClient(endpointFor(server));
  const auto outcome = classify(client->postBundle(kBundle));
  EXPECT_EQ(outcome.kind, AttemptOutcome::Kind::Retry);
  EXPECT_EQ(outcome.http_status, 503);
  EXPECT_EQ(outcome.error_summary, "HTTP 503 from partner");
  EXPECT_FALSE(outcome.retry_after);
}

TEST_F(FhirClientTest, TooManyRequestsHonoursRetryAfterSeconds) {
  FakeFhirServer server(partnerServer());
  server.push(reply(429, "", {{"Retry-After", "7"}}));
  auto client = makeClient(endpointFor(server));
  const auto outcome = classify(client->postBundle(kBundle));
  EXPECT_EQ(outcome.kind, AttemptOutcome::Kind::Retry);
  ASSERT_TRUE(outcome.retry_after);
  EXPECT_EQ(*outcome.retry_after, 7s);
}

TEST_F(FhirClientTest, BadRequestIsDeadWithPartnersOutcomeVerbatim) {
  const std::string oo =
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"Patient.birthDate: bad value"}]})";
  FakeFhirServer server(partnerServer());
  server.push(reply(400, oo));
  auto client = makeClient(endpointFor(server));
  const auto outcome = classify(client->postBundle(kBundle));
  EXPECT_EQ(outcome.kind, AttemptOutcome::Kind::Dead);
  EXPECT_EQ(outcome.http_status, 400);
  EXPECT_EQ(outcome.operation_outcome_json, oo);
  EXPECT_EQ(outcome.error_summary, "HTTP 400 from partner (issue: invalid)");
}

TEST_F(FhirClientTest, SuccessWithFailingEntryIsDead) {
  FakeFhirServer server(partnerServer());
  server.push(reply(200, R"({"resourceType":"Bundle","type":"transaction-response","entry":[)"
                         R"({"response":{"status":"201 Created","location":"Patient/p1/_history/1"}},)"
                         R"({"response":{"status":"412 Precondition Failed"}}]})"));
  auto client = makeClient(endpointFor(server));
  const auto outcome = classify(client->postBundle(kBundle));
  EXPECT_EQ(outcome.kind, AttemptOutcome::Kind::Dead);
  EXPECT_THAT(outcome.error_summary, HasSubstr("entry[1]"));
  EXPECT_THAT(outcome.operation_outcome_json, HasSubstr("412"));
}

TEST_F(FhirClientTest, ConnectionRefusedIsRetryNamingConnect) {
  unsigned short closed_port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor probe(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    closed_port = probe.local_endpoint().port();
  }  // closed again: nothing listens there now
  PartnerEndpoint ep{"partner-a", "https://127.0.0.1:" + std::to_string(closed_port) + "/fhir", pki("ca.crt")};
  auto client = makeClient(ep);
  auto result = client->postBundle(kBundle);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Unavailable);
  EXPECT_THAT(result.error().message, HasSubstr("partner-a"));
  const auto outcome = classify(result);
  EXPECT_EQ(outcome.kind, AttemptOutcome::Kind::Retry);
  EXPECT_THAT(outcome.error_summary, HasSubstr("connect"));
  EXPECT_THAT(outcome.error_summary, HasSubstr("refused"));
}

TEST_F(FhirClientTest, UntrustedServerCertificateFailsHandshakeWithVerifyReason) {
  FakeFhirServer server({pki("rogue-server.crt"), pki("rogue-server.key"), ""});
  server.push(reply(200, kTransactionResponse));
  auto client = makeClient(endpointFor(server));
  auto result = client->postBundle(kBundle);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Unavailable);
  EXPECT_THAT(result.error().message,
              HasSubstr("handshake: certificate verify failed: unable to get local issuer certificate"));
  EXPECT_THAT(result.error().hint, HasSubstr("ca_file"));
  EXPECT_TRUE(server.requests().empty());  // nothing was sent to an unverified peer
  EXPECT_EQ(classify(result).kind, AttemptOutcome::Kind::Retry);
}

TEST_F(FhirClientTest, IpNotInCertificateSanFails) {
  FakeFhirServer server({pki("other-host.crt"), pki("other-host.key"), ""});  // trusted CA, SAN 10.0.0.1
  auto client = makeClient(endpointFor(server));
  auto result = client->postBundle(kBundle);
  ASSERT_FALSE(result);
  EXPECT_THAT(result.error().message, HasSubstr("IP address mismatch"));
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(FhirClientTest, HostNameNotInCertificateSanFails) {
  FakeFhirServer server({pki("other-host.crt"), pki("other-host.key"), ""});  // SAN other.example
  auto client = makeClient(endpointFor(server, "localhost"));
  auto result = client->postBundle(kBundle);
  ASSERT_FALSE(result);
  EXPECT_THAT(result.error().message, HasSubstr("hostname mismatch"));
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(FhirClientTest, HostNameInSanWorksAndIsSentAsSni) {
  FakeFhirServer server(partnerServer());
  server.push(reply(200, kTransactionResponse));
  auto client = makeClient(endpointFor(server, "localhost"));
  auto result = client->postBundle(kBundle);
  ASSERT_TRUE(result) << result.error().describe();
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].sni, "localhost");
  EXPECT_EQ(requests[0].headers.at("host"), "localhost:" + std::to_string(server.port()));
}

TEST_F(FhirClientTest, PartnerRequiringClientCertificate) {
  FakeFhirServer server({pki("partner.crt"), pki("partner.key"), pki("ca.crt")});
  server.push(reply(200, kTransactionResponse));

  auto without = makeClient(endpointFor(server));
  auto refused = without->postBundle(kBundle);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("rejected the client certificate"));
  EXPECT_THAT(refused.error().hint, HasSubstr("client_cert_file"));
  EXPECT_TRUE(server.requests().empty());

  auto ep = endpointFor(server);
  ep.client_cert_file = pki("client.crt");
  ep.client_key_file = pki("client.key");
  auto with = makeClient(ep);
  auto result = with->postBundle(kBundle);
  ASSERT_TRUE(result) << result.error().describe();
  EXPECT_EQ(classify(result).kind, AttemptOutcome::Kind::Delivered);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].client_cn, "clinic-c1");
}

TEST_F(FhirClientTest, ReusesOneKeepAliveConnection) {
  FakeFhirServer server(partnerServer());
  server.push(reply(200, kTransactionResponse));
  server.push(reply(200, kTransactionResponse));
  server.push(reply(200, kTransactionResponse));
  auto client = makeClient(endpointFor(server));
  ASSERT_TRUE(client->postBundle(kBundle));
  ASSERT_TRUE(client->postBundle(kBundle));
  ASSERT_TRUE(client->postBundle(kBundle));
  EXPECT_EQ(server.accepts(), 1);
  EXPECT_EQ(client->connectionsOpened(), 1);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST_F(FhirClientTest, ConnectionCloseFromPartnerIsHonoured) {
  FakeFhirServer server(partnerServer());
  server.push(reply(200, kTransactionResponse, {{"Connection", "close"}}));
  server.push(reply(200, kTransactionResponse));
  auto client = makeClient(endpointFor(server));
  ASSERT_TRUE(client->postBundle(kBundle));
  ASSERT_TRUE(client->postBundle(kBundle));
  EXPECT_EQ(client->connectionsOpened(), 2);
  EXPECT_EQ(server.requests().size(), 2u);  // nothing was resent
}

TEST_F(FhirClientTest, ReconnectsWhenPartnerDroppedIdleConnection) {
  for (const auto close_action : {Action::RespondThenClose, Action::RespondThenShutdown}) {
    SCOPED_TRACE(close_action == Action::RespondThenClose ? "abrupt close" : "close_notify");
    FakeFhirServer server(partnerServer());
    server.push({close_action, 200, kTransactionResponse, {}});
    server.push(reply(200, kTransactionResponse));
    auto client = makeClient(endpointFor(server));
    ASSERT_TRUE(client->postBundle(kBundle));
    ASSERT_TRUE(FakeFhirServer::eventually([&] { return server.serverCloses() == 1; }));

    auto second = client->postBundle(kBundle);
    ASSERT_TRUE(second) << second.error().describe();
    EXPECT_EQ(classify(second).kind, AttemptOutcome::Kind::Delivered);
    EXPECT_EQ(server.accepts(), 2);
    EXPECT_EQ(server.requests().size(), 2u);
  }
}

TEST_F(FhirClientTest, FreshConnectionClosedWithoutReplyIsNotResent) {
  FakeFhirServer server(partnerServer());
  server.push({Action::CloseWithoutReply, 0, "", {}});
  server.push(reply(200, kTransactionResponse));
  auto client = makeClient(endpointFor(server));
  auto result = client->postBundle(kBundle);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Unavailable);
  EXPECT_THAT(result.error().message, HasSubstr("read"));
  EXPECT_EQ(server.requests().size(), 1u);  // the partner may have acted on it: the outbox decides
}

TEST_F(FhirClientTest, RequestTimeoutWhenPartnerNeverAnswers) {
  FakeFhirServer server(partnerServer());
  server.push({Action::Hang, 0, "", {}});
  auto ep = endpointFor(server);
  ep.request_timeout = 300ms;
  auto client = makeClient(ep);
  const auto start = std::chrono::steady_clock::now();
  auto result = client->postBundle(kBundle);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Timeout);
  EXPECT_THAT(result.error().message, HasSubstr("read"));
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2000ms);
  EXPECT_EQ(classify(result).kind, AttemptOutcome::Kind::Retry);
}

TEST_F(FhirClientTest, SendsBearerTokenButNeverLogsIt) {
  LogCapture logs;
  FakeFhirServer server(partnerServer());
  server.push(reply(200, kTransactionResponse));
  server.push({Action::Hang, 0, "", {}});
  auto ep = endpointFor(server);
  ep.request_timeout = 200ms;
  auto token = staticBearerToken("s3cr3t-token.value", "test");
  ASSERT_TRUE(token);
  auto client = makeClient(ep, std::move(token).value());
  ASSERT_TRUE(client->postBundle(kBundle));
  EXPECT_FALSE(client->postBundle(kBundle));  // failures log too

  const auto requests = server.requests();
  ASSERT_GE(requests.size(), 1u);
  EXPECT_EQ(requests[0].headers.at("authorization"), "Bearer s3cr3t-token.value");
  const std::string text = logs.text();
  EXPECT_THAT(text, HasSubstr("partner=partner-a"));
  EXPECT_THAT(text, HasSubstr("status=200"));
  EXPECT_THAT(text, HasSubstr("duration_ms="));
  EXPECT_THAT(text, Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(text, Not(HasSubstr("urn:uuid:1")));  // no bodies
}

// The credential seam: each request asks the source for its header, and a 401 tells the source
// its credential was refused (an OAuth source drops its cached token then).
class CountingCredentials final : public CredentialSource {
 public:
  Result<std::optional<std::string>> authorization() override {
    ++asked;
    return std::optional<std::string>("Bearer token-" + std::to_string(asked));
  }
  void rejected() override { ++refused; }
  std::string_view kind() const override { return "counting"; }
  int asked = 0;
  int refused = 0;
};

TEST_F(FhirClientTest, AsksTheCredentialSourceForEachRequestAndReportsA401) {
  FakeFhirServer server(partnerServer());
  server.push(reply(401, R"({"resourceType":"OperationOutcome"})"));
  server.push(reply(200, kTransactionResponse));
  auto source = std::make_unique<CountingCredentials>();
  auto* counting = source.get();
  auto client = makeClient(endpointFor(server), std::move(source));
  auto refused = client->postBundle(kBundle);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused.value().status, 401);
  EXPECT_EQ(counting->refused, 1);
  ASSERT_TRUE(client->postBundle(kBundle));
  EXPECT_EQ(counting->asked, 2);
  EXPECT_EQ(counting->refused, 1) << "a 200 is not a refusal";
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].headers.at("authorization"), "Bearer token-1");
  EXPECT_EQ(requests[1].headers.at("authorization"), "Bearer token-2");
}

TEST_F(FhirClientTest, NoCredentialSendsNoAuthorizationHeader) {
  FakeFhirServer server(partnerServer());
  server.push(reply(200, kTransactionResponse));
  auto client = makeClient(endpointFor(server));
  ASSERT_TRUE(client->postBundle(kBundle));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].headers.count("authorization"), 0u);
}

TEST_F(FhirClientTest, OversizedResponseIsRefused) {
  FakeFhirServer server(partnerServer());
  server.push(reply(200, std::string(kMaxResponseBody + 1, 'x')));
  auto client = makeClient(endpointFor(server));
  auto result = client->postBundle(kBundle);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::PayloadTooLarge);
  EXPECT_EQ(classify(result).kind, AttemptOutcome::Kind::Dead);
}

}  // namespace
}  // namespace gw::delivery

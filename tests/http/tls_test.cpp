// TLS policy of the server: client certificate modes, protocol floor, cipher list, and the
// start-up errors for bad certificate files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "http/server_fixture.hpp"
#include "http/tls_context.hpp"
#include "support/scratch_dir.hpp"

namespace gw::http {
namespace {

using namespace std::chrono_literals;
using testing::clientOptions;
using testing::LogCapture;
using testing::rejected;
using testing::serverOptions;
using testing::startServer;

std::string sha256FingerprintOf(const std::string& pem_file) {
  FILE* f = std::fopen(pem_file.c_str(), "r");
  if (f == nullptr) return {};
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return {};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  X509_digest(cert, EVP_sha256(), md, &size);
  X509_free(cert);
  std::string out;
  char byte[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", md[i]);
    out += byte;
  }
  return out;
}

class TlsTest : public ::testing::Test {
 protected:
  TlsTest() : router_(std::make_shared<Router>()) {
    router_->add("GET", "/whoami", [](Request& r, Respond respond) {
      respond(jsonResponse(200, std::string(r.client.verified ? "verified" : "unverified") + "|" + r.client.subject + "|" +
                                    r.client.common_name + "|" + r.client.fingerprint_sha256));
    });
  }
  void start(ClientCertMode mode) {
    server_ = startServer(serverOptions(mode), router_);
    ASSERT_NE(server_, nullptr);
  }
  test::HttpResponse whoami(const test::TlsClientOptions& options) {
    return test::tlsRequest(server_->port(), options, "GET", "/whoami");
  }

  std::shared_ptr<Router> router_;
  std::unique_ptr<Server> server_;
};

TEST_F(TlsTest, RequiredModeAcceptsGoodCertificateAndExposesIdentity) {
  start(ClientCertMode::Required);
  auto r = whoami(clientOptions("client"));
  ASSERT_FALSE(r.error) << r.error.message();
  ASSERT_EQ(r.status, 200);
  const std::string fingerprint = sha256FingerprintOf(test::devPkiFile("client.crt"));
  ASSERT_EQ(fingerprint.size(), 64u);
  EXPECT_EQ(r.body, "verified|CN=clinic-c1,O=fhir-gateway development|clinic-c1|" + fingerprint);
}

TEST_F(TlsTest, RequiredModeRefusesMissingCertificate) {
  LogCapture logs;
  start(ClientCertMode::Required);
  EXPECT_TRUE(rejected(server_->port(), clientOptions("")));
  EXPECT_TRUE(logs.waitFor({"tls_handshake_failed", "remote=127.0.0.1:"})) << logs.all();
}

TEST_F(TlsTest, RequiredModeRefusesMissingCertificateDuringTls12Handshake) {
  start(ClientCertMode::Required);
  auto options = clientOptions("");
  options.max_tls_version = TLS1_2_VERSION;
  test::TlsTestClient client(options);
  EXPECT_TRUE(client.connect(server_->port()));  // in TLS 1.2 the client sees it in the handshake
}

TEST_F(TlsTest, RequiredModeRefusesExpiredCertificate) {
  LogCapture logs;
  start(ClientCertMode::Required);
  EXPECT_TRUE(rejected(server_->port(), clientOptions("expired-client")));
  EXPECT_TRUE(logs.waitFor({"tls_handshake_failed", "verify_error=\"certificate has expired\""})) << logs.all();
}

TEST_F(TlsTest, RequiredModeRefusesCertificateFromAnotherCa) {
  LogCapture logs;
  start(ClientCertMode::Required);
  EXPECT_TRUE(rejected(server_->port(), clientOptions("rogue-client")));
  EXPECT_TRUE(logs.waitFor({"tls_handshake_failed", "verify_error="})) << logs.all();
  // The rogue certificate claims CN=clinic-c1 too; nothing of it reaches a handler.
}

TEST_F(TlsTest, OptionalModeWithoutCertificateIsUnverified) {
  start(ClientCertMode::Optional);
  auto r = whoami(clientOptions(""));
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.body, "unverified|||");
}

TEST_F(TlsTest, OptionalModeStillVerifiesPresentedCertificates) {
  start(ClientCertMode::Optional);
  auto good = whoami(clientOptions("client"));
  ASSERT_FALSE(good.error) << good.error.message();
  EXPECT_EQ(good.body.rfind("verified|CN=clinic-c1", 0), 0u) << good.body;
  EXPECT_TRUE(rejected(server_->port(), clientOptions("rogue-client")));
  EXPECT_TRUE(rejected(server_->port(), clientOptions("expired-client")));
}

TEST_F(TlsTest, NoneModeDoesNotAskForCertificates) {
  start(ClientCertMode::None);
  auto r = whoami(clientOptions("client"));
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.body, "unverified|||");
}

// Revocation: with the dev CA's CRL (made by certs/make-dev-certs.sh) loaded, the revoked client
// certificate fails the handshake; the others still pass.
TEST_F(TlsTest, RevokedCertificateFailsTheHandshakeWithTheCrl) {
  LogCapture logs;
  auto options = serverOptions(ClientCertMode::Required);
  options.client_crl_file = test::devPkiFile("ca-crl.pem");
  server_ = startServer(options, router_);
  ASSERT_NE(server_, nullptr);
  EXPECT_TRUE(rejected(server_->port(), clientOptions("revoked-client")));
  EXPECT_TRUE(logs.waitFor({"tls_handshake_failed", "verify_error=\"certificate revoked\""})) << logs.all();
  auto good = whoami(clientOptions("client"));
  ASSERT_FALSE(good.error) << good.error.message();
  EXPECT_EQ(good.status, 200);
  EXPECT_EQ(whoami(clientOptions("client-c2")).status, 200);
  EXPECT_TRUE(rejected(server_->port(), clientOptions("expired-client")));
}

TEST_F(TlsTest, RevokedCertificateIsServedWithoutTheCrl) {
  // Control for the test above: the CRL, not something else about the certificate, refuses it.
  start(ClientCertMode::Required);
  EXPECT_EQ(whoami(clientOptions("revoked-client")).status, 200);
}

TEST_F(TlsTest, CrlAppliesInOptionalModeToo) {
  test::ScratchDir dir;
  const std::string crl = (dir.path() / "c2-revoked.pem").string();
  test::writeDevCrl(crl, "ca", {"client-c2"}, std::chrono::hours(24));
  auto options = serverOptions(ClientCertMode::Optional);
  options.client_crl_file = crl;
  server_ = startServer(options, router_);
  ASSERT_NE(server_, nullptr);
  EXPECT_TRUE(rejected(server_->port(), clientOptions("client-c2")));
  EXPECT_EQ(whoami(clientOptions("client")).status, 200);
  EXPECT_EQ(whoami(clientOptions("revoked-client")).status, 200) << "not in this CRL";
  EXPECT_EQ(whoami(clientOptions("")).body, "unverified|||");
}

TEST_F(TlsTest, DefaultsToTls13) {
  start(ClientCertMode::Required);
  test::TlsTestClient client(clientOptions());
  ASSERT_FALSE(client.connect(server_->port()));
  EXPECT_EQ(client.protocol(), "TLSv1.3");
}

TEST_F(TlsTest, RefusesTls11) {
  LogCapture logs;
  start(ClientCertMode::Required);
  auto legacy = clientOptions();
  legacy.allow_legacy = true;  // make the client willing to speak TLS 1.1 at all
  legacy.min_tls_version = TLS1_1_VERSION;
  legacy.max_tls_version = TLS1_1_VERSION;
  test::TlsTestClient client(legacy);
  EXPECT_TRUE(client.connect(server_->port()));
  // The server, not the client, refused: it logged the failed handshake.
  EXPECT_TRUE(logs.waitFor({"tls_handshake_failed", "unsupported protocol"})) << logs.all();

  // Control: the same legacy-capable client is served once it may use TLS 1.2.
  legacy.max_tls_version = TLS1_2_VERSION;
  test::TlsTestClient modern(legacy);
  ASSERT_FALSE(modern.connect(server_->port()));
  EXPECT_EQ(modern.protocol(), "TLSv1.2");
}

TEST_F(TlsTest, Tls12OffersOnlyEcdheAead) {
  start(ClientCertMode::Required);
  auto options = clientOptions();
  options.max_tls_version = TLS1_2_VERSION;
  options.tls12_ciphers = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA";  // CBC: refused
  EXPECT_TRUE(rejected(server_->port(), options));
  options.tls12_ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305";
  test::TlsTestClient client(options);
  ASSERT_FALSE(client.connect(server_->port()));
  EXPECT_EQ(client.cipher(), "ECDHE-ECDSA-CHACHA20-POLY1305");
  EXPECT_EQ(client.request("GET", "/whoami").status, 200);
}

TEST(TlsContext, DisablesCompressionRenegotiationAndOldProtocols) {
  auto context = detail::makeServerTlsContext(serverOptions());
  ASSERT_TRUE(context) << context.error().describe();
  SSL_CTX* ctx = context.value().native_handle();
  const auto options = SSL_CTX_get_options(ctx);
  EXPECT_TRUE(options & SSL_OP_NO_COMPRESSION);
  EXPECT_TRUE(options & SSL_OP_NO_RENEGOTIATION);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
}

TEST(TlsContext, VerifyModeFollowsClientCertMode) {
  auto optional = detail::makeServerTlsContext(serverOptions(ClientCertMode::Optional));
  ASSERT_TRUE(optional);
  EXPECT_EQ(SSL_CTX_get_verify_mode(optional.value().native_handle()), SSL_VERIFY_PEER);
  auto none_options = serverOptions(ClientCertMode::None);
  none_options.client_ca_file.clear();  // not needed without client certificates
  auto none = detail::makeServerTlsContext(none_options);
  ASSERT_TRUE(none) << none.error().describe();
  EXPECT_EQ(SSL_CTX_get_verify_mode(none.value().native_handle()), SSL_VERIFY_NONE);
}

class CreateErrors : public ::testing::Test {
 protected:
  static Error createError(ServerOptions options) {
    auto created = Server::create(std::move(options), std::make_shared<Router>());
    EXPECT_FALSE(created);
    return created ? Error{} : created.error();
  }
};

TEST_F(CreateErrors, MissingCertificateFileNamesTheFile) {
  auto options = serverOptions();
  options.cert_file = test::devPkiDir() + "/no-such.crt";
  Error e = createError(options);
  EXPECT_EQ(e.code, ErrorCode::Config);
  EXPECT_EQ(e.where, options.cert_file);
  EXPECT_NE(e.hint.find("cert_file"), std::string::npos);
}

TEST_F(CreateErrors, NotAPemFile) {
  const std::string junk = test::devPkiDir() + "/junk.crt";
  std::ofstream(junk) << "not a certificate\n";
  auto options = serverOptions();
  options.cert_file = junk;
  Error e = createError(options);
  EXPECT_EQ(e.code, ErrorCode::Config);
  EXPECT_EQ(e.where, junk);
  EXPECT_NE(e.message.find("PEM"), std::string::npos);
}

TEST_F(CreateErrors, KeyOfAnotherCertificate) {
  auto options = serverOptions();
  options.key_file = test::devPkiFile("client.key");
  Error e = createError(options);
  EXPECT_EQ(e.code, ErrorCode::Config);
  EXPECT_EQ(e.where, options.key_file);
  EXPECT_NE(e.message.find("does not belong"), std::string::npos);
}

// A private key others may read is no longer private: refused like the master key (0644 is
// what a plain `cp` or an archive under umask 022 leaves).
TEST_F(CreateErrors, ServerKeyReadableByOthersIsRefused) {
  test::ScratchDir dir;
  const auto key = dir.path() / "server.key";
  std::filesystem::copy_file(test::devPkiFile("server.key"), key);
  namespace fs = std::filesystem;
  fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read,
                  fs::perm_options::replace);
  auto options = serverOptions();
  options.key_file = key.string();
  Error e = createError(options);
  EXPECT_EQ(e.code, ErrorCode::Config);
  EXPECT_EQ(e.where, key.string());
  EXPECT_NE(e.message.find("0644"), std::string::npos) << e.describe();
  EXPECT_NE(e.hint.find("chmod 600 '" + key.string() + "'"), std::string::npos) << e.describe();

  fs::permissions(key, fs::perms::group_read | fs::perms::others_read, fs::perm_options::remove);  // now 0600
  auto created = Server::create(options, std::make_shared<Router>());
  EXPECT_TRUE(created) << created.error().describe();
  fs::permissions(key, fs::perms::owner_write, fs::perm_options::remove);  // 0400 is stricter still
  created = Server::create(options, std::make_shared<Router>());
  EXPECT_TRUE(created) << created.error().describe();
}

TEST_F(CreateErrors, CrlErrorsNameTheFile) {
  test::ScratchDir dir;
  auto options = serverOptions();
  options.client_crl_file = (dir.path() / "missing.pem").string();
  Error e = createError(options);
  EXPECT_EQ(e.where, options.client_crl_file);
  EXPECT_NE(e.hint.find("client_crl_file"), std::string::npos) << e.describe();

  options.client_crl_file = test::devPkiFile("ca.crt");  // a certificate, not a CRL
  e = createError(options);
  EXPECT_EQ(e.where, options.client_crl_file);
  EXPECT_NE(e.message.find("no CRL found"), std::string::npos) << e.describe();

  const std::string rogue = (dir.path() / "rogue.pem").string();
  test::writeDevCrl(rogue, "rogue-ca", {}, std::chrono::hours(24));
  options.client_crl_file = rogue;
  e = createError(options);
  EXPECT_EQ(e.where, rogue);
  EXPECT_NE(e.message.find("not signed by a CA of client_ca_file"), std::string::npos) << e.describe();

  // An expired CRL would refuse every client ("CRL has expired"): said at start instead.
  const std::string expired = (dir.path() / "expired.pem").string();
  test::writeDevCrl(expired, "ca", {"revoked-client"}, -std::chrono::hours(1));
  options.client_crl_file = expired;
  e = createError(options);
  EXPECT_EQ(e.where, expired);
  EXPECT_NE(e.message.find("expired on"), std::string::npos) << e.describe();
  EXPECT_NE(e.hint.find("fresh CRL"), std::string::npos) << e.describe();

  options = serverOptions(ClientCertMode::None);
  options.client_crl_file = test::devPkiFile("ca-crl.pem");
  e = createError(options);
  EXPECT_NE(e.message.find("client_cert is none"), std::string::npos) << e.describe();
}

TEST(TlsContext, CrlTurnsOnRevocationChecking) {
  auto options = serverOptions();
  options.client_crl_file = test::devPkiFile("ca-crl.pem");
  auto context = detail::makeServerTlsContext(options);
  ASSERT_TRUE(context) << context.error().describe();
  X509_VERIFY_PARAM* param = X509_STORE_get0_param(SSL_CTX_get_cert_store(context.value().native_handle()));
  EXPECT_TRUE(X509_VERIFY_PARAM_get_flags(param) & X509_V_FLAG_CRL_CHECK);
}

TEST_F(CreateErrors, ClientCaRequiredUnlessModeIsNone) {
  auto options = serverOptions(ClientCertMode::Required);
  options.client_ca_file.clear();
  Error e = createError(options);
  EXPECT_EQ(e.code, ErrorCode::Config);
  EXPECT_EQ(e.where, "client_ca_file");
}

TEST_F(CreateErrors, EmptyCertificateSetting) {
  auto options = serverOptions();
  options.cert_file.clear();
  Error e = createError(options);
  EXPECT_EQ(e.where, "cert_file");
  EXPECT_NE(e.hint.find("make-dev-certs.sh"), std::string::npos);
}

TEST_F(CreateErrors, InvalidNumbers) {
  auto options = serverOptions();
  options.threads = 0;
  EXPECT_EQ(createError(options).where, "threads");
  options = serverOptions();
  options.max_body_bytes = 0;
  EXPECT_EQ(createError(options).where, "max_body_bytes");
  options = serverOptions();
  options.max_inflight_body_bytes = options.max_body_bytes - 1;
  EXPECT_EQ(createError(options).where, "max_inflight_body_bytes");
}

TEST(ClientCertModeNames, RoundTrip) {
  for (auto mode : {ClientCertMode::None, ClientCertMode::Optional, ClientCertMode::Required}) {
    EXPECT_EQ(parseClientCertMode(clientCertModeName(mode)), mode);
  }
  EXPECT_EQ(parseClientCertMode("yes"), std::nullopt);
}

}  // namespace
}  // namespace gw::http

namespace gw::http::testing {
namespace {

// What the metrics see (ServerObserver): each failed handshake with a bounded reason, and each
// answered request with its route pattern, never the path.
class RecordingObserver final : public ServerObserver {
 public:
  void requestAnswered(std::string_view method, std::string_view route, unsigned status,
                       std::chrono::steady_clock::duration) override {
    std::lock_guard lock(mutex_);
    requests_.push_back(std::string(method) + " " + std::string(route) + " " + std::to_string(status));
  }
  void handshakeFailed(std::string_view reason) override {
    std::lock_guard lock(mutex_);
    reasons_.emplace_back(reason);
  }
  std::vector<std::string> reasons() const {
    std::lock_guard lock(mutex_);
    return reasons_;
  }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> reasons_, requests_;
};

bool eventually(const std::function<bool()>& condition) {
  for (int i = 0; i < 250; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

TEST(ServerObserverTest, HandshakeFailuresAreCountedByReasonAndRequestsByRoutePattern) {
  auto router = std::make_shared<Router>();
  router->add("GET", "/v1/records/{record_id}", [](Request&, Respond respond) { respond(jsonResponse(200, "{}")); });
  auto observer = std::make_shared<RecordingObserver>();
  auto options = serverOptions(ClientCertMode::Required);
  options.observer = observer;
  auto server = startServer(std::move(options), router);
  ASSERT_TRUE(server);
  EXPECT_TRUE(rejected(server->port(), clientOptions("")));
  EXPECT_TRUE(rejected(server->port(), clientOptions("expired-client")));
  ASSERT_TRUE(eventually([&] { return observer->reasons().size() >= 2; }));
  EXPECT_THAT(observer->reasons(), ::testing::UnorderedElementsAre("no_client_certificate", "client_certificate_rejected"));

  auto r = test::tlsRequest(server->port(), clientOptions("client"), "GET", "/v1/records/c1:pt:A12345");
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(eventually([&] { return !observer->requests().empty(); }));
  EXPECT_EQ(observer->requests().front(), "GET /v1/records/{record_id} 200") << "the pattern, not the path";
}

}  // namespace
}  // namespace gw::http::testing

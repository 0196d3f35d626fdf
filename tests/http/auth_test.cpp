#include "http/auth.hpp"

#include <gtest/gtest.h>

#include "http/server_fixture.hpp"

namespace gw::http {
namespace {

using testing::LogCapture;

Request withAuthorization(std::string value) {
  Request r;
  r.request_id = "test";
  if (!value.empty()) r.headers.emplace_back("Authorization", std::move(value));
  return r;
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  AuthenticatorTest()
      : auth_({
            {"clinic-c1", hashToken("tok-c1"), {Role::Ingest}, {"c1"}},
            {"ops", hashToken("tok.ops-2~/+"), {Role::Engineer, Role::Compliance}, {}},
            // A misconfigured entry without a hash must never match anything.
            {"broken", "", {Role::Ingest}, {"*"}},
        }) {}

  Authenticator auth_;
};

TEST(HashToken, IsSha256Hex) {
  EXPECT_EQ(hashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Roles, RoundTripNames) {
  for (Role role : {Role::Ingest, Role::Engineer, Role::Compliance, Role::Admin}) {
    EXPECT_EQ(parseRole(roleName(role)), role);
  }
  EXPECT_EQ(parseRole("Admin"), std::nullopt);
  EXPECT_EQ(parseRole(""), std::nullopt);
}

TEST_F(AuthenticatorTest, MissingHeaderIs401) {
  auto result = auth_.authenticate(withAuthorization(""));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(httpStatusFor(result.error().code), 401);
}

TEST_F(AuthenticatorTest, MalformedHeaderIs401) {
  for (const char* value : {"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer  tok-c1", "Bearer tok c1",
                            "Bearer \"tok-c1\"", "Bearertok-c1", "Bearer tok-c1=x", "Bearer ="}) {
    auto result = auth_.authenticate(withAuthorization(value));
    ASSERT_FALSE(result) << value;
    EXPECT_EQ(result.error().code, ErrorCode::Unauthenticated) << value;
  }
}

TEST_F(AuthenticatorTest, UnknownTokenIs401AndErrorDoesNotEchoIt) {
  auto result = auth_.authenticate(withAuthorization("Bearer not-a-known-token"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(result.error().describe().find("not-a-known-token"), std::string::npos);
}

TEST_F(AuthenticatorTest, KnownTokenYieldsPrincipal) {
  auto result = auth_.authenticate(withAuthorization("Bearer tok-c1"));
  ASSERT_TRUE(result) << result.error().describe();
  EXPECT_EQ(result.value().token_id, "clinic-c1");
  EXPECT_TRUE(result.value().has(Role::Ingest));
  EXPECT_FALSE(result.value().has(Role::Admin));
}

TEST_F(AuthenticatorTest, SchemeIsCaseInsensitiveAndTokenCharsetIsRfc6750) {
  EXPECT_TRUE(auth_.authenticate(withAuthorization("bearer tok-c1")));
  EXPECT_TRUE(auth_.authenticate(withAuthorization("BEARER tok-c1")));
  auto ops = auth_.authenticate(withAuthorization("Bearer tok.ops-2~/+"));
  ASSERT_TRUE(ops);
  EXPECT_EQ(ops.value().token_id, "ops");
}

TEST_F(AuthenticatorTest, HashesAreComparedCaseInsensitively) {
  std::string upper = hashToken("tok-upper");
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Authenticator auth({{"upper", upper, {Role::Admin}, {}}});
  auto result = auth.authenticate(withAuthorization("Bearer tok-upper"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value().token_id, "upper");
}

TEST_F(AuthenticatorTest, EmptyHashNeverMatches) {
  // The "broken" entry above has an empty hash: no token may match it.
  EXPECT_FALSE(auth_.authenticate(withAuthorization("Bearer x")));
}

TEST_F(AuthenticatorTest, RequireRoleIs403WhenMissing) {
  auto principal = auth_.authenticate(withAuthorization("Bearer tok-c1")).value();
  EXPECT_TRUE(auth_.require(principal, Role::Ingest));
  auto denied = auth_.require(principal, Role::Compliance);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, ErrorCode::Forbidden);
  EXPECT_EQ(httpStatusFor(denied.error().code), 403);

  auto ops = auth_.authenticate(withAuthorization("Bearer tok.ops-2~/+")).value();
  EXPECT_TRUE(auth_.require(ops, Role::Compliance));
  EXPECT_FALSE(auth_.require(ops, Role::Ingest));
}

TEST(Principal, AdminDoesNotImplyOtherRoles) {
  Principal admin{"a", {Role::Admin}, {}};
  EXPECT_TRUE(admin.has(Role::Admin));
  EXPECT_FALSE(admin.has(Role::Compliance));
  EXPECT_FALSE(admin.has(Role::Ingest));
}

TEST_F(AuthenticatorTest, ClinicBinding) {
  auto c1 = auth_.authenticate(withAuthorization("Bearer tok-c1")).value();
  EXPECT_TRUE(c1.mayActForClinic("c1"));
  EXPECT_FALSE(c1.mayActForClinic("c2"));
  EXPECT_FALSE(c1.mayActForClinic(""));
  EXPECT_FALSE(c1.mayActForClinic("c11"));
  EXPECT_TRUE(auth_.requireClinic(c1, "c1"));
  auto denied = auth_.requireClinic(c1, "c2");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, ErrorCode::Forbidden);

  Principal any{"bulk", {Role::Ingest}, {"*"}};
  EXPECT_TRUE(any.mayActForClinic("c2"));
  EXPECT_FALSE(any.mayActForClinic(""));

  auto ops = auth_.authenticate(withAuthorization("Bearer tok.ops-2~/+")).value();
  EXPECT_FALSE(ops.mayActForClinic("c1"));  // no clinics configured: none
}

// Certificate-bound tokens (RFC 8705 in spirit): a token entry naming client certificates works
// only over a connection whose verified certificate is one of them.
Request withClient(std::string authorization, ClientIdentity client) {
  Request r = withAuthorization(std::move(authorization));
  r.client = std::move(client);
  return r;
}

ClientIdentity identity(std::string subject, std::string fingerprint, bool verified = true) {
  return ClientIdentity{verified, std::move(subject), "", std::move(fingerprint)};
}

const std::string kFingerprintC1(64, 'a');
const std::string kFingerprintC2(64, 'b');

class BoundTokenTest : public ::testing::Test {
 protected:
  BoundTokenTest()
      : auth_({
            {"by-subject", hashToken("tok-subject"), {Role::Ingest}, {"c1"}, {"subject:CN=clinic-c1,O=Example"}},
            // Written as openssl prints it (upper case, colons): normalized when loaded.
            {"by-fingerprint", hashToken("tok-fp"), {Role::Ingest}, {"c1"}, {"sha256:" + upperWithColons(kFingerprintC1)}},
            {"unbound", hashToken("tok-free"), {Role::Ingest}, {"c1"}},
        }) {}

  static std::string upperWithColons(const std::string& hex) {
    std::string out;
    for (std::size_t i = 0; i < hex.size(); ++i) {
      if (i > 0 && i % 2 == 0) out += ':';
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i])));
    }
    return out;
  }

  Authenticator auth_;
};

TEST_F(BoundTokenTest, SubjectBindingAdmitsOnlyThatSubject) {
  EXPECT_TRUE(auth_.authenticate(withClient("Bearer tok-subject", identity("CN=clinic-c1,O=Example", kFingerprintC1))));
  auto other = auth_.authenticate(withClient("Bearer tok-subject", identity("CN=clinic-c2,O=Example", kFingerprintC2)));
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(other.error().where, "client certificate");
  EXPECT_NE(other.error().message.find("not one of them"), std::string::npos) << other.error().describe();
  EXPECT_NE(other.error().hint.find("client_certs"), std::string::npos) << other.error().describe();
}

TEST_F(BoundTokenTest, FingerprintBindingAdmitsOnlyThatCertificate) {
  EXPECT_TRUE(auth_.authenticate(withClient("Bearer tok-fp", identity("CN=whoever", kFingerprintC1))));
  EXPECT_FALSE(auth_.authenticate(withClient("Bearer tok-fp", identity("CN=whoever", kFingerprintC2))));
}

TEST_F(BoundTokenTest, BoundTokenWithoutCertificateIsRefused) {
  LogCapture logs;
  auto none = auth_.authenticate(withClient("Bearer tok-subject", ClientIdentity{}));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::Unauthenticated);
  EXPECT_NE(none.error().message.find("presented none"), std::string::npos) << none.error().describe();
  EXPECT_EQ(logs.find({"auth_failed", "reason=no_client_certificate", "token=by-subject", "client_sha256=-"}).size(), 1u)
      << logs.all();
  EXPECT_EQ(logs.all().find("tok-subject"), std::string::npos) << "the token itself is never logged";
}

TEST_F(BoundTokenTest, UnverifiedCertificateDoesNotSatisfyABinding) {
  // With the right subject and fingerprint, but not chained to the client CA: proves nothing.
  EXPECT_FALSE(
      auth_.authenticate(withClient("Bearer tok-subject", identity("CN=clinic-c1,O=Example", kFingerprintC1, false))));
  EXPECT_FALSE(auth_.authenticate(withClient("Bearer tok-fp", identity("CN=clinic-c1,O=Example", kFingerprintC1, false))));
}

TEST_F(BoundTokenTest, UnboundTokenWorksWithAnyOrNoCertificate) {
  EXPECT_TRUE(auth_.authenticate(withClient("Bearer tok-free", identity("CN=clinic-c2,O=Example", kFingerprintC2))));
  EXPECT_TRUE(auth_.authenticate(withClient("Bearer tok-free", ClientIdentity{})));
}

// The same over real TLS with the development PKI: clinic-c1's token with clinic-c2's
// certificate is refused, with clinic-c1's certificate admitted, in both binding forms.
class BoundTokenOverTlsTest : public ::testing::Test {
 protected:
  void start(ClientCertMode mode = ClientCertMode::Required) {
    auth_ = std::make_unique<Authenticator>(std::vector<TokenEntry>{
        {"clinic-c1",
         hashToken("dev-ingest-c1"),
         {Role::Ingest},
         {"c1"},
         {"subject:CN=clinic-c1,O=fhir-gateway development"}},
        {"clinic-c1-fp",
         hashToken("dev-ingest-c1-fp"),
         {Role::Ingest},
         {"c1"},
         {"sha256:" + test::devCertFingerprint("client")}},
        {"clinic-c2",
         hashToken("dev-ingest-c2"),
         {Role::Ingest},
         {"c2"},
         {"subject:CN=clinic-c2,O=fhir-gateway development", "sha256:" + test::devCertFingerprint("client-c2")}},
    });
    auto router = std::make_shared<Router>();
    router->add("POST", "/v1/records", [this](Request& request, Respond respond) {
      auto principal = auth_->authenticate(request);
      if (!principal) return respond(errorResponse(principal.error()));
      request.token_id = principal.value().token_id;
      respond(jsonResponse(202, "{\"as\":\"" + principal.value().token_id + "\"}"));
    });
    server_ = testing::startServer(testing::serverOptions(mode), router);
    ASSERT_NE(server_, nullptr);
  }
  test::HttpResponse post(std::string_view cert, const std::string& token) {
    return test::tlsRequest(server_->port(), testing::clientOptions(cert), "POST", "/v1/records", "{}",
                            {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
  }

  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Server> server_;
};

TEST_F(BoundTokenOverTlsTest, ClinicC1TokenWithClinicC2CertificateIsRefused) {
  LogCapture logs;
  start();
  auto stolen = post("client-c2", "dev-ingest-c1");
  ASSERT_FALSE(stolen.error) << stolen.error.message();
  EXPECT_EQ(stolen.status, 401) << stolen.body;
  EXPECT_NE(stolen.body.find("bound to client certificates"), std::string::npos) << stolen.body;
  EXPECT_FALSE(stolen.header("WWW-Authenticate").empty());
  EXPECT_TRUE(logs.waitFor({"auth_failed", "reason=certificate_not_bound", "token=clinic-c1",
                            "client_sha256=" + test::devCertFingerprint("client-c2")}))
      << logs.all();
  EXPECT_EQ(post("client-c2", "dev-ingest-c1-fp").status, 401);
  EXPECT_EQ(post("client", "dev-ingest-c2").status, 401);
  EXPECT_EQ(logs.all().find("dev-ingest"), std::string::npos) << "tokens are never logged: " << logs.all();
}

TEST_F(BoundTokenOverTlsTest, ClinicC1TokenWithClinicC1CertificateIsAdmittedInBothForms) {
  start();
  auto by_subject = post("client", "dev-ingest-c1");
  EXPECT_EQ(by_subject.status, 202) << by_subject.body;
  EXPECT_EQ(by_subject.body, R"({"as":"clinic-c1"})");
  auto by_fingerprint = post("client", "dev-ingest-c1-fp");
  EXPECT_EQ(by_fingerprint.status, 202) << by_fingerprint.body;
  EXPECT_EQ(post("client-c2", "dev-ingest-c2").status, 202);
}

TEST_F(BoundTokenOverTlsTest, BoundTokenWithoutCertificateIsRefusedInOptionalMode) {
  start(ClientCertMode::Optional);
  auto anonymous = post("", "dev-ingest-c1");
  ASSERT_FALSE(anonymous.error) << anonymous.error.message();
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  EXPECT_NE(anonymous.body.find("presented none"), std::string::npos) << anonymous.body;
  EXPECT_EQ(post("client", "dev-ingest-c1").status, 202);
}

}  // namespace
}  // namespace gw::http

#include "http/auth.hpp"

#include <gtest/gtest.h>

namespace gw::http {
namespace {

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

}  // namespace
}  // namespace gw::http

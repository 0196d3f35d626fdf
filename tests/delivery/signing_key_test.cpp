// JWT signing checked the other way: the openssl command line, which knows nothing of JOSE,
// verifies what the gateway signed, over keys it made itself.
#include "delivery/signing_key.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/scratch_dir.hpp"
#include "support/test_json.hpp"

namespace gw::delivery {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string base64urlDecode(std::string text) {
  for (char& c : text) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
  }
  while (text.size() % 4 != 0) text += '=';
  std::string out(text.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  EXPECT_GE(n, 0);
  std::size_t pad = 0;
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

void writeBytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

int run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

// The key `openssl genpkey` made, mode 0600.
fs::path opensslKey(const test::ScratchDir& dir, const std::string& name, const std::string& genpkey_args) {
  const fs::path file = dir.path() / name;
  EXPECT_EQ(run("openssl genpkey " + genpkey_args + " -out '" + file.string() + "'"), 0);
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  return file;
}

// Verifies a compact JWS with `openssl dgst -sha384 -verify` and the public key `openssl pkey`
// derives from the private key file. ES384's r || s goes back to DER first, as openssl wants.
bool opensslVerifies(const test::ScratchDir& dir, const fs::path& private_key, const std::string& jwt, JwsAlg alg) {
  const auto dot1 = jwt.find('.');
  const auto dot2 = jwt.rfind('.');
  std::string signature = base64urlDecode(jwt.substr(dot2 + 1));
  if (alg == JwsAlg::ES384) {
    EXPECT_EQ(signature.size(), 96u) << "ES384 signatures are r || s, 48 bytes each";
    ECDSA_SIG* sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()), 48, nullptr),
                   BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()) + 48, 48, nullptr));
    unsigned char* der = nullptr;
    const int length = i2d_ECDSA_SIG(sig, &der);
    signature.assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
  }
  writeBytes(dir.path() / "input", jwt.substr(0, dot2));
  writeBytes(dir.path() / "sig", signature);
  EXPECT_NE(dot1, dot2);
  const std::string pub = (dir.path() / "pub.pem").string();
  EXPECT_EQ(run("openssl pkey -in '" + private_key.string() + "' -pubout -out '" + pub + "'"), 0);
  return run("openssl dgst -sha384 -verify '" + pub + "' -signature '" + (dir.path() / "sig").string() + "' '" +
             (dir.path() / "input").string() + "'") == 0;
}

rapidjson::Document part(const std::string& jwt, int index) {
  const auto dot1 = jwt.find('.');
  const auto dot2 = jwt.rfind('.');
  const std::string piece = index == 0 ? jwt.substr(0, dot1) : jwt.substr(dot1 + 1, dot2 - dot1 - 1);
  return test::parseJson(base64urlDecode(piece));
}

TEST(SigningKeyTest, Rs384SignatureVerifiesWithOpenssl) {
  test::ScratchDir dir;
  const auto file = opensslKey(dir, "rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
  auto key = SigningKey::load(file, JwsAlg::RS384, "k-rsa", "partners.p.auth.private_key_file");
  ASSERT_TRUE(key) << key.error().describe();
  auto jwt = clientAssertion(key.value(), "gw-client", "https://ehr.example.org/token", fromUnixMillis(1'800'000'000'000));
  ASSERT_TRUE(jwt);
  EXPECT_TRUE(opensslVerifies(dir, file, jwt.value(), JwsAlg::RS384));
  auto tampered = jwt.value();
  tampered[tampered.find('.') + 5] ^= 1;
  EXPECT_FALSE(opensslVerifies(dir, file, tampered, JwsAlg::RS384));

  const auto header = part(jwt.value(), 0);
  EXPECT_STREQ(header["alg"].GetString(), "RS384");
  EXPECT_STREQ(header["kid"].GetString(), "k-rsa");
  EXPECT_STREQ(header["typ"].GetString(), "JWT");
}

TEST(SigningKeyTest, Es384SignatureIsRConcatSAndVerifiesWithOpenssl) {
  test::ScratchDir dir;
  const auto file = opensslKey(dir, "ec.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-384");
  auto key = SigningKey::load(file, JwsAlg::ES384, "k-ec", "x");
  ASSERT_TRUE(key) << key.error().describe();
  for (int i = 0; i < 5; ++i) {  // r or s with a leading zero byte must still be 48 bytes
    auto jwt = key.value().signJwt(R"({"n":)" + std::to_string(i) + "}");
    ASSERT_TRUE(jwt);
    EXPECT_TRUE(opensslVerifies(dir, file, jwt.value(), JwsAlg::ES384));
  }
}

TEST(SigningKeyTest, AssertionClaimsFollowSmartBackendServices) {
  auto key = SigningKey::generate(JwsAlg::ES384);
  ASSERT_TRUE(key);
  const auto now = fromUnixMillis(1'800'000'000'000);
  auto a = clientAssertion(key.value(), "gw-client", "https://ehr.example.org/token", now);
  auto b = clientAssertion(key.value(), "gw-client", "https://ehr.example.org/token", now);
  ASSERT_TRUE(a && b);
  const auto claims = part(a.value(), 1);
  EXPECT_STREQ(claims["iss"].GetString(), "gw-client");
  EXPECT_STREQ(claims["sub"].GetString(), "gw-client");
  EXPECT_STREQ(claims["aud"].GetString(), "https://ehr.example.org/token");
  EXPECT_EQ(claims["iat"].GetInt64(), 1'800'000'000);
  EXPECT_GT(claims["exp"].GetInt64(), claims["iat"].GetInt64());
  EXPECT_LE(claims["exp"].GetInt64() - claims["iat"].GetInt64(), 300) << "exp at most five minutes ahead";
  EXPECT_NE(std::string(claims["jti"].GetString()), std::string(part(b.value(), 1)["jti"].GetString()));
}

TEST(SigningKeyTest, JwkHoldsThePublicKeyOnly) {
  test::ScratchDir dir;
  const auto file = opensslKey(dir, "rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
  auto rsa = SigningKey::load(file, JwsAlg::RS384, "k1", "x");
  auto ec = SigningKey::generate(JwsAlg::ES384);
  ASSERT_TRUE(rsa && ec);
  const auto jwks = test::parseJson(jwksJson({rsa.value(), ec.value()}));
  ASSERT_EQ(jwks["keys"].Size(), 2u);
  const auto& r = jwks["keys"][0];
  EXPECT_STREQ(r["kty"].GetString(), "RSA");
  EXPECT_STREQ(r["kid"].GetString(), "k1");
  EXPECT_STREQ(r["alg"].GetString(), "RS384");
  EXPECT_STREQ(r["use"].GetString(), "sig");
  EXPECT_STREQ(r["e"].GetString(), "AQAB");
  EXPECT_EQ(base64urlDecode(r["n"].GetString()).size(), 256u);
  const auto& e = jwks["keys"][1];
  EXPECT_STREQ(e["kty"].GetString(), "EC");
  EXPECT_STREQ(e["crv"].GetString(), "P-384");
  EXPECT_EQ(base64urlDecode(e["x"].GetString()).size(), 48u);
  EXPECT_EQ(base64urlDecode(e["y"].GetString()).size(), 48u);
  EXPECT_EQ(std::string(e["kid"].GetString()), ec.value().thumbprint());
  for (const auto* private_member : {"d", "p", "q", "dp", "dq", "qi"}) {
    EXPECT_FALSE(r.HasMember(private_member)) << private_member;
    EXPECT_FALSE(e.HasMember(private_member)) << private_member;
  }
}

TEST(SigningKeyTest, ThumbprintIsTheRfc7638DigestOfTheRequiredMembers) {
  test::ScratchDir dir;
  const auto file = opensslKey(dir, "rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
  auto key = SigningKey::load(file, JwsAlg::RS384, "k1", "x");
  ASSERT_TRUE(key);
  // Recompute from the published JWK with the openssl command line.
  const auto jwk = test::parseJson(key.value().publicJwk());
  const std::string canonical = std::string(R"({"e":")") + jwk["e"].GetString() + R"(","kty":"RSA","n":")" +
                                jwk["n"].GetString() + R"("})";
  writeBytes(dir.path() / "canonical", canonical);
  const std::string out = (dir.path() / "digest").string();
  ASSERT_EQ(run("openssl dgst -sha256 -binary -out '" + out + "' '" + (dir.path() / "canonical").string() + "'"), 0);
  std::ifstream in(out, std::ios::binary);
  const std::string digest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(key.value().thumbprint(), base64url(digest));
}

TEST(SigningKeyTest, RefusesKeysThatDoNotFitTheAlgorithmOrAreReadableByOthers) {
  test::ScratchDir dir;
  const auto ec = opensslKey(dir, "ec.pem", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256");
  auto wrong_curve = SigningKey::load(ec, JwsAlg::ES384, "k", "partners.p.auth.private_key_file");
  ASSERT_FALSE(wrong_curve);
  EXPECT_THAT(wrong_curve.error().message, HasSubstr("P-384"));
  auto not_rsa = SigningKey::load(ec, JwsAlg::RS384, "k", "x");
  ASSERT_FALSE(not_rsa);
  EXPECT_THAT(not_rsa.error().message, HasSubstr("not an RSA key"));
  const auto small = opensslKey(dir, "small.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024");
  auto too_small = SigningKey::load(small, JwsAlg::RS384, "k", "x");
  ASSERT_FALSE(too_small);
  EXPECT_THAT(too_small.error().message, HasSubstr("at least 2048"));

  const auto rsa = opensslKey(dir, "rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
  fs::permissions(rsa, fs::perms::group_read, fs::perm_options::add);
  auto readable = SigningKey::load(rsa, JwsAlg::RS384, "k", "partners.p.auth.private_key_file");
  ASSERT_FALSE(readable);
  EXPECT_THAT(readable.error().hint, HasSubstr("chmod 600"));

  dir.write("junk.pem", "not a key");
  fs::permissions(dir.path() / "junk.pem", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  auto junk = SigningKey::load(dir.path() / "junk.pem", JwsAlg::RS384, "k", "x");
  ASSERT_FALSE(junk);
  EXPECT_THAT(junk.error().message, HasSubstr("no readable PEM private key"));
}

TEST(SigningKeyTest, GeneratedKeyRoundTripsThroughPem) {
  test::ScratchDir dir;
  for (auto alg : {JwsAlg::RS384, JwsAlg::ES384}) {
    auto key = SigningKey::generate(alg);
    ASSERT_TRUE(key);
    auto pem = key.value().privatePem();
    ASSERT_TRUE(pem);
    dir.write("k.pem", pem.value());
    fs::permissions(dir.path() / "k.pem", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
    auto loaded = SigningKey::load(dir.path() / "k.pem", alg, key.value().kid(), "x");
    ASSERT_TRUE(loaded) << loaded.error().describe();
    EXPECT_EQ(loaded.value().publicJwk(), key.value().publicJwk());
    auto jwt = loaded.value().signJwt("{}");
    ASSERT_TRUE(jwt);
    EXPECT_TRUE(opensslVerifies(dir, dir.path() / "k.pem", jwt.value(), alg));
  }
}

}  // namespace
}  // namespace gw::delivery

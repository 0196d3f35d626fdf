#include "config/insecure_settings.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/ids.hpp"
#include "config/gateway_config.hpp"
#include "support/scratch_dir.hpp"

namespace gw::config {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A production config: its own token bound to its clinic's certificate, mutual TLS, loopback.
std::string productionConfig(std::string_view token_sha256 = ids::sha256Hex("a-token-nobody-published"),
                             std::string_view master_key_file = "keys/master.key") {
  return R"({
  "server": {"tls": {"cert_file": "tls/s.crt", "key_file": "tls/s.key", "client_ca_file": "tls/ca.crt"}},
  "auth": {"tokens": [{"id": "t1", "sha256": ")" +
         std::string(token_sha256) + R"(", "roles": ["ingest"], "clinics": ["c1"],
                       "client_certs": ["subject:CN=clinic-c1,O=Example"]}]},
  "storage": {"sqlite_path": "gw.db"},
  "mapping": {"format_dir": "m", "profiles_dir": "p"},
  "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.example/"}],
  "partners": [],
  "privacy": {"master_key_file": ")" +
         std::string(master_key_file) + R"("}
})";
}

std::string development(std::string text) { return text.replace(text.find('{'), 1, R"({"deployment": "development",)"); }

LoadResult load(const std::string& text, const fs::path& base = "/etc/gw") { return loadText(text, base, "gw.json", false); }

std::string allErrors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.describe() + "\n";
  return out;
}

std::vector<std::string> keysOf(const std::vector<InsecureSetting>& settings) {
  std::vector<std::string> keys;
  for (const auto& s : settings) keys.push_back(s.key);
  return keys;
}

TEST(DevelopmentMaterial, EveryPublishedTokenIsKnownByItsDigest) {
  for (const char* token : {"dev-ingest-c1", "dev-ingest-c2", "dev-engineer", "dev-compliance", "dev-admin"}) {
    EXPECT_TRUE(isPublishedDevelopmentToken(ids::sha256Hex(token))) << token;
  }
  EXPECT_FALSE(isPublishedDevelopmentToken(ids::sha256Hex("dev-admin ")));
}

TEST(DevelopmentMaterial, APublishedTokenIsRefusedInProductionNamingTheTokenAndTheWayOut) {
  auto r = load(productionConfig(ids::sha256Hex("dev-admin")));
  ASSERT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u) << allErrors(r);
  EXPECT_THAT(r.errors[0].where, HasSubstr("auth.tokens[0].sha256"));
  EXPECT_THAT(r.errors[0].message, HasSubstr("token 't1' is a published development token"));
  EXPECT_THAT(r.errors[0].hint, HasSubstr("hash-token"));
  EXPECT_THAT(r.errors[0].hint, HasSubstr("\"deployment\": \"development\""));
}

TEST(DevelopmentMaterial, TheDevelopmentMasterKeyIsRefusedInProductionByNameAndByItsFolder) {
  auto by_name = load(productionConfig(ids::sha256Hex("x"), "certs/out/dev-master.key"));
  ASSERT_FALSE(by_name.config);
  EXPECT_THAT(allErrors(by_name), HasSubstr("privacy.master_key_file: the master key is the development key"));

  test::ScratchDir dir;
  fs::create_directories(dir.path() / "pki");
  dir.write("pki/" + std::string(kDevelopmentMarkerFile), "throw-away\n");
  auto by_folder = load(productionConfig(ids::sha256Hex("x"), "pki/any-name.key"), dir.path());
  ASSERT_FALSE(by_folder.config);
  EXPECT_THAT(allErrors(by_folder), HasSubstr("the master key is the development key"));
  EXPECT_TRUE(load(productionConfig(ids::sha256Hex("x"), "keys/master.key"), dir.path()).config)
      << "a key outside the development folder is fine";
}

TEST(DevelopmentMaterial, ADevelopmentDeploymentAcceptsThemAndSaysSoInWarnings) {
  auto r = load(development(productionConfig(ids::sha256Hex("dev-ingest-c1"), "dev-master.key")));
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_TRUE(r.config->development);
  const auto warnings = insecureSettings(*r.config);
  EXPECT_THAT(keysOf(warnings), ::testing::IsSupersetOf({"deployment", "auth.tokens", "privacy.master_key_file"}));
  for (const auto& w : warnings) EXPECT_THAT(w.problem, Not(HasSubstr("dev-ingest-c1"))) << "never the token text";
}

TEST(InsecureSettings, AProductionConfigHasNone) {
  auto r = load(productionConfig());
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_FALSE(r.config->development);
  EXPECT_THAT(insecureSettings(*r.config), IsEmpty());
}

TEST(InsecureSettings, OptionalOrNoClientCertificatesAndAWildcardBindAreEachNamed) {
  std::string text = productionConfig();
  text.replace(text.find(R"("tls": {)"), 8, R"("address": "0.0.0.0", "tls": {"client_cert": "optional", )");
  auto r = load(text);
  ASSERT_TRUE(r.config) << allErrors(r);
  const auto warnings = insecureSettings(*r.config);
  EXPECT_THAT(keysOf(warnings), ::testing::UnorderedElementsAre("server.tls.client_cert", "server.address"));

  r.config->server.tls.client_cert = ClientCertMode::None;
  r.config->server.address = "::";
  EXPECT_THAT(insecureSettings(*r.config)[0].problem, HasSubstr("not asked for"));
  EXPECT_THAT(keysOf(insecureSettings(*r.config)), ::testing::Contains("server.address"));
}

TEST(InsecureSettings, AConsoleOnEveryInterfaceIsNamed) {
  auto r = load(productionConfig());
  ASSERT_TRUE(r.config) << allErrors(r);
  r.config->console.directory = "/usr/share/fhir-gateway/console";
  r.config->console.address = "127.0.0.1";
  EXPECT_THAT(keysOf(insecureSettings(*r.config)), ::testing::Not(::testing::Contains("console.listen.address")));
  r.config->console.address = "0.0.0.0";
  EXPECT_THAT(keysOf(insecureSettings(*r.config)), ::testing::Contains("console.listen.address"));
}

TEST(InsecureSettings, ATokenNotBoundToClientCertificatesIsNamed) {
  std::string text = productionConfig();
  text.replace(text.find(R"(,
                       "client_certs": ["subject:CN=clinic-c1,O=Example"])"),
               std::string_view(R"(,
                       "client_certs": ["subject:CN=clinic-c1,O=Example"])")
                   .size(),
               "");
  auto r = load(text);
  ASSERT_TRUE(r.config) << allErrors(r);
  const auto warnings = insecureSettings(*r.config);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].key, "auth.tokens");
  EXPECT_THAT(warnings[0].problem, HasSubstr("token 't1' is not bound to client certificates (client_certs)"));

  // Without client certificates at all, that one warning says it for every token.
  r.config->server.tls.client_cert = ClientCertMode::None;
  EXPECT_THAT(keysOf(insecureSettings(*r.config)), ::testing::ElementsAre("server.tls.client_cert"));
}

TEST(InsecureSettings, TheDevelopmentPkiIsNamedByItsMarker) {
  test::ScratchDir dir;
  fs::create_directories(dir.path() / "tls");
  dir.write("tls/" + std::string(kDevelopmentMarkerFile), "throw-away\n");
  auto r = load(productionConfig(), dir.path());
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_THAT(keysOf(insecureSettings(*r.config)), ::testing::ElementsAre("server.tls"));
}

TEST(InsecureSettings, TheDeploymentKeyAcceptsOnlyItsTwoValues) {
  std::string text = productionConfig();
  text.replace(text.find('{'), 1, R"({"deployment": "staging",)");
  auto r = load(text);
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("deployment: 'staging' is not allowed (allowed: production, development)"));
}

}  // namespace
}  // namespace gw::config

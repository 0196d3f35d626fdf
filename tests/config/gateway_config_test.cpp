#include "config/gateway_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

namespace gw::config {
namespace {

using ::testing::HasSubstr;

const std::string kRepo = GW_REPO_DIR;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr std::string_view kMinimal = R"({
  "server": {"tls": {"cert_file": "s.crt", "key_file": "s.key", "client_cert": "none"}},
  "auth": {"tokens": [{"id": "t1", "sha256": "16fe3168dfc75472f79c00f62f719efaa73e9881e57cca363e1d0f945b24d372",
                       "roles": ["ingest"], "clinics": ["c1"]}]},
  "storage": {"sqlite_path": "gw.db"},
  "mapping": {"format_dir": "m", "profiles_dir": "p"},
  "clinics": [{"id": "c1", "identifier_system_base": "https://ids.example/"}],
  "partners": []
})";

LoadResult load(std::string_view text) { return loadText(text, "/etc/gw", "gw.json", false); }

std::string allErrors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.describe() + "\n";
  return out;
}

TEST(GatewayConfig, MinimalConfigGetsDefaults) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->server.port, 8443);
  EXPECT_EQ(r.config->server.address, "127.0.0.1");
  EXPECT_EQ(r.config->server.tls.cert_file, "/etc/gw/s.crt") << "relative paths resolve against the config folder";
  EXPECT_EQ(r.config->server.tls.client_cert, ClientCertMode::None);
  EXPECT_TRUE(r.config->storage.synchronous_full);
}

TEST(GatewayConfig, UnknownKeyNamesKeyPathPositionAndAllowedKeys) {
  std::string text(kMinimal);
  text.replace(text.find("\"storage\": {"), 12, "\"storage\": {\"sqlite_pth\": 1, ");
  auto r = load(text);
  ASSERT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u) << allErrors(r);
  EXPECT_EQ(r.errors[0].where, "gw.json:5:15 storage.sqlite_pth");  // where the key starts
  EXPECT_THAT(r.errors[0].message, HasSubstr("unknown key 'sqlite_pth'"));
  EXPECT_THAT(r.errors[0].hint, HasSubstr("sqlite_path"));
}

TEST(GatewayConfig, EnumErrorListsAllowedValues) {
  std::string text(kMinimal);
  text.replace(text.find("\"none\""), 6, "\"requird\"");
  auto r = load(text);
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("server.tls.client_cert: 'requird' is not allowed (allowed: required, optional, none)"));
}

TEST(GatewayConfig, ReportsEveryProblemAtOnce) {
  std::string text(kMinimal);
  text.replace(text.find("\"partners\": []"), 14,
               R"("partners": [{"id": "p1", "fhir_base_url": "http://x", "ca_file": "ca.crt", "clinics": ["c9"]}])");
  text.replace(text.find("\"roles\": [\"ingest\"]"), 19, R"("roles": ["superuser"])");
  auto r = load(text);
  ASSERT_FALSE(r.config);
  const auto errors = allErrors(r);
  EXPECT_THAT(errors, HasSubstr("auth.tokens[0].roles[0]: 'superuser' is not a role"));
  EXPECT_THAT(errors, HasSubstr("partners[0].fhir_base_url: partners are reached over TLS only"));
  EXPECT_THAT(errors, HasSubstr("partners[0].clinics[0]: clinic 'c9' is not configured"));
}

TEST(GatewayConfig, RejectsPlainTokenInsteadOfHash) {
  std::string text(kMinimal);
  text.replace(text.find("16fe3168"), 64, "my-secret-token");
  auto r = load(text);
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("auth.tokens[0].sha256: expected 64 lowercase hex characters"));
  EXPECT_THAT(allErrors(r), Not(HasSubstr("my-secret-token"))) << "a misplaced secret is not echoed back";
}

TEST(GatewayConfig, SyntaxErrorHasLineAndColumn) {
  auto r = load("{\n  \"server\": {,\n}");
  ASSERT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].where, "gw.json:2:14");  // the stray comma
}

TEST(GatewayConfig, MissingFilesAreReportedWhenChecked) {
  auto r = loadText(kMinimal, "/nonexistent-dir", "gw.json", true);
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("server.tls.cert_file: file or folder '/nonexistent-dir/s.crt' does not exist"));
}

TEST(GatewayConfig, RedactedDumpHasNoTokenHashesAndReadsBack) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.config);
  const auto dump = redactedJson(*r.config);
  EXPECT_THAT(dump, Not(HasSubstr("16fe3168")));
  EXPECT_THAT(dump, HasSubstr("<redacted>"));
  // Apart from the redacted hash, the dump is a config with every default spelled out.
  std::string again = dump;
  again.replace(again.find("<redacted>"), 10, "16fe3168dfc75472f79c00f62f719efaa73e9881e57cca363e1d0f945b24d372");
  auto reread = load(again);
  ASSERT_TRUE(reread.config) << allErrors(reread);
  EXPECT_EQ(redactedJson(*reread.config), dump);
  EXPECT_THAT(dump, HasSubstr("\"idle_timeout_ms\": 60000"));
}

// The shipped example must load, and must mention every key the loader accepts, so that the
// documentation cannot fall behind the code.
TEST(GatewayConfigExample, LoadsAndDocumentsEveryKey) {
  const std::string path = kRepo + "/gateway/config/gateway.example.jsonc";
  auto r = loadText(readFile(path), kRepo + "/gateway/config", path, false);
  ASSERT_TRUE(r.config) << allErrors(r);
  const std::string example = readFile(path);
  const std::string source = readFile(kRepo + "/gateway/src/config/gateway_config.cpp");
  // Every quoted key in a checkKeys({...}) list of the loader.
  std::regex list_re(R"(checkKeys\([^{]*\{([^}]*)\})");
  std::regex key_re("\"([a-z_0-9]+)\"");
  int keys = 0;
  for (auto it = std::sregex_iterator(source.begin(), source.end(), list_re); it != std::sregex_iterator(); ++it) {
    const std::string list = (*it)[1];
    for (auto k = std::sregex_iterator(list.begin(), list.end(), key_re); k != std::sregex_iterator(); ++k) {
      ++keys;
      EXPECT_THAT(example, HasSubstr("\"" + (*k)[1].str() + "\"")) << "key missing from the example config";
    }
  }
  EXPECT_GT(keys, 30);
}

}  // namespace
}  // namespace gw::config

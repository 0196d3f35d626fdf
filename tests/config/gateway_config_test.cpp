#include "config/gateway_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <tuple>
#include <vector>

#include "common/ids.hpp"
#include "support/test_files.hpp"

namespace gw::config {
namespace {

using ::testing::HasSubstr;

const std::string kRepo = GW_REPO_DIR;

using gw::test::readFile;

constexpr std::string_view kMinimal = R"({
  "server": {"tls": {"cert_file": "s.crt", "key_file": "s.key", "client_cert": "none"}},
  "auth": {"tokens": [{"id": "t1", "sha256": "ae693067d75b6dce2b75276a441f553f12419956556b39ab8895876202b0916f",
                       "roles": ["ingest"], "clinics": ["c1"]}]},
  "storage": {"sqlite_path": "gw.db"},
  "mapping": {"format_dir": "m", "profiles_dir": "p"},
  "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.example/"}],
  "partners": [],
  "privacy": {"master_key_file": "master.key"}
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

TEST(GatewayConfig, ClinicTimeZoneIsRequiredAndCheckedAtLoad) {
  auto ok = load(kMinimal);
  ASSERT_TRUE(ok.config) << allErrors(ok);
  ASSERT_NE(ok.config->clinics[0].zone, nullptr);
  EXPECT_EQ(ok.config->clinics[0].zone->name(), "America/New_York");

  std::string typo(kMinimal);
  typo.replace(typo.find("America/New_York"), 16, "America/New_Yrok");
  auto r = load(typo);
  ASSERT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u) << allErrors(r);
  EXPECT_EQ(r.errors[0].where, "gw.json:7:28 clinics[0].time_zone");
  EXPECT_NE(r.errors[0].message.find("America/New_Yrok"), std::string::npos) << r.errors[0].describe();
  EXPECT_NE(r.errors[0].hint.find("America/New_York"), std::string::npos) << r.errors[0].describe();

  std::string fixed(kMinimal);
  fixed.replace(fixed.find("America/New_York"), 16, "-05:00");
  r = load(fixed);
  ASSERT_FALSE(r.config);
  EXPECT_NE(allErrors(r).find("daylight saving"), std::string::npos) << allErrors(r);

  std::string missing(kMinimal);
  missing.erase(missing.find("\"time_zone\": \"America/New_York\", "), 32);
  r = load(missing);
  ASSERT_FALSE(r.config);
  EXPECT_NE(allErrors(r).find("clinics[0].time_zone"), std::string::npos) << allErrors(r);
  EXPECT_NE(allErrors(r).find("missing required key 'time_zone'"), std::string::npos) << allErrors(r);
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
  EXPECT_THAT(allErrors(r),
              HasSubstr("server.tls.client_cert: 'requird' is not allowed (allowed: required, optional, none)"));
}

TEST(GatewayConfig, ProgramSettingIsOneOfTheShippedCodes) {
  std::string text(kMinimal);
  const std::string clinic = R"("identifier_system_base": "https://ids.example/")";
  text.replace(text.find(clinic), clinic.size(),
               clinic + R"(, "programs": [{"id": "dc", "part2": true, "setting": "court-mandated"}, {"id": "pc"}])");
  auto r = load(text);
  ASSERT_TRUE(r.config) << allErrors(r);
  ASSERT_EQ(r.config->clinics[0].programs.size(), 2u);
  EXPECT_EQ(r.config->clinics[0].programs[0].setting, "court-mandated");
  EXPECT_EQ(r.config->clinics[0].programs[1].setting, "") << "no setting unless stated";
  EXPECT_THAT(redactedJson(*r.config), HasSubstr(R"("setting": "court-mandated")"));

  text.replace(text.find("court-mandated"), 14, "court_mandated");
  r = load(text);
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("clinics[0].programs[0].setting: 'court_mandated' is not allowed (allowed: "
                                      "outpatient, intensive-outpatient, residential, court-mandated)"));

  // The loader's list is the shipped CodeSystem's.
  const std::string codes = readFile(kRepo + "/fhir-profiles/CodeSystem/program-setting.json");
  for (const char* setting : kProgramSettings) EXPECT_THAT(codes, HasSubstr("\"code\": \"" + std::string(setting) + "\""));
  EXPECT_THAT(codes, HasSubstr("\"count\": " + std::to_string(std::size(kProgramSettings))));
}

TEST(GatewayConfig, ReportsEveryProblemAtOnce) {
  std::string text(kMinimal);
  text.replace(
      text.find("\"partners\": []"), 14,
      R"("partners": [{"id": "p1", "fhir_base_url": "http://x", "ca_file": "ca.crt", "purpose_of_use": "MARKETING"}])");
  text.replace(text.find("\"roles\": [\"ingest\"]"), 19, R"("roles": ["superuser"])");
  auto r = load(text);
  ASSERT_FALSE(r.config);
  const auto errors = allErrors(r);
  EXPECT_THAT(errors, HasSubstr("auth.tokens[0].roles[0]: 'superuser' is not a role"));
  EXPECT_THAT(errors, HasSubstr("partners[0].fhir_base_url: partners are reached over TLS only"));
  EXPECT_THAT(errors, HasSubstr("partners[0].purpose_of_use: 'MARKETING' is not allowed (allowed: TREAT, HPAYMT, HOPERAT)"));
}

TEST(GatewayConfig, RejectsPlainTokenInsteadOfHash) {
  std::string text(kMinimal);
  text.replace(text.find("ae693067"), 64, "my-secret-token");
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

TEST(GatewayConfig, AKeyTwiceIsRefusedWithItsPathAndPosition) {
  auto r = load("{\n  \"logging\": {},\n  \"logging\": {}\n}");
  ASSERT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].code, ErrorCode::Config);
  EXPECT_EQ(r.errors[0].where, "gw.json:3:3");
  EXPECT_THAT(r.errors[0].message, HasSubstr("$.logging"));
  auto nul = load(std::string("{}\n") + '\0' + "{\"server\": 1}");
  ASSERT_FALSE(nul.config);
  EXPECT_EQ(nul.errors[0].where, "gw.json:2:1");
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
  EXPECT_THAT(dump, Not(HasSubstr("ae693067")));
  EXPECT_THAT(dump, HasSubstr("<redacted>"));
  // Apart from the redacted hash, the dump is a config with every default spelled out.
  std::string again = dump;
  again.replace(again.find("<redacted>"), 10, "ae693067d75b6dce2b75276a441f553f12419956556b39ab8895876202b0916f");
  auto reread = load(again);
  ASSERT_TRUE(reread.config) << allErrors(reread);
  EXPECT_EQ(redactedJson(*reread.config), dump);
  EXPECT_THAT(dump, HasSubstr("\"idle_timeout_ms\": 60000"));
  EXPECT_THAT(dump, HasSubstr("\"master_key_file\": \"/etc/gw/master.key\""));
  EXPECT_THAT(dump, HasSubstr("\"sud\": 0"));
}

// Certificate-bound tokens and the client CRL (server.tls.client_crl_file).
std::string withClientCerts(std::string_view certs_json, std::string_view client_cert = "required") {
  std::string text(kMinimal);
  text.replace(text.find(R"("client_cert": "none")"), 21,
               R"("client_ca_file": "ca.crt", "client_crl_file": "crl.pem", "client_cert": ")" + std::string(client_cert) +
                   "\"");
  text.replace(text.find(R"("clinics": ["c1"]})"), 18,
               R"("clinics": ["c1"], "client_certs": )" + std::string(certs_json) + "}");
  return text;
}

TEST(GatewayConfigTokens, ClientCertsAreReadAndNormalized) {
  const std::string hex = "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12";
  std::string colons;
  for (std::size_t i = 0; i < hex.size(); i += 2) colons += (colons.empty() ? "" : ":") + hex.substr(i, 2);
  for (char& c : colons) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto r = load(withClientCerts(R"(["sha256:)" + colons + R"(", "subject:CN=clinic-c1,O=Example Clinic"])"));
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->tokens[0].client_certs,
            (std::vector<std::string>{"sha256:" + hex, "subject:CN=clinic-c1,O=Example Clinic"}));
  EXPECT_EQ(r.config->server.tls.client_crl_file, "/etc/gw/crl.pem");
  // The dump shows bindings and the CRL path (not secrets) and reads back the same.
  const auto dump = redactedJson(*r.config);
  EXPECT_THAT(dump, HasSubstr("\"client_crl_file\": \"/etc/gw/crl.pem\""));
  EXPECT_THAT(dump, HasSubstr("\"sha256:" + hex + "\""));
  std::string again = dump;
  again.replace(again.find("<redacted>"), 10, "ae693067d75b6dce2b75276a441f553f12419956556b39ab8895876202b0916f");
  auto reread = load(again);
  ASSERT_TRUE(reread.config) << allErrors(reread);
  EXPECT_EQ(redactedJson(*reread.config), dump);
}

TEST(GatewayConfigTokens, MalformedClientCertsAreRefusedWithHowToWriteThem) {
  auto r = load(withClientCerts(
      R"(["sha256:1234", "subject:/O=Example/CN=clinic-c1", "subject:CN=clinic-c1, O=Example", "CN=clinic-c1", 7])"));
  ASSERT_FALSE(r.config);
  const std::string errors = allErrors(r);
  EXPECT_THAT(errors, HasSubstr("auth.tokens[0].client_certs[0]: a SHA-256 fingerprint has 64 hex digits"));
  EXPECT_THAT(errors, HasSubstr("auth.tokens[0].client_certs[1]: the subject is not in RFC 2253 form"));
  EXPECT_THAT(errors, HasSubstr("auth.tokens[0].client_certs[2]: the subject is not in RFC 2253 form"));
  EXPECT_THAT(errors, HasSubstr("auth.tokens[0].client_certs[3]: expected \"sha256:<fingerprint>\""));
  EXPECT_THAT(errors, HasSubstr("auth.tokens[0].client_certs[4]: expected a string"));
  EXPECT_THAT(errors, HasSubstr("-nameopt RFC2253"));
  EXPECT_EQ(r.errors.size(), 5u) << errors;

  auto empty = load(withClientCerts("[]"));
  ASSERT_FALSE(empty.config);
  EXPECT_THAT(allErrors(empty), HasSubstr("auth.tokens[0].client_certs: an empty list would make the token unusable"));
}

TEST(GatewayConfigTokens, BindingsAndCrlNeedClientCertificates) {
  auto r = load(withClientCerts(R"(["subject:CN=clinic-c1"])", "none"));
  ASSERT_FALSE(r.config);
  const std::string errors = allErrors(r);
  EXPECT_THAT(errors, HasSubstr("auth.tokens[0].client_certs: the token is bound to client certificates, but "
                                "server.tls.client_cert is \"none\""));
  EXPECT_THAT(errors,
              HasSubstr("server.tls.client_crl_file: a CRL checks client certificates, but client_cert is \"none\""));
  EXPECT_TRUE(load(withClientCerts(R"(["subject:CN=clinic-c1"])", "optional")).config);
}

TEST(GatewayConfigPrivacy, DefaultsKeepEverythingForever) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->privacy.master_key_file, "/etc/gw/master.key");
  EXPECT_TRUE(r.config->privacy.master_key_env.empty());
  EXPECT_EQ(r.config->privacy.retention_days.general, 0);
  EXPECT_EQ(r.config->privacy.retention_days.sud, 0);
  EXPECT_EQ(r.config->privacy.retention_days.mh, 0);
  EXPECT_EQ(r.config->privacy.purge_interval, std::chrono::minutes(60));
}

TEST(GatewayConfigPrivacy, ReadsRetentionPerClassAndTheEnvironmentSource) {
  std::string text(kMinimal);
  text.replace(text.find(R"("privacy": {"master_key_file": "master.key"})"), 45,
               R"("privacy": {"master_key_env": "GW_MASTER_KEY", "retention_days": {"general": 30, "sud": 2555, "mh": 0},
                  "purge_interval_minutes": 15})");
  auto r = load(text);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->privacy.master_key_env, "GW_MASTER_KEY");
  EXPECT_TRUE(r.config->privacy.master_key_file.empty());
  EXPECT_EQ(r.config->privacy.retention_days.general, 30);
  EXPECT_EQ(r.config->privacy.retention_days.sud, 2555);
  EXPECT_EQ(r.config->privacy.retention_days.mh, 0);
  EXPECT_EQ(r.config->privacy.purge_interval, std::chrono::minutes(15));
}

TEST(GatewayConfigPrivacy, ExactlyOneMasterKeySource) {
  const std::string privacy = R"("privacy": {"master_key_file": "master.key"})";
  auto with = [&](const std::string& replacement) {
    std::string text(kMinimal);
    text.replace(text.find(privacy), privacy.size(), replacement);
    return allErrors(load(text));
  };
  EXPECT_THAT(with(R"("privacy": {})"), HasSubstr("privacy: no master key source: set master_key_file or master_key_env"));
  EXPECT_THAT(with(R"("privacy": {"master_key_file": "k", "master_key_env": "GW_MASTER_KEY"})"),
              HasSubstr("master_key_file and master_key_env are both set: set exactly one"));
  EXPECT_THAT(with(R"("privacy": {"master_key_env": "0123456789abcdef"})"),
              HasSubstr("privacy.master_key_env: expected the name of an environment variable"));
  EXPECT_THAT(with(R"("privacy": {"master_key_file": "k", "retention_days": {"sud": -1, "genral": 3}})"),
              HasSubstr("privacy.retention_days.sud: expected an integer from 0 to 36500"));
  EXPECT_THAT(with(R"("privacy": {"master_key_file": "k", "retention_days": {"genral": 3}})"),
              HasSubstr("unknown key 'genral'"));
  std::string text(kMinimal);
  text.replace(text.find(privacy) - 2, privacy.size() + 2, "");  // no privacy section at all
  const auto missing = allErrors(load(text));
  EXPECT_THAT(missing, HasSubstr("missing required section 'privacy'"));
  EXPECT_THAT(missing, HasSubstr("openssl rand -hex 32"));
}

TEST(GatewayConfigPrivacy, LoadsTheMasterKeyFromTheConfiguredSource) {
  const auto dir = std::filesystem::temp_directory_path() / ("gw-config-key-" + ids::randomHex(6));
  std::filesystem::create_directories(dir);
  const auto file = dir / "master.key";
  std::ofstream(file) << std::string(64, 'c') << "\n";
  ::chmod(file.c_str(), 0600);
  Privacy privacy;
  privacy.master_key_file = file;
  auto from_file = loadMasterKey(privacy);
  ASSERT_TRUE(from_file) << from_file.error().describe();
  EXPECT_EQ(from_file.value().id(), crypto::SecretKey::fromBytes(std::string(32, '\xcc')).value().id());
  ::chmod(file.c_str(), 0644);
  auto readable = loadMasterKey(privacy);
  ASSERT_FALSE(readable);
  EXPECT_THAT(readable.error().message, HasSubstr("may be read or changed by other users"));
  std::filesystem::remove_all(dir);

  Privacy env;
  env.master_key_env = "GW_CONFIG_TEST_MASTER_KEY";
  ::setenv(env.master_key_env.c_str(), std::string(64, 'd').c_str(), 1);
  auto from_env = loadMasterKey(env);
  ::unsetenv(env.master_key_env.c_str());
  ASSERT_TRUE(from_env) << from_env.error().describe();
  EXPECT_EQ(from_env.value().id(), crypto::SecretKey::fromBytes(std::string(32, '\xdd')).value().id());
}

TEST(GatewayConfig, BodiesInFlightDefaultFromTheBodyLimitAndCannotBeBelowIt) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->server.max_inflight_body_bytes, 64u * 1024 * 1024);
  std::string large(kMinimal);
  large.replace(large.find("\"server\": {"), 11, "\"server\": {\"max_body_bytes\": 33554432,");
  r = load(large);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->server.max_inflight_body_bytes, 4u * 33554432);
  std::string below(kMinimal);
  below.replace(below.find("\"server\": {"), 11, "\"server\": {\"max_inflight_body_bytes\": 1048576,");
  r = load(below);
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("server.max_inflight_body_bytes: max_inflight_body_bytes (1048576) is less than "
                                      "max_body_bytes (10485760)"));
}

TEST(GatewayConfig, ConnectionLimitsAndTheHandshakeDeadline) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->server.handshake_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(r.config->server.max_connections_per_address, 256u);
  std::string text(kMinimal);
  text.replace(text.find("\"server\": {"), 11,
               "\"server\": {\"handshake_timeout_ms\": 2000, \"max_connections_per_address\": 4096,");
  r = load(text);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->server.handshake_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(r.config->server.max_connections_per_address, 4096u);
  std::string bad(kMinimal);
  bad.replace(bad.find("\"server\": {"), 11,
              "\"server\": {\"handshake_timeout_ms\": 600000, \"max_connections_per_address\": 0,");
  r = load(bad);
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("server.handshake_timeout_ms: expected"));
  EXPECT_THAT(allErrors(r), HasSubstr("server.max_connections_per_address: expected an integer from 1 to 1000000"));
}

TEST(GatewayConfig, MetricsListenIsALoopbackAddressAndPort) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_TRUE(r.config->server.metrics_address.empty()) << "no second listener unless asked";
  for (const auto& [text, address, port] : std::vector<std::tuple<std::string, std::string, int>>{
           {"127.0.0.1:9464", "127.0.0.1", 9464}, {"127.0.0.2:1", "127.0.0.2", 1}, {"[::1]:9464", "::1", 9464}}) {
    std::string config(kMinimal);
    config.replace(config.find("\"server\": {"), 11, "\"server\": {\"metrics_listen\": \"" + text + "\",");
    r = load(config);
    ASSERT_TRUE(r.config) << text << ": " << allErrors(r);
    EXPECT_EQ(r.config->server.metrics_address, address);
    EXPECT_EQ(r.config->server.metrics_port, port);
    EXPECT_THAT(redactedJson(*r.config), HasSubstr("\"metrics_listen\": \"" + text + "\""));
  }
  for (const std::string bad : {"0.0.0.0:9464", "10.1.2.3:9464", "localhost:9464", "127.0.0.1", "127.0.0.1:0",
                                "127.0.0.1:70000", "[::]:9464", "127.0.0.1.5:80"}) {
    std::string config(kMinimal);
    config.replace(config.find("\"server\": {"), 11, "\"server\": {\"metrics_listen\": \"" + bad + "\",");
    r = load(config);
    ASSERT_FALSE(r.config) << bad;
    EXPECT_THAT(allErrors(r), HasSubstr("server.metrics_listen")) << bad;
    EXPECT_THAT(allErrors(r), HasSubstr("not a loopback address")) << bad;
  }
}

TEST(GatewayConfig, LoggingFormatIsTextByDefaultOrJson) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->log_format, log::Format::Text);
  std::string text(kMinimal);
  text.replace(text.rfind('}'), 1, R"(, "logging": {"level": "warn", "format": "json"}})");
  r = load(text);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->log_format, log::Format::Json);
  EXPECT_THAT(redactedJson(*r.config), HasSubstr(R"("format": "json")"));
  std::string bad(kMinimal);
  bad.replace(bad.rfind('}'), 1, R"(, "logging": {"format": "xml"}})");
  r = load(bad);
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("json"));
}

TEST(GatewayConfig, AuditAnchorKeysHaveDefaultsAndTheFileMayNotBeInTheDatabaseFolder) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_TRUE(r.config->audit.anchor.file.empty());
  EXPECT_FALSE(r.config->audit.anchor.syslog);
  EXPECT_FALSE(r.config->audit.anchor.enabled());
  EXPECT_EQ(r.config->audit.anchor.interval, std::chrono::seconds(300));
  EXPECT_EQ(r.config->audit.verify_interval, std::chrono::minutes(60));

  const auto with = [](const std::string& storage, const std::string& audit) {
    std::string text(kMinimal);
    const std::string kStorage = R"("storage": {"sqlite_path": "gw.db"})";
    text.replace(text.find(kStorage), kStorage.size(), storage);
    text.insert(text.rfind('}'), ",\n  \"audit\": " + audit + "\n");
    return load(text);
  };
  r = with(R"("storage": {"sqlite_path": "/var/lib/gw/gw.db"})",
           R"({"anchor": {"file": "anchors/a.log", "syslog": true, "interval_seconds": 60}})");
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->audit.anchor.file, "/etc/gw/anchors/a.log");
  EXPECT_TRUE(r.config->audit.anchor.syslog);
  EXPECT_EQ(r.config->audit.anchor.interval, std::chrono::seconds(60));
  EXPECT_THAT(redactedJson(*r.config), HasSubstr("\"interval_seconds\": 60"));

  for (const char* inside : {"/var/lib/gw/anchors.log", "/var/lib/gw/sub/anchors.log", "/var/lib/x/../gw/a.log"}) {
    r = with(R"("storage": {"sqlite_path": "/var/lib/gw/gw.db"})",
             std::string(R"({"anchor": {"file": ")") + inside + "\"}}");
    ASSERT_FALSE(r.config) << inside;
    EXPECT_THAT(allErrors(r), HasSubstr("audit.anchor.file: '")) << inside;
    EXPECT_THAT(allErrors(r), HasSubstr("is inside the database folder")) << inside;
    EXPECT_THAT(allErrors(r), HasSubstr("chattr +a"));
  }
  r = with(R"("storage": {"sqlite_path": "gw.db"})", R"({"anchor": {"file": "audit-anchors.log"}})");
  EXPECT_FALSE(r.config) << "beside a database in the config folder is inside its folder too";
  r = with(R"("storage": {"sqlite_path": "/var/lib/gw/gw.db"})", R"({"anchor": {"file": "/var/lib/gw2/a.log"}})");
  EXPECT_TRUE(r.config) << "a sibling folder whose name starts alike is elsewhere: " << allErrors(r);
  r = with(R"("storage": {"sqlite_path": "/var/lib/gw/gw.db"})", R"({"anchor": {"interval_seconds": 0, "sink": 1}})");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("interval_seconds: expected an integer from 1 to 86400"));
  EXPECT_THAT(allErrors(r), HasSubstr("unknown key 'sink'"));

  r = with(R"("storage": {"sqlite_path": "gw.db"})", R"({"verify_interval_minutes": 0})");
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->audit.verify_interval.count(), 0) << "0: only when asked";
  EXPECT_THAT(redactedJson(*r.config), HasSubstr("\"verify_interval_minutes\": 0"));
  r = with(R"("storage": {"sqlite_path": "gw.db"})", R"({"verify_interval_minutes": 20000})");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("verify_interval_minutes: expected an integer from 0 to 10080"));

  // How far back an accounting of disclosures goes (42 CFR 2.24): 3 years unless set, 1-10.
  r = with(R"("storage": {"sqlite_path": "/var/lib/gw/gw.db"})", R"({"accounting_years": 6})");
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->audit.accounting_years, 6);
  EXPECT_THAT(redactedJson(*r.config), HasSubstr("\"accounting_years\": 6"));
  r = with(R"("storage": {"sqlite_path": "/var/lib/gw/gw.db"})", R"({})");
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->audit.accounting_years, 3);
  r = with(R"("storage": {"sqlite_path": "/var/lib/gw/gw.db"})", R"({"accounting_years": 0})");
  ASSERT_FALSE(r.config);
  EXPECT_THAT(allErrors(r), HasSubstr("accounting_years: expected an integer from 1 to 10"));
}

std::string withPartner(std::string_view partner, std::string_view extra_top_level = "") {
  std::string text(kMinimal);
  text.replace(text.find("\"partners\": []"), 14,
               "\"partners\": [{\"id\": \"ehr\", \"fhir_base_url\": \"https://ehr.example.org/fhir/R4\", "
               "\"ca_file\": \"ca.crt\", " +
                   std::string(partner) + "}]" + std::string(extra_top_level));
  return text;
}

TEST(GatewayConfigPartnerAuth, SmartBackendIsRead) {
  auto r = load(withPartner(R"("auth": {"type": "smart-backend", "client_id": "gw-1", "scope": "system/Patient.u",
      "private_key_file": "keys/k1.pem", "alg": "ES384", "kid": "k1"})"));
  ASSERT_TRUE(r.config) << allErrors(r);
  const auto& auth = r.config->partners[0].auth;
  EXPECT_EQ(auth.type, "smart-backend");
  EXPECT_TRUE(auth.token_url.empty()) << "no token_url: discovered from the SMART configuration";
  EXPECT_EQ(auth.private_key_file, "/etc/gw/keys/k1.pem");
  EXPECT_EQ(auth.alg, "ES384");
  EXPECT_EQ(auth.kid, "k1");
  EXPECT_THAT(redactedJson(*r.config), HasSubstr(R"("kid": "k1")"));
}

TEST(GatewayConfigPartnerAuth, EachTypeTakesItsOwnKeysAndNamesWhatIsWrong) {
  auto r = load(withPartner(R"("auth": {"type": "smart-backend", "client_id": "gw-1", "scope": "s",
      "private_key_file": "k.pem", "alg": "HS256", "kid": "k 1", "client_secret_env": "X",
      "token_url": "http://ehr.example.org/token"})"));
  ASSERT_FALSE(r.config);
  const auto errors = allErrors(r);
  EXPECT_THAT(errors, HasSubstr("partners[0].auth.alg: 'HS256' is not allowed"));
  EXPECT_THAT(errors, HasSubstr("partners[0].auth.kid: a kid may hold"));
  EXPECT_THAT(errors, HasSubstr("partners[0].auth.client_secret_env: unknown key"));
  EXPECT_THAT(errors, HasSubstr("partners[0].auth.token_url: the token endpoint is reached over TLS only"));
  EXPECT_THAT(errors, HasSubstr("gw.json:")) << "errors carry file:line:column";

  r = load(withPartner(R"("auth": {"type": "password", "client_id": "a", "scope": "s"})"));
  EXPECT_THAT(allErrors(r), HasSubstr("'password' is not allowed"));
  r = load(withPartner(R"("auth": {"type": "smart-backend", "scope": "s"})"));
  EXPECT_THAT(allErrors(r), HasSubstr("partners[0].auth.client_id: missing required key"));
  EXPECT_THAT(allErrors(r), HasSubstr("partners[0].auth.private_key_file: missing required key"));
  r = load(withPartner(R"("bearer_token_env": "T", "auth": {"type": "client-credentials", "client_id": "a",
      "scope": "s", "client_secret_env": "S"})"));
  EXPECT_THAT(allErrors(r), HasSubstr("either a static token (bearer_token_env) or an OAuth token source"));
}

TEST(GatewayConfigPartnerAuth, ClientCredentialsTakeTheSecretFromExactlyOneSourceNeverTheConfig) {
  auto r = load(withPartner(R"("auth": {"type": "client-credentials", "client_id": "a", "scope": "s",
      "client_secret_env": "EHR_SECRET", "client_auth_method": "client_secret_post"})"));
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->partners[0].auth.client_auth_method, "client_secret_post");
  r = load(withPartner(R"("auth": {"type": "client-credentials", "client_id": "a", "scope": "s"})"));
  EXPECT_THAT(allErrors(r), HasSubstr("exactly one of client_secret_file and client_secret_env"));
  r = load(withPartner(R"("auth": {"type": "client-credentials", "client_id": "a", "scope": "s",
      "client_secret": "hunter2"})"));
  EXPECT_THAT(allErrors(r), HasSubstr("unknown key 'client_secret'"));
  r = load(withPartner(R"("auth": {"type": "client-credentials", "client_id": "a", "scope": "s",
      "client_secret_env": "S", "client_auth_method": "private_key_jwt"})"));
  EXPECT_THAT(allErrors(r), HasSubstr("allowed: client_secret_basic, client_secret_post"));
}

TEST(GatewayConfigPartnerAuth, SecretAndKeyFilesReadableByOthersAreRefused) {
  const auto dir = std::filesystem::temp_directory_path() / ("gw-auth-" + ids::randomHex(6));
  std::filesystem::create_directories(dir);
  for (const char* name : {"secret.txt", "k.pem"}) {
    std::ofstream(dir / name) << "x";
    std::filesystem::permissions(dir / name, std::filesystem::perms(0644), std::filesystem::perm_options::replace);
  }
  auto r = loadText(withPartner(R"("auth": {"type": "client-credentials", "client_id": "a", "scope": "s",
      "client_secret_file": "secret.txt"})"),
                    dir, "gw.json", true);
  EXPECT_THAT(allErrors(r), HasSubstr("the client secret file may be read or changed by other users (mode 0644)"));
  r = loadText(withPartner(R"("auth": {"type": "smart-backend", "client_id": "a", "scope": "s",
      "private_key_file": "k.pem", "alg": "RS384", "kid": "k1"})"),
               dir, "gw.json", true);
  EXPECT_THAT(allErrors(r), HasSubstr("the signing key file may be read or changed by other users"));
  std::filesystem::remove_all(dir);
}

TEST(GatewayConfigPartnerAuth, SigningKeysForRotation) {
  const std::string partner = R"("auth": {"type": "smart-backend", "client_id": "a", "scope": "s",
      "private_key_file": "k2.pem", "alg": "RS384", "kid": "k2"})";
  auto r = load(withPartner(partner, R"(, "signing_keys": [{"kid": "k1", "alg": "RS384", "private_key_file": "k1.pem",
      "status": "retired"}, {"kid": "k2", "alg": "RS384", "private_key_file": "k2.pem"}])"));
  ASSERT_TRUE(r.config) << allErrors(r);
  ASSERT_EQ(r.config->signing_keys.size(), 2u);
  EXPECT_TRUE(r.config->signing_keys[0].retired);
  EXPECT_FALSE(r.config->signing_keys[1].retired);

  r = load(withPartner(partner, R"(, "signing_keys": [{"kid": "k2", "alg": "RS384", "private_key_file": "k2.pem",
      "status": "retired"}])"));
  EXPECT_THAT(allErrors(r), HasSubstr("signing_keys[0].status: key 'k2' is retired but partner 'ehr' still signs with it"));
  r = load(withPartner(partner, R"(, "signing_keys": [{"kid": "k2", "alg": "RS384", "private_key_file": "other.pem"}])"));
  EXPECT_THAT(allErrors(r), HasSubstr("kid 'k2' already names another key file"));
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

namespace gw::config {
namespace {

TEST(GatewayConfigProxy, APartnersOwnProxyOrTheGlobalOneOnlyOverHttpConnect) {
  auto r = load(withPartner(R"("proxy_url": "http://127.0.0.1:3128")"));
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->partners[0].proxy_url, "http://127.0.0.1:3128");
  r = load(withPartner(R"("proxy_url": "https://proxy:3128")"));
  EXPECT_THAT(allErrors(r), HasSubstr("must start with http://"));
  r = load(withPartner(R"("proxy_auth_file": "/etc/hostname")"));
  EXPECT_THAT(allErrors(r), HasSubstr("proxy_auth_file needs proxy_url"));
}

}  // namespace
}  // namespace gw::config

namespace gw::config {
namespace {

TEST(GatewayConfigFlowControl, DefaultsAndRangesNamingTheJsonPath) {
  auto r = load(withPartner(R"("name": "EHR")"));
  ASSERT_TRUE(r.config) << allErrors(r);
  const auto& defaults = r.config->partners[0];
  EXPECT_EQ(defaults.max_concurrent_requests, 4);
  EXPECT_EQ(defaults.max_requests_per_second, 0);
  EXPECT_EQ(defaults.circuit_breaker.failure_threshold, 5);
  EXPECT_EQ(defaults.circuit_breaker.open, std::chrono::seconds(30));
  EXPECT_EQ(defaults.circuit_breaker.max_open, std::chrono::seconds(600));

  r = load(withPartner(R"("max_concurrent_requests": 8, "max_requests_per_second": 20,
                          "circuit_breaker": {"failure_threshold": 3, "open_seconds": 10, "max_open_seconds": 60})"));
  ASSERT_TRUE(r.config) << allErrors(r);
  const auto& p = r.config->partners[0];
  EXPECT_EQ(p.max_concurrent_requests, 8);
  EXPECT_EQ(p.max_requests_per_second, 20);
  EXPECT_EQ(p.circuit_breaker.failure_threshold, 3);
  EXPECT_EQ(p.circuit_breaker.open, std::chrono::seconds(10));
  EXPECT_EQ(p.circuit_breaker.max_open, std::chrono::seconds(60));

  r = load(withPartner(R"("max_concurrent_requests": 65)"));
  EXPECT_THAT(allErrors(r), HasSubstr("partners[0].max_concurrent_requests"));
  EXPECT_THAT(allErrors(r), HasSubstr("from 1 to 64"));
  r = load(withPartner(R"("max_concurrent_requests": 0)"));
  EXPECT_THAT(allErrors(r), HasSubstr("partners[0].max_concurrent_requests"));
  r = load(withPartner(R"("max_requests_per_second": -1)"));
  EXPECT_THAT(allErrors(r), HasSubstr("partners[0].max_requests_per_second"));
  r = load(withPartner(R"("circuit_breaker": {"failure_threshold": 0})"));
  EXPECT_THAT(allErrors(r), HasSubstr("partners[0].circuit_breaker.failure_threshold"));
  r = load(withPartner(R"("circuit_breaker": {"open_seconds": 60, "max_open_seconds": 30})"));
  EXPECT_THAT(allErrors(r), HasSubstr("partners[0].circuit_breaker.max_open_seconds"));
  r = load(withPartner(R"("circuit_breaker": {"open_secs": 60})"));
  EXPECT_THAT(allErrors(r), HasSubstr("open_secs"));
}

}  // namespace
}  // namespace gw::config

namespace gw::config {
namespace {

std::string withConsole(std::string_view console) {
  std::string text(kMinimal);
  text.replace(text.rfind('}'), 1, ", \"console\": " + std::string(console) + "}");
  return text;
}

TEST(GatewayConfig, ConsoleIsOffByDefaultAndHasItsOwnTlsListenerAndSessionTimeouts) {
  auto r = load(kMinimal);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_FALSE(r.config->console.enabled());
  EXPECT_THAT(redactedJson(*r.config), ::testing::Not(HasSubstr("\"console\"")));

  r = load(withConsole(R"({"directory": "console", "listen": {"tls": {"cert_file": "c.crt", "key_file": "c.key"}}})"));
  ASSERT_TRUE(r.config) << allErrors(r);
  const auto& console = r.config->console;
  EXPECT_TRUE(console.enabled());
  EXPECT_EQ(console.directory, "/etc/gw/console");
  EXPECT_EQ(console.address, "127.0.0.1");
  EXPECT_EQ(console.port, 8444);
  EXPECT_EQ(console.tls.client_cert, ClientCertMode::None) << "browsers handle client certificates badly";
  EXPECT_EQ(console.session_idle, std::chrono::seconds(900));
  EXPECT_EQ(console.session_absolute, std::chrono::seconds(28800));
  EXPECT_THAT(redactedJson(*r.config), HasSubstr("\"session_idle_timeout_seconds\": 900"));

  r = load(withConsole(R"({"directory": "console", "session_idle_timeout_seconds": 2, "session_absolute_timeout_seconds": 60,
                           "listen": {"address": "10.0.0.5", "port": 9000,
                                      "tls": {"cert_file": "c.crt", "key_file": "c.key", "client_cert": "required",
                                              "client_ca_file": "ca.crt"}}})"));
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(r.config->console.session_idle, std::chrono::seconds(2));
  EXPECT_EQ(r.config->console.tls.client_cert, ClientCertMode::Required);
}

TEST(GatewayConfig, ConsoleMistakesAreNamed) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"directory": "console"})", "console.listen"},
      {R"({"listen": {"tls": {"cert_file": "c.crt", "key_file": "c.key"}}})", "console.directory"},
      {R"({"directory": "console", "listen": {"tls": {"cert_file": "c.crt"}}})", "console.listen.tls.key_file"},
      {R"({"directory": "console", "listen": {"tls": {"cert_file": "c.crt", "key_file": "c.key", "client_cert": "required"}}})",
       "console.listen.tls.client_ca_file"},
      {R"({"directory": "console", "session_idle_timeout_seconds": 900, "session_absolute_timeout_seconds": 60,
           "listen": {"tls": {"cert_file": "c.crt", "key_file": "c.key"}}})",
       "shorter than the idle timeout"},
      {R"({"directory": "console", "listen": {"port": 8443, "tls": {"cert_file": "c.crt", "key_file": "c.key"}}})",
       "main listener's address and port"},
      {R"({"directory": "console", "listen": {"tls": {"cert_file": "c.crt", "key_file": "c.key"}}, "colour": "blue"})",
       "colour"},
  };
  for (const auto& [console, expected] : cases) {
    auto r = load(withConsole(console));
    EXPECT_FALSE(r.config) << console;
    EXPECT_THAT(allErrors(r), HasSubstr(expected)) << console;
  }
}

// storage: exactly one database, the PostgreSQL keys checked at load, the DSN never in the dump.
TEST(GatewayConfigStorage, ExactlyOneDatabaseAndThePostgresKeysAreChecked) {
  const std::string storage = R"("storage": {"sqlite_path": "gw.db"})";
  auto with = [&](const std::string& replacement) {
    std::string text(kMinimal);
    text.replace(text.find(storage), storage.size(), replacement);
    return load(text);
  };
  EXPECT_THAT(allErrors(with(R"("storage": {})")), HasSubstr("no database: set sqlite_path"));
  EXPECT_THAT(allErrors(with(R"("storage": {"sqlite_path": "gw.db", "postgres": {"dsn_env": "GW_DSN",
              "sslmode": "disable"}})")),
              HasSubstr("both sqlite_path and postgres are set"));
  EXPECT_THAT(allErrors(with(R"("storage": {"postgres": {"sslmode": "disable"}})")),
              HasSubstr("no connection string source: set dsn_file or dsn_env"));
  EXPECT_THAT(allErrors(with(R"("storage": {"postgres": {"dsn_env": "host=db password=x", "sslmode": "disable"}})")),
              HasSubstr("storage.postgres.dsn_env: expected the name of an environment variable"));
  EXPECT_THAT(allErrors(with(R"("storage": {"postgres": {"dsn_env": "GW_DSN"}})")),
              HasSubstr("sslmode verify-full checks the server's certificate, but no CA file is given"));
  EXPECT_THAT(allErrors(with(R"("storage": {"postgres": {"dsn_env": "GW_DSN", "sslmode": "prefer"}})")),
              HasSubstr("storage.postgres.sslmode"));
  EXPECT_THAT(allErrors(with(R"("storage": {"postgres": {"dsn_env": "GW_DSN", "sslmode": "disable",
              "sslcert": "c.crt"}})")),
              HasSubstr("sslcert and sslkey go together"));

  auto r = with(R"("storage": {"postgres": {"dsn_env": "GW_DSN", "pool_size": 8, "sslrootcert": "ca.crt"}})");
  ASSERT_TRUE(r.config) << allErrors(r);
  ASSERT_TRUE(r.config->storage.postgres);
  EXPECT_TRUE(r.config->storage.sqlite_path.empty());
  EXPECT_EQ(r.config->storage.postgres->pool_size, 8);
  EXPECT_EQ(r.config->storage.postgres->connect_timeout_seconds, 10);
  EXPECT_EQ(r.config->storage.postgres->sslmode, "verify-full");
  EXPECT_EQ(r.config->storage.postgres->sslrootcert, "/etc/gw/ca.crt");
  const auto dumped = redactedJson(*r.config);
  EXPECT_THAT(dumped, HasSubstr(R"("dsn_env": "GW_DSN")"));
  EXPECT_THAT(dumped, HasSubstr(R"("sslmode": "verify-full")"));
}

TEST(GatewayConfigStorage, InstanceIdIsReadCheckedOrMadeFromHostAndProcess) {
  std::string text(kMinimal);
  text.insert(1, "\n  \"instance_id\": \"gw-east.1\",");
  auto r = load(text);
  ASSERT_TRUE(r.config) << allErrors(r);
  EXPECT_EQ(instanceId(*r.config), "gw-east.1");
  EXPECT_THAT(redactedJson(*r.config), HasSubstr(R"("instance_id": "gw-east.1")"));
  std::string bad(kMinimal);
  bad.insert(1, "\n  \"instance_id\": \"gw east\",");
  EXPECT_THAT(allErrors(load(bad)), HasSubstr("instance_id: expected letters, digits"));
  auto plain = load(kMinimal);
  ASSERT_TRUE(plain.config);
  EXPECT_THAT(instanceId(*plain.config), ::testing::EndsWith("-" + std::to_string(::getpid())));
}

TEST(GatewayConfigStorage, LoadsTheConnectionStringFromAPrivateFileOrTheEnvironment) {
  const auto dir = std::filesystem::temp_directory_path() / ("gw-config-dsn-" + ids::randomHex(6));
  std::filesystem::create_directories(dir);
  PostgresStorage pg;
  pg.dsn_file = dir / "postgres.dsn";
  std::ofstream(pg.dsn_file) << "host=db.example dbname=gw user=gw password=s3cret\n";
  ::chmod(pg.dsn_file.c_str(), 0600);
  auto from_file = loadPostgresDsn(pg);
  ASSERT_TRUE(from_file) << from_file.error().describe();
  EXPECT_EQ(from_file.value(), "host=db.example dbname=gw user=gw password=s3cret");
  ::chmod(pg.dsn_file.c_str(), 0644);
  auto readable = loadPostgresDsn(pg);
  ASSERT_FALSE(readable);
  EXPECT_THAT(readable.error().message, HasSubstr("may be read or changed by other users"));
  EXPECT_THAT(readable.error().describe(), ::testing::Not(HasSubstr("s3cret")));
  std::filesystem::remove_all(dir);

  PostgresStorage env;
  env.dsn_env = "GW_CONFIG_TEST_DSN";
  ::unsetenv(env.dsn_env.c_str());
  auto unset = loadPostgresDsn(env);
  ASSERT_FALSE(unset);
  EXPECT_THAT(unset.error().message, HasSubstr("GW_CONFIG_TEST_DSN is not set"));
  ::setenv(env.dsn_env.c_str(), "dbname=gw", 1);
  auto from_env = loadPostgresDsn(env);
  ::unsetenv(env.dsn_env.c_str());
  ASSERT_TRUE(from_env) << from_env.error().describe();
  EXPECT_EQ(from_env.value(), "dbname=gw");
}

}  // namespace
}  // namespace gw::config

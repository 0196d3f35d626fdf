#pragma once
// The configuration the runtime tests start a Runtime with: development deployment, the dev PKI,
// one clinic (c1, Part 2 program otp), one partner (st-mary) that listens nowhere, a SQLite file
// in the test's folder. What a test needs beyond that it passes in the options.
#include <filesystem>
#include <string>

#include "support/test_pki.hpp"

namespace gw::test {

struct RuntimeTestConfig {
  std::filesystem::path database;  // storage.sqlite_path
  std::string format_dir = std::string(GW_REPO_DIR) + "/mappers/clinic-v1";
  int port = 0;                // server.port
  std::string top_level_keys;  // more keys, JSON text ending in a comma
  std::string partner_keys = R"(, "retry": {"initial_ms": 60000, "max_ms": 60000})";  // more keys of the partner
};

inline std::string runtimeTestConfig(const RuntimeTestConfig& o) {
  const std::string pki = devPkiDir();
  const std::string repo = GW_REPO_DIR;
  return R"({
    "deployment": "development", )" +
         o.top_level_keys + R"(
    "server": {"port": )" +
         std::to_string(o.port) + R"(, "tls": {"cert_file": ")" + pki + R"(/server.crt", "key_file": ")" + pki +
         R"(/server.key", "client_ca_file": ")" + pki + R"(/ca.crt"}},
    "auth": {"tokens": []},
    "storage": {"sqlite_path": ")" +
         o.database.string() + R"("},
    "mapping": {"format_dir": ")" +
         o.format_dir + R"(", "profiles_dir": ")" + repo + R"(/fhir-profiles"},
    "clinics": [{"id": "c1", "identifier_system_base": "https://ids.c1.example.org/", "time_zone": "America/New_York", "programs": [{"id": "otp", "part2": true}]}],
    "partners": [{"id": "st-mary", "name": "St. Mary's Hospital", "fhir_base_url": "https://127.0.0.1:1/fhir/R4", "ca_file": ")" +
         pki + R"(/ca.crt")" + o.partner_keys + R"(}],
    "privacy": {"master_key_env": "GW_RUNTIME_TEST_UNUSED"}
  })";
}

}  // namespace gw::test

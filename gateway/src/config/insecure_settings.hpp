#pragma once
// Settings that are fine on a developer's machine and dangerous anywhere else. The published
// development tokens and the development master key are refused unless the config declares a
// development deployment ("deployment": "development"); the rest start, each with a warning line,
// so an operator reading the start-up log sees every weakness the deployment runs with.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace gw::config {

struct GatewayConfig;

/// A file of this name beside a key or certificate marks the folder as development material
/// (certs/make-dev-certs.sh and the test PKI write it): throw-away keys, never for real data.
inline constexpr std::string_view kDevelopmentMarkerFile = "DEVELOPMENT-ONLY";

/// The SHA-256 (hex, any case) is one of the development tokens whose plain text is published in
/// the README (dev-ingest-c1, dev-engineer, dev-compliance, dev-admin, ...).
bool isPublishedDevelopmentToken(std::string_view sha256_hex);
/// The file lies in a folder marked kDevelopmentMarkerFile, or is named dev-master.key.
bool isDevelopmentFile(const std::filesystem::path& file);

struct InsecureSetting {
  std::string key;      // the config key, e.g. "server.tls.client_cert"
  std::string problem;  // what is weak about it (no secrets, no PHI)
};

/// Every weak setting `config` starts with, for the start-up log and check-config. A production
/// config with none of them gets an empty list.
std::vector<InsecureSetting> insecureSettings(const GatewayConfig& config);

}  // namespace gw::config

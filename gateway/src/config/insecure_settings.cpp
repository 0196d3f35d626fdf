#include "config/insecure_settings.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <system_error>

#include "config/gateway_config.hpp"

namespace gw::config {
namespace {

namespace fs = std::filesystem;

// SHA-256 of each development token whose text is public (README, demo, docker, tests).
constexpr std::array<std::string_view, 5> kPublishedTokenDigests = {
    "16fe3168dfc75472f79c00f62f719efaa73e9881e57cca363e1d0f945b24d372",  // dev-ingest-c1
    "78d4cc765c65221439c57f5a3fd3cd2ac2faead1f747cc793514c1795872e3d8",  // dev-ingest-c2
    "072aeefbbcadedf5862c1c118fee074556b9c8d496817a6d9b5a370cadc560e2",  // dev-engineer
    "8ca17ac4a03ec98104dea63e6883110b4fefb792703b2e80e914823a346e5c35",  // dev-compliance
    "de72d648e29b247c1875138a7140256dbe5df3e6c9f37d592b07d9de509d2878",  // dev-admin
};

bool isWildcardAddress(std::string_view address) {
  return address == "0.0.0.0" || address == "::" || address == "[::]" || address == "0:0:0:0:0:0:0:0";
}

}  // namespace

bool isPublishedDevelopmentToken(std::string_view sha256_hex) {
  std::string lower(sha256_hex);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return std::find(kPublishedTokenDigests.begin(), kPublishedTokenDigests.end(), lower) != kPublishedTokenDigests.end();
}

bool isDevelopmentFile(const fs::path& file) {
  if (file.empty()) return false;
  if (file.filename() == "dev-master.key") return true;
  std::error_code ec;
  return fs::exists(file.parent_path() / kDevelopmentMarkerFile, ec);
}

std::vector<InsecureSetting> insecureSettings(const GatewayConfig& c) {
  std::vector<InsecureSetting> found;
  if (c.development) {
    found.push_back({"deployment", "this is a development deployment: published development tokens and keys are accepted"});
  }
  for (const auto& token : c.tokens) {
    if (isPublishedDevelopmentToken(token.sha256)) {
      found.push_back({"auth.tokens", "token '" + token.id + "' is a published development token"});
    }
  }
  if (isDevelopmentFile(c.privacy.master_key_file)) {
    found.push_back({"privacy.master_key_file", "the master key is the development key"});
  }
  if (const auto& pg = c.storage.postgres; pg && (pg->sslmode == "disable" || pg->sslmode == "require")) {
    found.push_back({"storage.postgres.sslmode",
                     pg->sslmode == "disable" ? "the database connection is not encrypted (sslmode disable)"
                                              : "the database server's certificate is not checked (sslmode require)"});
  }
  const auto& tls = c.server.tls;
  if (isDevelopmentFile(tls.cert_file) || isDevelopmentFile(tls.key_file) || isDevelopmentFile(tls.client_ca_file)) {
    found.push_back({"server.tls", "the server certificate or client CA comes from the development PKI"});
  }
  if (tls.client_cert != ClientCertMode::None) {
    // An unbound token works with any certificate of the client CA (any clinic's), so the token
    // alone decides who is calling; binding it makes a stolen token useless without the key.
    for (const auto& token : c.tokens) {
      if (token.client_certs.empty()) {
        found.push_back({"auth.tokens", "token '" + token.id +
                                            "' is not bound to client certificates (client_certs): any certificate of "
                                            "the client CA will do"});
      }
    }
  }
  if (tls.client_cert == ClientCertMode::None) {
    found.push_back({"server.tls.client_cert", "client certificates are not asked for: any host that has a token may call"});
  } else if (tls.client_cert == ClientCertMode::Optional) {
    found.push_back({"server.tls.client_cert", "client certificates are optional: a request without one is served"});
  }
  if (isWildcardAddress(c.server.address)) {
    found.push_back({"server.address", "listening on every interface (" + c.server.address + ")"});
  }
  // The console's sign-in takes a bare token and its client certificates are usually off: it
  // belongs on an internal interface (README "Compliance console").
  if (c.console.enabled() && isWildcardAddress(c.console.address)) {
    found.push_back({"console.listen.address", "the compliance console listens on every interface (" + c.console.address +
                                                   "); bind it to an internal interface"});
  }
  return found;
}

}  // namespace gw::config

#pragma once
// `fhir-gateway keys new-signing-key` and `fhir-gateway keys jwks`: the gateway's SMART Backend
// Services signing keys, made and published (docs/architecture.md §5.2).
#include <filesystem>
#include <string>

#include "config/gateway_config.hpp"
#include "delivery/signing_key.hpp"

namespace gw::app {

/// Makes a key pair for `alg` and writes the private key to `out` as PEM, created with mode 0600
/// (an existing file is never overwritten). `kid` empty: the key's RFC 7638 thumbprint.
Result<delivery::SigningKey> newSigningKey(delivery::JwsAlg alg, const std::filesystem::path& out, std::string kid);

/// The JWKS the configured gateway publishes at GET /.well-known/jwks.json.
Result<std::string> configuredJwks(const config::GatewayConfig& config);

}  // namespace gw::app

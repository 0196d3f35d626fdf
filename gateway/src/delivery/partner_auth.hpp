#pragma once
// partners[].auth and signing_keys[] of the config turned into what delivery and the JWKS use.
#include <memory>
#include <vector>

#include "common/clock.hpp"
#include "config/gateway_config.hpp"
#include "delivery/credential_source.hpp"
#include "delivery/fhir_client.hpp"
#include "delivery/signing_key.hpp"

namespace gw::delivery {

/// The OAuth token source of a partner whose auth is set (reads its signing key or client secret
/// now, so a missing or unfit one stops the start). `endpoint` gives the TLS settings the token
/// endpoint is reached with. `clock` nullptr: the system clock.
Result<std::unique_ptr<CredentialSource>> oauthCredentialsFor(const config::Partner& partner,
                                                              const PartnerEndpoint& endpoint, const Clock* clock = nullptr);

/// Every key the gateway publishes in its JWKS: the keys partners' auth signs with, then the
/// signing_keys entries (active and retired), each kid once, private halves never exported.
Result<std::vector<SigningKey>> publishedSigningKeys(const config::GatewayConfig& config);

}  // namespace gw::delivery

#pragma once
// OAuth 2.0 client-credentials token sources for partners (the CredentialSource seam):
//  - SMART Backend Services: the client authenticates with a JWT it signs (RFC 7523, private_key_jwt);
//  - plain client credentials: a client secret, HTTP Basic (client_secret_basic) or in the form
//    body (client_secret_post).
// The token request goes out on the partner's worker thread, over the same TLS client stack as
// deliveries (the partner's CA verifies the token endpoint; the client certificate, if any, is
// presented). A token is cached until shortly before it expires, dropped when the partner answers
// 401, and never logged; neither is the assertion or the secret.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "delivery/credential_source.hpp"
#include "delivery/fhir_client.hpp"
#include "delivery/signing_key.hpp"

namespace gw::delivery {

/// A successful token endpoint answer (RFC 6749 §5.1), parsed strictly: outside input.
struct TokenResponse {
  std::string access_token;  // a secret
  std::chrono::seconds expires_in{0};
  std::string scope;  // as granted; may differ from the request
};
/// Fails (ErrorCode::InvalidInput) on anything but a JSON object with a bearer token_type, an
/// access_token a header can carry, and a positive integer expires_in (absent: 300 s assumed).
Result<TokenResponse> parseTokenResponse(std::string_view body);
/// "HTTP 401 invalid_client: <description>" of a refused token request (RFC 6749 §5.2), with
/// the description cut short and stripped of control characters; never the request.
std::string tokenErrorSummary(int status, std::string_view body);

/// The parts of {base}/.well-known/smart-configuration the gateway uses, parsed strictly.
struct SmartConfiguration {
  std::string token_endpoint;                                 // https
  std::vector<std::string> token_endpoint_auth_methods;       // empty: not stated
  std::vector<std::string> token_endpoint_auth_signing_algs;  // empty: not stated
};
Result<SmartConfiguration> parseSmartConfiguration(std::string_view body);

struct OAuthSettings {
  PartnerEndpoint partner;  // id, fhir base URL, ca_file, client certificate, timeouts
  std::string token_url;    // empty: discovered from {partner.base_url}/.well-known/smart-configuration
  std::string client_id;
  std::string scope;
  std::optional<SigningKey> signing_key;  // set: SMART Backend Services; else client credentials
  std::string client_secret;              // client credentials (a secret; wiped when the source goes)
  bool secret_in_body = false;            // client_secret_post instead of client_secret_basic
  const Clock* clock = nullptr;           // nullptr: the system clock
};

/// The token source. A configured token_url is checked now (ErrorCode::Config); discovery and
/// every token request happen on first use, each failure an ErrorCode::Unavailable delivery
/// failure that is retried.
Result<std::unique_ptr<CredentialSource>> oauthTokenSource(OAuthSettings settings);

/// How long before its expiry a cached token is replaced: 30 s, or a fifth of a short lifetime.
std::chrono::seconds tokenRefreshMargin(std::chrono::seconds expires_in);

/// application/x-www-form-urlencoded encoding of one value.
std::string formEncode(std::string_view value);

}  // namespace gw::delivery

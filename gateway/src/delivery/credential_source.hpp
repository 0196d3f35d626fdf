#pragma once
// Where a partner client gets the credential it presents with each request. Static bearer tokens
// and "no credential" (mutual TLS alone) exist today; an OAuth 2.0 source (client credentials,
// SMART Backend Services) plugs in here: it fetches and caches a token, and is told when the
// partner refused one (401) so it can fetch a fresh one once.
// A source need not be thread-safe: a partner's sender threads share one through
// sharedCredentials, which serialises them (so one token request serves them all).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::delivery {

class CredentialSource {
 public:
  virtual ~CredentialSource() = default;

  /// The Authorization header value for the next request ("Bearer <token>"), or nullopt to send
  /// none. An error (the token endpoint is down, say) is a retryable delivery failure.
  /// The value is a secret: never log it nor put it in an error message.
  virtual Result<std::optional<std::string>> authorization() = 0;

  /// The partner answered 401 to a request made with the current credential: the next
  /// authorization() should not return it again (a cached token is dropped). Default: nothing.
  virtual void rejected() {}

  /// Whether a request refused with 401 is worth sending once more right away, with the fresh
  /// credential authorization() then fetches (an OAuth token may have been revoked or expired
  /// early). A static credential would only be refused again.
  virtual bool renewable() const { return false; }

  /// For logs and status: "none", "static-token", ... (never the secret).
  virtual std::string_view kind() const = 0;
};

/// No credential: the partner authenticates the gateway by its client certificate, or not at all.
std::unique_ptr<CredentialSource> noCredential();

/// A fixed bearer token (RFC 6750), e.g. from an environment variable. Fails with
/// ErrorCode::Config when the token holds characters a bearer token may not (CR/LF could split
/// the header); `where` names the config key for that message.
Result<std::unique_ptr<CredentialSource>> staticBearerToken(std::string token, std::string where);

/// `count` views of one source for concurrent senders: calls are serialised under one lock, so a
/// token is fetched once and cached for all, and a 401 drops the cached token only when it is the
/// one the refused request carried (another sender may have renewed it already).
std::vector<std::unique_ptr<CredentialSource>> sharedCredentials(std::unique_ptr<CredentialSource> source,
                                                                 std::size_t count);

}  // namespace gw::delivery

#pragma once
// Outbound HTTPS client for one partner FHIR server. One FhirClient per partner worker thread:
// it is not thread-safe, it blocks the calling thread, and it keeps one keep-alive connection.
// Beast/Asio stay behind a pimpl so users of this header do not compile them.
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "delivery/credential_source.hpp"

namespace gw::delivery {

struct PartnerEndpoint {
  std::string id;                                    // partner id (for logs and error messages)
  std::string base_url;                              // e.g. https://127.0.0.1:9443/fhir/R4 (https only)
  std::string ca_file;                               // CA bundle that verifies the partner (required)
  std::string client_cert_file, client_key_file;     // optional mTLS; both or neither
  std::chrono::milliseconds connect_timeout{5000};   // TCP connect, and again TLS handshake
  std::chrono::milliseconds request_timeout{30000};  // whole request: write + read of the response
  /// An HTTP proxy reached with CONNECT, e.g. http://proxy.hospital.org:3128 (empty: direct). TLS
  /// runs to the partner end to end through the tunnel: the proxy sees only ciphertext.
  std::string proxy_url;
  std::string proxy_auth_file;  // optional "user:password" for Proxy-Authorization Basic; mode 0600
};

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lowercase names; repeated fields joined with ", "
};

/// Largest response body accepted from a partner; larger replies fail with PayloadTooLarge.
inline constexpr std::size_t kMaxResponseBody = 16 * 1024 * 1024;

/// A request other than a Bundle post (the SMART configuration, a token request): no credential
/// from the source is added; `authorization` is sent as given (a secret: never logged).
struct OutgoingRequest {
  std::string method = "GET";  // GET or POST
  std::string path_suffix;     // appended to the base URL's path, e.g. "/.well-known/smart-configuration"
  std::string accept = "application/json";
  std::string content_type;  // with a body
  std::string body;
  std::string authorization;  // "" for none
};

/// One FHIR write other than a Bundle (the per-resource write mode), sent with the partner's
/// credential like a Bundle.
struct FhirWrite {
  std::string method;         // "PUT" (conditional update), "POST" (conditional create) or "DELETE"
  std::string path_suffix;    // appended to the base URL's path, e.g. "/Patient?identifier=sys|val"
  std::string body;           // the resource (none for DELETE)
  std::string if_none_exist;  // POST: the If-None-Exist query, e.g. "identifier=sys|val"
};

class FhirClient {
 public:
  /// Parses base_url and loads the CA, client certificate and key now, so a misconfigured
  /// partner fails at start-up. Errors (ErrorCode::Config) name the partner, the file and the fix.
  /// `credentials` gives each request's Authorization header (none: mutual TLS alone).
  static Result<std::unique_ptr<FhirClient>> create(PartnerEndpoint endpoint,
                                                    std::unique_ptr<CredentialSource> credentials = noCredential());
  ~FhirClient();
  FhirClient(const FhirClient&) = delete;
  FhirClient& operator=(const FhirClient&) = delete;

  /// POST [base] with a transaction Bundle (application/fhir+json).
  /// @return the HTTP response whatever its status; an Error only when no response arrived:
  ///   Unavailable (resolve/connect/handshake/write/read failed, naming the step and, for
  ///   certificate failures, the verify reason), Timeout, or PayloadTooLarge.
  /// When the partner answers 401 and the credential source is renewable(), the source drops the
  /// refused credential and the Bundle is sent once more with a fresh one.
  Result<HttpResult> postBundle(std::string_view bundle_json);

  /// One resource write (per-resource mode), with the credential and the one renewal on 401 of postBundle.
  Result<HttpResult> write(const FhirWrite& write);

  /// GET [base]/metadata (the CapabilityStatement), with the credential as the writes carry it:
  /// some servers protect it like the rest of the API.
  Result<HttpResult> readMetadata();

  /// Any other request to the same server, over the same verified TLS connection(s).
  Result<HttpResult> request(const OutgoingRequest& request);

  const PartnerEndpoint& endpoint() const;
  /// Number of TCP connections opened so far (tests and metrics).
  int connectionsOpened() const;

 private:
  struct Impl;
  explicit FhirClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::delivery

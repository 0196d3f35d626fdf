#pragma once
// Server-side TLS policy (internal to gw_http): protocol floor, cipher list, client-certificate
// verification, and reading the verified client identity off a connection.
#include <boost/asio/ssl/context.hpp>

#include <openssl/ssl.h>

#include <string>

#include "common/error.hpp"
#include "http/request.hpp"
#include "http/server.hpp"

namespace gw::http::detail {

/// TLS 1.2 suites allowed: forward secret (ECDHE) AEAD only. TLS 1.3 suites are all AEAD.
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// TLS 1.2+ server context with the certificates of `options` loaded and the client
/// certificate mode applied. Errors name the file at fault and what to do (ErrorCode::Config).
Result<boost::asio::ssl::context> makeServerTlsContext(const ServerOptions& options);

/// Identity from the peer certificate of an established connection.
ClientIdentity peerIdentity(SSL* ssl);

/// Why certificate verification failed on this connection (e.g. "certificate has expired"),
/// or empty if it did not fail.
std::string verifyFailure(SSL* ssl);

/// Text of the oldest queued OpenSSL error (and clears the queue); empty if none.
std::string takeOpenSslError();

}  // namespace gw::http::detail

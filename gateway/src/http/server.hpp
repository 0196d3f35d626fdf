#pragma once
// Inbound HTTPS server: TLS 1.2/1.3 only, optional or required client certificates, one request
// at a time per connection, every read and write under a deadline. Beast stays behind this
// header (see session.hpp) so modules that only register handlers do not compile it.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "http/router.hpp"

namespace gw::http {

enum class ClientCertMode { None, Optional, Required };

/// "none" | "optional" | "required".
std::optional<ClientCertMode> parseClientCertMode(std::string_view text);
std::string_view clientCertModeName(ClientCertMode mode);

/// Told of each answered request and each failed TLS handshake (metrics). Called on I/O threads:
/// must be quick and must not block. It gets the route pattern ("" when none matched), never the
/// path, which may carry a record id or an MRN.
class ServerObserver {
 public:
  virtual ~ServerObserver() = default;
  virtual void requestAnswered(std::string_view method, std::string_view route, unsigned status,
                               std::chrono::steady_clock::duration took) = 0;
  /// `reason`: a short class (see handshakeFailureReason in session.cpp), never certificate contents.
  virtual void handshakeFailed(std::string_view reason) = 0;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = ephemeral (tests); see Server::port()
  int threads = 2;
  std::string cert_file, key_file;  // server certificate chain + private key (PEM)
  std::string client_ca_file;       // CA bundle that client certificates must chain to
  ClientCertMode client_cert = ClientCertMode::Required;
  // Optional PEM CRLs of the client CAs, loaded at start: a revoked client certificate fails the
  // handshake (X509_V_FLAG_CRL_CHECK: the leaf's issuer must have a CRL in the file).
  std::string client_crl_file;
  std::size_t max_body_bytes = 10 * 1024 * 1024;  // larger -> 413 and close
  // Every request body being received or handled, together. A body is reserved from its
  // Content-Length (a chunked one: max_body_bytes) once its headers are admitted, and released
  // when its response is written; beyond -> 503 with Retry-After and close. At least max_body_bytes.
  std::size_t max_inflight_body_bytes = 64 * 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;  // request line + headers; larger -> 431 and close
  // handshake: from accept to the end of the TLS handshake, kept short so that connections
  // which never finish one cannot hold slots for long.
  // read: the wait for a connection's first request; and each request from its first byte to its
  // last (so a half-sent request cannot hold a connection).
  // write: one response. idle: keep-alive wait for the next request's first byte.
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds read_timeout{30000}, write_timeout{30000}, idle_timeout{60000};
  // Connection limits. When one is reached, a new connection takes the place of the oldest
  // connection that has not proved itself (the oldest that has sent nothing, else the oldest
  // without a verified client certificate or an authenticated request); only when every
  // connection has proved itself is the new one closed at once (and logged). A per-address limit
  // above max_connections is no limit; behind a proxy every client has its address.
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_address = 256;
  std::chrono::milliseconds stop_grace{5000};  // stop(): how long in-flight requests may finish
  std::shared_ptr<ServerObserver> observer;    // optional
  // Set on every response of this listener, after the handler's headers, so no handler (and no
  // 404 or error) can leave them out: the console's Content-Security-Policy and the like.
  std::vector<std::pair<std::string, std::string>> response_headers;
};

namespace detail {
struct Core;
class Listener;
}  // namespace detail

class Server {
 public:
  /// Builds the TLS context and loads certificates. Errors (ErrorCode::Config) name the file
  /// and say what to do.
  static Result<std::unique_ptr<Server>> create(ServerOptions options, std::shared_ptr<const Router> router);
  ~Server();  // stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds, listens and starts `threads` io threads. Fails if the address cannot be bound
  /// (e.g. the port is taken). Call once.
  Status start();
  /// Graceful: stops accepting, closes idle connections, lets in-flight requests answer for up
  /// to stop_grace, then closes everything and joins the io threads. Respond calls that arrive
  /// afterwards are dropped safely. Idempotent; call from one thread, never from a handler.
  void stop();
  /// The bound port (useful with port 0); 0 before start().
  std::uint16_t port() const;

 private:
  explicit Server(std::shared_ptr<detail::Core> core);

  std::shared_ptr<detail::Core> core_;
  std::shared_ptr<detail::Listener> listener_;
  std::uint16_t port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace gw::http

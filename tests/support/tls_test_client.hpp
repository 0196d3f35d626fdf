#pragma once
// A small blocking HTTPS/1.1 client for tests (unit and integration). Each call runs the
// Beast async operation on the client's own io_context under a deadline, so a misbehaving
// server makes a test fail with "timeout" instead of hanging it.
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::test {

struct TlsClientOptions {
  std::string ca_file;                    // verify the server against this CA (empty: no verification)
  std::string cert_file, key_file;        // client certificate (empty: none presented)
  std::string server_name = "localhost";  // SNI and host name checked in the server certificate
  int min_tls_version = 0;                // e.g. TLS1_2_VERSION from <openssl/ssl.h>; 0 = default
  int max_tls_version = 0;
  std::string tls12_ciphers;                // OpenSSL cipher list for TLS <= 1.2 (empty: default)
  bool allow_legacy = false;                // OpenSSL security level 0, so TLS 1.0/1.1 can be offered
  std::chrono::milliseconds timeout{5000};  // per operation (connect, handshake, write, read)
};

struct HttpResponse {
  boost::system::error_code error;  // set if the exchange failed; then the rest is empty
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = false;

  /// First header with this name (case-insensitive), or empty.
  std::string header(std::string_view name) const;
};

class TlsTestClient {
 public:
  explicit TlsTestClient(TlsClientOptions options);
  ~TlsTestClient();
  TlsTestClient(TlsTestClient&&) noexcept;
  TlsTestClient& operator=(TlsTestClient&&) noexcept;

  /// TCP connect and TLS handshake. Closes any previous connection first.
  boost::system::error_code connect(std::uint16_t port, const std::string& host = "127.0.0.1");
  bool connected() const;

  /// Sends one HTTP/1.1 request on the open connection and reads the response.
  HttpResponse request(std::string_view method, std::string_view target, std::string body = {},
                       const std::vector<std::pair<std::string, std::string>>& headers = {});
  /// Writes raw bytes (for malformed or half-sent requests).
  boost::system::error_code writeRaw(std::string_view bytes);
  /// Reads one response from the connection.
  HttpResponse readResponse();
  /// Waits until the server closes the connection. True if it did within `timeout` (any data
  /// that arrives first is discarded); false if the connection was still open.
  bool waitForClose(std::chrono::milliseconds timeout);

  /// "TLSv1.3", "TLSv1.2", ... of the open connection.
  std::string protocol() const;
  /// Negotiated cipher name of the open connection.
  std::string cipher() const;

  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One-shot: connect, send, read, close.
HttpResponse tlsRequest(std::uint16_t port, const TlsClientOptions& options, std::string_view method,
                        std::string_view target, std::string body = {},
                        const std::vector<std::pair<std::string, std::string>>& headers = {});

}  // namespace gw::test

#pragma once
// Shared by the server tests: a real TLS server on 127.0.0.1 port 0 with the development PKI,
// and client options for the good / expired / rogue client certificates.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/router.hpp"
#include "http/server.hpp"
#include "support/log_capture.hpp"
#include "support/test_pki.hpp"
#include "support/tls_test_client.hpp"

namespace gw::http::testing {

using namespace std::chrono_literals;
using test::LogCapture;

inline ServerOptions serverOptions(ClientCertMode mode = ClientCertMode::Required) {
  ServerOptions o;
  o.cert_file = test::devPkiFile("server.crt");
  o.key_file = test::devPkiFile("server.key");
  o.client_ca_file = test::devPkiFile("ca.crt");
  o.client_cert = mode;
  o.threads = 2;
  o.read_timeout = 5000ms;
  o.write_timeout = 5000ms;
  o.idle_timeout = 5000ms;
  o.stop_grace = 2000ms;
  return o;
}

/// Trusts the dev CA and presents `cert` ("client", "expired-client", "rogue-client" or "").
inline test::TlsClientOptions clientOptions(std::string_view cert = "client") {
  test::TlsClientOptions o;
  o.ca_file = test::devPkiFile("ca.crt");
  if (!cert.empty()) {
    o.cert_file = test::devPkiFile(std::string(cert) + ".crt");
    o.key_file = test::devPkiFile(std::string(cert) + ".key");
  }
  o.timeout = 5000ms;
  return o;
}

inline std::unique_ptr<Server> startServer(ServerOptions options, std::shared_ptr<const Router> router) {
  auto created = Server::create(std::move(options), std::move(router));
  if (!created) {
    ADD_FAILURE() << created.error().describe();
    return nullptr;
  }
  auto server = std::move(created).value();
  auto started = server->start();
  if (!started) {
    ADD_FAILURE() << started.error().describe();
    return nullptr;
  }
  return server;
}

/// True if the server refused the client: either the handshake failed, or (TLS 1.3, where the
/// server checks the client certificate after the client finished) the first request got no
/// response.
inline bool rejected(std::uint16_t port, const test::TlsClientOptions& options) {
  test::TlsTestClient client(options);
  if (client.connect(port)) return true;
  auto response = client.request("GET", "/whoami");
  return response.error && response.status == 0;
}

}  // namespace gw::http::testing

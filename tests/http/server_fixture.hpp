#pragma once
// Shared by the server tests: a real TLS server on 127.0.0.1 port 0 with the development PKI,
// a log capture, and client options for the good / expired / rogue client certificates.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/log.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "support/test_pki.hpp"
#include "support/tls_test_client.hpp"

namespace gw::http::testing {

using namespace std::chrono_literals;

/// Collects log lines while alive (the sink is process-global).
class LogCapture {
 public:
  LogCapture() {
    log::setSink([this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { log::setSink(nullptr); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  /// Lines holding every one of `parts`.
  std::vector<std::string> find(std::initializer_list<std::string_view> parts) const {
    std::vector<std::string> out;
    for (const auto& line : lines()) {
      bool all = true;
      for (auto part : parts) all = all && line.find(part) != std::string::npos;
      if (all) out.push_back(line);
    }
    return out;
  }
  /// Waits (briefly) for a line holding every one of `parts`; log lines of the server are
  /// written on io threads, possibly just after the client saw the response.
  bool waitFor(std::initializer_list<std::string_view> parts, std::chrono::milliseconds timeout = 2000ms) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!find(parts).empty()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return !find(parts).empty();
  }
  std::string all() const {
    std::string out;
    for (const auto& line : lines()) out += line;
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

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

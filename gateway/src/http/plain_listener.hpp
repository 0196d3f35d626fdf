#pragma once
// A plain-HTTP listener for a few read-only endpoints on a loopback address (the Prometheus scrape
// and the readiness probe at server.metrics_listen): no TLS, no client certificates, no tokens, so it must never be
// reachable from another host. One thread; one request per connection; every read and write
// under a deadline. Not a general server: GET and HEAD only, small requests only.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "http/request.hpp"

namespace gw::http {

/// True for 127.0.0.0/8 and ::1 (as text; names are not resolved).
bool isLoopbackAddress(std::string_view address);

class PlainListener {
 public:
  /// Gets the request's method and path (query removed); runs on the listener's thread, which it
  /// may block for a short while (one scrape at a time).
  using Handler = std::function<Response(std::string_view method, std::string_view path)>;

  /// Binds `address`:`port` (port 0: ephemeral) and starts its thread. Refuses (ErrorCode::Config)
  /// an address that is not loopback, and fails when the port cannot be bound.
  static Result<std::unique_ptr<PlainListener>> start(const std::string& address, std::uint16_t port, Handler handler);
  ~PlainListener();  // stop()s
  PlainListener(const PlainListener&) = delete;
  PlainListener& operator=(const PlainListener&) = delete;

  void stop();
  std::uint16_t port() const;

  struct Impl;

 private:
  explicit PlainListener(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace gw::http

#pragma once
// GET /metrics: the gateway's counts and states in the Prometheus text exposition format 0.0.4
// (docs/operations.md §8). Built on prometheus-cpp's core: its Registry holds what the HTTP
// front counts here (requests by route and status, TLS handshake failures), and its
// TextSerializer writes the page; everything else is read at scrape time from the stats structs
// the modules already keep (common/stats.hpp: relaxed atomics, so the hot paths pay nothing for
// a scrape) and, for outbox states and ages, from the store. Labels are bounded sets of internal
// names (partner ids, route patterns, record types, reason classes): never PHI, record ids or MRNs.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "http/server.hpp"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Histogram;
}  // namespace prometheus

namespace gw::app {

class Runtime;

class Metrics final : public http::ServerObserver {
 public:
  /// `runtime` must outlive it.
  explicit Metrics(Runtime& runtime);
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // http::ServerObserver (I/O threads).
  void requestAnswered(std::string_view method, std::string_view route, unsigned status,
                       std::chrono::steady_clock::duration took) override;
  void handshakeFailed(std::string_view reason) override;

  /// Every metric now, as text exposition 0.0.4. Reads the store and a few files (outbox counts,
  /// the audit head, certificates, the database size): call it off the I/O threads.
  std::string scrape() const;

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  Runtime& runtime_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* http_requests_;
  prometheus::Family<prometheus::Histogram>* http_duration_;
  prometheus::Family<prometheus::Counter>* handshake_failures_;
};

}  // namespace gw::app

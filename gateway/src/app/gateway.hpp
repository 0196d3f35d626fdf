#pragma once
// The running gateway: the composition root. It builds the Runtime (store, rule set, ingest,
// consent registry, partner workers, pools), the route table in front of it (routes.hpp), and the
// HTTPS listener. gateway/main/ only parses the command line and calls this.
#include <memory>

#include "app/views.hpp"
#include "common/clock.hpp"
#include "config/gateway_config.hpp"

namespace gw::app {

class Gateway {
 public:
  /// Opens the database, loads schemas and mappers, prepares partner clients and the listener.
  /// Every failure names what is wrong and where (file, key), and nothing is started.
  static Result<std::unique_ptr<Gateway>> create(config::GatewayConfig config, const Clock& clock);

  /// Everything create() checks except the database, which it neither opens nor creates: record
  /// schemas and mappers load, TLS certificates and keys load and match, partner endpoints and
  /// their token variables are usable, the master key loads (and its file is private). For
  /// `check-config`.
  static Status check(const config::GatewayConfig& config);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  /// Binds the listener and starts the jobs thread and the delivery workers.
  Status start();
  /// Stops accepting, finishes requests and commits in flight, stops the workers.
  void stop();
  std::uint16_t port() const;

  /// Loads record schemas, mappers, profiles, value sets and CSV mappers again from the configured
  /// directories, runs the new set's golden cases, and swaps it in for requests that start
  /// afterwards (requests in flight finish with the set they began with). A set that fails to
  /// load (file:line:column in the error and the log) or whose golden cases fail is rejected, and
  /// the running one stays. Blocks while it reads files: call it off the io threads
  /// (serve calls it on SIGHUP; POST /v1/admin/reload runs it on the jobs thread).
  /// Thread-safe; reloads run one at a time, and requests that arrive while one is running are
  /// answered together by the next (a burst of N requests costs at most two reloads). Every other
  /// instance on the same PostgreSQL database is told to reload its own files too (Runtime::reloadEverywhere).
  Result<ReloadSummary> reloadMappings();

 private:
  struct Parts;
  explicit Gateway(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace gw::app

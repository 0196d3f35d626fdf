#include "http/server.hpp"

#include "common/log.hpp"
#include "http/session.hpp"
#include "http/tls_context.hpp"

namespace gw::http {

std::optional<ClientCertMode> parseClientCertMode(std::string_view text) {
  if (text == "none") return ClientCertMode::None;
  if (text == "optional") return ClientCertMode::Optional;
  if (text == "required") return ClientCertMode::Required;
  return std::nullopt;
}

std::string_view clientCertModeName(ClientCertMode mode) {
  switch (mode) {
    case ClientCertMode::None: return "none";
    case ClientCertMode::Optional: return "optional";
    case ClientCertMode::Required: return "required";
  }
  return "required";
}

Result<std::unique_ptr<Server>> Server::create(ServerOptions options, std::shared_ptr<const Router> router) {
  if (!router) return makeError(ErrorCode::Internal, "Server::create needs a router");
  auto invalid = [](std::string message, std::string where, std::string hint) {
    return makeError(ErrorCode::Config, std::move(message), std::move(where), std::move(hint));
  };
  if (options.threads < 1) return invalid("threads must be at least 1", "threads", "use 1 or more (2 per core is plenty)");
  if (options.max_body_bytes == 0) return invalid("max_body_bytes must be positive", "max_body_bytes", "e.g. 10485760");
  if (options.max_inflight_body_bytes < options.max_body_bytes) {
    return invalid("max_inflight_body_bytes must be at least max_body_bytes", "max_inflight_body_bytes",
                   "raise it to a few times max_body_bytes");
  }
  if (options.max_header_bytes < 1024) {
    return invalid("max_header_bytes must be at least 1024", "max_header_bytes", "e.g. 16384");
  }
  if (options.max_connections == 0) return invalid("max_connections must be positive", "max_connections", "e.g. 1024");
  if (options.max_connections_per_address == 0) {
    return invalid("max_connections_per_address must be positive", "max_connections_per_address", "e.g. 256");
  }
  if (options.handshake_timeout.count() <= 0 || options.read_timeout.count() <= 0 || options.write_timeout.count() <= 0 ||
      options.idle_timeout.count() <= 0) {
    return invalid("timeouts must be positive", "handshake_timeout/read_timeout/write_timeout/idle_timeout",
                   "give them in milliseconds");
  }
  auto tls = detail::makeServerTlsContext(options);
  if (!tls) return tls.error();
  auto core = std::make_shared<detail::Core>(std::move(options), std::move(router), std::move(tls.value()));
  return std::unique_ptr<Server>(new Server(std::move(core)));
}

Server::Server(std::shared_ptr<detail::Core> core) : core_(std::move(core)) {}

Server::~Server() { stop(); }

Status Server::start() {
  if (started_) return makeError(ErrorCode::Internal, "the server was already started");
  auto listener = std::make_shared<detail::Listener>(core_);
  GW_TRY(listener->open());
  listener_ = std::move(listener);
  port_ = listener_->port();
  started_ = true;
  listener_->run();
  const ServerOptions& o = core_->options;
  {
    std::lock_guard lock(core_->run_mutex);
    core_->running = o.threads;
  }
  core_->threads.reserve(static_cast<std::size_t>(o.threads));
  for (int i = 0; i < o.threads; ++i) {
    core_->threads.emplace_back([core = core_.get()] { core->runThread(); });
  }
  GW_LOG(Info, Http, "listening")
      .kv("address", o.address)
      .kv("port", port_)
      .kv("threads", o.threads)
      .kv("client_cert", clientCertModeName(o.client_cert));
  return ok();
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  core_->stopping = true;
  if (!started_) return;

  // 1. Stop accepting; idle connections close now, busy ones after their response.
  listener_->close();
  for (auto& session : core_->liveSessions()) session->shutdownSoon();

  // 2. The io threads return once no connection or handler has work left (in-flight handlers
  //    hold work guards), or we cut them off after the grace period.
  {
    std::unique_lock lock(core_->run_mutex);
    if (!core_->run_cv.wait_for(lock, core_->options.stop_grace, [&] { return core_->running == 0; })) {
      GW_LOG(Warn, Http, "stop_grace_expired").kv("grace_ms", core_->options.stop_grace.count());
      core_->ioc.stop();
    }
  }
  for (auto& thread : core_->threads) thread.join();
  core_->threads.clear();

  // 3. From here Respond calls are dropped. Close what is left and run the handlers that the
  //    closes complete, so no queued handler keeps a session (and the Core) alive.
  {
    std::unique_lock lock(core_->post_mutex);
    core_->accepting_posts = false;
  }
  for (auto& session : core_->liveSessions()) session->closeNow();
  core_->ioc.restart();
  while (core_->ioc.poll() > 0) {
  }
  listener_.reset();
  GW_LOG(Info, Http, "stopped").kv("port", port_);
}

std::uint16_t Server::port() const { return port_; }

}  // namespace gw::http

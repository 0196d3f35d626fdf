#include "app/gateway.hpp"

#include "app/console.hpp"
#include "app/metrics.hpp"
#include "app/routes.hpp"
#include "app/runtime.hpp"
#include "app/settings.hpp"
#include "common/log.hpp"
#include "config/insecure_settings.hpp"
#include "delivery/partner_worker.hpp"
#include "http/plain_listener.hpp"
#include "http/server.hpp"

namespace gw::app {
namespace {

http::ServerOptions serverOptions(const config::Server& s) {
  http::ServerOptions o;
  o.address = s.address;
  o.port = s.port;
  o.threads = s.threads;
  o.cert_file = s.tls.cert_file.string();
  o.key_file = s.tls.key_file.string();
  o.client_ca_file = s.tls.client_ca_file.string();
  o.client_crl_file = s.tls.client_crl_file.string();
  o.client_cert = s.tls.client_cert == config::ClientCertMode::Required   ? http::ClientCertMode::Required
                  : s.tls.client_cert == config::ClientCertMode::Optional ? http::ClientCertMode::Optional
                                                                          : http::ClientCertMode::None;
  o.max_body_bytes = s.max_body_bytes;
  o.max_inflight_body_bytes = s.max_inflight_body_bytes;
  o.handshake_timeout = s.handshake_timeout;
  o.read_timeout = s.read_timeout;
  o.write_timeout = s.write_timeout;
  o.idle_timeout = s.idle_timeout;
  o.max_connections = s.max_connections;
  o.max_connections_per_address = s.max_connections_per_address;
  return o;
}

// The console listener: the main listener's limits and timeouts, its own address, certificate
// and client-certificate policy, and the console's security headers on every response.
http::ServerOptions consoleServerOptions(const config::GatewayConfig& c) {
  http::ServerOptions o = serverOptions(c.server);
  o.address = c.console.address;
  o.port = c.console.port;
  o.cert_file = c.console.tls.cert_file.string();
  o.key_file = c.console.tls.key_file.string();
  o.client_ca_file = c.console.tls.client_ca_file.string();
  o.client_crl_file.clear();
  o.client_cert = c.console.tls.client_cert == config::ClientCertMode::Required   ? http::ClientCertMode::Required
                  : c.console.tls.client_cert == config::ClientCertMode::Optional ? http::ClientCertMode::Optional
                                                                                  : http::ClientCertMode::None;
  o.response_headers = consoleResponseHeaders();
  return o;
}

}  // namespace

struct Gateway::Parts {
  std::unique_ptr<Runtime> runtime;
  RouteTable routes;
  std::unique_ptr<http::Server> server;
  std::unique_ptr<http::PlainListener> metrics_listener;    // server.metrics_listen, when set
  std::shared_ptr<http::BrowserSessions> console_sessions;  // console.*, when set
  std::unique_ptr<http::Server> console_server;
};

Gateway::Gateway(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
Gateway::~Gateway() { stop(); }

Result<std::unique_ptr<Gateway>> Gateway::create(config::GatewayConfig config, const Clock& clock) {
  log::setLevel(config.log_level);
  log::setFormat(config.log_format);
  // Every line from here on names this instance (several may share a database and a log host).
  log::setInstanceId(config::instanceId(config));
  // One line per weakness, at every start, so the log of a deployment shows what it runs with.
  for (const auto& weak : config::insecureSettings(config)) {
    GW_LOG(Warn, Config, "insecure_setting").kv("key", weak.key).kv("problem", weak.problem);
  }
  auto parts = std::make_unique<Parts>();
  parts->runtime = std::make_unique<Runtime>(std::move(config), clock);
  auto& runtime = *parts->runtime;
  GW_TRY(runtime.open());
  GW_TRY(addGatewayRoutes(parts->routes, runtime));
  auto options = serverOptions(runtime.config().server);
  options.observer = runtime.metrics();
  GW_TRY(auto server,
         http::Server::create(std::move(options), parts->routes.router(runtime.authenticator(), runtime.blockingPool())));
  parts->server = std::move(server);
  if (const auto& console = runtime.config().console; console.enabled()) {
    GW_TRY(auto files, ConsoleFiles::load(console.directory));
    parts->console_sessions = std::make_shared<http::BrowserSessions>(
        http::BrowserSessionLimits{console.session_idle, console.session_absolute}, runtime.clock());
    auto console_options = consoleServerOptions(runtime.config());
    console_options.observer = runtime.metrics();
    ConsoleParts console_parts{parts->routes, runtime.authenticator(), runtime.blockingPool(), parts->console_sessions,
                               std::move(files)};
    GW_TRY(auto console_server, http::Server::create(std::move(console_options), consoleRouter(console_parts)));
    parts->console_server = std::move(console_server);
  }
  return std::unique_ptr<Gateway>(new Gateway(std::move(parts)));
}

Status Gateway::check(const config::GatewayConfig& cfg) {
  GW_TRY(auto master_key, config::loadMasterKey(cfg.privacy));  // readable, private, well-formed
  (void)master_key;
  if (const auto& pg = cfg.storage.postgres) {
    GW_TRY(auto dsn, config::loadPostgresDsn(*pg));  // readable and private; not connected to here
    (void)dsn;
  }
  GW_TRY(auto rules, loadConfiguredRuleSet(cfg));
  (void)rules;
  for (const auto& partner : cfg.partners) {
    GW_TRY(auto endpoint, delivery::endpointFor(partner));
    GW_TRY(auto credentials, delivery::credentialsFor(partner));
    GW_TRY(auto client, delivery::FhirClient::create(std::move(endpoint), std::move(credentials)));
  }
  GW_TRY(auto server, http::Server::create(serverOptions(cfg.server), std::make_shared<http::Router>()));
  if (cfg.console.enabled()) {
    GW_TRY(auto files, ConsoleFiles::load(cfg.console.directory));
    GW_TRY(auto console_server, http::Server::create(consoleServerOptions(cfg), std::make_shared<http::Router>()));
    (void)files;
    (void)console_server;
  }
  return ok();
}

Status Gateway::start() {
  GW_TRY(parts_->server->start());
  const auto& server = parts_->runtime->config().server;
  if (!server.metrics_address.empty()) {
    // Its own thread: a scrape reads the database. No tokens here, so only what carries no PHI:
    // /metrics, and /healthz and /readyz for `fhir-gateway health` (a container's health check
    // then needs no client certificate or token).
    auto metrics = parts_->runtime->metrics();
    Runtime* runtime = parts_->runtime.get();
    GW_TRY(auto listener,
           http::PlainListener::start(
               server.metrics_address, server.metrics_port,
               [metrics, runtime](std::string_view, std::string_view path) -> http::Response {
                 if (path == "/metrics") return {200, std::string(Metrics::kContentType), metrics->scrape(), {}};
                 if (path == "/readyz") return readinessResponse(*runtime);
                 if (path == "/healthz") return http::jsonResponse(200, R"({"status":"ok"})");
                 return {404, "text/plain; charset=utf-8", "only /metrics, /healthz and /readyz are served here\n", {}};
               }));
    parts_->metrics_listener = std::move(listener);
  }
  if (parts_->console_server) {
    GW_TRY(parts_->console_server->start());
    GW_LOG(Info, Main, "console_started")
        .kv("address", parts_->runtime->config().console.address)
        .kv("port", parts_->console_server->port());
  }
  parts_->runtime->start();
  GW_LOG(Info, Main, "started")
      .kv("address", parts_->runtime->config().server.address)
      .kv("port", parts_->server->port())
      .kv("partners", parts_->runtime->config().partners.size());
  return ok();
}

void Gateway::stop() {
  if (!parts_) return;
  if (parts_->metrics_listener) parts_->metrics_listener->stop();
  if (parts_->console_server) parts_->console_server->stop();
  if (parts_->server) parts_->server->stop();
  parts_->runtime->stop();
}

std::uint16_t Gateway::port() const { return parts_->server->port(); }

Result<ReloadSummary> Gateway::reloadMappings() {
  auto& runtime = *parts_->runtime;
  return runtime.reloadEverywhere(runtime.reloadTicket());
}

}  // namespace gw::app

// fhir-gateway command line. Everything it runs lives in the libraries under gateway/src/.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <pthread.h>

#include "app/gateway.hpp"
#include "common/log.hpp"
#include "config/gateway_config.hpp"
#include "http/auth.hpp"

namespace {

constexpr std::string_view kHelp = R"(fhir-gateway )" GW_VERSION R"( - maps clinic records to FHIR R4 and delivers them to partner hospitals

Usage:
  fhir-gateway serve --config FILE         run the gateway (HTTPS listener + delivery workers)
  fhir-gateway check-config --config FILE  check a config file: keys, types and references
                                           (every problem with file:line:column and key
                                           path), then that certificates, keys, mappers and
                                           partner settings load; prints the config with
                                           secrets redacted; exit 0 when valid, 3 when not
  fhir-gateway hash-token                  read a bearer token on stdin, print the SHA-256 hex
                                           to put in auth.tokens[].sha256
  fhir-gateway --version                   print the version
  fhir-gateway --help                      print this help

The config file is JSON with comments; gateway/config/gateway.example.jsonc documents every key.
serve stops gracefully on SIGINT or SIGTERM: it stops accepting, answers requests in flight,
commits what was accepted and lets delivery attempts in flight finish.

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 invalid configuration.
)";

int usage(std::string_view message) {
  std::cerr << "fhir-gateway: " << message << "\nRun 'fhir-gateway --help' for usage.\n";
  return 2;
}

std::optional<gw::config::GatewayConfig> loadConfig(const std::string& path) {
  auto loaded = gw::config::loadFile(path);
  if (loaded.config) return std::move(loaded.config);
  for (const auto& e : loaded.errors) std::cerr << "config error: " << e.describe() << "\n";
  std::cerr << loaded.errors.size() << " problem(s) in " << path
            << "; the example config gateway/config/gateway.example.jsonc documents every key\n";
  return std::nullopt;
}

int serve(const std::string& config_path) {
  // Block the stop signals in every thread; this one waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = loadConfig(config_path);
  if (!config) return 3;
  static gw::SystemClock clock;
  auto gateway = gw::app::Gateway::create(std::move(*config), clock);
  if (!gateway) {
    GW_LOG(Error, Main, "start_failed").kv("error", gateway.error().describe());
    std::cerr << "fhir-gateway: cannot start: " << gateway.error().describe() << "\n";
    return gateway.error().code == gw::ErrorCode::Config ? 3 : 1;
  }
  if (auto started = gateway.value()->start(); !started) {
    std::cerr << "fhir-gateway: cannot start: " << started.error().describe() << "\n";
    return 1;
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  GW_LOG(Info, Main, "stopping").kv("signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  gateway.value()->stop();
  GW_LOG(Info, Main, "stopped");
  return 0;
}

int checkConfig(const std::string& config_path) {
  auto config = loadConfig(config_path);
  if (!config) return 3;
  gw::log::setLevel(gw::log::Level::Warn);
  if (auto usable = gw::app::Gateway::check(*config); !usable) {
    std::cerr << "config error: " << usable.error().describe() << "\n";
    return 3;
  }
  std::cout << gw::config::redactedJson(*config) << "\n";
  std::cerr << config_path << ": OK\n";
  return 0;
}

int hashToken() {
  std::string token;
  std::getline(std::cin, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) {
    std::cerr << "fhir-gateway: a token must have at least 16 characters (use 32 random bytes, base64)\n";
    return 2;
  }
  std::cout << gw::http::hashToken(token) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return usage("missing command");
  const auto command = args[0];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kHelp;
    return 0;
  }
  if (command == "--version") {
    std::cout << "fhir-gateway " << GW_VERSION << "\n";
    return 0;
  }
  if (command == "hash-token") return args.size() == 1 ? hashToken() : usage("hash-token takes no arguments");
  if (command == "serve" || command == "check-config") {
    std::string config_path;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--config" && i + 1 < args.size()) {
        config_path = std::string(args[++i]);
      } else if (args[i].rfind("--config=", 0) == 0) {
        config_path = std::string(args[i].substr(9));
      } else {
        return usage("unknown argument '" + std::string(args[i]) + "'");
      }
    }
    if (config_path.empty()) return usage(std::string(command) + " needs --config FILE");
    return command == "serve" ? serve(config_path) : checkConfig(config_path);
  }
  return usage("unknown command '" + std::string(command) + "'");
}

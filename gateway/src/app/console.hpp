#pragma once
// The compliance console (README "Compliance console"): static pages served on a TLS listener of
// its own (console.listen), a sign-in that exchanges a compliance or admin token for a browser
// session (http/browser_sessions.hpp), and the JSON routes the pages call, taken from the route
// table with their access declarations unchanged: only who is calling is read from the session
// cookie instead of the Authorization header.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "app/route_table.hpp"
#include "common/error.hpp"
#include "common/work_pool.hpp"
#include "http/auth.hpp"
#include "http/browser_sessions.hpp"
#include "http/router.hpp"

namespace gw::app {

struct ConsoleFile {
  std::string content_type;
  std::string body;
};

/// The console's shipped files, read once at start so that no request reads the disk.
class ConsoleFiles {
 public:
  /// Every regular file of `directory` (not its subfolders) with a known type (.html, .js, .css,
  /// .svg, .ico, .txt). Fails (ErrorCode::Config) when the folder is missing or has no index.html.
  static Result<std::shared_ptr<const ConsoleFiles>> load(const std::filesystem::path& directory);
  const ConsoleFile* find(const std::string& name) const;
  std::size_t size() const { return files_.size(); }

 private:
  std::map<std::string, ConsoleFile> files_;
};

/// Whether a route of the table is served on the console listener too: the compliance routes and
/// the consent, decision-log and log-check routes the pages call.
bool servedOnConsole(const Route& route);

/// Headers on every response of the console listener: a strict Content-Security-Policy (no
/// inline script or style, nothing from another origin, no framing), no referrer, no sniffing.
std::vector<std::pair<std::string, std::string>> consoleResponseHeaders();

struct ConsoleParts {
  const RouteTable& routes;
  const http::Authenticator& auth;  // for the sign-in only
  WorkPool& pool;
  std::shared_ptr<http::BrowserSessions> sessions;
  std::shared_ptr<const ConsoleFiles> files;
  int retry_after_seconds = 1;
};

/// The console listener's router: GET /console/ and its files, POST /console/login,
/// POST /console/logout, GET /console/session, and the routes servedOnConsole() selects behind the
/// session (and, for changes, its anti-forgery token). Everything it refers to must outlive it.
std::shared_ptr<http::Router> consoleRouter(const ConsoleParts& parts);

}  // namespace gw::app

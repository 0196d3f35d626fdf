#include "app/console.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>
#include <sstream>

#include "common/log.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using http::Request;
using http::Respond;
using http::Response;

constexpr std::size_t kMaxFileBytes = 2 * 1024 * 1024;

std::string contentTypeFor(const fs::path& file) {
  const std::string ext = file.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return {};
}

bool safeFileName(const std::string& name) {
  if (name.empty() || name.front() == '.') return false;
  return name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == std::string::npos;
}

Response redirect(std::string location) {
  Response r{303, "text/plain; charset=utf-8", "see " + location + "\n", {}};
  r.headers.emplace_back("Location", std::move(location));
  return r;
}

template <typename Writer>
void writeString(Writer& w, std::string_view text) {
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

// What the page needs to know about its session: who it acts as (token id, roles, clinics), the
// anti-forgery token to send with every change, and when the session ends if left alone.
std::string sessionJson(const http::Principal& principal, const std::string& csrf, SystemTime expires_at,
                        std::chrono::milliseconds idle) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("token_id");
  writeString(w, principal.token_id);
  w.Key("roles");
  w.StartArray();
  for (auto role : principal.roles) writeString(w, roleName(role));
  w.EndArray();
  w.Key("clinics");
  w.StartArray();
  for (const auto& clinic : principal.clinics) writeString(w, clinic);
  w.EndArray();
  w.Key("csrf_token");
  writeString(w, csrf);
  w.Key("expires_at");
  writeString(w, formatRfc3339(expires_at));
  w.Key("idle_timeout_seconds");
  w.Int64(std::chrono::duration_cast<std::chrono::seconds>(idle).count());
  w.EndObject();
  return buffer.GetString();
}

// A sign-in form posted from another site (login CSRF) carries that site's Origin.
bool sameOrigin(const Request& request) {
  const std::string_view origin = request.header("Origin");
  if (origin.empty()) return true;
  const std::string_view host = request.header("Host");
  return !host.empty() && origin == "https://" + std::string(host);
}

void login(const ConsoleParts& parts, Request& request, Respond respond) {
  if (!sameOrigin(request)) {
    GW_LOG(Warn, Auth, "console_origin_refused").kv("request_id", request.request_id);
    return respond(http::errorResponse(makeError(ErrorCode::Forbidden, "the sign-in comes from another site",
                                                 "header Origin", "sign in on the console's own page")));
  }
  rapidjson::Document body;
  body.Parse(request.body.data(), request.body.size());
  if (body.HasParseError() || !body.IsObject() || !body.HasMember("token") || !body["token"].IsString()) {
    return respond(http::errorResponse(makeError(ErrorCode::BadRequest, "the sign-in needs a token", "body token",
                                                 R"(send {"token": "<your compliance token>"})")));
  }
  // The token goes through the same check as a bearer token on the main listener (including its
  // binding to client certificates), so a console session is never more than its token.
  Request as_bearer;
  as_bearer.method = request.method;
  as_bearer.request_id = request.request_id;
  as_bearer.remote = request.remote;
  as_bearer.client = request.client;
  as_bearer.headers.emplace_back("Authorization", std::string("Bearer ") + body["token"].GetString());
  auto principal = parts.auth.authenticate(as_bearer);
  if (!principal) return respond(http::errorResponse(principal.error()));
  if (!principal.value().has(Role::Compliance) && !principal.value().has(Role::Admin)) {
    GW_LOG(Warn, Auth, "console_login_refused").kv("token", principal.value().token_id).kv("why", "role");
    return respond(
        http::errorResponse(makeError(ErrorCode::Forbidden, "this token has neither the compliance nor the admin role",
                                      "token", "sign in with a compliance officer's token")));
  }
  request.token_id = principal.value().token_id;
  // Whatever session the browser held ends here, and the new one gets a fresh id: a cookie planted
  // before the sign-in never becomes a signed-in session (no fixation).
  parts.sessions->close(request);
  const auto opened = parts.sessions->open(principal.value());
  GW_LOG(Info, Auth, "console_login").kv("token", principal.value().token_id).kv("request_id", request.request_id);
  const auto& view = opened.view;
  Response r = http::jsonResponse(200, sessionJson(view.principal, view.csrf, view.expires_at, view.idle));
  r.headers.emplace_back("Set-Cookie", http::BrowserSessions::cookieHeader(opened.id, view.absolute_left));
  respond(std::move(r));
}

}  // namespace

Result<std::shared_ptr<const ConsoleFiles>> ConsoleFiles::load(const fs::path& directory) {
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) {
    return makeError(ErrorCode::Config, "the console folder '" + directory.string() + "' does not exist",
                     "console.directory", "point it at the console/ folder shipped with the gateway");
  }
  auto files = std::make_shared<ConsoleFiles>();
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    const std::string type = contentTypeFor(entry.path());
    if (type.empty() || !safeFileName(name)) continue;
    if (entry.file_size() > kMaxFileBytes) {
      return makeError(ErrorCode::Config, "console file '" + entry.path().string() + "' is larger than 2 MiB",
                       "console.directory", "the console's files are small; check the folder");
    }
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      return makeError(ErrorCode::Config, "cannot read console file '" + entry.path().string() + "'", "console.directory",
                       "check its permissions");
    }
    files->files_[name] = ConsoleFile{type, text.str()};
  }
  if (ec) {
    return makeError(ErrorCode::Config, "cannot list the console folder '" + directory.string() + "': " + ec.message(),
                     "console.directory", "check its permissions");
  }
  if (files->find("index.html") == nullptr) {
    return makeError(ErrorCode::Config, "the console folder '" + directory.string() + "' has no index.html",
                     "console.directory", "point it at the console/ folder shipped with the gateway");
  }
  return std::shared_ptr<const ConsoleFiles>(std::move(files));
}

const ConsoleFile* ConsoleFiles::find(const std::string& name) const {
  auto it = files_.find(name);
  return it == files_.end() ? nullptr : &it->second;
}

bool servedOnConsole(const Route& route) {
  if (route.pattern.starts_with("/v1/compliance/")) return true;
  return route.method == "GET" &&
         (route.pattern == "/v1/consents" || route.pattern == "/v1/audit/decisions" || route.pattern == "/v1/audit/verify");
}

std::vector<std::pair<std::string, std::string>> consoleResponseHeaders() {
  return {
      {"Content-Security-Policy",
       "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
      {"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"},
  };
}

std::shared_ptr<http::Router> consoleRouter(const ConsoleParts& parts) {
  auto router = std::make_shared<http::Router>();
  auto files = parts.files;
  auto sessions = parts.sessions;
  const auto serveFile = [files](const std::string& name, Respond& respond) {
    const ConsoleFile* file = files->find(name);
    if (file == nullptr) {
      return respond(http::errorResponse(
          makeError(ErrorCode::NotFound, "no such console page", "path", "open /console/ and navigate from there")));
    }
    respond(Response{200, file->content_type, file->body, {}});
  };
  router->add("GET", "/", [](Request&, Respond respond) { respond(redirect("/console/")); });
  router->add("GET", "/console", [](Request&, Respond respond) { respond(redirect("/console/")); });
  router->add("GET", "/console/", [serveFile](Request&, Respond respond) { serveFile("index.html", respond); });
  // Before /console/{file}, which would take "session" for a file name (the first match wins).
  router->add("GET", "/console/session", [sessions](Request& request, Respond respond) {
    auto session = sessions->find(request);
    if (!session) return respond(http::errorResponse(session.error()));
    request.token_id = session.value().principal.token_id;
    respond(http::jsonResponse(200, sessionJson(session.value().principal, session.value().csrf, session.value().expires_at,
                                                session.value().idle)));
  });
  router->add("GET", "/console/{file}", [serveFile](Request& request, Respond respond) {
    const std::string name(request.pathParam("file"));
    if (!safeFileName(name)) {
      return respond(http::errorResponse(
          makeError(ErrorCode::NotFound, "no such console page", "path", "open /console/ and navigate from there")));
    }
    serveFile(name, respond);
  });
  router->add("POST", "/console/login",
              [parts](Request& request, Respond respond) { login(parts, request, std::move(respond)); });
  router->add("POST", "/console/logout", [sessions](Request& request, Respond respond) {
    auto session = sessions->admit(request);  // a sign-out needs the anti-forgery token too
    if (!session) return respond(http::errorResponse(session.error()));
    request.token_id = session.value().principal.token_id;
    sessions->close(request);
    GW_LOG(Info, Auth, "console_logout").kv("token", request.token_id);
    Response r = http::jsonResponse(200, R"({"signed_out":true})");
    r.headers.emplace_back("Set-Cookie", http::BrowserSessions::clearingCookieHeader());
    respond(std::move(r));
  });
  parts.routes.addTo(
      *router,
      [sessions](const http::Request& request) -> Result<http::Principal> {
        GW_TRY(auto session, sessions->admit(request));
        return session.principal;
      },
      parts.pool, parts.retry_after_seconds, servedOnConsole);
  return router;
}

}  // namespace gw::app

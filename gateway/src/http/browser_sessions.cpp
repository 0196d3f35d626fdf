#include "http/browser_sessions.hpp"

#include <algorithm>

#include "common/ids.hpp"
#include "common/log.hpp"

namespace gw::http {
namespace {

Error unauthenticated(std::string message) {
  return makeError(ErrorCode::Unauthenticated, std::move(message), "cookie gw_console",
                   "sign in again at /console/ with your compliance token");
}

Error forbidden(std::string message, std::string where, std::string hint) {
  return makeError(ErrorCode::Forbidden, std::move(message), std::move(where), std::move(hint));
}

bool changesState(std::string_view method) { return method != "GET" && method != "HEAD"; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

BrowserSessions::BrowserSessions(BrowserSessionLimits limits, const Clock& clock) : limits_(limits), clock_(clock) {}

bool BrowserSessions::expired(const Entry& entry, SystemTime now) const {
  return now - entry.last_used >= limits_.idle || now - entry.opened >= limits_.absolute;
}

void BrowserSessions::sweep(SystemTime now) {
  std::erase_if(sessions_, [&](const auto& item) { return expired(item.second, now); });
  while (sessions_.size() >= limits_.max_sessions && !sessions_.empty()) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(),
                                   [](const auto& a, const auto& b) { return a.second.opened < b.second.opened; });
    GW_LOG(Warn, Auth, "console_session_evicted").kv("token", oldest->second.principal.token_id);
    sessions_.erase(oldest);
  }
}

OpenedSession BrowserSessions::open(Principal principal) {
  const SystemTime now = clock_.now();
  OpenedSession opened{
      ids::randomHex(32), ids::randomHex(32),
      SessionView{principal, {}, std::min(now + limits_.idle, now + limits_.absolute), limits_.idle, limits_.absolute}};
  opened.view.csrf = opened.csrf;
  std::lock_guard lock(mutex_);
  sweep(now);
  sessions_[ids::sha256Hex(opened.id)] = Entry{std::move(principal), opened.csrf, now, now};
  return opened;
}

Result<SessionView> BrowserSessions::find(const Request& request) {
  const std::string id = cookieValue(request, kCookieName);
  if (id.empty()) return unauthenticated("not signed in (no console session cookie)");
  const SystemTime now = clock_.now();
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(ids::sha256Hex(id));
  if (it == sessions_.end()) return unauthenticated("the console session is unknown or has ended");
  if (expired(it->second, now)) {
    GW_LOG(Info, Auth, "console_session_expired").kv("token", it->second.principal.token_id);
    sessions_.erase(it);
    return unauthenticated("the console session has expired");
  }
  it->second.last_used = now;
  const SystemTime idle_end = now + limits_.idle;
  const SystemTime absolute_end = it->second.opened + limits_.absolute;
  return SessionView{it->second.principal, it->second.csrf, std::min(idle_end, absolute_end), limits_.idle,
                     std::chrono::duration_cast<std::chrono::milliseconds>(absolute_end - now)};
}

Result<SessionView> BrowserSessions::admit(const Request& request) {
  GW_TRY(auto session, find(request));
  if (!changesState(request.method)) return session;
  if (!ids::constantTimeEquals(request.header(kCsrfHeader), session.csrf)) {
    GW_LOG(Warn, Auth, "console_csrf_refused").kv("token", session.principal.token_id).kv("request_id", request.request_id);
    return forbidden("the request lacks the console's anti-forgery token", "header X-CSRF-Token",
                     "reload the console page and try again");
  }
  // Browsers send Origin on every cross-site POST; when present it must be this listener.
  const std::string_view origin = request.header("Origin");
  const std::string_view host = request.header("Host");
  if (!origin.empty() && (host.empty() || origin != "https://" + std::string(host))) {
    GW_LOG(Warn, Auth, "console_origin_refused")
        .kv("token", session.principal.token_id)
        .kv("request_id", request.request_id);
    return forbidden("the request comes from another site", "header Origin",
                     "use the console at its own address; do not embed or post to it from other pages");
  }
  return session;
}

void BrowserSessions::close(const Request& request) {
  const std::string id = cookieValue(request, kCookieName);
  if (id.empty()) return;
  std::lock_guard lock(mutex_);
  sessions_.erase(ids::sha256Hex(id));
}

std::size_t BrowserSessions::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

std::string BrowserSessions::cookieHeader(std::string_view id, std::chrono::milliseconds max_age) {
  return std::string(kCookieName) + "=" + std::string(id) + "; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=" +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(max_age).count());
}

std::string BrowserSessions::clearingCookieHeader() {
  return std::string(kCookieName) + "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0";
}

std::string BrowserSessions::cookieValue(const Request& request, std::string_view name) {
  for (const auto& [header, value] : request.headers) {
    if (header.size() != 6 || !std::equal(header.begin(), header.end(), "cookie", [](char a, char b) {
          return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
        })) {
      continue;
    }
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      const std::string_view pair = trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) return std::string(pair.substr(eq + 1));
    }
  }
  return {};
}

}  // namespace gw::http

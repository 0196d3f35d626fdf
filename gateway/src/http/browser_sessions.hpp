#pragma once
// Sessions of the compliance console (a browser cannot hold a bearer token safely): a login
// exchanges a token for a random session id carried in an HttpOnly cookie, and a synchronizer
// token the page sends back in a header on every change (CSRF). The session holds the token's
// Principal, so the route table authorises a console request exactly as it would the token.
// In memory only: a restart logs everyone out. Thread-safe.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "http/auth.hpp"
#include "http/request.hpp"

namespace gw::http {

struct BrowserSessionLimits {
  std::chrono::milliseconds idle{std::chrono::minutes(15)};   // since the last request
  std::chrono::milliseconds absolute{std::chrono::hours(8)};  // since the login
  std::size_t max_sessions = 1000;                            // beyond: the oldest is ended
};

struct SessionView {
  Principal principal;
  std::string csrf;
  SystemTime expires_at;                    // the earlier of the idle and the absolute limit, after this request
  std::chrono::milliseconds idle;           // the idle limit
  std::chrono::milliseconds absolute_left;  // until the absolute limit
};

struct OpenedSession {
  std::string id;    // 256 random bits, hex: the cookie value
  std::string csrf;  // 256 random bits, hex: the X-CSRF-Token value
  SessionView view;  // as find() would see it now
};

class BrowserSessions {
 public:
  static constexpr std::string_view kCookieName = "gw_console";
  static constexpr std::string_view kCsrfHeader = "X-CSRF-Token";

  BrowserSessions(BrowserSessionLimits limits, const Clock& clock);

  /// A new session for `principal`, always under a fresh id (a login never keeps an id the
  /// browser already had: no session fixation).
  OpenedSession open(Principal principal);
  /// The session named by the request's cookie, refreshed (idle timer restarted). Missing,
  /// unknown or expired -> Unauthenticated; an expired one is removed.
  Result<SessionView> find(const Request& request);
  /// find(), and for a request that changes something (not GET/HEAD) also: the X-CSRF-Token
  /// header equals the session's token (constant time) and the Origin header, when the browser
  /// sends one, is this listener's own (https://<Host>). Refusals are Forbidden.
  Result<SessionView> admit(const Request& request);
  /// Ends the session named by the request's cookie, if any.
  void close(const Request& request);
  std::size_t size() const;

  /// The Set-Cookie value that carries `id`, and the one that clears the cookie.
  static std::string cookieHeader(std::string_view id, std::chrono::milliseconds max_age);
  static std::string clearingCookieHeader();
  /// The value of cookie `name` in the request's Cookie headers, or empty.
  static std::string cookieValue(const Request& request, std::string_view name);

 private:
  struct Entry {
    Principal principal;
    std::string csrf;
    SystemTime opened;
    SystemTime last_used;
  };
  bool expired(const Entry& entry, SystemTime now) const;
  void sweep(SystemTime now);  // under mutex_

  const BrowserSessionLimits limits_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  // Keyed by the SHA-256 of the id, so a lookup's timing says nothing about the id itself.
  std::unordered_map<std::string, Entry> sessions_;
};

}  // namespace gw::http

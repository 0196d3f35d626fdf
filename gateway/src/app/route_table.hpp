#pragma once
// Every HTTPS route of the gateway, each with its access declaration, and the one filter that
// enforces them all (in the manner of Orthanc's IIncomingHttpRequestFilter): authentication,
// roles, clinic scope, and whether the handler may block. A handler runs only after the filter
// admitted the request, with the caller's Principal; no handler checks roles itself.
//
// A route cannot be registered without saying who may call it: add() refuses a declaration with
// no roles unless it is explicitly public (health probes), so the gateway does not start.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/roles.hpp"
#include "common/work_pool.hpp"
#include "http/auth.hpp"
#include "http/router.hpp"

namespace gw::app {

/// Which clinic's data a request touches, and so which clinics its token must cover.
enum class ClinicScope {
  /// No clinic's data: health, mapping dry runs, reload, the chain check (counts and hashes).
  None,
  /// ?clinic=ID names the clinic (400 when it is missing); the token must cover it.
  QueryClinic,
  /// ?clinic=ID, when present, names the clinic and the token must cover it; a request naming no
  /// clinic reads every clinic's data, so the token must cover all ("*").
  QueryClinicOrAll,
  /// Every record of the body names its clinic; the token must cover each (checked per record,
  /// so one record of another clinic is rejected while the rest go on).
  RecordClinics,
};

/// Where the handler runs. Handlers that touch the database or the disk must not run on an I/O
/// thread: they run on the blocking pool, and a full pool answers 503 with Retry-After.
enum class Execution { IoThread, Blocking };

struct Access {
  std::vector<Role> roles;  // any one of them admits; empty only for a public route
  ClinicScope scope = ClinicScope::None;
  bool public_route = false;  // no authentication at all (health probes)

  static Access publicRoute() { return {{}, ClinicScope::None, true}; }
};

/// A handler admitted by the filter. `caller` is empty for a public route.
using RouteHandler = std::function<void(http::Request&, const http::Principal& caller, http::Respond)>;

struct Route {
  std::string method;
  std::string pattern;  // as http::Router takes it, e.g. "/v1/records/{record_id}"
  Access access;
  Execution execution = Execution::IoThread;
  RouteHandler handler;
};

/// Who is calling: the bearer token (http::Authenticator) on the main listener, the console's
/// session cookie on the console listener (app/console.hpp). Unauthenticated or Forbidden when
/// the request does not say.
using Authenticate = std::function<Result<http::Principal>(const http::Request&)>;

/// The authorization decision for one request on one route: the Principal, or the error to
/// answer (401 unauthenticated, 403 wrong role or clinic). Logs refusals without the token.
Result<http::Principal> admit(const http::Authenticator& auth, const Access& access, http::Request& request);
Result<http::Principal> admit(const Authenticate& authenticate, const Access& access, http::Request& request);

class RouteTable {
 public:
  /// Refuses (ErrorCode::Config) a route whose access declares no roles and is not public.
  Status add(Route route);

  const std::vector<Route>& routes() const { return routes_; }

  /// The router serving every route behind admit(): on the headers (the router's header phase, so
  /// a refusal is answered before the body is read), and again before the handler runs, with the
  /// Principal it gets. Blocking handlers are submitted to `pool`;
  /// when it is full the client gets 503 with Retry-After: `retry_after_seconds`.
  /// `auth` and `pool` must outlive the router.
  std::shared_ptr<http::Router> router(const http::Authenticator& auth, WorkPool& pool, int retry_after_seconds = 1) const;

  /// Adds to `router` the routes `include` selects, each behind admit() with `authenticate`
  /// (the same roles and clinic scopes, another way of saying who calls). `pool` must outlive it.
  void addTo(http::Router& router, Authenticate authenticate, WorkPool& pool, int retry_after_seconds,
             const std::function<bool(const Route&)>& include) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace gw::app

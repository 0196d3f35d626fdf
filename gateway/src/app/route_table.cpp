#include "app/route_table.hpp"

#include <algorithm>
#include <optional>

#include "common/log.hpp"

namespace gw::app {
namespace {

std::string rolesText(const std::vector<Role>& roles) {
  std::string out;
  for (auto role : roles) out += (out.empty() ? "" : " or ") + std::string(roleName(role));
  return out;
}

Error forbidden(const http::Request& request, std::string message, std::string where, std::string hint) {
  GW_LOG(Warn, Auth, "forbidden")
      .kv("request_id", request.request_id)
      .kv("token", request.token_id)
      .kv("route", request.route)
      .kv("why", where);
  return makeError(ErrorCode::Forbidden, std::move(message), std::move(where), std::move(hint));
}

// The filter on the headers alone, before the body is read: a refused request never costs its
// body. RecordClinics is checked per record afterwards.
http::HeaderCheck headerCheck(Authenticate authenticate, const Access& access) {
  return [authenticate = std::move(authenticate), access](http::Request& request) -> std::optional<http::Response> {
    auto principal = admit(authenticate, access, request);
    if (!principal) return http::errorResponse(principal.error());
    return std::nullopt;
  };
}

}  // namespace

Result<http::Principal> admit(const http::Authenticator& auth, const Access& access, http::Request& request) {
  return admit([&auth](const http::Request& r) { return auth.authenticate(r); }, access, request);
}

Result<http::Principal> admit(const Authenticate& authenticate, const Access& access, http::Request& request) {
  if (access.public_route) return http::Principal{};
  GW_TRY(auto principal, authenticate(request));  // logged why, without the token
  request.token_id = principal.token_id;
  const bool has_role = std::any_of(access.roles.begin(), access.roles.end(),
                                    [&](Role role) { return principal.has(role); });
  if (!has_role) {
    return forbidden(request, "this token lacks the role this endpoint needs", request.route,
                     "use a token with the " + rolesText(access.roles) + " role");
  }
  if (access.scope == ClinicScope::QueryClinic || access.scope == ClinicScope::QueryClinicOrAll) {
    const auto clinic = request.queryParam("clinic");
    if (access.scope == ClinicScope::QueryClinic && (!clinic || clinic->empty())) {
      return makeError(ErrorCode::BadRequest, "the clinic query parameter is missing", "clinic",
                       "add ?clinic=<clinic id> (a clinic this token is configured for)");
    }
    if (clinic && !clinic->empty()) {
      if (!principal.mayActForClinic(*clinic)) {
        return forbidden(request, "this token may not read data of that clinic", "clinic",
                         "use a token configured for that clinic");
      }
    } else if (!principal.mayActForClinic("*")) {
      return forbidden(request, "this token covers only some clinics, so the request must name one", "clinic",
                       "add ?clinic=<clinic id> for a clinic this token is configured for");
    }
  }
  // RecordClinics: the pipeline checks each record's clinic against principal.clinics.
  return principal;
}

Status RouteTable::add(Route route) {
  if (!route.access.public_route && route.access.roles.empty()) {
    return makeError(ErrorCode::Config, "route " + route.method + " " + route.pattern + " declares no roles", route.pattern,
                     "declare the roles that may call it, or mark it public (health probes only)");
  }
  if (!route.handler) {
    return makeError(ErrorCode::Config, "route " + route.method + " " + route.pattern + " has no handler", route.pattern,
                     "give the route a handler, or remove it from the table");
  }
  routes_.push_back(std::move(route));
  return ok();
}

std::shared_ptr<http::Router> RouteTable::router(const http::Authenticator& auth, WorkPool& pool,
                                                 int retry_after_seconds) const {
  auto router = std::make_shared<http::Router>();
  addTo(
      *router, [&auth](const http::Request& r) { return auth.authenticate(r); }, pool, retry_after_seconds,
      [](const Route&) { return true; });
  return router;
}

void RouteTable::addTo(http::Router& router, Authenticate authenticate, WorkPool& pool, int retry_after_seconds,
                       const std::function<bool(const Route&)>& include) const {
  for (const auto& route : routes_) {
    if (!include(route)) continue;
    router.add(route.method, route.pattern, headerCheck(authenticate, route.access),
               [authenticate, &pool, retry_after_seconds, access = route.access, execution = route.execution,
                handler = route.handler](http::Request& request, http::Respond respond) {
                 auto principal = admit(authenticate, access, request);
                 if (!principal) return respond(http::errorResponse(principal.error()));
                 if (execution == Execution::IoThread) return handler(request, principal.value(), std::move(respond));
                 // The request stays valid until respond is called, so the job may use it.
                 auto job = [handler, &request, caller = std::move(principal).value(), respond]() mutable {
                   handler(request, caller, std::move(respond));
                 };
                 if (!pool.trySubmit(std::move(job))) {
                   GW_LOG(Warn, Http, "busy").kv("request_id", request.request_id).kv("route", request.route);
                   auto busy = http::errorResponse(makeError(ErrorCode::Unavailable, "the gateway is busy; nothing was done",
                                                             "", "retry after the time in Retry-After"));
                   busy.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
                   respond(std::move(busy));
                 }
               });
  }
}

}  // namespace gw::app

#include "http/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace gw::http {
namespace {

// "/a/b/c" -> {"a","b","c"}; "/" -> {""}. Splits the still-encoded path so that an encoded
// "%2F" inside a record id stays inside its segment.
std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/') return out;
  std::size_t start = 1;
  for (;;) {
    const std::size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

}  // namespace

void Router::add(std::string method, std::string pattern, Handler handler) {
  add(std::move(method), std::move(pattern), nullptr, std::move(handler));
}

void Router::add(std::string method, std::string pattern, HeaderCheck check, Handler handler) {
  if (method.empty() || !handler) throw std::invalid_argument("route needs a method and a handler: " + pattern);
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  }
  Route route{std::move(method), pattern, {}, std::move(handler), std::move(check)};
  std::set<std::string> names;
  for (std::string_view segment : splitPath(pattern)) {
    const bool open = segment.find('{') != std::string_view::npos;
    const bool close = segment.find('}') != std::string_view::npos;
    if (!open && !close) {
      route.segments.push_back({std::string(segment), false});
      continue;
    }
    if (segment.size() < 3 || segment.front() != '{' || segment.back() != '}' ||
        segment.substr(1, segment.size() - 2).find_first_of("{}") != std::string_view::npos) {
      throw std::invalid_argument("route parameter must be a whole segment \"{name}\": " + pattern);
    }
    std::string name(segment.substr(1, segment.size() - 2));
    if (!names.insert(name).second) throw std::invalid_argument("duplicate route parameter '" + name + "': " + pattern);
    route.segments.push_back({std::move(name), true});
  }
  for (const Route& existing : routes_) {
    if (existing.method == route.method && existing.pattern == route.pattern) {
      throw std::invalid_argument("duplicate route: " + route.method + " " + pattern);
    }
  }
  routes_.push_back(std::move(route));
}

bool Router::match(const Route& route, const std::vector<std::string_view>& raw_segments) {
  if (route.segments.size() != raw_segments.size()) return false;
  for (std::size_t i = 0; i < raw_segments.size(); ++i) {
    const Segment& segment = route.segments[i];
    if (segment.is_param) {
      if (raw_segments[i].empty()) return false;
    } else {
      // Literal segments are compared decoded, so "/v1/re%63ords" still reaches "/v1/records".
      auto decoded = percentDecode(raw_segments[i]);
      if (!decoded || *decoded != segment.text) return false;
    }
  }
  return true;
}

const Router::Route* Router::find(Request& request, std::set<std::string>& allowed) const {
  const std::string_view target = request.target;
  const auto raw_segments = splitPath(target.substr(0, target.find('?')));
  for (const Route& route : routes_) {
    if (!match(route, raw_segments)) continue;
    if (route.method != request.method) {
      allowed.insert(route.method);
      continue;
    }
    request.route = route.pattern;
    request.path_params.clear();
    for (std::size_t i = 0; i < route.segments.size(); ++i) {
      if (!route.segments[i].is_param) continue;
      // parseTarget already rejected malformed escapes, so decoding cannot fail here.
      request.path_params[route.segments[i].text] = percentDecode(raw_segments[i]).value_or(std::string{});
    }
    return &route;
  }
  return nullptr;
}

Response Router::notRouted(const Request& request, const std::set<std::string>& allowed) {
  if (!allowed.empty()) {
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    Response r = errorResponse(makeError(ErrorCode::InvalidInput, "method " + request.method + " is not allowed here",
                                         "request method", "use one of: " + allow),
                               405);
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  return errorResponse(makeError(ErrorCode::NotFound, "no such endpoint", "request path",
                                 "check the method and URL against the API documentation"));
}

std::optional<Response> Router::admitHeaders(Request& request) const {
  std::set<std::string> allowed;
  const Route* route = find(request, allowed);
  if (route == nullptr) return notRouted(request, allowed);
  if (!route->check) return std::nullopt;
  return route->check(request);
}

void Router::dispatch(Request& request, Respond respond) const {
  std::set<std::string> allowed;
  const Route* route = find(request, allowed);
  if (route == nullptr) return respond(notRouted(request, allowed));
  route->handler(request, std::move(respond));
}

}  // namespace gw::http

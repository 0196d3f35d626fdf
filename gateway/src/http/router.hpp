#pragma once
// Method + path-pattern routing. Routes are registered at start-up and then only read, so one
// Router is shared by every io thread without locking.
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"

namespace gw::http {

/// Decides on a request's line and headers alone, before its body is read (request.body is still
/// empty; route and path_params are set): a Response refuses the request, and its body is never
/// read; nullopt lets it go on. Runs on an I/O thread: must not block.
using HeaderCheck = std::function<std::optional<Response>(Request&)>;

class Router {
 public:
  /// Registers `handler` for `method` on `pattern`, e.g. "/v1/records/{record_id}". A "{name}"
  /// segment matches one non-empty path segment (percent-decoded into path_params[name]).
  /// Throws std::invalid_argument on a malformed pattern or a duplicate route (start-up only).
  void add(std::string method, std::string pattern, Handler handler);
  /// The same, with `check` run on the headers first (see admitHeaders).
  void add(std::string method, std::string pattern, HeaderCheck check, Handler handler);

  /// The header phase, which the server runs before it reads a body: matches the route (sets
  /// route and path_params) and runs its HeaderCheck. Returns the answer that refuses the request
  /// (404 or 405 as dispatch() gives them, or the check's refusal), or nullopt to read the body
  /// and dispatch().
  std::optional<Response> admitHeaders(Request& request) const;

  /// Calls the matching handler. Unknown path -> 404; known path but no route for the method ->
  /// 405 with Allow. Both as OperationOutcome bodies.
  void dispatch(Request& request, Respond respond) const;

 private:
  struct Segment {
    std::string text;  // literal text, or the parameter name
    bool is_param = false;
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
    HeaderCheck check;
  };

  static bool match(const Route& route, const std::vector<std::string_view>& raw_segments);
  /// The route for the request's method and path (setting route and path_params), or nullptr and
  /// the methods the path allows.
  const Route* find(Request& request, std::set<std::string>& allowed) const;
  static Response notRouted(const Request& request, const std::set<std::string>& allowed);

  std::vector<Route> routes_;
};

}  // namespace gw::http

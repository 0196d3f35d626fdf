#pragma once
// Method + path-pattern routing. Routes are registered at start-up and then only read, so one
// Router is shared by every io thread without locking.
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"

namespace gw::http {

class Router {
 public:
  /// Registers `handler` for `method` on `pattern`, e.g. "/v1/records/{record_id}". A "{name}"
  /// segment matches one non-empty path segment (percent-decoded into path_params[name]).
  /// Throws std::invalid_argument on a malformed pattern or a duplicate route (start-up only).
  void add(std::string method, std::string pattern, Handler handler);

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
  };

  static bool match(const Route& route, const std::vector<std::string_view>& raw_segments);

  std::vector<Route> routes_;
};

}  // namespace gw::http

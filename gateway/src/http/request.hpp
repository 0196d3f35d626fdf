#pragma once
// What a handler sees of one HTTPS request, and what it answers. No Beast types here, so
// handler modules compile without the transport headers.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace gw::http {

/// The TLS client certificate of the connection, if one was presented.
struct ClientIdentity {
  bool verified = false;           // presented and chained to the configured client CA
  std::string subject;             // RFC 2253, e.g. "CN=clinic-c1,O=fhir-gateway development"
  std::string common_name;         // subject CN alone (empty if none)
  std::string fingerprint_sha256;  // lowercase hex SHA-256 of the DER certificate
};

struct Request {
  std::string method;                                        // "GET", "POST", ...
  std::string target;                                        // as received: path plus query, still percent-encoded
  std::string path;                                          // without query, percent-decoded
  std::multimap<std::string, std::string> query;             // decoded names and values, '+' read as space
  std::map<std::string, std::string> path_params;            // from "{name}" segments of the matched route
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;
  ClientIdentity client;
  std::string remote;      // "ip:port" of the peer
  std::string request_id;  // random; also sent back as X-Request-Id

  // Filled in while the request is handled; the server writes them into its request log line.
  std::string route;     // the matched pattern, e.g. "/v1/records/{record_id}" (set by Router)
  std::string token_id;  // set by handlers after authenticating (internal id, never the token)

  /// First header with this name (case-insensitive), or empty if absent.
  std::string_view header(std::string_view name) const;
  /// First query parameter with this name, if present.
  std::optional<std::string> queryParam(const std::string& name) const;
  /// Path parameter of the matched route, or empty if absent.
  std::string_view pathParam(const std::string& name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra headers, e.g. Location. Content-Length, Transfer-Encoding and Connection are the
  // server's and ignored here; X-Request-Id, Cache-Control and Strict-Transport-Security are
  // always set by the server.
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Answers a request. Call it exactly once, from any thread; extra calls are ignored and logged.
/// If every copy is destroyed without a call, the client gets a 500.
using Respond = std::function<void(Response)>;
/// Handles a request. May answer before returning or later (e.g. after a group commit). The
/// Request stays valid until Respond is called and must not be touched after that call (the
/// connection reuses it for the next request). Runs on an io thread: must not block.
using Handler = std::function<void(Request&, Respond)>;

/// Splits `target` ("/a/b%20c?x=1&y") into request.target, .path and .query. Fails
/// (InvalidInput) on a target that is not origin-form or holds a bad percent escape.
Status parseTarget(std::string_view target, Request& request);

/// Decodes %XX escapes (and '+' as space when `plus_as_space`); nullopt on a malformed escape.
std::optional<std::string> percentDecode(std::string_view text, bool plus_as_space = false);

/// A response with a JSON body.
Response jsonResponse(int status, std::string body);

/// The FHIR OperationOutcome for `e`, with status httpStatusFor(e.code):
/// {"resourceType":"OperationOutcome","issue":[{"severity":"error","code":...,
///  "diagnostics":"message (hint)","expression":[where]}]}. Unauthenticated adds
/// WWW-Authenticate: Bearer.
Response errorResponse(const Error& e);
/// Same body with an explicit status, for HTTP-level errors that have no ErrorCode of their own
/// (400 malformed HTTP, 405, 431, 505).
Response errorResponse(const Error& e, int status);

}  // namespace gw::http

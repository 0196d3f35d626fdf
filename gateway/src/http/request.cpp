#include "http/request.hpp"

#include <rapidjson/document.h>

#include "common/json.hpp"

namespace gw::http {
namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Error badTarget(std::string message) {
  // The target itself is not echoed: it may hold identifiers (MRNs) in its query.
  return makeError(ErrorCode::InvalidInput, std::move(message), "request target",
                   "send an origin-form target such as /v1/records?since=...; percent-encode reserved bytes as %XX");
}

}  // namespace

std::string_view Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (equalsIgnoreCase(key, name)) return value;
  }
  return {};
}

std::optional<std::string> Request::queryParam(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

std::string_view Request::pathParam(const std::string& name) const {
  auto it = path_params.find(name);
  if (it == path_params.end()) return {};
  return it->second;
}

std::optional<std::string> percentDecode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hexValue(text[i + 1]);
      const int lo = hexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Status parseTarget(std::string_view target, Request& request) {
  if (target.empty() || target.front() != '/') {
    return badTarget("the request target must start with '/'");
  }
  const std::size_t question = target.find('?');
  const std::string_view raw_path = target.substr(0, question);
  auto path = percentDecode(raw_path);
  if (!path) return badTarget("malformed percent escape in the path");
  // A NUL smuggled in through %00 has no business in a path and confuses C APIs downstream.
  if (path->find('\0') != std::string::npos) return badTarget("the path contains a NUL byte");

  std::multimap<std::string, std::string> query;
  if (question != std::string_view::npos) {
    std::string_view rest = target.substr(question + 1);
    while (!rest.empty()) {
      const std::size_t amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
      if (pair.empty()) continue;
      const std::size_t eq = pair.find('=');
      auto name = percentDecode(pair.substr(0, eq), true);
      auto value = eq == std::string_view::npos ? std::optional<std::string>(std::string{})
                                                : percentDecode(pair.substr(eq + 1), true);
      if (!name || !value) return badTarget("malformed percent escape in the query string");
      query.emplace(std::move(*name), std::move(*value));
    }
  }
  request.target = std::string(target);
  request.path = std::move(*path);
  request.query = std::move(query);
  return ok();
}

Response jsonResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response errorResponse(const Error& e) { return errorResponse(e, httpStatusFor(e.code)); }

Response errorResponse(const Error& e, int status) {
  Response r = jsonResponse(status, json::operationOutcome(e));
  r.content_type = "application/fhir+json";
  if (e.code == ErrorCode::Unauthenticated) {
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"fhir-gateway\"");
  }
  return r;
}

}  // namespace gw::http

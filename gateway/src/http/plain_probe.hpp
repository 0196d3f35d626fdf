#pragma once
// The client side of the plain loopback listener (plain_listener.hpp): one GET, for
// `fhir-gateway health`, which asks a running gateway whether it is ready without TLS, client
// certificates or tokens (so a container health check needs no secrets).
#include <chrono>
#include <cstdint>
#include <string>

#include "common/error.hpp"
#include "http/request.hpp"

namespace gw::http {

/// GETs `path` from http://`address`:`port` (a loopback address: anything else is refused with
/// ErrorCode::Config) within `timeout` for the whole exchange. The response's status, content
/// type and body (at most 64 KiB); an error when nothing answered (refused, timed out, not HTTP).
Result<Response> plainGet(const std::string& address, std::uint16_t port, const std::string& path,
                          std::chrono::milliseconds timeout);

}  // namespace gw::http

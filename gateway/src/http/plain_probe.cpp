#include "http/plain_probe.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http/plain_listener.hpp"

namespace gw::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

Result<Response> plainGet(const std::string& address, std::uint16_t port, const std::string& path,
                          std::chrono::milliseconds timeout) {
  const std::string where = address + ":" + std::to_string(port);
  if (!isLoopbackAddress(address)) {
    return makeError(ErrorCode::Config, "'" + address + "' is not a loopback address", "server.metrics_listen",
                     "the health probe speaks plain HTTP and so only to 127.0.0.0/8 or ::1");
  }
  beast::error_code ec;
  const auto ip = net::ip::make_address(address, ec);
  if (ec) return makeError(ErrorCode::Config, "'" + address + "' is not an IP address", "server.metrics_listen");

  // Asynchronous operations under one deadline for the whole exchange, run on this thread.
  net::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  bhttp::request<bhttp::empty_body> request{bhttp::verb::get, path, 11};
  request.set(bhttp::field::host, where);
  request.set(bhttp::field::user_agent, "fhir-gateway-health");
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024);
  beast::error_code failure;
  const char* stage = "connect to";
  stream.expires_after(timeout);
  stream.async_connect(tcp::endpoint(ip, port), [&](beast::error_code e) {
    if (e) return void(failure = e);
    stage = "send to";
    bhttp::async_write(stream, request, [&](beast::error_code e2, std::size_t) {
      if (e2) return void(failure = e2);
      stage = "read the answer of";
      bhttp::async_read(stream, buffer, parser, [&](beast::error_code e3, std::size_t) { failure = e3; });
    });
  });
  io.run();
  if (failure) {
    const std::string why = failure == beast::error::timeout ? "no answer within " + std::to_string(timeout.count()) + " ms"
                                                             : failure.message();
    return makeError(ErrorCode::Unavailable, std::string("cannot ") + stage + " " + where + ": " + why);
  }
  const auto& answer = parser.get();
  Response out;
  out.status = static_cast<int>(answer.result_int());
  out.content_type = std::string(answer[bhttp::field::content_type]);
  out.body = answer.body();
  return out;
}

}  // namespace gw::http

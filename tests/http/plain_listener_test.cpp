// The plain-HTTP metrics listener: loopback only, GET of one path, one request per connection.
#include "http/plain_listener.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace gw::http {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Sends `request` to 127.0.0.1:port and reads until the server closes.
std::string exchange(std::uint16_t port, const std::string& request) {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return "connect failed";
  }
  (void)::write(s, request.data(), request.size());
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = ::read(s, buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
  ::close(s);
  return out;
}

TEST(PlainListener, RefusesAnAddressOtherHostsCouldReach) {
  for (const char* address : {"0.0.0.0", "192.168.1.10", "::", "localhost"}) {
    auto started = PlainListener::start(address, 0, [](auto, auto) { return Response{}; });
    ASSERT_FALSE(started) << address;
    EXPECT_EQ(started.error().code, ErrorCode::Config);
    EXPECT_THAT(started.error().message, HasSubstr("loopback"));
  }
  EXPECT_TRUE(isLoopbackAddress("127.0.0.1"));
  EXPECT_TRUE(isLoopbackAddress("127.3.2.1"));
  EXPECT_TRUE(isLoopbackAddress("::1"));
  EXPECT_FALSE(isLoopbackAddress("10.0.0.1"));
}

TEST(PlainListener, AnswersGetWithTheHandlersPageAndRefusesOtherMethods) {
  auto started = PlainListener::start("127.0.0.1", 0, [](std::string_view, std::string_view path) {
    if (path != "/metrics") return Response{404, "text/plain", "no\n", {}};
    return Response{200, "text/plain; version=0.0.4", "gw_up 1\n", {}};
  });
  ASSERT_TRUE(started) << started.error().describe();
  auto& listener = *started.value();
  ASSERT_GT(listener.port(), 0);
  const std::string page = exchange(listener.port(), "GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_THAT(page, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(page, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(page, HasSubstr("\r\n\r\ngw_up 1\n"));
  EXPECT_THAT(exchange(listener.port(), "GET /v1/records HTTP/1.1\r\nHost: x\r\n\r\n"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(exchange(listener.port(), "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
              StartsWith("HTTP/1.1 405"));
  listener.stop();
  EXPECT_EQ(exchange(listener.port(), "GET /metrics HTTP/1.1\r\n\r\n"), "connect failed");
}

}  // namespace
}  // namespace gw::http

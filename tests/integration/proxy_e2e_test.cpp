// Outbound proxy (issue 11, point 4; docs/architecture.md §5.3): the real gateway reaches the
// real partner (Node + Medplum) through Debian's tinyproxy as an HTTP CONNECT proxy, with TLS
// end to end inside the tunnel; with the proxy down, deliveries retry with an error naming it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "child_process.hpp"
#include "common/ids.hpp"
#include "gateway_fixture.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::uint16_t freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool listening(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return up;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// tinyproxy in the foreground, allowing CONNECT to the partner's port only.
class Tinyproxy {
 public:
  // `extra`: more configuration lines, e.g. "BasicAuth user password\n".
  Tinyproxy(const std::string& dir, std::uint16_t port, std::uint16_t partner_port, const std::string& extra = "")
      : dir_(dir), port_(port) {
    std::ofstream(dir_ + "/tinyproxy.conf") << "Port " << port_ << "\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n"
                                            << "ConnectPort " << partner_port << "\nLogLevel Info\nMaxClients 20\n"
                                            << extra;
  }
  void start() {
    process_ = std::make_unique<ChildProcess>(std::vector<std::string>{"tinyproxy", "-d", "-c", dir_ + "/tinyproxy.conf"},
                                              dir_ + "/tinyproxy.out", dir_ + "/tinyproxy.err");
    ASSERT_TRUE(waitUntil([&] { return listening(port_); }, 5s)) << readFile(dir_ + "/tinyproxy.err");
  }
  void stop() {
    if (process_) process_->terminate();
    process_.reset();
  }
  std::string log() const { return readFile(dir_ + "/tinyproxy.out") + readFile(dir_ + "/tinyproxy.err"); }
  std::uint16_t port() const { return port_; }

 private:
  std::string dir_;
  std::uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
};

TEST(ProxyEndToEnd, DeliveryGoesThroughTheConnectProxyAndRetriesNamingItWhileItIsDown) {
  if (std::system("command -v tinyproxy >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "tinyproxy is not installed (gateway/scripts/install-deps.sh installs it)";
  }
  const std::string dir = (fs::temp_directory_path() / ("gw-proxy-" + ids::randomHex(6))).string();
  fs::create_directories(dir);
  Partner partner(dir, "partner-p");
  Tinyproxy proxy(dir, freePort(), partner.port());
  proxy.start();

  GatewayOptions options;
  options.partner_url = partner.baseUrl();
  options.partner_keys = R"("proxy_url": "http://127.0.0.1:)" + std::to_string(proxy.port()) + R"(",)";
  fs::create_directories(dir + "/gw");
  Gateway gateway(dir + "/gw", options);
  gateway.start();

  EXPECT_EQ(gateway.post(consentRecord("A12345", "st-mary", R"(["general","sud"])", "active", "77")).status, 202);
  EXPECT_EQ(gateway.post(prescriptionRecord("9001")).status, 202);
  ASSERT_TRUE(gateway.waitForDeliveries("c1:rx:9001", "delivered")) << gateway.status("c1:rx:9001").body << gateway.log();
  EXPECT_EQ(partner.count("MedicationRequest", kRxSystem, "9001"), 1);
  // It went through the tunnel: the proxy logged the CONNECT to the partner.
  EXPECT_THAT(proxy.log(), HasSubstr("CONNECT"));
  EXPECT_THAT(proxy.log(), HasSubstr(std::to_string(partner.port())));

  // The proxy is down: the item retries, and its error names the proxy.
  proxy.stop();
  EXPECT_EQ(gateway.post(prescriptionRecord("9002")).status, 202);
  const std::string named = "proxy 127.0.0.1:" + std::to_string(proxy.port());
  EXPECT_TRUE(waitUntil(
      [&] {
        const auto body = gateway.status("c1:rx:9002").body;
        return body.find("\"retrying\"") != std::string::npos && body.find(named) != std::string::npos;
      },
      20s))
      << gateway.status("c1:rx:9002").body;
  EXPECT_EQ(partner.count("MedicationRequest", kRxSystem, "9002"), 0);

  // Back up: the retry goes through.
  proxy.start();
  EXPECT_TRUE(gateway.waitForDeliveries("c1:rx:9002", "delivered")) << gateway.status("c1:rx:9002").body;
  EXPECT_EQ(partner.count("MedicationRequest", kRxSystem, "9002"), 1);
  proxy.stop();
}

// A proxy that asks for credentials: without the right ones the item retries and its error
// names the proxy's refusal (407, or 401 from tinyproxy); with proxy_auth_file holding them, the record goes through.
TEST(ProxyEndToEnd, AProxyAskingForCredentialsGetsThemFromTheAuthFile) {
  if (std::system("command -v tinyproxy >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "tinyproxy is not installed (gateway/scripts/install-deps.sh installs it)";
  }
  const std::string dir = (fs::temp_directory_path() / ("gw-proxy-auth-" + ids::randomHex(6))).string();
  fs::create_directories(dir);
  Partner partner(dir, "partner-pa");
  Tinyproxy proxy(dir, freePort(), partner.port(), "BasicAuth gateway s3cret-proxy-pass\n");
  proxy.start();

  const auto gatewayWith = [&](const std::string& name, const std::string& credentials) {
    const std::string auth_file = dir + "/" + name + ".auth";
    std::ofstream(auth_file) << credentials << "\n";
    fs::permissions(auth_file, fs::perms::owner_read | fs::perms::owner_write);
    GatewayOptions options;
    options.partner_url = partner.baseUrl();
    options.partner_keys = R"("proxy_url": "http://127.0.0.1:)" + std::to_string(proxy.port()) +
                           R"(", "proxy_auth_file": ")" + auth_file + R"(",)";
    fs::create_directories(dir + "/" + name);
    return std::make_unique<Gateway>(dir + "/" + name, options);
  };

  {
    auto refused = gatewayWith("gw-wrong", "gateway:not-the-password");
    refused->start();
    EXPECT_EQ(refused->post(consentRecord("A12345", "st-mary", R"(["general","sud"])", "active", "77")).status, 202);
    EXPECT_EQ(refused->post(prescriptionRecord("9101")).status, 202);
    EXPECT_TRUE(waitUntil(
        [&] {
          const auto body = refused->status("c1:rx:9101").body;
          return body.find("\"retrying\"") != std::string::npos &&
                 body.find("refused the tunnel: 40") != std::string::npos &&
                 body.find("proxy_auth_file") != std::string::npos;
        },
        20s))
        << refused->status("c1:rx:9101").body;
    EXPECT_EQ(partner.count("MedicationRequest", kRxSystem, "9101"), 0);
    // The credentials are a secret: the log names the file, never the password.
    EXPECT_THAT(refused->log(), ::testing::Not(HasSubstr("not-the-password")));
    refused->stop();
  }

  auto accepted = gatewayWith("gw-right", "gateway:s3cret-proxy-pass");
  accepted->start();
  EXPECT_EQ(accepted->post(consentRecord("A12345", "st-mary", R"(["general","sud"])", "active", "77")).status, 202);
  EXPECT_EQ(accepted->post(prescriptionRecord("9102")).status, 202);
  EXPECT_TRUE(accepted->waitForDeliveries("c1:rx:9102", "delivered")) << accepted->status("c1:rx:9102").body;
  EXPECT_EQ(partner.count("MedicationRequest", kRxSystem, "9102"), 1);
  EXPECT_THAT(accepted->log(), ::testing::Not(HasSubstr("s3cret-proxy-pass")));
  proxy.stop();
}

}  // namespace
}  // namespace gw::test

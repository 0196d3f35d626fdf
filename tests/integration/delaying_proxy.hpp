#pragma once
// Latency injection in front of the real partner for the end-to-end tests: a plain TCP proxy
// (TLS stays end to end between the gateway and the partner).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace gw::test {

// A TCP proxy on 127.0.0.1 that waits `connect_delay` before it connects each accepted
// connection to the partner, then copies bytes both ways (TLS stays end to end). Latency
// injection in front of the real partner: a send's connection takes that long to open.
class DelayingProxy {
 public:
  DelayingProxy(std::uint16_t upstream_port, std::chrono::milliseconds connect_delay)
      : upstream_port_(upstream_port), delay_(connect_delay) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 64) != 0) {
      throw std::runtime_error("proxy: cannot listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~DelayingProxy() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::lock_guard lock(mutex_);
    for (auto& t : sessions_) t.join();
  }
  std::uint16_t port() const { return port_; }
  /// Connections accepted so far (each is a connection the gateway opened to the partner).
  int accepted() const { return accepted_; }

 private:
  void acceptLoop() {
    while (!stopping_) {
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) return;
      ++accepted_;
      std::lock_guard lock(mutex_);
      sessions_.emplace_back([this, client] { serve(client); });
    }
  }
  void serve(int client) {
    std::this_thread::sleep_for(delay_);
    const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(upstream_port_);
    if (::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
      char buffer[16384];
      bool open = true;
      while (open && !stopping_) {
        if (::poll(fds, 2, 100) <= 0) continue;
        for (int i = 0; i < 2 && open; ++i) {
          if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
          const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
          if (n <= 0) {
            open = false;
            break;
          }
          for (ssize_t sent = 0; sent < n;) {
            const ssize_t w = ::write(fds[1 - i].fd, buffer + sent, static_cast<std::size_t>(n - sent));
            if (w <= 0) {
              open = false;
              break;
            }
            sent += w;
          }
        }
      }
    }
    ::close(upstream);
    ::close(client);
  }

  std::uint16_t upstream_port_;
  std::chrono::milliseconds delay_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::thread> sessions_;
};

}  // namespace gw::test

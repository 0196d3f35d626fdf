#include "support/connection_flood.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace gw::test {

IdleConnectionFlood::IdleConnectionFlood(std::uint16_t port, std::size_t count, std::string source_address)
    : port_(port), count_(count), source_address_(std::move(source_address)) {}

IdleConnectionFlood::~IdleConnectionFlood() { stop(); }

int IdleConnectionFlood::open() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source_address_.c_str(), &local.sin_addr);
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port_);
  inet_pton(AF_INET, "127.0.0.1", &server.sin_addr);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0 ||
      (::connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0 && errno != EINPROGRESS)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool IdleConnectionFlood::start() {
  sockets_.reserve(count_);
  for (std::size_t i = 0; i < count_; ++i) {
    const int fd = open();
    if (fd < 0) {
      for (int s : sockets_) ::close(s);
      sockets_.clear();
      return false;
    }
    sockets_.push_back(fd);
  }
  thread_ = std::thread([this] { run(); });
  return true;
}

void IdleConnectionFlood::run() {
  std::vector<pollfd> polled(sockets_.size());
  while (!stopping_) {
    for (std::size_t i = 0; i < sockets_.size(); ++i) {
      if (sockets_[i] < 0) sockets_[i] = open();  // poll ignores negative descriptors
      polled[i] = {sockets_[i], POLLIN | POLLRDHUP, 0};
    }
    if (::poll(polled.data(), polled.size(), 5) <= 0) continue;
    for (std::size_t i = 0; i < polled.size(); ++i) {
      if (polled[i].revents == 0) continue;
      // The server sends nothing to a connection that sent nothing: any event is its close.
      ::close(sockets_[i]);
      sockets_[i] = open();
      ++reconnects_;
    }
  }
}

void IdleConnectionFlood::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  for (int fd : sockets_) {
    if (fd >= 0) ::close(fd);
  }
  sockets_.clear();
}

bool ensureOpenFileLimit(std::size_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur >= wanted) return true;
  if (limit.rlim_max < wanted) return false;
  limit.rlim_cur = wanted;
  return setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

}  // namespace gw::test

#pragma once
// An attacker for the connection-flood tests: holds many idle plain TCP connections to a port (no
// TLS, not one byte sent) and reconnects each one the server closes, so the connection limit stays
// as full as the attacker can keep it. Loopback only.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace gw::test {

class IdleConnectionFlood {
 public:
  /// `source_address` is the local address the connections come from (any 127.x.y.z works on
  /// Linux), so a test can tell the attacker's address from its clients'.
  IdleConnectionFlood(std::uint16_t port, std::size_t count, std::string source_address = "127.0.0.1");
  ~IdleConnectionFlood();
  IdleConnectionFlood(const IdleConnectionFlood&) = delete;
  IdleConnectionFlood& operator=(const IdleConnectionFlood&) = delete;

  /// Opens `count` connections and keeps them open (reconnecting) until stop(). False if a
  /// socket could not be made (e.g. too few file descriptors).
  bool start();
  void stop();
  /// How many times the server closed one of them and it was opened again.
  std::size_t reconnects() const { return reconnects_.load(); }

 private:
  int open();
  void run();

  std::uint16_t port_;
  std::size_t count_;
  std::string source_address_;
  std::vector<int> sockets_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> reconnects_{0};
  std::thread thread_;
};

/// Raises the soft limit of open files to `wanted` (within the hard limit). False if it cannot.
bool ensureOpenFileLimit(std::size_t wanted);

}  // namespace gw::test

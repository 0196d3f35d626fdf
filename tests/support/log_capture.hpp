#pragma once
// Captures gw::log lines in tests, for behaviour that is about logging (privacy of log lines,
// handshake failures). Header-only: the including test links gw_common.
#include <chrono>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/log.hpp"

namespace gw::test {

/// Collects log lines while alive (the sink is process-global).
class LogCapture {
 public:
  LogCapture() {
    log::setSink([this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { log::setSink(nullptr); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  /// Lines holding every one of `parts`.
  std::vector<std::string> find(std::initializer_list<std::string_view> parts) const {
    std::vector<std::string> out;
    for (const auto& line : lines()) {
      bool all = true;
      for (auto part : parts) all = all && line.find(part) != std::string::npos;
      if (all) out.push_back(line);
    }
    return out;
  }
  /// Waits (briefly) for a line holding every one of `parts`; log lines of the server are
  /// written on io threads, possibly just after the client saw the response.
  bool waitFor(std::initializer_list<std::string_view> parts,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!find(parts).empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return !find(parts).empty();
  }
  std::string all() const {
    std::string out;
    for (const auto& line : lines()) out += line;
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace gw::test

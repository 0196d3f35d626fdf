#pragma once
// Runs a program as a child process with stdout and stderr sent to files, for integration tests
// that need a real process boundary (the gateway binary, the Node FHIR partner, SIGKILL).
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "support/test_files.hpp"  // readFile, for the child's output files

namespace gw::test {

class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string stdout_file, std::string stderr_file,
               std::string working_dir = {});
  ~ChildProcess();  // SIGTERM, then SIGKILL after 5 s
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool running();
  void signal(int sig);
  /// Waits for exit; returns the exit status (or 128+signal), nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  /// SIGKILL and reap.
  void kill();
  /// SIGTERM and reap; returns exit status.
  std::optional<int> terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  pid_t pid() const { return pid_; }  // -1 once reaped
  const std::string& stdoutFile() const { return stdout_file_; }
  const std::string& stderrFile() const { return stderr_file_; }

 private:
  pid_t pid_ = -1;
  int stdin_write_ = -1;
  std::string stdout_file_, stderr_file_;
};

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace gw::test

#pragma once
// Progress of long CLI work (`fhir-gateway import`, `records reprocess`) on standard error: a bar
// with rate and ETA redrawn in place on a terminal, plain lines every few seconds otherwise (a
// log file, a CI job). Standard output keeps only the result.
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace gw::app {

class ProgressBar {
 public:
  /// `label`: what is counted ("records", "rows"). `tty`: draw a bar (else plain lines); by
  /// default whether `out` is a terminal.
  explicit ProgressBar(std::string label, std::FILE* out = stderr, int tty = -1,
                       std::chrono::milliseconds line_every = std::chrono::seconds(5));
  ~ProgressBar();
  /// done of total (total 0: unknown). Redraws at most every 100 ms on a terminal.
  void update(std::size_t done, std::size_t total);
  /// The last state, and a newline on a terminal. Called by the destructor when not called.
  void finish();

  /// "[#########...........]  450/1000  45%  120.5/s  ETA 4s" (tests and the line form use it).
  static std::string render(const std::string& label, std::size_t done, std::size_t total, double seconds, bool bar);

 private:
  std::string label_;
  std::FILE* out_;
  bool tty_;
  std::chrono::milliseconds line_every_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point drawn_{};
  std::size_t done_ = 0, total_ = 0;
  bool finished_ = false;
  bool drawn_once_ = false;
};

}  // namespace gw::app

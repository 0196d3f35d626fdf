#pragma once
// Gives the pages that freed heap memory still holds back to the system, on a thread of its own.
//
// Why: ingest frees what a request prepared (a batch of 1,000 records is 20-40 MB of sealed
// payloads, plans and log entries) on the committer thread, in small pieces spread over glibc's
// per-thread arenas. glibc keeps such pages resident, so RSS grew by ~75 MB under NDJSON load
// with a 70 MB heap. malloc_trim(0) after each large commit kept the peak near 105 MB (issue 14);
// run on the committer it cost ~8% of NDJSON throughput, so it runs here instead.
// Requests coalesce: one that arrives while a trim runs causes at most one more. Built against
// another C library than glibc, a trim does nothing.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace gw {

class MemoryReturner {
 public:
  MemoryReturner();
  /// Asks the thread to stop (a trim that is running finishes) and joins it.
  ~MemoryReturner();
  MemoryReturner(const MemoryReturner&) = delete;
  MemoryReturner& operator=(const MemoryReturner&) = delete;

  /// Never blocks on a trim: wakes the thread, which trims once.
  void request();
  /// Trims done so far (for tests and metrics).
  std::uint64_t trims() const;

 private:
  void run(std::stop_token stop);

  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  bool requested_ = false;
  std::uint64_t trims_ = 0;
  std::jthread thread_;  // last: started once the members it uses exist
};

}  // namespace gw

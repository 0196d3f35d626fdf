#pragma once
// Requests that arrive together share one database transaction and one fsync; each is answered
// only after that commit (docs/threading.md §2.3). One thread owns the write path.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/memory_returner.hpp"
#include "ingest/ingest_stats.hpp"
#include "store/store.hpp"

namespace gw::ingest {

class GroupCommitter {
 public:
  using Done = std::function<void(Result<std::vector<store::IngestOutcome>>)>;

  /// Groups of at least this many records ask `memory` (when given) to return their freed pages.
  static constexpr std::size_t kReturnMemoryAfterRecords = 256;

  GroupCommitter(store::Store& store, const Clock& clock, MemoryReturner* memory = nullptr,
                 std::size_t max_batch_records = 2048);
  /// Commits what is queued, then stops.
  ~GroupCommitter();
  /// Commits what is queued (answering each request) and joins the thread; submits from then on
  /// are answered with an Unavailable error. Idempotent. The object stays usable for clock().
  void stop();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  /// Queues the writes; `done` runs on the committer thread after the commit (or its failure).
  void submit(std::vector<store::IngestWrite> writes, Done done);

  /// The clock commits are stamped with.
  const Clock& clock() const { return clock_; }

  /// Commits so far (for metrics and tests).
  std::uint64_t commitCount() const { return stats_.commits.value(); }
  const GroupCommitStats& stats() const { return stats_; }

 private:
  struct Pending {
    std::vector<store::IngestWrite> writes;
    Done done;
  };
  void run();

  store::Store& store_;
  const Clock& clock_;
  MemoryReturner* const memory_;
  const std::size_t max_batch_records_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  GroupCommitStats stats_;
  std::thread thread_;
};

}  // namespace gw::ingest

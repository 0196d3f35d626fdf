#pragma once
// A partner's senders record the outcomes of their attempts together: outcomes that arrive
// while a commit is running share the next one (one transaction, one fsync) instead of each
// waiting for its own. Every caller still returns only after its outcome is committed, so a
// sender's send-gate claim covers the recording of its outcome (docs/privacy.md §8.3).
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "common/error.hpp"
#include "store/store.hpp"

namespace gw::delivery {

class OutcomeBatcher {
 public:
  explicit OutcomeBatcher(store::Store& store) : store_(store) {}
  OutcomeBatcher(const OutcomeBatcher&) = delete;
  OutcomeBatcher& operator=(const OutcomeBatcher&) = delete;

  /// Records the outcome, alone or with others that arrived meanwhile, and returns once it is
  /// committed. When a shared commit fails, each outcome of it is tried again on its own, so
  /// one bad outcome never fails the others.
  Status record(store::OutboxOutcome outcome);

  /// Commits so far and outcomes they carried (for tests and metrics).
  std::uint64_t commits() const;
  std::uint64_t outcomes() const;
  /// Outcomes queued behind the commit that is running.
  std::size_t queued() const;

 private:
  struct Waiting {
    store::OutboxOutcome outcome;
    Status result = ok();
    bool done = false;
  };
  /// Runs on the caller that found no commit running (the leader), without the lock.
  void commit(const std::vector<Waiting*>& group);

  store::Store& store_;
  mutable std::mutex mutex_;
  std::condition_variable committed_;
  std::vector<Waiting*> queued_;  // guarded by mutex_
  bool committing_ = false;       // guarded by mutex_
  std::uint64_t commits_ = 0;     // guarded by mutex_
  std::uint64_t outcomes_ = 0;    // guarded by mutex_
};

}  // namespace gw::delivery

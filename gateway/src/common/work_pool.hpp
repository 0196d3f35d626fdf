#pragma once
// Threads for work that may block (database reads, audit appends that wait behind a group
// commit's fsync, file reads), so the threads that run the network never do.
//
// WorkPool: a fixed number of threads and a bounded queue. trySubmit() never blocks: when every
// thread is busy and the queue is full it refuses, and the caller answers "busy, retry later"
// (HTTP 503 with Retry-After) instead of letting work pile up without bound.
// JobQueue: one thread that runs jobs in order, plus periodic tasks (the retention purge).
// Both own their threads (std::jthread): stop() or the destructor asks them to stop, runs what
// was already accepted, and joins. One mutex each guards its queue; jobs run without it held.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/stats.hpp"

namespace gw {

#define ALL_WORK_POOL_STATS(COUNTER, GAUGE, HISTOGRAM)                                   \
  COUNTER(jobs_run, "Jobs the pool ran")                                                 \
  COUNTER(jobs_refused, "Jobs refused because every thread was busy and the queue full") \
  GAUGE(jobs_queued, "Jobs accepted and not yet started")                                \
  GAUGE(jobs_running, "Jobs running now")                                                \
  HISTOGRAM(queue_wait_us, "Time a job waited in the queue, in microseconds")
GW_DECLARE_STATS_STRUCT(WorkPoolStats, ALL_WORK_POOL_STATS);

class WorkPool {
 public:
  /// `threads` >= 1; `max_queued` jobs may wait beyond those running.
  WorkPool(std::string name, int threads, std::size_t max_queued);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  /// Queues `job`; false (and `job` dropped, not run) when the queue is full or the pool stopping.
  bool trySubmit(std::function<void()> job);

  /// Stops accepting, runs the jobs already queued, joins the threads. Idempotent.
  void stop();

  const WorkPoolStats& stats() const { return stats_; }
  const std::string& name() const { return name_; }

 private:
  struct Queued {
    std::function<void()> job;
    std::chrono::steady_clock::time_point queued_at;
  };
  void run(std::stop_token stop);

  const std::string name_;
  const std::size_t max_queued_;
  WorkPoolStats stats_;
  std::mutex mutex_;
  std::condition_variable_any ready_;
  std::deque<Queued> queue_;  // guarded by mutex_
  bool stopping_ = false;     // guarded by mutex_
  std::vector<std::jthread> threads_;
};

class JobQueue {
 public:
  explicit JobQueue(std::string name);
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  /// Runs `job` on the queue's thread after the jobs posted before it. Ignored once stopping.
  void post(std::function<void()> job);

  /// Runs `task` every `interval` (the first time `first_after` from now) while the queue runs,
  /// between jobs. Call before start().
  void every(std::chrono::steady_clock::duration interval, std::chrono::steady_clock::duration first_after,
             std::function<void()> task);

  /// Starts the thread.
  void start();
  /// Runs what was posted, then joins (a job in progress finishes). Idempotent.
  void stop();

 private:
  struct Periodic {
    std::chrono::steady_clock::duration interval;
    std::chrono::steady_clock::time_point next;
    std::function<void()> task;
  };
  void run(std::stop_token stop);

  const std::string name_;
  std::mutex mutex_;
  std::condition_variable_any ready_;
  std::deque<std::function<void()>> jobs_;  // guarded by mutex_
  std::vector<Periodic> periodic_;          // set before start(), then only the thread touches it
  bool stopping_ = false;                   // guarded by mutex_
  std::jthread thread_;
};

}  // namespace gw

#include "common/work_pool.hpp"

#include <algorithm>

namespace gw {

WorkPool::WorkPool(std::string name, int threads, std::size_t max_queued) : name_(std::move(name)), max_queued_(max_queued) {
  const int n = std::max(threads, 1);
  threads_.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) threads_.emplace_back([this](std::stop_token stop) { run(stop); });
}

WorkPool::~WorkPool() { stop(); }

bool WorkPool::trySubmit(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queued_) {
      stats_.jobs_refused.inc();
      return false;
    }
    queue_.push_back({std::move(job), std::chrono::steady_clock::now()});
    stats_.jobs_queued.set(static_cast<std::int64_t>(queue_.size()));
  }
  ready_.notify_one();
  return true;
}

void WorkPool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  for (auto& t : threads_) t.request_stop();
  ready_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WorkPool::run(std::stop_token stop) {
  for (;;) {
    Queued next;
    {
      std::unique_lock lock(mutex_);
      // Woken by a job or by stop; queued jobs still run after a stop request.
      ready_.wait(lock, stop, [this] { return !queue_.empty(); });
      if (queue_.empty()) return;  // stop requested and nothing left
      next = std::move(queue_.front());
      queue_.pop_front();
      stats_.jobs_queued.set(static_cast<std::int64_t>(queue_.size()));
      stats_.jobs_running.add(1);
    }
    stats_.queue_wait_us.recordMicros(std::chrono::steady_clock::now() - next.queued_at);
    next.job();
    stats_.jobs_running.sub(1);
    stats_.jobs_run.inc();
  }
}

JobQueue::JobQueue(std::string name) : name_(std::move(name)) {}

JobQueue::~JobQueue() { stop(); }

void JobQueue::post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
}

void JobQueue::every(std::chrono::steady_clock::duration interval, std::chrono::steady_clock::duration first_after,
                     std::function<void()> task) {
  periodic_.push_back({interval, std::chrono::steady_clock::now() + first_after, std::move(task)});
}

void JobQueue::start() {
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

void JobQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    thread_.request_stop();
    ready_.notify_all();
    thread_.join();
  }
}

void JobQueue::run(std::stop_token stop) {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      const auto has_job = [this] { return !jobs_.empty(); };
      if (periodic_.empty()) {
        ready_.wait(lock, stop, has_job);
      } else {
        const auto next = std::min_element(periodic_.begin(), periodic_.end(), [](const Periodic& a, const Periodic& b) {
                            return a.next < b.next;
                          })->next;
        ready_.wait_until(lock, stop, next, has_job);
      }
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      } else if (stop.stop_requested()) {
        return;  // everything posted has run
      }
    }
    if (job) {
      job();
      continue;
    }
    if (stop.stop_requested()) continue;  // drain the posted jobs first
    const auto now = std::chrono::steady_clock::now();
    for (auto& p : periodic_) {
      if (p.next > now) continue;
      p.task();
      p.next = std::chrono::steady_clock::now() + p.interval;
    }
  }
}

}  // namespace gw

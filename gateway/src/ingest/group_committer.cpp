#include "ingest/group_committer.hpp"

#include "common/log.hpp"

namespace gw::ingest {

GroupCommitter::GroupCommitter(store::Store& store, const Clock& clock, MemoryReturner* memory,
                               std::size_t max_batch_records)
    : store_(store), clock_(clock), memory_(memory), max_batch_records_(max_batch_records), thread_([this] { run(); }) {}

GroupCommitter::~GroupCommitter() { stop(); }

void GroupCommitter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void GroupCommitter::submit(std::vector<store::IngestWrite> writes, Done done) {
  {
    std::unique_lock lock(mutex_);
    if (stopping_) {
      lock.unlock();
      return done(makeError(ErrorCode::Unavailable, "the gateway is stopping; nothing was stored", "",
                            "retry against a running gateway"));
    }
    queue_.push_back({std::move(writes), std::move(done)});
    stats_.requests_waiting.set(static_cast<std::int64_t>(queue_.size()));
  }
  wake_.notify_one();
}

void GroupCommitter::run() {
  while (true) {
    std::vector<Pending> batch;
    std::size_t records = 0;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      // Take whole requests until the batch is full; a single large request still goes alone.
      while (!queue_.empty() && (batch.empty() || records + queue_.front().writes.size() <= max_batch_records_)) {
        records += queue_.front().writes.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      stats_.requests_waiting.set(static_cast<std::int64_t>(queue_.size()));
    }
    std::vector<store::IngestWrite> all;
    all.reserve(records);
    for (auto& p : batch) {
      for (auto& w : p.writes) all.push_back(std::move(w));
    }
    const auto started = std::chrono::steady_clock::now();
    auto result = store_.ingest(all, clock_.now());
    stats_.commit_us.recordMicros(std::chrono::steady_clock::now() - started);
    stats_.commit_requests.record(static_cast<double>(batch.size()));
    stats_.commits.inc();
    if (!result) {
      stats_.commit_failures.inc();
      GW_LOG(Error, Ingest, "commit_failed").kv("requests", batch.size()).kv("error", result.error().message);
      for (auto& p : batch) p.done(result.error());
      continue;
    }
    stats_.records_committed.inc(all.size());
    std::size_t offset = 0;
    for (auto& p : batch) {
      const std::size_t n = p.writes.size();
      std::vector<store::IngestOutcome> mine(result.value().begin() + static_cast<std::ptrdiff_t>(offset),
                                             result.value().begin() + static_cast<std::ptrdiff_t>(offset + n));
      offset += n;
      p.done(std::move(mine));
    }
    if (memory_ != nullptr && records >= kReturnMemoryAfterRecords) {
      // The group's payloads are freed first, so that the trim finds their pages free.
      all = {};
      batch = {};
      memory_->request();
    }
  }
}

}  // namespace gw::ingest

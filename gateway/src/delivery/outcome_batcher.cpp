#include "delivery/outcome_batcher.hpp"

#include <utility>

namespace gw::delivery {

Status OutcomeBatcher::record(store::OutboxOutcome outcome) {
  Waiting mine{std::move(outcome)};
  std::unique_lock lock(mutex_);
  queued_.push_back(&mine);
  while (!mine.done) {
    if (committing_) {
      committed_.wait(lock);
      continue;
    }
    // No commit running: this caller commits everything queued, its own outcome included
    // (or, when its own was taken by the group before, the ones that queued since).
    committing_ = true;
    std::vector<Waiting*> group;
    group.swap(queued_);
    lock.unlock();
    commit(group);
    lock.lock();
    committing_ = false;
    ++commits_;
    outcomes_ += group.size();
    for (Waiting* w : group) w->done = true;
    committed_.notify_all();
  }
  return std::move(mine.result);
}

void OutcomeBatcher::commit(const std::vector<Waiting*>& group) {
  if (group.size() == 1) {
    std::vector<store::OutboxOutcome> one{group.front()->outcome};
    group.front()->result = store_.recordOutcomes(std::move(one));
    return;
  }
  std::vector<store::OutboxOutcome> all;
  all.reserve(group.size());
  for (const Waiting* w : group) all.push_back(w->outcome);
  if (auto shared = store_.recordOutcomes(std::move(all)); shared) return;
  for (Waiting* w : group) {
    std::vector<store::OutboxOutcome> one{w->outcome};
    w->result = store_.recordOutcomes(std::move(one));
  }
}

std::uint64_t OutcomeBatcher::commits() const {
  std::lock_guard lock(mutex_);
  return commits_;
}

std::uint64_t OutcomeBatcher::outcomes() const {
  std::lock_guard lock(mutex_);
  return outcomes_;
}

std::size_t OutcomeBatcher::queued() const {
  std::lock_guard lock(mutex_);
  return queued_.size();
}

}  // namespace gw::delivery

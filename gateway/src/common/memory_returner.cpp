#include "common/memory_returner.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace gw {

MemoryReturner::MemoryReturner() : thread_([this](std::stop_token stop) { run(stop); }) {}

MemoryReturner::~MemoryReturner() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void MemoryReturner::request() {
  {
    std::lock_guard lock(mutex_);
    requested_ = true;
  }
  wake_.notify_one();
}

std::uint64_t MemoryReturner::trims() const {
  std::lock_guard lock(mutex_);
  return trims_;
}

void MemoryReturner::run(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (wake_.wait(lock, stop, [this] { return requested_; })) {
    requested_ = false;
    lock.unlock();
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    lock.lock();
    ++trims_;
  }
}

}  // namespace gw

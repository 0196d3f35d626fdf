#include "common/work_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <latch>
#include <mutex>
#include <vector>

namespace gw {
namespace {

using namespace std::chrono_literals;

TEST(WorkPool, RefusesWhenEveryThreadIsBusyAndTheQueueFull) {
  WorkPool pool("test", 1, 1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::latch started(1);
  ASSERT_TRUE(pool.trySubmit([&] {
    started.count_down();
    released.wait();
  }));
  started.wait();  // the one thread is busy
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.trySubmit([&] { ++ran; }));   // waits in the queue
  EXPECT_FALSE(pool.trySubmit([&] { ++ran; }));  // no room: refused, not run
  EXPECT_EQ(pool.stats().jobs_refused.value(), 1u);
  EXPECT_EQ(pool.stats().jobs_queued.value(), 1);
  release.set_value();
  pool.stop();
  EXPECT_EQ(ran.load(), 1) << "the queued job ran; the refused one never did";
  EXPECT_EQ(pool.stats().jobs_run.value(), 2u);
}

TEST(WorkPool, StopRunsWhatWasAcceptedAndRefusesTheRest) {
  std::atomic<int> ran{0};
  WorkPool pool("test", 2, 100);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.trySubmit([&] { ++ran; }));
  pool.stop();
  EXPECT_EQ(ran.load(), 50);
  EXPECT_FALSE(pool.trySubmit([&] { ++ran; }));
  pool.stop();  // idempotent
}

TEST(JobQueue, RunsJobsInOrderAndPeriodicTasksBetweenThem) {
  std::mutex m;
  std::vector<int> order;
  std::atomic<int> ticks{0};
  std::promise<void> ticked;
  JobQueue jobs("test");
  jobs.every(1ms, 0ms, [&] {
    if (++ticks == 3) ticked.set_value();
  });
  jobs.start();
  for (int i = 0; i < 5; ++i) {
    jobs.post([&, i] {
      std::lock_guard lock(m);
      order.push_back(i);
    });
  }
  ASSERT_EQ(ticked.get_future().wait_for(5s), std::future_status::ready);
  jobs.stop();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  jobs.post([&] { order.push_back(99); });  // ignored once stopped
  EXPECT_EQ(order.size(), 5u);
}

TEST(JobQueue, StopRunsThePostedJobsFirst) {
  std::atomic<int> ran{0};
  JobQueue jobs("test");
  jobs.start();
  for (int i = 0; i < 20; ++i) jobs.post([&] { ++ran; });
  jobs.stop();
  EXPECT_EQ(ran.load(), 20);
}

}  // namespace
}  // namespace gw

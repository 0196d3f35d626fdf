#include "common/memory_returner.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/sanitized_build.hpp"

namespace gw {
namespace {

bool waitForTrims(const MemoryReturner& r, std::uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (r.trims() < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return r.trims() >= n;
}

TEST(MemoryReturnerTest, TrimsOnceAskedAndNotBefore) {
  MemoryReturner r;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(r.trims(), 0U);
  r.request();
  EXPECT_TRUE(waitForTrims(r, 1));
  r.request();
  EXPECT_TRUE(waitForTrims(r, 2));
}

TEST(MemoryReturnerTest, RequestsThatArriveTogetherCoalesce) {
  MemoryReturner r;
  for (int i = 0; i < 1000; ++i) r.request();
  EXPECT_TRUE(waitForTrims(r, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_LE(r.trims(), 2U) << "each request made a trim of its own";
}

TEST(MemoryReturnerTest, StopsPromptlyWhenDestroyed) {
  const auto start = std::chrono::steady_clock::now();
  { MemoryReturner r; }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

#if defined(__GLIBC__)
long residentAnonKb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  long kb = 0;
  while (status >> key) {
    if (key == "RssAnon:") {
      status >> kb;
      return kb;
    }
  }
  return -1;
}

// What ingest does to the heap: many small blocks allocated on one thread, most freed, a few
// kept in between. glibc keeps those pages; after a trim they are the system's again.
TEST(MemoryReturnerTest, GivesFreedPagesBackToTheSystem) {
  if (test::kSanitizedBuild) GTEST_SKIP() << "AddressSanitizer's allocator is not glibc's";
  std::vector<std::unique_ptr<char[]>> kept;
  std::thread([&] {
    std::vector<std::unique_ptr<char[]>> blocks;
    for (int i = 0; i < 200000; ++i) {
      blocks.push_back(std::make_unique<char[]>(512));
      blocks.back()[0] = 1;  // touched: resident
    }
    for (std::size_t i = 0; i < blocks.size(); i += 64) kept.push_back(std::move(blocks[i]));
  }).join();
  const long before = residentAnonKb();
  MemoryReturner r;
  r.request();
  ASSERT_TRUE(waitForTrims(r, 1));
  const long after = residentAnonKb();
  EXPECT_LT(after, before - 40 * 1024) << "RssAnon " << before << " kB before the trim, " << after << " kB after";
}
#endif

}  // namespace
}  // namespace gw

// The send gate (docs/privacy.md §8.3): a consent change waits for the sends of its patient and
// partner claimed before it, never for later ones, other patients or other partners, and never
// longer than its bound; a claim runs its re-check under the same lock as the change.
#include "outbox/send_gate.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace gw::outbox {
namespace {

using namespace std::chrono_literals;

TEST(SendGate, AChangeWaitsForTheSendsOfItsPatientAndPartnerClaimedBeforeIt) {
  SendGate gate(5s);
  auto claim = gate.claim("p1", "a", [] { return true; });
  ASSERT_TRUE(claim.held());
  auto other_patient = gate.claim("p2", "a", [] { return true; });
  auto other_partner = gate.claim("p1", "b", [] { return true; });
  EXPECT_EQ(gate.sending(), 3u);

  std::atomic<bool> applied{false};
  auto change = std::async(std::launch::async, [&] { return gate.change("p1", "a", [&] { applied = true; }); });
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(applied) << "the registry changes at once";
  EXPECT_EQ(change.wait_for(0ms), std::future_status::timeout) << "the answer waits for the send in flight";
  // A claim made after the change does not hold it up.
  auto later = gate.claim("p1", "a", [] { return true; });
  claim.reset();
  EXPECT_TRUE(change.get()) << "released: the change is answered, while other claims are still held";
  EXPECT_EQ(gate.sending(), 3u);
}

TEST(SendGate, AClaimIsRefusedWhenTheRecheckSaysNoAndTheWaitIsBounded) {
  SendGate gate(100ms);
  EXPECT_FALSE(gate.claim("p1", "a", [] { return false; }).held());
  EXPECT_EQ(gate.sending(), 0u);
  EXPECT_TRUE(gate.change("p1", "a", [] {})) << "nothing in flight: no wait";
  auto stuck = gate.claim("p1", "a", [] { return true; });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(gate.change("p1", "a", [] {})) << "the bound passed with the send still in flight";
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
}

}  // namespace
}  // namespace gw::outbox

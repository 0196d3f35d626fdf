#pragma once
// No send starts after a consent change is acknowledged (docs/privacy.md §8.3). A partner worker
// takes the decision again and claims the item (it is then `sending`) under the gate's lock; a
// consent version enters the registry under the same lock, and then waits, within a bound, for
// the sends of that patient to that partner that were claimed before it to finish (their outcome
// recorded). So every send that starts after the change was decided under it, and by the time the
// change is answered no send decided under the older version is still going.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace gw::outbox {

class SendGate {
 public:
  /// `drain_bound`: how long a change waits for the sends in flight it found (the partners'
  /// connect and request timeouts bound each send, so the caller derives it from them).
  explicit SendGate(std::chrono::milliseconds drain_bound) : drain_bound_(drain_bound) {}
  SendGate(const SendGate&) = delete;
  SendGate& operator=(const SendGate&) = delete;

  /// An item being sent; released (and waiting changes woken) when destroyed.
  class Claim {
   public:
    Claim() = default;
    Claim(Claim&& other) noexcept : gate_(other.gate_), key_(std::move(other.key_)), id_(other.id_) {
      other.gate_ = nullptr;
    }
    Claim& operator=(Claim&& other) noexcept {
      if (this != &other) {
        reset();
        gate_ = other.gate_;
        key_ = std::move(other.key_);
        id_ = other.id_;
        other.gate_ = nullptr;
      }
      return *this;
    }
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    ~Claim() { reset(); }
    bool held() const { return gate_ != nullptr; }
    /// Releases the claim now.
    void reset() noexcept;

   private:
    friend class SendGate;
    Claim(SendGate* gate, std::string key, std::uint64_t id) : gate_(gate), key_(std::move(key)), id_(id) {}
    SendGate* gate_ = nullptr;
    std::string key_;
    std::uint64_t id_ = 0;
  };

  /// Runs `may_send` (the re-check) under the gate; when it says yes, the item is claimed until
  /// the returned Claim is destroyed. Otherwise the Claim is empty.
  Claim claim(std::string_view patient_key, std::string_view partner_id, const std::function<bool()>& may_send);

  /// Runs `apply` (the registry write) under the gate, then waits until the sends of the patient
  /// to the partner claimed before it are released, at most the drain bound. Returns false when
  /// the bound passed with sends still in flight.
  bool change(std::string_view patient_key, std::string_view partner_id, const std::function<void()>& apply);

  /// Items being sent now (all partners).
  std::size_t sending() const;

 private:
  static std::string keyOf(std::string_view patient_key, std::string_view partner_id);
  void release(const std::string& key, std::uint64_t id);

  const std::chrono::milliseconds drain_bound_;
  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::map<std::string, std::set<std::uint64_t>> sending_;  // guarded by mutex_: claims by patient and partner
  std::uint64_t next_id_ = 0;                               // guarded by mutex_
};

}  // namespace gw::outbox

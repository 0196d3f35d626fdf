#include "outbox/send_gate.hpp"

#include <algorithm>
#include <vector>

namespace gw::outbox {

std::string SendGate::keyOf(std::string_view patient_key, std::string_view partner_id) {
  std::string key(patient_key);
  key += '\n';
  key += partner_id;
  return key;
}

void SendGate::Claim::reset() noexcept {
  if (gate_ != nullptr) gate_->release(key_, id_);
  gate_ = nullptr;
}

SendGate::Claim SendGate::claim(std::string_view patient_key, std::string_view partner_id,
                                const std::function<bool()>& may_send) {
  std::lock_guard lock(mutex_);
  if (!may_send()) return {};
  auto key = keyOf(patient_key, partner_id);
  const auto id = ++next_id_;
  sending_[key].insert(id);
  return Claim(this, std::move(key), id);
}

void SendGate::release(const std::string& key, std::uint64_t id) {
  {
    std::lock_guard lock(mutex_);
    auto it = sending_.find(key);
    if (it != sending_.end()) {
      it->second.erase(id);
      if (it->second.empty()) sending_.erase(it);
    }
  }
  released_.notify_all();
}

bool SendGate::change(std::string_view patient_key, std::string_view partner_id, const std::function<void()>& apply) {
  std::unique_lock lock(mutex_);
  apply();
  const auto key = keyOf(patient_key, partner_id);
  auto it = sending_.find(key);
  if (it == sending_.end()) return true;
  // Only the sends claimed before the change: later claims were decided under it.
  const std::vector<std::uint64_t> before(it->second.begin(), it->second.end());
  return released_.wait_for(lock, drain_bound_, [&] {
    auto now = sending_.find(key);
    if (now == sending_.end()) return true;
    return std::none_of(before.begin(), before.end(), [&](std::uint64_t id) { return now->second.contains(id); });
  });
}

std::size_t SendGate::sending() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [key, ids] : sending_) n += ids.size();
  return n;
}

}  // namespace gw::outbox

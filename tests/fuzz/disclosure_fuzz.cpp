// Fuzzes the disclosure record of an outbox item as it is read back from the database before each
// send (outbox/recheck.cpp, delivery/partner_worker.cpp): a damaged row must be an error, never a
// crash, and whatever is accepted must survive a write/read round trip unchanged.
#include <cstdint>
#include <string_view>

#include "outbox/disclosure.hpp"

namespace {

bool same(const gw::outbox::Disclosure& a, const gw::outbox::Disclosure& b) {
  if (a.purpose != b.purpose || a.patient_key != b.patient_key || a.resources.size() != b.resources.size()) return false;
  for (std::size_t i = 0; i < a.resources.size(); ++i) {
    const auto& x = a.resources[i];
    const auto& y = b.resources[i];
    if (x.resource_type != y.resource_type || x.resource_id != y.resource_id || x.classes != y.classes ||
        x.activity_classes != y.activity_classes || x.plan_classes != y.plan_classes || x.outcome != y.outcome ||
        x.removed_activities != y.removed_activities || x.consent_id != y.consent_id ||
        x.consent_version != y.consent_version) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = gw::outbox::parseDisclosure(text);
  if (!parsed) {
    if (parsed.error().hint.empty()) __builtin_trap();
    return 0;
  }
  for (const auto& r : parsed.value().resources) {
    // Never send on a guess: every accepted entry has a known outcome and at least one class.
    if (r.classes.empty() || (r.outcome != gw::consent::Outcome::Permit && r.outcome != gw::consent::Outcome::Redact))
      __builtin_trap();
  }
  auto again = gw::outbox::parseDisclosure(gw::outbox::toJson(parsed.value()));
  if (!again || !same(parsed.value(), again.value())) __builtin_trap();
  return 0;
}

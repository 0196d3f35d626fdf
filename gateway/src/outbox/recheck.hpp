#pragma once
// The decision taken again right before an item is sent (docs/privacy.md §8.1): a consent
// may have been revoked, narrowed or may have expired since the item was queued. The item goes
// only if every resource in it would be disclosed now exactly as it was queued (a permit still a
// permit, a redaction removing the same activities); otherwise it is cancelled as a whole, and
// each resource that may no longer go gets a "cancel" entry in the decision log. Anything that
// cannot be decided (an unreadable disclosure record) cancels: default deny.
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "consent/consent_registry.hpp"
#include "store/audit_log.hpp"
#include "store/store.hpp"

namespace gw::outbox {

struct RecheckResult {
  bool send = false;
  std::string reason;                            // why not (first resource that may not go), no PHI
  std::vector<store::AuditEntry> cancellations;  // filled when !send
};

RecheckResult recheckItem(const store::OutboxItem& item, const consent::ConsentRegistry& registry, SystemTime now,
                          std::string_view policy_version);

}  // namespace gw::outbox

#include "outbox/recheck.hpp"

#include "outbox/disclosure.hpp"

namespace gw::outbox {
namespace {

store::AuditEntry cancellation(const store::OutboxItem& item, std::string_view purpose, std::string_view patient_key,
                               std::string_view resource_type, std::string_view resource_id, privacy::ClassSet classes,
                               std::string reason, const consent::Decision* decision, SystemTime now,
                               std::string_view policy_version) {
  auto e = store::AuditEntryBuilder(store::AuditKind::Cancel, store::AuditOutcome::Cancelled, "gateway", toUnixMillis(now));
  e.clinic(item.clinic)
      .patient(patient_key)
      .partner(item.partner_id, purpose)
      .resource(resource_type, resource_id, classes)
      .reason(std::move(reason))
      .policy(policy_version)
      .detail(R"({"outbox_item":)" + std::to_string(item.id) + "}");
  if (decision != nullptr && decision->consent) {
    e.consent(decision->consent->clinic + "/" + decision->consent->consent_id, decision->consent->version);
  }
  return std::move(e).build();
}

}  // namespace

RecheckResult recheckItem(const store::OutboxItem& item, const consent::ConsentRegistry& registry, SystemTime now,
                          std::string_view policy_version) {
  RecheckResult result;
  auto disclosure = parseDisclosure(item.disclosure);
  if (!disclosure || disclosure.value().resources.empty()) {
    result.reason = "undecidable: the item's disclosure record is missing or unreadable";
    result.cancellations.push_back(
        cancellation(item, "", item.patient_key, "", "", {}, result.reason, nullptr, now, policy_version));
    return result;
  }
  const auto& d = disclosure.value();
  // A consent's new version passed on to a partner that holds the older one (a revocation) is
  // not data the consent permits: it goes whatever the consent now says (docs/privacy.md §8.4).
  if (d.consent_update) {
    result.send = true;
    return result;
  }
  for (const auto& r : d.resources) {
    consent::DecisionRequest request;
    request.patient_key = d.patient_key;
    request.partner_id = item.partner_id;
    request.purpose = d.purpose;
    request.at = now;
    request.classes = r.classes;
    request.activity_classes = r.activity_classes;
    request.plan_classes = r.plan_classes;
    const auto decision = registry.decide(request);
    const bool same_outcome = decision.outcome == r.outcome &&
                              (r.outcome != consent::Outcome::Redact || decision.removed_activities == r.removed_activities);
    // The Bundle carries the Consent it was permitted under: under another consent (or version)
    // it would travel with the wrong copy, so it is re-planned rather than sent.
    // An emergency disclosure goes only while its own grant is in force (docs/privacy.md §7.1):
    // after it expires or is ended the decision is a deny (or another basis) and the item is cancelled.
    const bool same_consent = r.break_glass_id.empty()
                                  ? decision.consent &&
                                        decision.consent->clinic + "/" + decision.consent->consent_id == r.consent_id &&
                                        decision.consent->version == r.consent_version
                                  : decision.break_glass && decision.break_glass->id == r.break_glass_id;
    if (same_outcome && same_consent) continue;
    std::string reason = !decision.disclosable() ? consent::reasonText(decision)
                         : !same_outcome         ? "decision-changed:" + std::string(consent::outcomeName(decision.outcome))
                                                 : "consent-changed";
    if (result.reason.empty()) result.reason = reason;
    result.cancellations.push_back(cancellation(item, d.purpose, d.patient_key, r.resource_type, r.resource_id, r.classes,
                                                std::move(reason), &decision, now, policy_version));
  }
  result.send = result.cancellations.empty();
  return result;
}

}  // namespace gw::outbox

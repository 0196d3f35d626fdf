#pragma once
// What was decided for each resource of an outbox item, kept beside its Bundle so the decision
// can be taken again right before each send (a consent may be revoked or narrowed in between).
// Holds ids, classes and consent references only: no clinical values.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "consent/decision.hpp"
#include "privacy/data_class.hpp"

namespace gw::outbox {

struct DisclosedResource {
  std::string resource_type;
  std::string resource_id;
  privacy::ClassSet classes;
  /// For a CarePlan: the classes of each activity as mapped (before any redaction), so the
  /// re-check can tell whether the same activities would still be removed.
  std::vector<privacy::ClassSet> activity_classes;
  privacy::ClassSet plan_classes;                     // CarePlan: the plan apart from its activities
  consent::Outcome outcome = consent::Outcome::Deny;  // Permit or Redact (a denied resource is not sent)
  std::vector<std::uint32_t> removed_activities;      // redact: indexes of the activities left out
  std::string consent_id;                             // "<clinic>/<consent id>" the decision relied on
  int consent_version = 0;
  /// A permit under an emergency disclosure (docs/privacy.md §7.1): its id; consent_id is then
  /// empty. The re-check sends it only while that same grant is in force.
  std::string break_glass_id;
};

struct Disclosure {
  std::string purpose;      // purpose of use, e.g. TREAT
  std::string patient_key;  // the patient's lookup key (store::LookupKeys)
  std::vector<DisclosedResource> resources;
  /// The consents ("<clinic>/<consent id>") whose FHIR Consent the Bundle carries (Part 2 data,
  /// docs/privacy.md §7): a later version of one is passed on to the partner (§8.4).
  std::vector<std::string> consent_copies;
  /// False for items queued before the copies were recorded: which consents they carried is
  /// then inferred (a resource with sud data names its consent).
  bool consent_copies_known = true;
  /// The item passes a consent's new version (a revocation) on to a partner that received the
  /// consent: its only resource is that Consent, sent whatever the consent now permits (§8.4).
  bool consent_update = false;
};

std::string toJson(const Disclosure& d);
/// A malformed value is an error: the caller must then deny (never send on a guess).
Result<Disclosure> parseDisclosure(std::string_view json);

}  // namespace gw::outbox

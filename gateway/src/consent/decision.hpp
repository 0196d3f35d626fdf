#pragma once
// A consent decision for one resource, partner, purpose and instant (docs/privacy.md §5).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/time_zone.hpp"
#include "consent/consent_version.hpp"
#include "privacy/data_class.hpp"

namespace gw::consent {

/// An emergency disclosure (42 CFR 2.51, docs/privacy.md §7.1) as decisions see it: while
/// opened_ms <= instant < expires_ms, what no consent permits of the patient's classified data
/// goes to the partner all the same, labelled and noticed as an emergency disclosure.
struct BreakGlassGrant {
  std::string id;
  std::string clinic;
  std::string patient_key;
  std::string partner_id;
  std::int64_t opened_ms = 0;
  std::int64_t expires_ms = 0;  // the earlier of its expiry and the time it was ended by hand
  bool operator==(const BreakGlassGrant&) const = default;
};

struct DecisionRequest {
  std::string_view patient_key;
  std::string_view partner_id;
  std::string_view purpose;  // "TREAT", "HPAYMT" or "HOPERAT"; anything else is denied
  /// When the decision is taken (queueing, each send attempt), never the record's date. Inside a
  /// consent: from the start bound on, before the end (a date-only end: before the next local
  /// day starts), before the revocation takes effect.
  SystemTime at{};
  /// Every class of the resource as labelled (a CarePlan's include its activities'). Empty =
  /// unclassified: always denied.
  privacy::ClassSet classes;
  /// CarePlan only, one entry per activity in order; empty for every other resource (and for a
  /// plan without activities), which are then permitted or denied whole.
  std::span<const privacy::ClassSet> activity_classes;
  /// CarePlan only: the classes of the plan itself apart from its activities (sud for a Part 2
  /// program's plan, else general). Left empty, `classes` is used, which rules out redaction.
  privacy::ClassSet plan_classes;
};

enum class Outcome : std::uint8_t { Permit, Redact, Deny };

enum class Reason : std::uint8_t {
  None,               // permit
  NoConsent,          // no consent of this patient names the partner
  Expired,            // the instant is past the consent's end
  NotYetValid,        // the instant is before the consent's start
  Revoked,            // the consent's revocation has taken effect
  PurposeNotCovered,  // the consent does not list the purpose
  ClassNotCovered,    // a class of the resource is not among the consent's categories (see missing)
  Unclassified,       // the resource (or an activity) has no class
  InvalidRequest,     // empty key, unknown purpose, activity classes that contradict `classes`
  InternalError,      // anything unexpected while deciding (default deny)
  BreakGlass,         // permit: no consent covers it, an emergency disclosure does (42 CFR 2.51)
};

std::string_view outcomeName(Outcome o);                     // "permit", "redact", "deny"
std::optional<Outcome> parseOutcome(std::string_view name);  // the inverse; nullopt for anything else
std::string_view reasonName(Reason r);                       // "none", "no-consent", "expired", "not-yet-valid", ...

struct Decision {
  Outcome outcome = Outcome::Deny;  // default deny
  Reason reason = Reason::InternalError;
  /// ClassNotCovered: the classes the consent lacks. Redact: the classes of the removed activities.
  privacy::ClassSet missing;
  /// Permit: the resource's classes. Redact: plan classes plus those of the kept activities
  /// (label the redacted CarePlan with these).
  privacy::ClassSet disclosed;
  /// Permit/redact: the consent used. Deny: the consent that came closest to permitting, when one
  /// names the partner (for the audit log); null for no-consent and request problems.
  std::shared_ptr<const ConsentVersion> consent;
  /// Redact: indexes into activity_classes of the activities to remove, ascending.
  std::vector<std::uint32_t> removed_activities;
  /// Expired, not-yet-valid, revoked: the bound that decided, as "end:local-day" or
  /// "revoked:instant" (how it was read: docs/privacy.md §5.6); empty otherwise.
  std::string_view time_bound;
  /// The zone the consent's date-only bounds were read in (its clinic's); null without a consent.
  std::shared_ptr<const tz::TimeZone> zone;
  /// Permit with reason BreakGlass: the emergency disclosure it goes under (consent is null).
  std::shared_ptr<const BreakGlassGrant> break_glass;

  bool permitted() const { return outcome == Outcome::Permit; }
  bool disclosable() const { return outcome != Outcome::Deny; }
};

/// The audit log's reason: "none", "no-consent", "class-not-covered:sud", "class-not-covered:general,mh".
std::string reasonText(const Decision& d);
/// "permit", "deny:no-consent", "deny:class-not-covered:sud", "redact:class-not-covered:mh".
std::string describe(const Decision& d);

}  // namespace gw::consent

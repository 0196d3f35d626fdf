#pragma once
// Decides, for one record's classified and labelled resources, what each partner may receive
// (docs/privacy.md §5, §7) and builds the transaction Bundles for it:
//  - every (resource, partner) pair gets a consent decision, and an audit entry saying so;
//  - a resource is sent only with its Patient: when the Patient is denied, so is the rest;
//  - a CarePlan whose activities a consent covers only in part is sent redacted;
//  - Part 2 data travels with the redisclosure notice (on each such resource's meta) and the
//    Consent it was permitted under, in the same Bundle; the Bundle carries the highest labels.
// Used at ingest and when a new consent makes held records disclosable.
#include <rapidjson/document.h>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "config/gateway_config.hpp"
#include "consent/consent_registry.hpp"
#include "outbox/transaction_bundle.hpp"
#include "privacy/classifier.hpp"
#include "store/audit_log.hpp"
#include "store/store.hpp"

namespace gw::ingest {

/// One resource of a record after classification and labelling.
struct ClassifiedResource {
  std::string resource_type;
  std::string id;
  std::string identifier_system;
  std::string identifier_value;
  const rapidjson::Value* resource = nullptr;  // labelled FHIR JSON; not owned
  privacy::Classification classification;
  std::vector<privacy::ClassSet> activity_classes;  // CarePlan: one per activity
  privacy::ClassSet plan_classes;                   // CarePlan: the plan apart from its activities
  outbox::EntryMethod method = outbox::EntryMethod::ConditionalUpdate;
};

/// A resource an earlier version of the record made and this one does not: deleted at partners
/// that receive this version.
struct DroppedResource {
  std::string resource_type;
  std::string identifier_system;
  std::string identifier_value;
  privacy::ClassSet classes;  // as stored: a partner gets the DELETE only if it may know of it
};

struct RecordFacts {
  std::string clinic;
  std::string record_key;   // pseudonymous record id (audit detail)
  std::string patient_key;  // the patient's lookup key (store::LookupKeys)
  bool part2 = false;       // from a 42 CFR Part 2 program
};

struct PlannedItem {
  std::string partner_id;
  std::string bundle;  // transaction Bundle JSON
  int entry_count = 0;
  std::string disclosure;     // outbox::Disclosure JSON: re-decided before each send
  privacy::ClassSet classes;  // of what the Bundle holds (its storage key)
};

struct DisclosurePlan {
  std::vector<PlannedItem> items;
  std::vector<store::AuditEntry> audit;  // one decision per (resource, partner)
  /// The same decisions as `audit`, in its order, as the store keeps them (what each partner was
  /// last disclosed or held, docs/privacy.md §8.2): outcome and reason of the final log entries.
  std::vector<store::ResourceDecision> decisions;
  std::vector<std::string> partners;  // partners that receive something, in config order
};

/// The configurable parts of the policy.
struct DisclosurePolicy {
  std::string part2_notice;    // text attached to Part 2 data (privacy.part2_notice)
  std::string policy_version;  // written into every decision's audit entry (privacy.policy_version)
};

/// Returns the stored FHIR JSON of a Consent resource by id (to send it with Part 2 data).
using ConsentResourceLoader = std::function<Result<std::string>(std::string_view resource_id)>;

/// Consents of the same request as the record, not committed yet: the record is decided as the
/// commit will leave things (the request's consents and the record commit together or not at all).
struct PendingConsents {
  /// The affected patients' current consents plus the request's; decides for those patients only.
  std::unique_ptr<consent::ConsentRegistry> registry;
  std::set<std::string, std::less<>> patients;                // patient keys it covers
  std::map<std::string, std::string, std::less<>> resources;  // Consent resource id -> FHIR JSON

  bool covers(std::string_view patient_key) const { return patients.find(patient_key) != patients.end(); }
};

class DisclosurePlanner {
 public:
  /// `partners` (in the order decisions are taken and logged) must outlive the planner.
  DisclosurePlanner(const std::vector<config::Partner>& partners, DisclosurePolicy policy,
                    const privacy::Classifier& classifier, const consent::ConsentRegistry& registry,
                    ConsentResourceLoader load_consent);

  /// Decides for every configured partner (or only `only_partner` when not empty). A partner whose
  /// Part 2 disclosure cannot carry its Consent (the copy cannot be read) gets nothing: its
  /// decisions are logged as denies (consent-copy-unavailable). Fails only when a redaction or a
  /// notice cannot be applied: the caller must then queue nothing for the record.
  /// `pending`, when it covers the record's patient, decides instead of the registry and supplies
  /// the Consent resources not stored yet.
  Result<DisclosurePlan> plan(const RecordFacts& record, const std::vector<ClassifiedResource>& resources,
                              const std::vector<DroppedResource>& dropped, SystemTime now,
                              std::string_view only_partner = {}, const PendingConsents* pending = nullptr) const;

  /// Classifies and labels one mapped resource in place (labels per docs/privacy.md §3).
  static Status classifyAndLabel(const privacy::Classifier& classifier, bool part2, rapidjson::Document& resource,
                                 ClassifiedResource& out);

 private:
  struct PartnerBuild;
  Status attachConsent(const consent::ConsentVersion& consent, PartnerBuild& build, const PendingConsents* pending) const;

  const std::vector<config::Partner>& partners_;
  DisclosurePolicy policy_;
  const privacy::Classifier& classifier_;
  const consent::ConsentRegistry& registry_;
  ConsentResourceLoader load_consent_;
};

}  // namespace gw::ingest

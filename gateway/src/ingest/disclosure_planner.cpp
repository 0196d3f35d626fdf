#include "ingest/disclosure_planner.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <deque>
#include <memory>

#include "common/json.hpp"
#include "common/log.hpp"
#include "outbox/disclosure.hpp"
#include "privacy/labels.hpp"
#include "privacy/redaction.hpp"

namespace gw::ingest {
namespace {

std::string consentKey(const consent::ConsentVersion& v) { return v.clinic + "/" + v.consent_id; }

// A JSON object with string members, for the audit entry's detail (ids and codes only).
std::string detailJson(std::initializer_list<std::pair<std::string_view, std::string_view>> members,
                       const std::vector<std::string>& removed = {}) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  for (const auto& [k, v] : members) {
    if (v.empty()) continue;
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    json::writeString(w, v);
  }
  if (!removed.empty()) {
    w.Key("removed_activities");
    w.StartArray();
    for (const auto& kind : removed) json::writeString(w, kind);
    w.EndArray();
  }
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace

// One partner's entries under construction. Documents that the Bundle reads (redacted plans,
// resources with the Part 2 notice, attached Consents) live in `owned` until it is built.
struct DisclosurePlanner::PartnerBuild {
  std::vector<outbox::BundleEntry> entries;
  std::vector<privacy::Classification> disclosed;
  outbox::Disclosure disclosure;
  std::deque<rapidjson::Document> owned;
  privacy::ClassSet classes;
  std::vector<std::shared_ptr<const consent::ConsentVersion>> part2_consents;
};

DisclosurePlanner::DisclosurePlanner(const std::vector<config::Partner>& partners, DisclosurePolicy policy,
                                     const privacy::Classifier& classifier, const consent::ConsentRegistry& registry,
                                     ConsentResourceLoader load_consent)
    : partners_(partners),
      policy_(std::move(policy)),
      classifier_(classifier),
      registry_(registry),
      load_consent_(std::move(load_consent)) {}

Status DisclosurePlanner::attachConsent(const consent::ConsentVersion& consent, PartnerBuild& build,
                                        const PendingConsents* pending) const {
  std::string text;
  const auto posted = [&]() -> const std::string* {
    if (pending == nullptr) return nullptr;
    const auto found = pending->resources.find(consent.resource_id);
    return found == pending->resources.end() ? nullptr : &found->second;
  }();
  if (posted != nullptr) {
    text = *posted;  // posted in the same request: not stored yet
  } else {
    auto stored = load_consent_(consent.resource_id);
    if (!stored) return stored.error();
    text = std::move(stored).value();
  }
  auto& doc = build.owned.emplace_back();
  // json::parse caps the nesting: a damaged stored row is an error, never a stack overflow.
  if (!json::parse(text, doc) || !doc.IsObject()) {
    return makeError(ErrorCode::Internal, "the stored Consent resource " + consent.resource_id + " is unreadable",
                     "resources", "re-post the consent record");
  }
  const auto* ids = json::find(doc, "identifier");
  if (ids == nullptr || !ids->IsArray() || ids->Empty()) {
    return makeError(ErrorCode::Internal, "the stored Consent resource " + consent.resource_id + " has no identifier",
                     "resources", "check the consent mapper: it must set Consent.identifier");
  }
  // In every part of a split Bundle: no part of a Part 2 disclosure travels without it.
  build.entries.push_back({"Consent", consent.resource_id, std::string(json::getString((*ids)[0], "system")),
                           std::string(json::getString((*ids)[0], "value")), &doc, outbox::EntryMethod::ConditionalUpdate,
                           true});
  return ok();
}

Status DisclosurePlanner::classifyAndLabel(const privacy::Classifier& classifier, bool part2, rapidjson::Document& resource,
                                           ClassifiedResource& out) {
  out.classification = classifier.classify(resource, part2);
  if (out.resource_type == "CarePlan") {
    out.activity_classes = classifier.classifyCarePlanActivities(resource, part2);
    out.plan_classes = classifier.classifyCarePlanOwn(resource, part2);
  }
  GW_TRY(privacy::applyLabels(resource, out.classification));
  out.resource = &resource;
  return ok();
}

Result<DisclosurePlan> DisclosurePlanner::plan(const RecordFacts& record, const std::vector<ClassifiedResource>& resources,
                                               const std::vector<DroppedResource>& dropped, SystemTime now,
                                               std::string_view only_partner, const PendingConsents* pending) const {
  DisclosurePlan plan;
  if (pending != nullptr && !pending->covers(record.patient_key)) pending = nullptr;
  const consent::ConsentRegistry& registry = pending != nullptr ? *pending->registry : registry_;
  const std::int64_t at_ms = toUnixMillis(now);

  // The Patient the other resources are about: they go only where it may go.
  const ClassifiedResource* patient = nullptr;
  for (const auto& r : resources) {
    if (r.resource_type == "Patient") patient = &r;
  }

  for (const auto& partner : partners_) {
    if (!only_partner.empty() && partner.id != only_partner) continue;
    PartnerBuild build;
    build.disclosure.purpose = partner.purpose_of_use;
    build.disclosure.patient_key = record.patient_key;

    const auto decideFor = [&](const ClassifiedResource& r) {
      consent::DecisionRequest request;
      request.patient_key = record.patient_key;
      request.partner_id = partner.id;
      request.purpose = partner.purpose_of_use;
      request.at = now;
      request.classes = r.classification.classes;
      request.activity_classes = r.activity_classes;
      request.plan_classes = r.plan_classes;
      return registry.decide(request);
    };
    const auto audit = [&](const ClassifiedResource& r, store::AuditOutcome outcome, std::string reason,
                           const consent::Decision& decision, std::string labels,
                           const std::vector<std::string>& removed = {},
                           const std::vector<std::uint32_t>& removed_activities = {}) {
      store::ResourceDecision planned;
      planned.partner_id = partner.id;
      planned.resource_type = r.resource_type;
      planned.resource_id = r.id;
      planned.removed_activities = removed_activities;
      plan.decisions.push_back(std::move(planned));  // outcome and reason: from the final entry, below
      const auto& consent = decision.consent;
      // How the consent's time bounds were read (local days of which zone, or instants), and the
      // bound that decided a time reason: docs/privacy.md §5.6.
      const std::string bounds = consent ? consent::boundForms(*consent) : std::string();
      auto e = store::AuditEntryBuilder(store::AuditKind::Decision, outcome, "gateway", at_ms);
      e.clinic(record.clinic)
          .patient(record.patient_key)
          .partner(partner.id, partner.purpose_of_use)
          .resource(r.resource_type, r.id, r.classification.classes)
          .labels(std::move(labels))
          .reason(std::move(reason))
          .policy(policy_.policy_version)
          .detail(detailJson({{"record_key", record.record_key},
                              {"consent_bounds", bounds},
                              {"time_zone", decision.zone && consent ? std::string_view(decision.zone->name()) : ""},
                              {"time_bound", decision.time_bound}},
                             removed));
      if (consent) e.consent(consentKey(*consent), consent->version);
      plan.audit.push_back(std::move(e).build());
    };

    std::optional<consent::Decision> patient_decision;
    if (patient != nullptr) patient_decision = decideFor(*patient);
    const bool patient_denied = patient_decision && !patient_decision->disclosable();

    for (const auto& r : resources) {
      consent::Decision decision = &r == patient ? *patient_decision : decideFor(r);
      const std::string labels = privacy::labelsFor(r.classification).names();
      if (!decision.disclosable()) {
        audit(r, store::AuditOutcome::Deny, consent::reasonText(decision), decision, labels);
        continue;
      }
      if (patient_denied && &r != patient) {
        // Data about a patient the partner may not learn of would identify them all the same.
        audit(r, store::AuditOutcome::Deny, "patient-not-disclosed:" + consent::reasonText(*patient_decision), decision,
              labels);
        continue;
      }
      const rapidjson::Value* body = r.resource;
      privacy::Classification disclosed = r.classification;
      std::vector<std::string> removed;
      if (decision.outcome == consent::Outcome::Redact) {
        auto& copy = build.owned.emplace_back();
        copy.CopyFrom(*r.resource, copy.GetAllocator());
        auto redaction = privacy::removeCarePlanActivities(copy, decision.removed_activities, classifier_, record.part2);
        if (!redaction) return redaction.error();
        removed = redaction.value().removed_kinds;
        disclosed = redaction.value().after;
        body = &copy;
      }
      if (disclosed.classes.has(privacy::DataClass::Sud)) {
        // 42 CFR 2.32 (docs/privacy.md §7, for every permitted sud disclosure): the notice
        // travels inside the resource, so it cannot be separated from it.
        rapidjson::Document* target = nullptr;
        if (body == r.resource) {
          auto& copy = build.owned.emplace_back();
          copy.CopyFrom(*r.resource, copy.GetAllocator());
          target = &copy;
        } else {
          target = &build.owned.back();
        }
        GW_TRY(privacy::attachPart2Notice(*target, policy_.part2_notice, target->GetAllocator()));
        body = target;
        if (decision.consent && std::none_of(build.part2_consents.begin(), build.part2_consents.end(), [&](const auto& c) {
              return c->resource_id == decision.consent->resource_id;
            })) {
          build.part2_consents.push_back(decision.consent);
        }
      }
      const std::string sent_labels = privacy::labelsFor(disclosed).names() + (removed.empty() ? "" : ",REDACTED");
      audit(r, decision.outcome == consent::Outcome::Redact ? store::AuditOutcome::Redact : store::AuditOutcome::Permit,
            consent::reasonText(decision), decision, sent_labels, removed, decision.removed_activities);
      build.entries.push_back({r.resource_type, r.id, r.identifier_system, r.identifier_value, body, r.method});
      build.disclosed.push_back(disclosed);
      build.classes.add(disclosed.classes);
      outbox::DisclosedResource d;
      d.resource_type = r.resource_type;
      d.resource_id = r.id;
      d.classes = r.classification.classes;
      d.activity_classes = r.activity_classes;
      d.plan_classes = r.plan_classes;
      d.outcome = decision.outcome;  // permit or redact: denied resources were skipped above
      d.removed_activities = decision.removed_activities;
      if (decision.consent) {
        d.consent_id = consentKey(*decision.consent);
        d.consent_version = static_cast<int>(decision.consent->version);
      }
      build.disclosure.resources.push_back(std::move(d));
    }
    // Nothing but the Patient (from a record about something else) is not worth a disclosure;
    // its permit is logged as what happened: nothing was disclosed.
    const bool only_stub = build.entries.size() == 1 && build.entries[0].method == outbox::EntryMethod::ConditionalCreate;
    if (only_stub) {
      for (auto& e : plan.audit) {
        if (e.partner_id == partner.id && e.outcome == store::AuditOutcome::Permit) {
          e.outcome = store::AuditOutcome::Deny;
          e.reason = "nothing-else-disclosed";
        }
      }
    }
    if (build.entries.empty() || only_stub) continue;

    // The Consent each Part 2 disclosure relies on goes with it (42 CFR 2.32(b)); without it
    // the disclosure may not happen at all: the partner's decisions become denies.
    std::string missing_copy;
    for (const auto& consent : build.part2_consents) {
      auto attached = attachConsent(*consent, build, pending);
      if (!attached) {
        GW_LOG(Error, Consent, "consent_copy_unavailable")
            .kv("partner", partner.id)
            .kv("record_key", record.record_key)
            .kv("error", attached.error().describe());
        missing_copy = "consent-copy-unavailable";
        break;
      }
      build.disclosure.consent_copies.push_back(consentKey(*consent));
    }
    if (!missing_copy.empty()) {
      for (auto& e : plan.audit) {
        if (e.partner_id != partner.id || e.at_ms != at_ms || e.kind != store::AuditKind::Decision) continue;
        if (e.outcome == store::AuditOutcome::Deny) continue;
        e.outcome = store::AuditOutcome::Deny;
        e.reason = missing_copy;
      }
      continue;
    }
    // A DELETE names the resource: only partners that may know of it get one.
    for (const auto& d : dropped) {
      consent::DecisionRequest request;
      request.patient_key = record.patient_key;
      request.partner_id = partner.id;
      request.purpose = partner.purpose_of_use;
      request.at = now;
      request.classes = d.classes;
      if (!registry.decide(request).permitted()) continue;
      build.entries.push_back(
          {d.resource_type, "", d.identifier_system, d.identifier_value, nullptr, outbox::EntryMethod::ConditionalDelete});
    }

    rapidjson::Document security_doc;
    const auto security = privacy::securityCodings(privacy::bundleLabels(build.disclosed), security_doc.GetAllocator());
    const std::string disclosure_json = outbox::toJson(build.disclosure);
    for (auto& built : outbox::buildTransactionBundles(build.entries, partner.max_bundle_entries, &security)) {
      plan.items.push_back({partner.id, std::move(built.json), built.entry_count, disclosure_json, build.classes});
    }
    plan.partners.push_back(partner.id);
  }
  // Each decision as finally logged (a permit may have become a deny above).
  for (std::size_t i = 0; i < plan.decisions.size(); ++i) {
    plan.decisions[i].outcome = plan.audit[i].outcome;
    plan.decisions[i].reason = plan.audit[i].reason;
    if (plan.decisions[i].outcome != store::AuditOutcome::Redact) plan.decisions[i].removed_activities.clear();
  }
  return plan;
}

}  // namespace gw::ingest

#include "ingest/ingest_service.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "outbox/disclosure.hpp"
#include "outbox/recheck.hpp"
#include "outbox/transaction_bundle.hpp"

namespace gw::ingest {

std::string IngestService::forClients(std::string text) const {
  // Mapper errors cite mapper files by absolute path, which tells a client about the server's
  // file system; clients see the path relative to the mapping folder (engineers have both).
  for (const auto& dir : parts_.settings.private_dirs) {
    if (dir.empty()) continue;
    std::string prefix = dir.string();
    if (prefix.back() != '/') prefix += '/';
    for (std::size_t p; (p = text.find(prefix)) != std::string::npos;) text.erase(p, prefix.size());
  }
  return text;
}

struct IngestService::Prepared {
  RecordResult result;                             // what the caller learns; disposition and version filled after commit
  store::IngestWrite write;                        // moved to the committer
  std::optional<consent::ConsentVersion> consent;  // a consent record's version, entered after commit
  static constexpr std::uint64_t kNotDecided = ~std::uint64_t{0};
  std::uint64_t registry_generation = kNotDecided;  // of the registry its decisions were taken under
  std::string patient_key;                          // write.patient_key, kept after the write moves out
};

IngestService::IngestService(IngestParts parts)
    : parts_(std::move(parts)),
      pipeline_(*parts_.rules, parts_.settings.pipeline),
      planner_(parts_.settings.partners, parts_.settings.policy, *parts_.rules->classifier, parts_.registry,
               [store = &parts_.store](std::string_view id) -> Result<std::string> {
                 GW_TRY(auto body, store->resourceBody("Consent", id));
                 if (!body) {
                   return makeError(ErrorCode::Internal, "the Consent resource " + std::string(id) + " is not stored",
                                    "resources", "re-post the consent record");
                 }
                 return std::move(*body);
               }) {}

IngestService::Prepared IngestService::prepare(const rapidjson::Value& record, std::size_t index, const Submitter& submitter,
                                               std::string_view only_partner, const PendingConsents* pending) const {
  Prepared prepared;
  auto& result = prepared.result;
  result.index = index;
  ProcessedRecord p = pipeline_.process(record, {}, &submitter.clinics);
  result.record_id = p.record_id;
  if (p.known_type) result.metric_type = p.record_type;
  if (!p.accepted()) {
    result.reject_class = p.stage;
    for (auto& e : p.errors) result.errors.push_back({std::move(e.path), forClients(e.text()), {}});
    return prepared;
  }

  auto& w = prepared.write;
  w.clinic = p.clinic;
  w.record_id = p.record_id;
  w.record_type = p.record_type;
  w.content_hash = canonicalHash(record, &w.payload);
  // Stored and logged as the patient's lookup key, never as the MRN or the FHIR id made from it.
  w.patient_key = parts_.store.lookupKeys().patientOfResource(p.patient_id);
  if (p.consent) p.consent->patient_key = w.patient_key;
  w.classes = p.classes;
  w.state = p.state;
  result.state = p.state;
  result.record_key = ids::recordKey(parts_.settings.record_key_secret, p.clinic, p.record_id);
  if (p.state == store::RecordState::Unmapped) return prepared;
  if (p.state == store::RecordState::Invalid) {
    w.error = p.invalid_outcome;
    result.invalid_outcome = std::move(p.invalid_outcome);
    return prepared;
  }
  for (std::size_t i = 0; i < p.resources.size(); ++i) {
    const auto& r = p.resources[i];
    w.resources.push_back({r.resource_type, r.id, r.identifier_system, r.identifier_value, json::toString(r.resource),
                           p.classified[i].classification.classes});
    result.resources.push_back(r.resource_type + "/" + r.id);
  }

  if (p.consent) {
    auto candidate = *p.consent;
    candidate.version = parts_.registry.latestVersion(candidate.clinic, candidate.consent_id) + 1;
    if (auto admissible = parts_.registry.admissible(candidate); !admissible) {
      result.errors.push_back(
          {"consent.status",
           admissible.error().message + (admissible.error().hint.empty() ? "" : " (" + admissible.error().hint + ")")});
      return prepared;
    }
    w.consent = consent::toRow(*p.consent);  // the store numbers the version
    // The registration itself is in the log: who may receive what, from when (no content).
    w.audit.push_back(store::AuditEntryBuilder(store::AuditKind::Consent, store::AuditOutcome::Ok, submitter.token_id,
                                               toUnixMillis(parts_.committer.clock().now()))
                          .clinic(candidate.clinic)
                          .patient(w.patient_key)
                          .partner(candidate.partner_id, consent::purposeSetName(candidate.purposes))
                          .resource("Consent", candidate.resource_id, candidate.classes)
                          .consent(candidate.clinic + "/" + candidate.consent_id, 0)  // the store assigns the version
                          .reason(std::string(consent::statusName(candidate.status)))
                          .policy(parts_.settings.policy.policy_version)
                          .detail(R"({"record_key":")" + result.record_key + R"("})")
                          .build());
    if (!auditableOrRejected(prepared)) return prepared;
    prepared.consent = std::move(p.consent);
    return prepared;  // a Consent is sent only with the Part 2 data it permits
  }

  std::vector<ClassifiedResource> classified = std::move(p.classified);
  if (p.stub_classified) classified.insert(classified.begin(), std::move(*p.stub_classified));

  // A newer version that no longer makes a resource (an item removed from a harm-reduction
  // service) deletes it where this version goes.
  std::vector<DroppedResource> dropped;
  if (auto previous = parts_.store.resourceKeys(p.clinic, p.record_id); previous) {
    for (const auto& old : previous.value()) {
      const bool kept = std::any_of(p.resources.begin(), p.resources.end(), [&](const auto& r) {
        return r.resource_type == old.resource_type && r.id == old.resource_id;
      });
      if (!kept) dropped.push_back({old.resource_type, old.identifier_system, old.identifier_value, old.classes});
    }
  } else {
    result.errors.push_back({"record", "the gateway could not read this record's earlier version; retry later"});
    return prepared;
  }

  prepared.registry_generation = parts_.registry.generation();
  prepared.patient_key = w.patient_key;
  const RecordFacts facts{p.clinic, result.record_key, w.patient_key, p.part2};
  auto plan = planner_.plan(facts, classified, dropped, parts_.committer.clock().now(), only_partner, pending);
  if (!plan) {
    GW_LOG(Error, Ingest, "disclosure_plan_failed").kv("record_key", result.record_key).kv("error", plan.error().describe());
    result.errors.push_back({"record",
                             "the gateway could not prepare this record's disclosures; nothing was stored"
                             " (retry later, and tell the gateway's operators if it persists)"});
    return prepared;
  }
  for (auto& item : plan.value().items) {
    w.outbox.push_back(
        {std::move(item.partner_id), std::move(item.bundle), item.entry_count, item.classes, std::move(item.disclosure)});
  }
  if (parts_.stats != nullptr) {
    for (const auto& e : plan.value().audit) {
      if (e.outcome == store::AuditOutcome::Permit) parts_.stats->decisions_permit.inc();
      if (e.outcome == store::AuditOutcome::Redact) parts_.stats->decisions_redact.inc();
      if (e.outcome == store::AuditOutcome::Deny) parts_.stats->decisions_deny.inc();
    }
  }
  if (parts_.breakdown != nullptr) {
    for (const auto& e : plan.value().audit) {
      if (e.outcome == store::AuditOutcome::Permit) parts_.breakdown->addDecision(consent::Outcome::Permit, e.reason);
      if (e.outcome == store::AuditOutcome::Redact) parts_.breakdown->addDecision(consent::Outcome::Redact, e.reason);
      if (e.outcome == store::AuditOutcome::Deny) parts_.breakdown->addDecision(consent::Outcome::Deny, e.reason);
    }
  }
  w.audit = std::move(plan.value().audit);
  w.decisions = std::move(plan.value().decisions);
  result.queued_for = std::move(plan.value().partners);
  // Sealed here, on one of the request threads, rather than on the one committer thread.
  if (auditableOrRejected(prepared)) parts_.store.sealAhead(w);
  return prepared;
}

void IngestService::ingest(const IngestRequest& request, const Submitter& submitter,
                           std::function<void(BatchResult)> done) const {
  const auto fail = [&](Error e) {
    e.message = forClients(std::move(e.message));
    e.hint = forClients(std::move(e.hint));
    BatchResult failed;
    failed.failure = std::move(e);
    count(failed);
    done(std::move(failed));
  };
  auto format = parts_.formats.find(request.content_type);
  if (!format) return fail(format.error());
  auto batch = format.value()->read(request.body, {request.csv_mapper, parts_.rules.get(), kMaxRecordsPerRequest});
  if (!batch) return fail(batch.error());
  ingestBatch(std::move(batch).value(), submitter, std::move(done));
}

namespace {

bool isConsentRecord(const rapidjson::Value& record) {
  const auto* type = record.IsObject() ? json::find(record, "record_type") : nullptr;
  return type != nullptr && type->IsString() && std::string_view(type->GetString(), type->GetStringLength()) == "consent";
}

}  // namespace

void IngestService::ingestBatch(InputBatch batch, const Submitter& submitter, std::function<void(BatchResult)> done) const {
  const std::size_t n = batch.records.size();
  auto prepared = std::make_shared<std::vector<Prepared>>(n);
  // The request's consent records first: its other records commit with them, so they are
  // decided under them, whatever their order in the body (one decision each, logged once).
  std::vector<bool> consents(n, false);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& input = batch.records[i];
    auto& p = (*prepared)[i];
    if (input.error) {
      p.result.index = i;
      const auto& e = *input.error;
      p.result.errors.push_back({e.where, forClients(e.message + (e.hint.empty() ? "" : " (" + e.hint + ")")), {}});
      p.result.line = input.line;
      p.result.reject_class = "unreadable";
      continue;
    }
    if (!isConsentRecord(*input.record)) continue;
    consents[i] = true;
    p = prepare(*input.record, i, submitter);
    p.result.line = input.line;
  }
  const auto pending = pendingConsents(*prepared);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& input = batch.records[i];
    if (input.error || consents[i]) continue;
    auto& p = (*prepared)[i];
    p = prepare(*input.record, i, submitter, {}, pending.get());
    p.result.line = input.line;
  }
  std::vector<store::IngestWrite> writes;
  writes.reserve(n);
  for (auto& p : *prepared) {
    if (p.result.errors.empty()) writes.push_back(std::move(p.write));
  }
  commit(std::move(prepared), std::move(writes), submitter, std::move(done));
}

std::unique_ptr<PendingConsents> IngestService::pendingConsents(const std::vector<Prepared>& prepared) const {
  std::vector<const Prepared*> posted;
  for (const auto& p : prepared) {
    if (p.consent && p.result.errors.empty()) posted.push_back(&p);
  }
  if (posted.empty()) return nullptr;
  auto pending = std::make_unique<PendingConsents>();
  for (const auto* p : posted) pending->patients.insert(p->consent->patient_key);
  std::vector<consent::ConsentVersion> rows;
  for (const auto& patient : pending->patients) {
    auto current = parts_.registry.currentOf(patient);
    std::move(current.begin(), current.end(), std::back_inserter(rows));
  }
  // Numbered as the store will number them (several versions of one consent in one body: the
  // last one is current).
  std::map<std::pair<std::string, std::string>, std::int64_t> latest;
  for (const auto* p : posted) {
    auto v = *p->consent;
    auto [slot, first] = latest.try_emplace({v.clinic, v.consent_id}, 0);
    if (first) slot->second = parts_.registry.latestVersion(v.clinic, v.consent_id);
    v.version = ++slot->second;
    rows.push_back(std::move(v));
    for (const auto& r : p->write.resources) {
      if (r.resource_type == "Consent") pending->resources[r.resource_id] = r.body;
    }
  }
  pending->registry = std::make_unique<consent::ConsentRegistry>(parts_.registry.zones());
  // A row the registry refuses decides nothing (deny), as it would after the commit.
  pending->registry->load(std::move(rows));
  return pending;
}

Status IngestService::reconcile(std::string_view patient_key, std::string_view partner_id) const {
  const SystemTime now = parts_.committer.clock().now();
  GW_TRY(auto pending, parts_.store.pendingItems(partner_id, patient_key));
  int cancelled = 0;
  for (const auto& item : pending) {
    auto check = outbox::recheckItem(item, parts_.registry, now, parts_.settings.policy.policy_version);
    if (check.send) continue;
    GW_TRY(parts_.store.markCancelled(item.id, "no longer permitted: " + check.reason, now, std::move(check.cancellations)));
    ++cancelled;
  }
  // Records with nothing live for the partner, and those with a resource held back (denied or
  // redacted): the store queues each only where it now discloses more (docs/privacy.md §8.2).
  GW_TRY(auto held, parts_.store.heldRecords(partner_id, patient_key));
  int queued = 0;
  for (const auto& record : held) {
    rapidjson::Document doc;
    if (doc.Parse(record.payload.data(), record.payload.size()).HasParseError() || !doc.IsObject()) continue;
    // The stored record is decided as it would be now, for this partner only.
    auto p = prepare(doc, 0, Submitter{"gateway", {"*"}}, partner_id);
    if (!p.result.errors.empty() || p.write.state != store::RecordState::Mapped) continue;
    if (p.write.outbox.empty() && p.write.audit.empty()) continue;
    GW_TRY(auto items,
           parts_.store.enqueue({record.clinic, p.write.record_id, record.version, p.write.patient_key,
                                 std::move(p.write.outbox), std::move(p.write.audit), std::move(p.write.decisions)},
                                now));
    queued += items;
  }
  GW_TRY(const int passed_on, passOnConsentUpdates(patient_key, partner_id, now));
  GW_LOG(Info, Consent, "reconciled")
      .kv("partner", partner_id)
      .kv("held_records", held.size())
      .kv("queued", queued)
      .kv("cancelled", cancelled)
      .kv("consent_updates", passed_on);
  return ok();
}

namespace {

// The consents whose FHIR Consent the partner holds, from its delivered items; with, for each,
// the partner's own id of the patient ("Patient/<id>") as it answered the Bundle that carried it.
struct ReceivedConsent {
  std::string patient_reference;
};

// The partner's id for the Bundle entry whose fullUrl is `full_url`, from its answer
// ("Patient/123/_history/1", relative or absolute); empty when unknown.
std::string partnerReference(const store::OutboxItem& item, std::string_view resource_type, const std::string& full_url) {
  rapidjson::Document bundle;
  if (!json::parse(item.bundle, bundle) || !bundle.IsObject()) return {};
  const auto* entries = json::find(bundle, "entry");
  if (entries == nullptr || !entries->IsArray()) return {};
  for (rapidjson::SizeType i = 0; i < entries->Size(); ++i) {
    if (json::getString((*entries)[i], "fullUrl") != full_url || i >= item.entries.size()) continue;
    const std::string& location = item.entries[i].location;
    const std::string prefix = std::string(resource_type) + "/";
    const auto at = location.rfind(prefix, location.find("/_history"));
    if (at == std::string::npos) return {};
    const auto end = location.find('/', at + prefix.size());
    return location.substr(at, end == std::string::npos ? std::string::npos : end - at);
  }
  return {};
}

// Points every reference to `from` at `to` (the partner's id of the same resource).
void rewriteReferences(rapidjson::Value& v, const std::string& from, const std::string& to,
                       rapidjson::Document::AllocatorType& alloc) {
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      if (std::string_view(it->name.GetString(), it->name.GetStringLength()) == "reference" && it->value.IsString() &&
          std::string_view(it->value.GetString(), it->value.GetStringLength()) == from) {
        it->value.SetString(to.c_str(), static_cast<rapidjson::SizeType>(to.size()), alloc);
      } else {
        rewriteReferences(it->value, from, to, alloc);
      }
    }
  } else if (v.IsArray()) {
    for (auto& e : v.GetArray()) rewriteReferences(e, from, to, alloc);
  }
}

}  // namespace

Result<int> IngestService::passOnConsentUpdates(std::string_view patient_key, std::string_view partner_id,
                                                SystemTime now) const {
  const auto partner = std::find_if(parts_.settings.partners.begin(), parts_.settings.partners.end(),
                                    [&](const auto& p) { return p.id == partner_id; });
  if (partner == parts_.settings.partners.end()) return 0;
  GW_TRY(auto stored, parts_.store.consents(patient_key));
  std::map<std::string, const privacy::ConsentRow*> latest;  // by "<clinic>/<consent id>"
  for (const auto& c : stored) {
    if (c.row.partner_id != partner_id) continue;
    auto& slot = latest[c.row.clinic + "/" + c.row.consent_id];
    if (slot == nullptr || slot->version < c.row.version) slot = &c.row;
  }
  const bool any_revoked = std::any_of(latest.begin(), latest.end(),
                                       [](const auto& kv) { return kv.second->status != "active"; });
  if (!any_revoked) return 0;

  // Which consents the partner holds a copy of, and its id of the patient they are about.
  GW_TRY(auto delivered, parts_.store.deliveredItems(partner_id, patient_key));
  std::map<std::string, ReceivedConsent> received;
  for (const auto& item : delivered) {
    auto d = outbox::parseDisclosure(item.disclosure);
    if (!d) continue;
    std::set<std::string> copies(d.value().consent_copies.begin(), d.value().consent_copies.end());
    if (!d.value().consent_copies_known) {
      for (const auto& r : d.value().resources) {
        if (!r.consent_id.empty() && r.classes.has(privacy::DataClass::Sud)) copies.insert(r.consent_id);
      }
    }
    for (const auto& key : copies) {
      const auto row = latest.find(key);
      if (row == latest.end()) continue;
      if (const auto known = received.find(key); known != received.end() && !known->second.patient_reference.empty()) {
        continue;
      }
      // The stored Consent names the patient by our id; the partner knows it by its own.
      GW_TRY(auto body, parts_.store.resourceBody("Consent", row->second->resource_id));
      if (!body) continue;
      rapidjson::Document consent;
      if (!json::parse(*body, consent) || !consent.IsObject()) continue;
      const auto* patient = json::find(consent, "patient");
      const std::string our_ref = patient != nullptr ? std::string(json::getString(*patient, "reference")) : "";
      const auto slash = our_ref.find('/');
      if (slash == std::string::npos) continue;
      std::string theirs = partnerReference(item, "Patient", "urn:uuid:" + our_ref.substr(slash + 1));
      if (!theirs.empty()) received[key].patient_reference = std::move(theirs);
      else received.try_emplace(key);
    }
  }

  int queued = 0;
  for (const auto& [key, row] : latest) {
    if (row->status == "active") continue;
    const auto got = received.find(key);
    if (got == received.end()) continue;  // the partner never held it: it learns nothing now
    GW_TRY(auto body, parts_.store.resourceBody("Consent", row->resource_id));
    rapidjson::Document consent;
    const auto* ids = body && json::parse(*body, consent) && consent.IsObject() ? json::find(consent, "identifier")
                                                                                : nullptr;
    if (ids == nullptr || !ids->IsArray() || ids->Empty() || got->second.patient_reference.empty()) {
      // Without the Consent's identity or the partner's id of the patient the update could not
      // replace the partner's copy; logged so an operator re-posts the revocation.
      GW_LOG(Error, Consent, "consent_update_not_passed_on")
          .kv("partner", partner_id)
          .kv("version", row->version)
          .kv("error", ids == nullptr ? "the stored Consent is unreadable or has no identifier"
                                      : "the partner's answer to the Bundle that carried it names no Patient");
      continue;
    }
    const auto* patient = json::find(consent, "patient");
    const std::string our_ref(json::getString(*patient, "reference"));
    rewriteReferences(consent, our_ref, got->second.patient_reference, consent.GetAllocator());
    const std::string system(json::getString((*ids)[0], "system"));
    const std::string value(json::getString((*ids)[0], "value"));
    // The Consent alone: nothing else about the patient goes with it.
    auto bundles = outbox::buildTransactionBundles(
        {{"Consent", row->resource_id, system, value, &consent, outbox::EntryMethod::ConditionalUpdate, true}}, 1);
    if (bundles.empty()) continue;
    const privacy::ClassSet classes =
        privacy::parseClassSet(row->classes).value_or(privacy::ClassSet{privacy::DataClass::Sud});
    outbox::Disclosure disclosure;
    disclosure.purpose = partner->purpose_of_use;
    disclosure.patient_key = std::string(patient_key);
    disclosure.consent_update = true;
    disclosure.consent_copies = {key};
    outbox::DisclosedResource r;
    r.resource_type = "Consent";
    r.resource_id = row->resource_id;
    r.classes = classes.empty() ? privacy::ClassSet{privacy::DataClass::Sud} : classes;
    r.outcome = consent::Outcome::Permit;
    r.consent_id = key;
    r.consent_version = static_cast<int>(row->version);
    disclosure.resources.push_back(r);

    store::ConsentUpdateWrite w;
    w.clinic = row->clinic;
    w.consent_id = row->consent_id;
    w.consent_version = row->version;
    w.patient_key = std::string(patient_key);
    w.item = {std::string(partner_id), std::move(bundles[0].json), bundles[0].entry_count, r.classes,
              outbox::toJson(disclosure)};
    w.audit.push_back(
        store::AuditEntryBuilder(store::AuditKind::Decision, store::AuditOutcome::Permit, "gateway", toUnixMillis(now))
            .clinic(row->clinic)
            .patient(patient_key)
            .partner(partner_id, partner->purpose_of_use)
            .resource("Consent", row->resource_id, r.classes)
            .consent(key, row->version)
            .reason("consent-update")
            .policy(parts_.settings.policy.policy_version)
            .build());
    GW_TRY(const bool added, parts_.store.queueConsentUpdate(w, now));
    if (added) ++queued;
  }
  return queued;
}

bool IngestService::auditableOrRejected(Prepared& p) const {
  // A log entry the store would refuse would fail the whole group commit: this record alone is
  // rejected instead (ids with control characters, oversized fields).
  for (const auto& e : p.write.audit) {
    if (auto valid = store::validateAuditEntry(e); !valid) {
      GW_LOG(Warn, Ingest, "record_not_auditable").kv("record_key", p.result.record_key).kv("error", valid.error().message);
      p.result.errors.push_back({"record_id",
                                 "this record's ids cannot be written to the decision log (control characters "
                                 "or too long); send ids of printable characters"});
      p.write = store::IngestWrite{};
      p.consent.reset();
      return false;
    }
  }
  return true;
}

void IngestService::enterConsents(std::vector<Prepared>& prepared, const std::vector<store::IngestOutcome>& outcomes) const {
  // Runs on the committer's thread right after the commit, before any answer: a record posted
  // after this consent's 202 is decided under it.
  std::size_t next = 0;
  for (auto& p : prepared) {
    if (!p.result.errors.empty()) continue;
    const auto& outcome = outcomes[next++];
    if (!p.consent || outcome.disposition == store::IngestDisposition::Unchanged || outcome.consent_version == 0) continue;
    p.consent->version = outcome.consent_version;
    // Under the send gate: no re-check runs while the registry changes, and the answer waits for
    // the sends already claimed for this patient and partner, so after it none decided under the
    // older version is still going (docs/privacy.md §8.3).
    std::optional<decltype(parts_.registry.upsert(*p.consent))> entered;
    const auto enter = [&] { entered.emplace(parts_.registry.upsert(*p.consent)); };
    if (parts_.send_gate != nullptr) {
      if (!parts_.send_gate->change(p.consent->patient_key, p.consent->partner_id, enter)) {
        GW_LOG(Warn, Consent, "consent_change_sends_still_in_flight")
            .kv("record_key", p.result.record_key)
            .kv("partner", p.consent->partner_id);
      }
    } else {
      enter();
    }
    if (!*entered) {
      // Stored but refused by the registry (a concurrent revocation): decisions stay on the
      // older state, which the store's next start-up load settles the same way.
      GW_LOG(Error, Consent, "consent_not_entered")
          .kv("record_key", p.result.record_key)
          .kv("error", entered->error().describe());
      continue;
    }
    GW_LOG(Info, Consent, "consent_recorded")
        .kv("record_key", p.result.record_key)
        .kv("version", p.consent->version)
        .kv("partner", p.consent->partner_id)
        .kv("status", consent::statusName(p.consent->status));
    if (parts_.on_consent_change) parts_.on_consent_change(*p.consent);
  }
  // Records decided before a consent changed (prepared before its commit, committed after it):
  // their patient's queue is settled again, so nothing waits forever or goes under a stale rule.
  next = 0;
  const auto generation = parts_.registry.generation();
  std::vector<std::string> stale;
  for (const auto& p : prepared) {
    if (!p.result.errors.empty()) continue;
    const auto& outcome = outcomes[next++];
    if (p.consent || outcome.disposition == store::IngestDisposition::Unchanged) continue;
    if (p.registry_generation == Prepared::kNotDecided || p.registry_generation == generation) continue;
    if (std::find(stale.begin(), stale.end(), p.patient_key) == stale.end()) stale.push_back(p.patient_key);
  }
  if (parts_.on_stale_decisions) {
    for (const auto& patient : stale) parts_.on_stale_decisions(patient);
  }
}

void IngestService::count(const BatchResult& result) const {
  if (parts_.breakdown != nullptr && !result.failure) {
    IngestBreakdown::RecordCounts counts;
    for (const auto& r : result.records) {
      if (r.accepted) {
        ++counts[{r.metric_type, "accepted", std::string(store::recordStateName(r.state))}];
      } else {
        ++counts[{r.metric_type, "rejected", std::string(r.reject_class)}];
      }
    }
    parts_.breakdown->addRecords(counts);
  }
  if (parts_.stats == nullptr) return;
  auto& stats = *parts_.stats;
  stats.requests.inc();
  if (result.failure) {
    (result.failure->code == ErrorCode::Unavailable ? stats.requests_storage_failed : stats.requests_unreadable).inc();
    return;
  }
  stats.records_received.inc(result.records.size());
  for (const auto& r : result.records) {
    if (!r.accepted) {
      stats.records_rejected.inc();
      continue;
    }
    stats.records_accepted.inc();
    if (r.disposition == store::IngestDisposition::Unchanged) stats.records_unchanged.inc();
    if (r.state == store::RecordState::Unmapped) stats.records_unmapped.inc();
    if (r.state == store::RecordState::Invalid) stats.records_invalid.inc();
  }
}

void IngestService::commit(std::shared_ptr<std::vector<Prepared>> prepared, std::vector<store::IngestWrite> writes,
                           const Submitter& submitter, std::function<void(BatchResult)> done) const {
  auto reply = [this, prepared, token = submitter.token_id,
                done = std::move(done)](Result<std::vector<store::IngestOutcome>> committed) {
    BatchResult result;
    if (!committed) {
      // The committer logged the database's own message; the caller learns what matters to it.
      result.failure = makeError(ErrorCode::Unavailable, "nothing was stored: the gateway's database failed", "",
                                 "retry the whole request later");
      count(result);
      return done(std::move(result));
    }
    enterConsents(*prepared, committed.value());
    std::size_t next_outcome = 0;
    result.records.reserve(prepared->size());
    for (auto& p : *prepared) {
      RecordResult& r = p.result;
      if (r.errors.empty()) {
        const auto& outcome = committed.value()[next_outcome++];
        r.accepted = true;
        r.disposition = outcome.disposition;
        r.version = outcome.version;
        if (outcome.disposition == store::IngestDisposition::Unchanged) {
          // Unchanged: queued only where it now discloses more than before (a consent widened).
          std::erase_if(r.queued_for, [&](const std::string& partner) {
            return std::find(outcome.requeued_for.begin(), outcome.requeued_for.end(), partner) ==
                   outcome.requeued_for.end();
          });
        }
        // record ids may embed MRNs ("c1:pt:A12345"): logs carry the internal record key only.
        GW_LOG(Info, Ingest, "record_accepted")
            .kv("record_key", r.record_key)
            .kv("disposition", store::dispositionName(outcome.disposition))
            .kv("version", outcome.version)
            .kv("token", token);
      }
      result.records.push_back(std::move(r));
    }
    if (const auto rejected = result.rejected(); rejected > 0) {
      GW_LOG(Info, Ingest, "records_rejected").kv("count", rejected).kv("token", token);
    }
    count(result);
    done(std::move(result));
  };

  if (writes.empty()) return reply(std::vector<store::IngestOutcome>{});
  parts_.committer.submit(std::move(writes), std::move(reply));
}

}  // namespace gw::ingest

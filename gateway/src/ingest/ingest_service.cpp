#include "ingest/ingest_service.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <memory>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "mapping/support.hpp"
#include "consent/consent_record.hpp"
#include "outbox/recheck.hpp"
#include "outbox/transaction_bundle.hpp"

namespace gw::ingest {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void writeCanonical(const rapidjson::Value& v, Writer& w) {
  if (v.IsObject()) {
    std::vector<rapidjson::Value::ConstMemberIterator> members;
    members.reserve(v.MemberCount());
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) members.push_back(it);
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) {
      return std::string_view(a->name.GetString(), a->name.GetStringLength()) <
             std::string_view(b->name.GetString(), b->name.GetStringLength());
    });
    w.StartObject();
    for (const auto& m : members) {
      w.Key(m->name.GetString(), m->name.GetStringLength());
      writeCanonical(m->value, w);
    }
    w.EndObject();
  } else if (v.IsArray()) {
    w.StartArray();
    for (const auto& item : v.GetArray()) writeCanonical(item, w);
    w.EndArray();
  } else {
    v.Accept(w);
  }
}

using json::writeString;

struct FieldError {
  std::string path;
  std::string reason;
};

}  // namespace

std::string IngestService::forClients(std::string text) const {
  // Mapper errors cite mapper files by absolute path, which tells a client about the server's
  // file system; clients see the path relative to the mapping folder (engineers have both).
  for (const auto& dir : {config_.mapping.format_dir, config_.mapping.csv_mappers_dir}) {
    if (dir.empty()) continue;
    std::string prefix = dir.string();
    if (prefix.back() != '/') prefix += '/';
    for (std::size_t p; (p = text.find(prefix)) != std::string::npos;) text.erase(p, prefix.size());
  }
  return text;
}

bool Submitter::mayPostFor(std::string_view clinic) const {
  return std::any_of(clinics.begin(), clinics.end(), [&](const std::string& c) { return c == "*" || c == clinic; });
}

std::string canonicalHash(const rapidjson::Value& record, std::string* canonical_json) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  writeCanonical(record, w);
  const std::string_view text(buffer.GetString(), buffer.GetSize());
  if (canonical_json != nullptr) canonical_json->assign(text);
  return ids::sha256Hex(text);
}

rapidjson::Document stubPatient(std::string_view patient_id, std::string_view mrn_system, std::string_view mrn) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  using rapidjson::Value;
  d.AddMember("resourceType", "Patient", a);
  d.AddMember("id", json::str(patient_id, a), a);
  Value meta(rapidjson::kObjectType);
  Value profiles(rapidjson::kArrayType);
  profiles.PushBack("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient", a);
  meta.AddMember("profile", profiles, a);
  d.AddMember("meta", meta, a);
  Value identifier(rapidjson::kObjectType);
  identifier.AddMember("use", "usual", a);
  Value type(rapidjson::kObjectType);
  Value codings(rapidjson::kArrayType);
  Value coding(rapidjson::kObjectType);
  coding.AddMember("system", "http://terminology.hl7.org/CodeSystem/v2-0203", a);
  coding.AddMember("code", "MR", a);
  codings.PushBack(coding, a);
  type.AddMember("coding", codings, a);
  identifier.AddMember("type", type, a);
  identifier.AddMember("system", json::str(mrn_system, a), a);
  identifier.AddMember("value", json::str(mrn, a), a);
  Value identifiers(rapidjson::kArrayType);
  identifiers.PushBack(identifier, a);
  d.AddMember("identifier", identifiers, a);
  // US Core (us-core-6): a name, or a data-absent-reason on it, must be present.
  Value absent(rapidjson::kObjectType);
  absent.AddMember("url", "http://hl7.org/fhir/StructureDefinition/data-absent-reason", a);
  absent.AddMember("valueCode", "unknown", a);
  Value extensions(rapidjson::kArrayType);
  extensions.PushBack(absent, a);
  Value name(rapidjson::kObjectType);
  name.AddMember("extension", extensions, a);
  Value names(rapidjson::kArrayType);
  names.PushBack(name, a);
  d.AddMember("name", names, a);
  d.AddMember("gender", "unknown", a);
  return d;
}

struct IngestService::Prepared {
  std::size_t index = 0;
  std::size_t line = 0;   // CSV line of the row (0: not CSV)
  std::string record_id;  // as sent (may be empty when missing)
  std::vector<FieldError> errors;
  store::IngestWrite write;  // moved to the committer; the fields below stay for the reply
  std::string record_key;
  store::RecordState state = store::RecordState::Received;
  std::vector<std::string> resource_refs;  // "Type/id"
  std::vector<std::string> partners;       // partners it was queued for
  std::string outcome;                     // OperationOutcome of a record found invalid
  std::optional<consent::ConsentVersion> consent;  // a consent record's version, entered after commit
  static constexpr std::uint64_t kNotDecided = ~std::uint64_t{0};
  std::uint64_t registry_generation = kNotDecided;  // of the registry its decisions were taken under
  std::string write_patient_key;          // write.patient_key, kept after the write moves out
};

IngestService::IngestService(IngestParts parts)
    : parts_(std::move(parts)),
      config_(parts_.config),
      planner_(parts_.config, parts_.policy, parts_.classifier, parts_.registry,
               [store = &parts_.store](std::string_view id) -> Result<std::string> {
                 GW_TRY(auto body, store->resourceBody("Consent", id));
                 if (!body) {
                   return makeError(ErrorCode::Internal, "the Consent resource " + std::string(id) + " is not stored",
                                    "resources", "re-post the consent record");
                 }
                 return std::move(*body);
               }) {}

IngestService::Prepared IngestService::prepare(const rapidjson::Value& record, std::size_t index,
                                               const Submitter& submitter, std::string_view only_partner) const {
  Prepared p;
  p.index = index;
  p.record_id = std::string(json::getString(record, "record_id"));

  for (auto& e : parts_.schemas.validate(record)) p.errors.push_back({std::move(e.path), std::move(e.reason)});
  if (!p.errors.empty()) {
    // A consent is also held to the validity rules, so every missing element is named at once.
    if (json::getString(record, "record_type") == "consent" && json::find(record, "consent") != nullptr) {
      for (auto& e : consent::checkValidity(record)) {
        const bool reported = std::any_of(p.errors.begin(), p.errors.end(), [&](const auto& f) { return f.path == e.path; });
        if (!reported) p.errors.push_back({std::move(e.path), e.reason + (e.hint.empty() ? "" : " (" + e.hint + ")")});
      }
    }
    return p;
  }

  const std::string clinic_id(json::getString(record, "clinic"));
  const config::Clinic* clinic = config_.findClinic(clinic_id);
  if (clinic == nullptr) {
    p.errors.push_back({"clinic", "clinic '" + clinic_id + "' is not configured on this gateway"});
    return p;
  }
  if (!submitter.mayPostFor(clinic_id)) {
    p.errors.push_back({"clinic", "this token may not post records for clinic '" + clinic_id + "'"});
    return p;
  }
  const std::string_view program = json::getString(record, "program");
  const config::Program* program_config = nullptr;
  for (const auto& pr : clinic->programs) {
    if (pr.id == program) program_config = &pr;
  }
  if (!program.empty() && program_config == nullptr) {
    p.errors.push_back({"program", "program '" + std::string(program) + "' is not configured for clinic '" + clinic_id + "'"});
    return p;
  }
  const bool part2 = program_config != nullptr && program_config->part2;

  auto& w = p.write;
  w.clinic = clinic_id;
  w.record_id = p.record_id;
  w.record_type = std::string(json::getString(record, "record_type"));
  p.record_key = ids::recordKey(parts_.record_key_secret, clinic_id, p.record_id);
  w.content_hash = canonicalHash(record, &w.payload);
  const auto* patient = json::find(record, "patient");
  const std::string mrn = patient != nullptr ? std::string(json::getString(*patient, "mrn")) : std::string();
  w.patient_key = ids::resourceId(clinic_id, "Patient", mrn);
  // Until its resources say otherwise, a record is as sensitive as its program makes it; an
  // unclassified record is stored under the sud key (deny when unsure).
  w.classes = part2 ? privacy::ClassSet(privacy::DataClass::Sud) : privacy::ClassSet();

  const bool is_consent = w.record_type == "consent";
  if (is_consent) {
    for (auto& e : consent::checkValidity(record)) {
      p.errors.push_back({std::move(e.path), e.reason + (e.hint.empty() ? "" : " (" + e.hint + ")")});
    }
    const std::string recipient(json::getString(*json::find(record, "consent"), "recipient"));
    if (!recipient.empty() && config_.findPartner(recipient) == nullptr) {
      p.errors.push_back({"consent.recipient", "partner '" + recipient +
                                                   "' is not configured on this gateway (name a partner id from "
                                                   "the gateway configuration)"});
    }
    if (!p.errors.empty()) return p;
  }

  if (!parts_.mappers.has(w.record_type)) {
    if (is_consent) {
      // A consent must take effect when it is accepted (a revocation above all): no holding it.
      p.errors.push_back({"record_type", "this gateway has no consent mapper, so it cannot record consents now "
                                         "(retry after its mapping set is fixed)"});
      return p;
    }
    w.state = store::RecordState::Unmapped;  // kept in the inbox until a mapper for it exists
    return p;
  }
  const mapping::MappingContext context{clinic_id, clinic->identifier_system_base};
  auto mapped = parts_.mappers.map(record, context);
  if (!mapped) {
    const auto& e = mapped.error();
    p.errors.push_back({e.where, forClients(e.message + (e.hint.empty() ? "" : " (" + e.hint + ")"))});
    return p;
  }
  auto& resources = mapped.value().resources;

  // Classify and label every resource, then validate it as it will leave (labels included).
  std::vector<ClassifiedResource> classified;
  classified.reserve(resources.size() + 1);
  privacy::ClassSet record_classes;
  for (auto& r : resources) {
    ClassifiedResource c{r.resource_type, r.id, r.identifier_system, r.identifier_value};
    if (auto labelled = DisclosurePlanner::classifyAndLabel(parts_.classifier, part2, r.resource, c); !labelled) {
      p.errors.push_back({"record", labelled.error().message});
      return p;
    }
    record_classes.add(c.classification.classes);
    classified.push_back(std::move(c));
  }
  w.classes = record_classes;
  // Nothing leaves that fails its profile: the record is kept (the clinic's data is not lost)
  // as "invalid" with the outcome, and nothing is queued.
  for (const auto& r : resources) {
    auto checked = parts_.profiles.validate(r.resource);
    if (!checked.valid() && is_consent) {
      // Accepting it as "invalid" would leave the previous version (an active one, say) in force.
      p.errors.push_back({"consent", "the consent's FHIR Consent fails its profile, so it was not recorded: " +
                                         checked.operationOutcomeJson()});
      return p;
    }
    if (!checked.valid()) {
      w.state = store::RecordState::Invalid;
      w.error = checked.operationOutcomeJson();
      p.state = w.state;
      p.outcome = w.error;
      return p;
    }
  }
  w.state = store::RecordState::Mapped;
  for (std::size_t i = 0; i < resources.size(); ++i) {
    const auto& r = resources[i];
    w.resources.push_back({r.resource_type, r.id, r.identifier_system, r.identifier_value, json::toString(r.resource),
                           classified[i].classification.classes});
    p.resource_refs.push_back(r.resource_type + "/" + r.id);
  }

  if (is_consent) {
    std::string consent_resource_id;
    for (const auto& r : resources) {
      if (r.resource_type == "Consent") consent_resource_id = r.id;
    }
    auto version = consent::consentFromRecord(record, w.patient_key, consent_resource_id);
    if (!version) {
      p.errors.push_back({version.error().where, version.error().message});
      return p;
    }
    auto candidate = version.value();
    candidate.version = parts_.registry.latestVersion(candidate.clinic, candidate.consent_id) + 1;
    if (auto admissible = parts_.registry.admissible(candidate); !admissible) {
      p.errors.push_back({"consent.status", admissible.error().message +
                                                (admissible.error().hint.empty() ? "" : " (" + admissible.error().hint + ")")});
      return p;
    }
    w.consent = consent::toRow(version.value());  // the store numbers the version
    // The registration itself is in the log: who may receive what, from when (no content).
    w.audit.push_back(
        store::AuditEntryBuilder(store::AuditKind::Consent, store::AuditOutcome::Ok, submitter.token_id,
                                 toUnixMillis(parts_.committer.clock().now()))
            .clinic(clinic_id)
            .patient(w.patient_key)
            .partner(candidate.partner_id, consent::purposeSetName(candidate.purposes))
            .resource("Consent", consent_resource_id, candidate.classes)
            .consent(clinic_id + "/" + candidate.consent_id, 0)  // the store assigns the version
            .reason(std::string(consent::statusName(candidate.status)))
            .policy(parts_.policy.policy_version)
            .detail(R"({"record_key":")" + p.record_key + R"("})")
            .build());
    if (!auditableOrRejected(p)) return p;
    p.consent = std::move(version).value();
    return p;  // a Consent is sent only with the Part 2 data it permits
  }

  // Resources about a patient travel with that patient, created only if the partner lacks it.
  rapidjson::Document stub;
  const bool has_patient = std::any_of(resources.begin(), resources.end(),
                                       [](const auto& r) { return r.resource_type == "Patient"; });
  if (!has_patient && !mrn.empty()) {
    const std::string mrn_system = clinic->identifier_system_base + "mrn";
    stub = stubPatient(w.patient_key, mrn_system, mrn);
    ClassifiedResource c{"Patient", w.patient_key, mrn_system, mrn};
    c.method = outbox::EntryMethod::ConditionalCreate;
    if (auto labelled = DisclosurePlanner::classifyAndLabel(parts_.classifier, part2, stub, c); !labelled) {
      p.errors.push_back({"record", labelled.error().message});
      return p;
    }
    classified.insert(classified.begin(), std::move(c));
  }

  // A newer version that no longer makes a resource (an item removed from a harm-reduction
  // service) deletes it where this version goes.
  std::vector<DroppedResource> dropped;
  if (auto previous = parts_.store.resourceKeys(clinic_id, p.record_id); previous) {
    for (const auto& old : previous.value()) {
      const bool kept = std::any_of(resources.begin(), resources.end(), [&](const auto& r) {
        return r.resource_type == old.resource_type && r.id == old.resource_id;
      });
      if (!kept) dropped.push_back({old.resource_type, old.identifier_system, old.identifier_value, old.classes});
    }
  } else {
    p.errors.push_back({"record", "the gateway could not read this record's earlier version; retry later"});
    return p;
  }

  p.registry_generation = parts_.registry.generation();
  p.write_patient_key = w.patient_key;
  const RecordFacts facts{clinic_id, p.record_key, w.patient_key, part2};
  auto plan = planner_.plan(facts, classified, dropped, parts_.committer.clock().now(), only_partner);
  if (!plan) {
    GW_LOG(Error, Ingest, "disclosure_plan_failed").kv("record_key", p.record_key).kv("error", plan.error().describe());
    p.errors.push_back({"record", "the gateway could not prepare this record's disclosures; nothing was stored"
                                  " (retry later, and tell the gateway's operators if it persists)"});
    return p;
  }
  for (auto& item : plan.value().items) {
    w.outbox.push_back({std::move(item.partner_id), std::move(item.bundle), item.entry_count, item.classes,
                        std::move(item.disclosure)});
  }
  w.audit = std::move(plan.value().audit);
  p.partners = std::move(plan.value().partners);
  auditableOrRejected(p);
  return p;
}

void IngestService::ingest(std::string_view body, std::string_view content_type, const Submitter& submitter,
                           std::function<void(IngestReply)> done) const {
  auto error_reply = [](const Error& e) { return IngestReply{httpStatusFor(e.code), json::operationOutcome(e)}; };

  auto format = formatFromContentType(content_type);
  if (!format) return done(error_reply(format.error()));
  auto parsed = parsePayload(body, format.value(), kMaxRecordsPerRequest);
  if (!parsed) return done(error_reply(parsed.error()));

  auto prepared = std::make_shared<std::vector<Prepared>>();
  prepared->reserve(parsed.value()->records.size());
  std::vector<store::IngestWrite> writes;
  for (std::size_t i = 0; i < parsed.value()->records.size(); ++i) {
    prepared->push_back(prepare(*parsed.value()->records[i], i, submitter));
    auto& p = prepared->back();
    p.state = p.write.state;
    if (p.errors.empty()) writes.push_back(std::move(p.write));
  }
  commit(std::move(prepared), std::move(writes), submitter, std::move(done));
}

Status IngestService::reconcile(std::string_view patient_key, std::string_view partner_id) const {
  const SystemTime now = parts_.committer.clock().now();
  GW_TRY(auto pending, parts_.store.pendingItems(partner_id, patient_key));
  int cancelled = 0;
  for (const auto& item : pending) {
    auto check = outbox::recheckItem(item, parts_.registry, now, parts_.policy.policy_version);
    if (check.send) continue;
    GW_TRY(parts_.store.markCancelled(item.id, "no longer permitted: " + check.reason, now, std::move(check.cancellations)));
    ++cancelled;
  }
  GW_TRY(auto held, parts_.store.recordsWithoutItem(partner_id, patient_key));
  int queued = 0;
  for (const auto& record : held) {
    rapidjson::Document doc;
    if (doc.Parse(record.payload.data(), record.payload.size()).HasParseError() || !doc.IsObject()) continue;
    // The stored record is decided as it would be now, for this partner only.
    auto p = prepare(doc, 0, Submitter{"gateway", {"*"}}, partner_id);
    if (!p.errors.empty() || p.write.state != store::RecordState::Mapped) continue;
    if (p.write.outbox.empty() && p.write.audit.empty()) continue;
    queued += static_cast<int>(p.write.outbox.size());
    GW_TRY(parts_.store.enqueue({record.clinic, record.record_id, record.version, p.write.patient_key,
                                 std::move(p.write.outbox), std::move(p.write.audit)},
                                now));
  }
  GW_LOG(Info, Consent, "reconciled")
      .kv("partner", partner_id)
      .kv("held_records", held.size())
      .kv("queued", queued)
      .kv("cancelled", cancelled);
  return ok();
}

bool IngestService::isCsvContentType(std::string_view content_type) { return mediaType(content_type) == "text/csv"; }

void IngestService::ingest(std::string_view body, std::string_view content_type, std::string_view csv_mapper,
                           const Submitter& submitter, std::function<void(IngestReply)> done) const {
  if (!isCsvContentType(content_type)) return ingest(body, content_type, submitter, std::move(done));
  const auto refuse = [&](std::string message, std::string hint) {
    done({400, json::operationOutcome(makeError(ErrorCode::BadRequest, std::move(message), "mapper", std::move(hint)))});
  };
  std::string available;
  if (parts_.csv_mappers != nullptr) {
    for (const auto& name : parts_.csv_mappers->names()) available += (available.empty() ? "" : ", ") + name;
  }
  if (available.empty()) {
    return refuse("this gateway has no CSV mappers", "set mapping.csv_mappers_dir in the gateway config, or post JSON records");
  }
  if (csv_mapper.empty()) {
    return refuse("a text/csv body needs the mapper query parameter", "post to /v1/records?mapper=NAME; available: " + available);
  }
  const auto* mapper = parts_.csv_mappers->find(csv_mapper);
  if (mapper == nullptr) return refuse("unknown CSV mapper " + mapping::quoteCode(csv_mapper), "available: " + available);
  ingestCsv(body, *mapper, submitter, std::move(done));
}

void IngestService::ingestCsv(std::string_view csv_text, const mapping::CsvInputMapper& mapper, const Submitter& submitter,
                              std::function<void(IngestReply)> done) const {
  auto rows = mapper.rowsToRecords(csv_text, kMaxRecordsPerRequest);
  if (!rows) {
    Error e = rows.error();
    e.message = forClients(std::move(e.message));
    e.hint = forClients(std::move(e.hint));
    return done({httpStatusFor(e.code), json::operationOutcome(e)});
  }
  auto prepared = std::make_shared<std::vector<Prepared>>();
  prepared->reserve(rows.value().size());
  std::vector<store::IngestWrite> writes;
  for (std::size_t i = 0; i < rows.value().size(); ++i) {
    const auto& row = rows.value()[i];
    if (row.error) {
      Prepared p;
      p.index = i;
      const auto& e = *row.error;
      p.errors.push_back({e.where, forClients(e.message + (e.hint.empty() ? "" : " (" + e.hint + ")"))});
      p.line = row.line;
      prepared->push_back(std::move(p));
      continue;
    }
    prepared->push_back(prepare(row.record, i, submitter));
    auto& p = prepared->back();
    p.line = row.line;
    p.state = p.write.state;
    if (p.errors.empty()) writes.push_back(std::move(p.write));
  }
  commit(std::move(prepared), std::move(writes), submitter, std::move(done));
}

bool IngestService::auditableOrRejected(Prepared& p) const {
  // A log entry the store would refuse would fail the whole group commit: this record alone is
  // rejected instead (ids with control characters, oversized fields).
  for (const auto& e : p.write.audit) {
    if (auto valid = store::validateAuditEntry(e); !valid) {
      GW_LOG(Warn, Ingest, "record_not_auditable").kv("record_key", p.record_key).kv("error", valid.error().message);
      p.errors.push_back({"record_id", "this record's ids cannot be written to the decision log (control characters "
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
    if (!p.errors.empty()) continue;
    const auto& outcome = outcomes[next++];
    if (!p.consent || outcome.disposition == store::IngestDisposition::Unchanged || outcome.consent_version == 0) continue;
    p.consent->version = outcome.consent_version;
    auto entered = parts_.registry.upsert(*p.consent);
    if (!entered) {
      // Stored but refused by the registry (a concurrent revocation): decisions stay on the
      // older state, which the store's next start-up load settles the same way.
      GW_LOG(Error, Consent, "consent_not_entered").kv("record_key", p.record_key).kv("error", entered.error().describe());
      continue;
    }
    GW_LOG(Info, Consent, "consent_recorded")
        .kv("record_key", p.record_key)
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
    if (!p.errors.empty()) continue;
    const auto& outcome = outcomes[next++];
    if (p.consent || outcome.disposition == store::IngestDisposition::Unchanged) continue;
    if (p.registry_generation == Prepared::kNotDecided || p.registry_generation == generation) continue;
    if (std::find(stale.begin(), stale.end(), p.write_patient_key) == stale.end()) stale.push_back(p.write_patient_key);
  }
  if (parts_.on_stale_decisions) {
    for (const auto& patient : stale) parts_.on_stale_decisions(patient);
  }
}

void IngestService::commit(std::shared_ptr<std::vector<Prepared>> prepared, std::vector<store::IngestWrite> writes,
                           const Submitter& submitter, std::function<void(IngestReply)> done) const {
  auto reply = [this, prepared, token = submitter.token_id, done = std::move(done)](
                   Result<std::vector<store::IngestOutcome>> committed) {
    if (committed) enterConsents(*prepared, committed.value());
    if (!committed) {
      // The committer logged the database's own message; the caller learns what matters to it.
      return done({503, json::operationOutcome(makeError(ErrorCode::Unavailable,
                                                         "nothing was stored: the gateway's database failed",
                                                         "", "retry the whole request later"))});
    }
    std::size_t accepted = 0;
    std::size_t next_outcome = 0;
    rapidjson::StringBuffer buffer;
    Writer w(buffer);
    w.StartObject();
    w.Key("results");
    w.StartArray();
    for (const auto& p : *prepared) {
      w.StartObject();
      w.Key("index");
      w.Uint64(p.index);
      if (p.line != 0) {
        w.Key("line");
        w.Uint64(p.line);
      }
      w.Key("record_id");
      writeString(w, p.record_id);
      if (!p.errors.empty()) {
        w.Key("status");
        w.String("rejected");
        w.Key("errors");
        w.StartArray();
        for (const auto& e : p.errors) {
          w.StartObject();
          w.Key("path");
          writeString(w, e.path);
          w.Key("reason");
          writeString(w, e.reason);
          w.EndObject();
        }
        w.EndArray();
      } else {
        ++accepted;
        const auto& outcome = committed.value()[next_outcome++];
        w.Key("status");
        w.String("accepted");
        w.Key("disposition");
        writeString(w, store::dispositionName(outcome.disposition));
        w.Key("version");
        w.Int(outcome.version);
        w.Key("state");
        writeString(w, store::recordStateName(p.state));
        w.Key("record_key");
        writeString(w, p.record_key);
        if (!p.outcome.empty()) {
          w.Key("outcome");
          w.RawValue(p.outcome.data(), p.outcome.size(), rapidjson::kObjectType);
        }
        w.Key("resources");
        w.StartArray();
        for (const auto& ref : p.resource_refs) writeString(w, ref);
        w.EndArray();
        w.Key("queued_for");
        w.StartArray();
        if (outcome.disposition != store::IngestDisposition::Unchanged) {
          for (const auto& id : p.partners) writeString(w, id);
        }
        w.EndArray();
        // record ids may embed MRNs ("c1:pt:A12345"): logs carry the internal record key only.
        GW_LOG(Info, Ingest, "record_accepted")
            .kv("record_key", p.record_key)
            .kv("disposition", store::dispositionName(outcome.disposition))
            .kv("version", outcome.version)
            .kv("token", token);
      }
      w.EndObject();
    }
    w.EndArray();
    const std::size_t rejected = prepared->size() - accepted;
    w.Key("accepted");
    w.Uint64(accepted);
    w.Key("rejected");
    w.Uint64(rejected);
    w.EndObject();
    if (rejected > 0) {
      GW_LOG(Info, Ingest, "records_rejected").kv("count", rejected).kv("token", token);
    }
    done({accepted > 0 ? 202 : 422, std::string(buffer.GetString(), buffer.GetSize())});
  };

  if (writes.empty()) return reply(std::vector<store::IngestOutcome>{});
  parts_.committer.submit(std::move(writes), std::move(reply));
}

}  // namespace gw::ingest

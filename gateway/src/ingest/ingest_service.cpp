#include "ingest/ingest_service.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <memory>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "mapping/support.hpp"
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
};

IngestService::IngestService(const config::GatewayConfig& config, const mapping::RecordSchemas& schemas,
                             const mapping::MapperSet& mappers, const validate::ProfileSet& profiles,
                             GroupCommitter& committer, std::string record_key_secret,
                             const mapping::CsvMapperSet* csv_mappers)
    : config_(config),
      schemas_(schemas),
      mappers_(mappers),
      profiles_(profiles),
      committer_(committer),
      record_key_secret_(std::move(record_key_secret)),
      csv_mappers_(csv_mappers) {}

IngestService::Prepared IngestService::prepare(const rapidjson::Value& record, std::size_t index,
                                               const Submitter& submitter) const {
  Prepared p;
  p.index = index;
  p.record_id = std::string(json::getString(record, "record_id"));

  for (auto& e : schemas_.validate(record)) p.errors.push_back({std::move(e.path), std::move(e.reason)});
  if (!p.errors.empty()) return p;

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
  if (!program.empty() && std::none_of(clinic->programs.begin(), clinic->programs.end(),
                                       [&](const config::Program& pr) { return pr.id == program; })) {
    p.errors.push_back({"program", "program '" + std::string(program) + "' is not configured for clinic '" + clinic_id + "'"});
    return p;
  }

  auto& w = p.write;
  w.clinic = clinic_id;
  w.record_id = p.record_id;
  w.record_type = std::string(json::getString(record, "record_type"));
  p.record_key = ids::recordKey(record_key_secret_, clinic_id, p.record_id);
  w.content_hash = canonicalHash(record, &w.payload);
  const auto* patient = json::find(record, "patient");
  const std::string mrn = patient != nullptr ? std::string(json::getString(*patient, "mrn")) : std::string();
  w.patient_key = ids::resourceId(clinic_id, "Patient", mrn);

  if (!mappers_.has(w.record_type)) {
    w.state = store::RecordState::Unmapped;  // kept in the inbox until a mapper for it exists
    return p;
  }
  const mapping::MappingContext context{clinic_id, clinic->identifier_system_base};
  auto mapped = mappers_.map(record, context);
  if (!mapped) {
    const auto& e = mapped.error();
    p.errors.push_back({e.where, forClients(e.message + (e.hint.empty() ? "" : " (" + e.hint + ")"))});
    return p;
  }
  // Nothing leaves that fails its profile: the record is kept (the clinic's data is not lost)
  // as "invalid" with the outcome, and nothing is queued.
  for (const auto& r : mapped.value().resources) {
    auto checked = profiles_.validate(r.resource);
    if (!checked.valid()) {
      w.state = store::RecordState::Invalid;
      w.error = checked.operationOutcomeJson();
      p.state = w.state;
      p.outcome = w.error;
      return p;
    }
  }
  w.state = store::RecordState::Mapped;

  std::vector<outbox::BundleEntry> entries;
  bool has_patient = false;
  for (const auto& r : mapped.value().resources) {
    w.resources.push_back({r.resource_type, r.id, r.identifier_system, r.identifier_value, json::toString(r.resource)});
    entries.push_back({r.resource_type, r.id, r.identifier_system, r.identifier_value, &r.resource,
                       outbox::EntryMethod::ConditionalUpdate});
    has_patient = has_patient || r.resource_type == "Patient";
  }
  // Resources about a patient travel with that patient, created only if the partner lacks it.
  rapidjson::Document stub;
  if (!has_patient && !mrn.empty()) {
    const std::string mrn_system = clinic->identifier_system_base + "mrn";
    stub = stubPatient(w.patient_key, mrn_system, mrn);
    entries.insert(entries.begin(), {"Patient", w.patient_key, mrn_system, mrn, &stub,
                                     outbox::EntryMethod::ConditionalCreate});
  }
  for (const auto& partner : config_.partners) {
    // Interim routing until consent checking lands: the partner must list the clinic.
    if (std::find(partner.clinics.begin(), partner.clinics.end(), clinic_id) == partner.clinics.end()) continue;
    for (auto& built : outbox::buildTransactionBundles(entries, partner.max_bundle_entries)) {
      w.outbox.push_back({partner.id, std::move(built.json), built.entry_count});
    }
    p.partners.push_back(partner.id);
  }
  for (const auto& r : w.resources) p.resource_refs.push_back(r.resource_type + "/" + r.resource_id);
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

bool IngestService::isCsvContentType(std::string_view content_type) { return mediaType(content_type) == "text/csv"; }

void IngestService::ingest(std::string_view body, std::string_view content_type, std::string_view csv_mapper,
                           const Submitter& submitter, std::function<void(IngestReply)> done) const {
  if (!isCsvContentType(content_type)) return ingest(body, content_type, submitter, std::move(done));
  const auto refuse = [&](std::string message, std::string hint) {
    done({400, json::operationOutcome(makeError(ErrorCode::BadRequest, std::move(message), "mapper", std::move(hint)))});
  };
  std::string available;
  if (csv_mappers_ != nullptr) {
    for (const auto& name : csv_mappers_->names()) available += (available.empty() ? "" : ", ") + name;
  }
  if (available.empty()) {
    return refuse("this gateway has no CSV mappers", "set mapping.csv_mappers_dir in the gateway config, or post JSON records");
  }
  if (csv_mapper.empty()) {
    return refuse("a text/csv body needs the mapper query parameter", "post to /v1/records?mapper=NAME; available: " + available);
  }
  const auto* mapper = csv_mappers_->find(csv_mapper);
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

void IngestService::commit(std::shared_ptr<std::vector<Prepared>> prepared, std::vector<store::IngestWrite> writes,
                           const Submitter& submitter, std::function<void(IngestReply)> done) const {
  auto reply = [prepared, token = submitter.token_id, done = std::move(done)](
                   Result<std::vector<store::IngestOutcome>> committed) {
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
  committer_.submit(std::move(writes), std::move(reply));
}

}  // namespace gw::ingest

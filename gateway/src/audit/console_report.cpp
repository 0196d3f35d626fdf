#include "audit/console_report.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>

#include "audit/audit_format.hpp"
#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"

namespace gw::audit {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using store::AuditKind;
using store::AuditOutcome;

using json::writeKey;
void key(Writer& w, std::string_view k) { writeKey(w, k); }
void member(Writer& w, std::string_view k, std::string_view v) { json::writeMember(w, k, v); }
void nullableMember(Writer& w, std::string_view k, std::string_view v) { json::writeNullableMember(w, k, v); }
void listMember(Writer& w, std::string_view k, std::string_view list) { json::writeListMember(w, k, list); }
std::string timeText(std::int64_t ms) { return formatRfc3339(fromUnixMillis(ms)); }
std::string done(const rapidjson::StringBuffer& b) { return {b.GetString(), b.GetSize()}; }

std::string_view classWord(std::string_view c) {
  if (c == "sud") return "substance use disorder (42 CFR Part 2)";
  if (c == "mh") return "mental-health";
  if (c == "general") return "general health";
  return c;
}

// The first human text of a CodeableConcept: its text, else a coding's display, else a code.
std::string conceptText(const rapidjson::Value* value) {
  if (value == nullptr) return {};
  if (value->IsArray()) {
    for (const auto& c : value->GetArray()) {
      if (auto t = conceptText(&c); !t.empty()) return t;
    }
    return {};
  }
  if (!value->IsObject()) return {};
  if (auto text = json::getString(*value, "text"); !text.empty()) return std::string(text);
  const auto* codings = json::find(*value, "coding");
  if (codings == nullptr || !codings->IsArray()) return {};
  for (const auto& c : codings->GetArray()) {
    if (!c.IsObject()) continue;
    if (auto d = json::getString(c, "display"); !d.empty()) return std::string(d);
  }
  for (const auto& c : codings->GetArray()) {
    if (!c.IsObject()) continue;
    if (auto d = json::getString(c, "code"); !d.empty()) return std::string(d);
  }
  return {};
}

std::string csvLine(std::initializer_list<std::string_view> cells) {
  std::string out;
  bool first = true;
  for (const auto c : cells) {
    if (!first) out += ',';
    first = false;
    out += csvCell(c);
  }
  return out + "\r\n";
}

}  // namespace

// Label text for the classes a description ends with: "42 CFR Part 2", "mental health".
std::string classLabels(std::string_view classes) {
  std::string out;
  const auto add = [&](std::string_view s) {
    if (!out.empty()) out += ", ";
    out += s;
  };
  if (("," + std::string(classes) + ",").find(",sud,") != std::string::npos) add("42 CFR Part 2");
  if (("," + std::string(classes) + ",").find(",mh,") != std::string::npos) add("mental health");
  return out;
}

std::string breakGlassOf(const store::AuditEntry& e) {
  if (e.detail.find("break_glass") == std::string::npos) return {};
  rapidjson::Document d;
  if (!json::parse(e.detail, d) || !d.IsObject()) return {};
  return std::string(json::getString(d, "break_glass"));
}

std::string_view consoleOutcome(const store::AuditEntry& e) {
  const bool emergency = e.reason == "break-glass";
  switch (e.outcome) {
    case AuditOutcome::Delivered: return emergency ? "emergency" : "disclosed";
    case AuditOutcome::Permit: return emergency ? "emergency" : "permitted";
    case AuditOutcome::Deny: return "denied";
    case AuditOutcome::Redact: return "redacted";
    case AuditOutcome::Cancelled: return "cancelled";
    case AuditOutcome::Failed: return "failed";
    default: return store::auditOutcomeName(e.outcome);
  }
}

std::optional<OutcomeFilter> parseOutcomeFilter(std::string_view text) {
  if (text == "disclosed") return OutcomeFilter{AuditOutcome::Delivered, false};
  if (text == "emergency") return OutcomeFilter{std::nullopt, true};
  if (text == "permitted") return OutcomeFilter{AuditOutcome::Permit, false};
  if (text == "denied") return OutcomeFilter{AuditOutcome::Deny, false};
  if (text == "redacted") return OutcomeFilter{AuditOutcome::Redact, false};
  if (text == "failed") return OutcomeFilter{AuditOutcome::Failed, false};
  if (auto o = store::parseAuditOutcome(text)) return OutcomeFilter{*o, false};
  return std::nullopt;
}

std::string classesInWords(std::string_view classes) {
  std::vector<std::string_view> words;
  while (!classes.empty()) {
    const auto comma = classes.find(',');
    words.push_back(classWord(classes.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    classes.remove_prefix(comma + 1);
  }
  if (words.empty()) return "unclassified data";
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " and " : ", ";
    out += words[i];
  }
  return out + " data";
}

std::string reasonInWords(std::string_view reason) {
  const auto after = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (reason.substr(0, prefix.size()) != prefix) return std::nullopt;
    return reason.substr(prefix.size());
  };
  if (reason == "no-consent") return "there is no consent naming this recipient";
  if (reason == "expired") return "the consent had expired";
  if (reason == "not-yet-valid") return "the consent was not yet in effect";
  if (reason == "revoked") return "the consent was revoked";
  if (reason == "purpose-not-covered") return "the consent does not cover this purpose";
  if (reason == "unclassified") return "the data could not be classified, so it is never sent";
  if (reason == "consent-copy-unavailable") return "the consent form could not be attached";
  if (reason == "nothing-else-disclosed") return "nothing but the patient's identity would have been sent";
  if (reason == "break-glass") return "emergency access (break-glass, 42 CFR 2.51)";
  if (reason == "consent-changed") return "the consent changed after it was queued";
  if (reason == "consent-update") return "an update of the consent itself";
  if (auto classes = after("class-not-covered:")) {
    return "the consent does not cover " + classesInWords(*classes);
  }
  if (auto inner = after("patient-not-disclosed:")) {
    return "the patient's identity may not be sent (" + reasonInWords(*inner) + ")";
  }
  if (auto inner = after("no longer permitted: ")) return "no longer permitted: " + reasonInWords(*inner);
  if (auto outcome = after("decision-changed:")) return "the decision changed to " + std::string(*outcome);
  if (reason.empty() || reason == "none") return {};
  return "reason " + std::string(reason);
}

std::string plainText(const store::AuditEntry& e, std::string_view partner) {
  const std::string why = reasonInWords(e.reason);
  const std::string to(partner);
  const bool emergency = e.reason == "break-glass";
  switch (e.kind) {
    case AuditKind::Decision:
      switch (e.outcome) {
        case AuditOutcome::Permit:
          return emergency ? "Cleared to send to " + to + " under emergency access (break-glass, 42 CFR 2.51)"
                           : "Cleared to send to " + to + " under the consent";
        case AuditOutcome::Redact: return "Cleared to send to " + to + " with parts left out: " + why;
        default: return "Not sent to " + to + (why.empty() ? std::string() : ": " + why);
      }
    case AuditKind::Cancel: return "Stopped before sending to " + to + (why.empty() ? std::string() : ": " + why);
    case AuditKind::Disclosure:
      if (e.outcome == AuditOutcome::Delivered) {
        return emergency ? "Sent to " + to + " under emergency access (break-glass, 42 CFR 2.51)" : "Sent to " + to;
      }
      return "Could not be delivered to " + to + (e.reason.empty() ? std::string() : " (" + e.reason + ")");
    default: return std::string(store::auditKindName(e.kind)) + " " + std::string(store::auditOutcomeName(e.outcome));
  }
}

std::string describeResourceType(std::string_view resource_type, std::string_view classes) {
  std::string out(resource_type);
  if (const auto suffix = classLabels(classes); !suffix.empty()) out += ", " + suffix;
  return out;
}

std::string describeResource(const rapidjson::Value& r, std::string_view classes) {
  const std::string_view type = r.IsObject() ? json::getString(r, "resourceType") : std::string_view();
  std::string what;
  if (r.IsObject()) {
    if (type == "MedicationRequest") {
      what = conceptText(json::find(r, "medicationCodeableConcept"));
    } else if (type == "Encounter") {
      what = conceptText(json::find(r, "type"));
    } else if (type == "CarePlan") {
      what = std::string(json::getString(r, "title"));
      if (what.empty()) what = conceptText(json::find(r, "category"));
      if (what.empty()) what = "treatment plan";
    } else if (type == "Consent") {
      what = "consent directive";
    } else if (type == "Patient") {
      what = "demographics";
    } else {
      what = conceptText(json::find(r, "code"));
      if (what.empty()) what = conceptText(json::find(r, "type"));
    }
  }
  std::string out(type);
  if (!what.empty()) out += " " + what;
  if (const auto suffix = classLabels(classes); !suffix.empty()) out += ", " + suffix;
  return out;
}

void describeBundle(std::string_view bundle_json, const ResourceKeyOf& key_of, std::map<std::string, SentResource>& out) {
  rapidjson::Document d;
  if (!json::parse(bundle_json, d) || !d.IsObject()) return;
  const auto* entries = json::find(d, "entry");
  if (entries == nullptr || !entries->IsArray()) return;
  for (const auto& entry : entries->GetArray()) {
    const auto* r = entry.IsObject() ? json::find(entry, "resource") : nullptr;
    if (r == nullptr || !r->IsObject()) continue;
    const auto type = json::getString(*r, "resourceType");
    // Conditional writes carry no id: the entry's fullUrl is urn:uuid:<the gateway's id>.
    std::string_view id = json::getString(*r, "id");
    if (id.empty()) {
      id = json::getString(entry, "fullUrl");
      if (id.substr(0, 9) != "urn:uuid:") continue;
      id.remove_prefix(9);
    }
    if (type.empty() || id.empty()) continue;
    // Without classes: the caller adds the log row's (classLabels).
    out[key_of(type, id)] = {describeResource(*r, ""), std::string(type) + "/" + std::string(id)};
  }
}

std::string accountingJson(const Accounting& a) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  member(w, "clinic", a.clinic);
  member(w, "patient_key", a.patient_key);
  key(w, "years");
  w.Int(a.years);
  member(w, "from", timeText(a.from_ms));
  member(w, "to", timeText(a.to_ms));
  key(w, "count");
  w.Uint64(a.lines.size());
  key(w, "disclosures");
  w.StartArray();
  for (const auto& l : a.lines) {
    w.StartObject();
    key(w, "seq");
    w.Int64(l.entry.seq);
    member(w, "date", timeText(l.entry.at_ms));
    member(w, "partner_id", l.entry.partner_id);
    member(w, "recipient", l.recipient);
    member(w, "description", l.description);
    member(w, "resource_type", l.entry.resource_type);
    nullableMember(w, "reference", l.reference);
    listMember(w, "classes", l.entry.classes);
    member(w, "purpose", l.entry.purpose);
    nullableMember(w, "consent_id", l.consent_id);
    key(w, "consent_version");
    w.Int64(l.entry.consent_version);
    key(w, "break_glass");
    w.Bool(!l.break_glass_id.empty());
    nullableMember(w, "break_glass_id", l.break_glass_id);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return done(b);
}

std::string accountingCsv(const Accounting& a) {
  std::string out = csvLine({"date", "recipient", "recipient_id", "description", "purpose", "consent", "consent_version",
                             "break_glass", "log_seq"});
  for (const auto& l : a.lines) {
    const std::string version = l.entry.consent_version > 0 ? std::to_string(l.entry.consent_version) : "";
    const std::string seq = std::to_string(l.entry.seq);
    const std::string glass = l.break_glass_id.empty() ? "no" : "yes (" + l.break_glass_id + ")";
    out += csvLine({timeText(l.entry.at_ms), l.recipient, l.entry.partner_id, l.description, l.entry.purpose, l.consent_id,
                    version, glass, seq});
  }
  return out;
}

namespace {

void coding(Writer& w, std::string_view system, std::string_view code, std::string_view display) {
  w.StartObject();
  member(w, "system", system);
  member(w, "code", code);
  if (!display.empty()) member(w, "display", display);
  w.EndObject();
}

void codeableConcept(Writer& w, std::string_view system, std::string_view code, std::string_view display) {
  w.StartObject();
  key(w, "coding");
  w.StartArray();
  coding(w, system, code, display);
  w.EndArray();
  w.EndObject();
}

constexpr std::string_view kDcm = "http://dicom.nema.org/resources/ontology/DCM";
constexpr std::string_view kPatientKeySystem = "urn:fhir-gateway:patient-key";
constexpr std::string_view kConsentKeySystem = "urn:fhir-gateway:consent";

}  // namespace

std::string accountingAuditEvents(const Accounting& a, std::string_view gateway_name) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  member(w, "resourceType", "Bundle");
  member(w, "type", "collection");
  member(w, "timestamp", timeText(a.to_ms));
  key(w, "entry");
  w.StartArray();
  for (const auto& l : a.lines) {
    const std::string id = "disclosure-" + std::to_string(l.entry.seq);
    w.StartObject();
    member(w, "fullUrl",
           "urn:uuid:" +
               ids::uuidV5("6ba7b811-9dad-11d1-80b4-00c04fd430c8", a.patient_key + "/" + std::to_string(l.entry.seq)));
    key(w, "resource");
    w.StartObject();
    member(w, "resourceType", "AuditEvent");
    member(w, "id", id);
    // IHE BALP privacy disclosure at the source: Export, subtype "disclose" (ISO 21089).
    key(w, "type");
    coding(w, kDcm, "110106", "Export");
    key(w, "subtype");
    w.StartArray();
    coding(w, "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle", "disclose", "Disclose Record Lifecycle Event");
    if (!l.break_glass_id.empty()) {
      coding(w, "http://terminology.hl7.org/CodeSystem/v3-ActReason", "ETREAT", "Emergency Treatment");
    }
    w.EndArray();
    member(w, "action", "R");
    member(w, "recorded", timeText(l.entry.at_ms));
    member(w, "outcome", "0");
    key(w, "purposeOfEvent");
    w.StartArray();
    codeableConcept(w, "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                    l.break_glass_id.empty() ? l.entry.purpose : "ETREAT",
                    l.break_glass_id.empty() ? "" : "Emergency Treatment");
    w.EndArray();
    key(w, "agent");
    w.StartArray();
    // The gateway, which disclosed.
    w.StartObject();
    key(w, "type");
    codeableConcept(w, kDcm, "110153", "Source Role ID");
    key(w, "who");
    w.StartObject();
    member(w, "display", gateway_name);
    w.EndObject();
    key(w, "requestor");
    w.Bool(false);
    w.EndObject();
    // The recipient organization, under the consent (policy) or the break-glass.
    w.StartObject();
    key(w, "type");
    codeableConcept(w, kDcm, "110152", "Destination Role ID");
    key(w, "who");
    w.StartObject();
    key(w, "identifier");
    w.StartObject();
    member(w, "system", "urn:fhir-gateway:partner");
    member(w, "value", l.entry.partner_id);
    w.EndObject();
    member(w, "display", l.recipient);
    w.EndObject();
    key(w, "requestor");
    w.Bool(false);
    key(w, "policy");
    w.StartArray();
    if (!l.consent_id.empty()) {
      json::writeString(w, std::string(kConsentKeySystem) + ":" + a.clinic + "/" + l.consent_id + "/" +
                               std::to_string(l.entry.consent_version));
    }
    if (!l.break_glass_id.empty()) json::writeString(w, "urn:fhir-gateway:break-glass:" + l.break_glass_id);
    w.EndArray();
    w.EndObject();
    w.EndArray();
    key(w, "source");
    w.StartObject();
    member(w, "site", a.clinic);
    key(w, "observer");
    w.StartObject();
    member(w, "display", gateway_name);
    w.EndObject();
    key(w, "type");
    w.StartArray();
    coding(w, "http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server");
    w.EndArray();
    w.EndObject();
    key(w, "entity");
    w.StartArray();
    // The patient.
    w.StartObject();
    key(w, "what");
    w.StartObject();
    key(w, "identifier");
    w.StartObject();
    member(w, "system", kPatientKeySystem);
    member(w, "value", a.patient_key);
    w.EndObject();
    w.EndObject();
    key(w, "type");
    coding(w, "http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person");
    key(w, "role");
    coding(w, "http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient");
    w.EndObject();
    // What was disclosed.
    w.StartObject();
    key(w, "what");
    w.StartObject();
    if (!l.reference.empty()) {
      member(w, "reference", l.reference);
    } else {
      key(w, "identifier");
      w.StartObject();
      member(w, "system", "urn:fhir-gateway:resource-key");
      member(w, "value", l.entry.resource_id);
      w.EndObject();
    }
    member(w, "display", l.description);
    w.EndObject();
    key(w, "type");
    coding(w, "http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object");
    key(w, "role");
    coding(w, "http://terminology.hl7.org/CodeSystem/object-role", "4", "Domain Resource");
    member(w, "description", l.description);
    w.EndObject();
    w.EndArray();
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return done(b);
}

bool isPatientEvent(const store::AuditEntry& e) {
  return e.kind == AuditKind::Decision || e.kind == AuditKind::Cancel || e.kind == AuditKind::Disclosure;
}

std::string patientJson(std::string_view clinic, std::string_view patient_key, const std::vector<ConsentView>& consents,
                        const std::vector<store::AuditEntry>& events, const PartnerNames& names,
                        const std::map<std::string, std::string>& consent_ids,
                        const std::function<std::string(const store::AuditEntry&)>& describe) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  member(w, "clinic", clinic);
  member(w, "patient_key", patient_key);
  key(w, "consents");
  w.StartArray();
  for (const auto& c : consents) {
    const auto& r = c.row;
    w.StartObject();
    member(w, "consent_id", r.consent_id);
    key(w, "version");
    w.Int64(r.version);
    member(w, "status", r.status);
    member(w, "partner_id", r.partner_id);
    member(w, "partner_name", c.partner_name);
    key(w, "recipients");
    w.StartArray();
    w.StartObject();
    member(w, "partner_id", r.partner_id);
    member(w, "partner_name", c.partner_name);
    w.EndObject();
    w.EndArray();
    listMember(w, "classes", r.classes);
    listMember(w, "purposes", r.purposes);
    key(w, "period");
    w.StartObject();
    nullableMember(w, "start", r.period_start);
    nullableMember(w, "end", r.period_end);
    w.EndObject();
    nullableMember(w, "signed_on", r.signed_on);
    nullableMember(w, "revoked_on", r.revoked_on);
    member(w, "recorded_at", timeText(r.recorded_at));
    w.EndObject();
  }
  w.EndArray();
  key(w, "events");
  w.StartArray();
  for (const auto& e : events) {
    const std::string partner = names(e.partner_id);
    w.StartObject();
    key(w, "seq");
    w.Int64(e.seq);
    member(w, "time", timeText(e.at_ms));
    member(w, "kind", store::auditKindName(e.kind));
    member(w, "partner_id", e.partner_id);
    member(w, "partner_name", partner);
    member(w, "outcome", consoleOutcome(e));
    listMember(w, "classes", e.classes);
    member(w, "resource_type", e.resource_type);
    member(w, "reason", e.reason);
    member(w, "text", plainText(e, partner));
    const auto clear = consent_ids.find(e.consent_id);
    nullableMember(w, "consent_id", clear != consent_ids.end() ? clear->second : e.consent_id);
    key(w, "consent_version");
    w.Int64(e.consent_version);
    nullableMember(w, "break_glass_id", breakGlassOf(e));
    member(w, "description", describe(e));
    // Which gateway wrote the row (several instances on one database); null on rows from before schema 9.
    nullableMember(w, "instance_id", e.instance_id);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return done(b);
}

std::string partnerViewJson(std::string_view partner_id, std::string_view partner_name, std::int64_t from_ms,
                            std::int64_t to_ms, const std::vector<store::PartnerLogCount>& counts,
                            const store::AuditPage& page) {
  std::map<std::string, std::int64_t> by_outcome, by_class, by_reason, by_kind;
  std::int64_t total = 0;
  for (const auto& c : counts) {
    total += c.count;
    store::AuditEntry probe;
    probe.outcome = store::parseAuditOutcome(c.outcome).value_or(AuditOutcome::Error);
    probe.reason = c.reason;
    by_outcome[std::string(consoleOutcome(probe))] += c.count;
    by_kind[c.kind] += c.count;
    by_reason[c.reason.empty() ? "none" : c.reason] += c.count;
    std::string_view list = c.classes;
    if (list.empty()) by_class["unclassified"] += c.count;
    while (!list.empty()) {
      const auto comma = list.find(',');
      by_class[std::string(list.substr(0, comma))] += c.count;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  rapidjson::StringBuffer b;
  Writer w(b);
  const auto counts_object = [&](std::string_view name, const std::map<std::string, std::int64_t>& m) {
    key(w, name);
    w.StartObject();
    for (const auto& [k, v] : m) {
      key(w, k);
      w.Int64(v);
    }
    w.EndObject();
  };
  w.StartObject();
  member(w, "partner_id", partner_id);
  member(w, "partner_name", partner_name);
  member(w, "from", timeText(from_ms));
  member(w, "to", timeText(to_ms));
  key(w, "total");
  w.Int64(total);
  key(w, "counts");
  w.StartObject();
  counts_object("by_outcome", by_outcome);
  counts_object("by_kind", by_kind);
  counts_object("by_class", by_class);
  counts_object("by_reason", by_reason);
  w.EndObject();
  key(w, "rows");
  w.StartArray();
  for (const auto& e : page.entries) {
    w.StartObject();
    key(w, "seq");
    w.Int64(e.seq);
    member(w, "time", timeText(e.at_ms));
    member(w, "kind", store::auditKindName(e.kind));
    member(w, "outcome", consoleOutcome(e));
    listMember(w, "classes", e.classes);
    member(w, "reason", e.reason);
    member(w, "text", plainText(e, partner_name));
    member(w, "patient_key", e.patient_key);
    member(w, "resource_type", e.resource_type);
    nullableMember(w, "break_glass_id", breakGlassOf(e));
    nullableMember(w, "instance_id", e.instance_id);
    w.EndObject();
  }
  w.EndArray();
  key(w, "next_after_seq");
  if (page.next_after_seq) {
    w.Int64(*page.next_after_seq);
  } else {
    w.Null();
  }
  w.EndObject();
  return done(b);
}

store::AuditEntry consoleReadEntry(std::string_view view, std::string_view clinic, std::string_view patient_key,
                                   std::string_view actor, std::int64_t at_ms, std::size_t returned) {
  rapidjson::StringBuffer b;
  Writer w(b);
  w.StartObject();
  member(w, "view", view);
  key(w, "returned");
  w.Uint64(returned);
  w.EndObject();
  return store::AuditEntryBuilder(store::AuditKind::AuditRead, store::AuditOutcome::Ok, actor, at_ms)
      .clinic(clinic)
      .patient(patient_key)
      .reason(std::string("console:") + std::string(view))
      .detail(done(b))
      .build();
}

}  // namespace gw::audit

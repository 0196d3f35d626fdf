#include "app/compliance.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>
#include <set>

#include "audit/audit_format.hpp"
#include "audit/audit_query.hpp"
#include "audit/console_report.hpp"
#include "common/clock.hpp"
#include "common/dates.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace gw::app {
namespace {

using dates::civilFromDays;
using dates::daysFromCivil;
using dates::isLeapYear;
using dates::readCalendarDate;

using http::Request;
using http::Respond;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr std::int64_t kDayMs = 86'400'000;
constexpr int kMaxBreakGlassMinutes = 1440;  // 42 CFR 2.51 emergencies: at most 24 hours at a time

bool isDigit(char c) { return c >= '0' && c <= '9'; }

std::int64_t nowMs(const Runtime& runtime) { return toUnixMillis(runtime.clock().now()); }

Error badRequest(std::string message, std::string where, std::string hint) {
  return makeError(ErrorCode::BadRequest, std::move(message), std::move(where), std::move(hint));
}

void fail(const Respond& respond, const Error& e) { respond(http::errorResponse(e)); }

// The console's answers carry text typed by people (names, notes, the nature of an emergency)
// and from records: '<', '>' and '&' are sent as \u escapes, so a value can never be read as
// markup by anything that mistakes the JSON for HTML. (They occur only inside JSON strings, where
// the escapes mean the same characters.)
http::Response consoleJson(int status, std::string body) {
  std::string out;
  out.reserve(body.size());
  for (const char c : body) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += c;
    }
  }
  return http::jsonResponse(status, std::move(out));
}

std::string partnerName(const Runtime& runtime, std::string_view id) {
  const auto* p = runtime.config().findPartner(id);
  return p == nullptr ? std::string(id) : p->displayName();
}

audit::PartnerNames partnerNames(const Runtime& runtime) {
  return [&runtime](std::string_view id) { return partnerName(runtime, id); };
}

// Only the parameters named may appear, each once: a misspelt filter never widens an answer.
Status checkParams(const Request& req, std::initializer_list<std::string_view> allowed) {
  std::set<std::string> seen;
  for (const auto& [name, value] : req.query) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return badRequest("unknown parameter '" + name + "'", name, "allowed here: " + list);
    }
    if (!seen.insert(name).second) return badRequest("parameter '" + name + "' given twice", name, "give it once");
  }
  return ok();
}

struct PatientRef {
  std::string clinic;
  std::string patient_key;
  std::string legacy_key;  // rows logged before lookup keys (only known from an MRN)
};

// The patient named by clinic + mrn (turned into its lookup key here; the MRN is neither stored
// nor logged) or clinic + patient_key (the drill-down from the partner view).
Result<PatientRef> patientRef(Runtime& runtime, std::string_view clinic, std::string_view mrn,
                              std::string_view patient_key) {
  if (clinic.empty()) {
    return badRequest("the clinic is missing", "clinic", "add ?clinic=<clinic id>");
  }
  if (mrn.empty() == patient_key.empty()) {
    return badRequest("name the patient by mrn or by patient_key (one of the two)", "mrn",
                      "add mrn=<the patient's MRN at the clinic>, or patient_key=<a key from the partner view>");
  }
  PatientRef p;
  p.clinic = std::string(clinic);
  if (!mrn.empty()) {
    p.patient_key = runtime.store().lookupKeys().patient(clinic, mrn);
    p.legacy_key = ids::resourceId(clinic, "Patient", mrn);
  } else {
    p.patient_key = std::string(patient_key);
  }
  return p;
}

Result<PatientRef> patientFromQuery(Runtime& runtime, const Request& req) {
  return patientRef(runtime, req.queryParam("clinic").value_or(""), req.queryParam("mrn").value_or(""),
                    req.queryParam("patient_key").value_or(""));
}

// Every row of the query, oldest first, a page at a time.
Result<std::vector<store::AuditEntry>> allRows(store::Store& store, store::AuditQuery q) {
  std::vector<store::AuditEntry> out;
  q.limit = store::kMaxAuditPageSize;
  for (;;) {
    GW_TRY(auto page, store.queryAudit(q));
    for (auto& e : page.entries) out.push_back(std::move(e));
    if (!page.next_after_seq) break;
    q.after_seq = *page.next_after_seq;
  }
  return out;
}

// The patient's consent versions at the clinic, and their keys -> clear consent ids.
Result<std::vector<store::StoredConsent>> clinicConsents(store::Store& store, const PatientRef& p) {
  GW_TRY(auto all, store.consents(p.patient_key));
  std::erase_if(all, [&](const store::StoredConsent& c) { return c.row.clinic != p.clinic; });
  return all;
}

std::map<std::string, std::string> consentIds(const std::vector<store::StoredConsent>& consents) {
  std::map<std::string, std::string> out;
  for (const auto& c : consents) out[c.consent_key] = c.row.consent_id;
  return out;
}

Status logRead(Runtime& runtime, std::string_view view, const PatientRef& p, const Request& req, std::size_t n) {
  return runtime.logRead(audit::consoleReadEntry(view, p.clinic, p.patient_key, req.token_id, nowMs(runtime), n));
}

// --- JSON of the console's own rows ----------------------------------------------------------

void member(Writer& w, std::string_view k, std::string_view v) { json::writeMember(w, k, v); }
void nullable(Writer& w, std::string_view k, std::string_view v) { json::writeNullableMember(w, k, v); }
std::string timeText(std::int64_t ms) { return formatRfc3339(fromUnixMillis(ms)); }
std::string todayText(const Runtime& runtime) { return timeText(nowMs(runtime)).substr(0, 10); }

void writeRequest(Writer& w, const store::AccountingRequest& r, std::string_view today) {
  w.StartObject();
  member(w, "id", r.id);
  member(w, "clinic", r.clinic);
  member(w, "patient_key", r.patient_key);
  member(w, "state", r.state);
  member(w, "received_on", r.received_on);
  member(w, "due_on", r.due_on);
  member(w, "note", r.note);
  nullable(w, "delivered_on", r.delivered_on);
  member(w, "created_at", timeText(r.created_at_ms));
  member(w, "created_by", r.created_by);
  nullable(w, "delivered_by", r.delivered_by);
  w.Key("overdue");
  w.Bool(r.state == "open" && r.due_on < today);
  w.EndObject();
}

std::string requestJson(const store::AccountingRequest& r, std::string_view today) {
  rapidjson::StringBuffer b;
  Writer w(b);
  writeRequest(w, r, today);
  return {b.GetString(), b.GetSize()};
}

void writeBreakGlass(Writer& w, const store::BreakGlass& g, const Runtime& runtime, std::int64_t now) {
  w.StartObject();
  member(w, "id", g.id);
  member(w, "clinic", g.clinic);
  member(w, "patient_key", g.patient_key);
  member(w, "partner_id", g.partner_id);
  member(w, "partner_name", partnerName(runtime, g.partner_id));
  member(w, "recipient", g.recipient);
  member(w, "authorised_by", g.authorised_by);
  member(w, "nature", g.nature);
  member(w, "opened_by", g.opened_by);
  member(w, "opened_at", timeText(g.opened_at_ms));
  member(w, "expires_at", timeText(g.expires_at_ms));
  nullable(w, "ended_at", g.ended_at_ms > 0 ? timeText(g.ended_at_ms) : "");
  nullable(w, "ended_by", g.ended_by);
  w.Key("active");
  w.Bool(g.activeAt(now));
  w.EndObject();
}

std::string breakGlassJson(const store::BreakGlass& g, const Runtime& runtime, std::int64_t now) {
  rapidjson::StringBuffer b;
  Writer w(b);
  writeBreakGlass(w, g, runtime, now);
  return {b.GetString(), b.GetSize()};
}

// --- request bodies --------------------------------------------------------------------------

// A JSON object of string members (and `minutes`); what is not named is refused.
struct Body {
  std::map<std::string, std::string> text;
  std::optional<std::int64_t> minutes;
};

Result<Body> readBody(const Request& req, std::initializer_list<std::string_view> allowed, std::string_view example) {
  rapidjson::Document doc;
  if (req.body.empty() && allowed.size() > 0) {
    if (!json::parse("{}", doc)) return makeError(ErrorCode::Internal, "parse", "body");
  } else if (!json::parse(req.body, doc) || !doc.IsObject()) {
    return badRequest("the body must be a JSON object", "body", "send " + std::string(example));
  }
  Body body;
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    const std::string name(m->name.GetString(), m->name.GetStringLength());
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return badRequest("unknown member '" + name + "'", name, "send " + std::string(example));
    }
    if (name == "minutes") {
      if (!m->value.IsInt64()) return badRequest("minutes must be a whole number", name, "e.g. \"minutes\": 240");
      body.minutes = m->value.GetInt64();
      continue;
    }
    if (!m->value.IsString()) return badRequest("'" + name + "' must be a string", name, "send " + std::string(example));
    std::string value(m->value.GetString(), m->value.GetStringLength());
    if (std::any_of(value.begin(), value.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
      return badRequest("'" + name + "' holds a control character", name, "send plain text on one line");
    }
    body.text[name] = std::move(value);
  }
  return body;
}

std::string field(const Body& b, const std::string& name) {
  auto it = b.text.find(name);
  return it == b.text.end() ? std::string() : it->second;
}

Status requireText(const Body& b, const std::string& name, std::size_t max, std::string_view what) {
  const auto v = field(b, name);
  if (v.empty()) return badRequest(name + " is missing", name, "give " + std::string(what));
  if (v.size() > max) {
    return badRequest(name + " is longer than " + std::to_string(max) + " bytes", name, "shorten it");
  }
  return ok();
}

// The body's clinic must be the ?clinic= that admit() checked the caller against.
Status sameClinic(const Request& req, const Body& b) {
  const auto q = req.queryParam("clinic").value_or("");
  const auto in_body = field(b, "clinic");
  if (!in_body.empty() && in_body != q) {
    return makeError(ErrorCode::Forbidden, "the body names clinic '" + in_body + "' but the request is for '" + q + "'",
                     "clinic", "send the same clinic as ?clinic= and in the body");
  }
  return ok();
}

bool validDate(std::string_view d) { return d.size() == 10 && readCalendarDate(d).has_value(); }

// ?from= and ?to=: a date (a whole UTC day; `to` inclusive) or an RFC 3339 date-time.
Result<std::int64_t> timeParam(const std::string& text, const std::string& name, bool end) {
  if (text.size() == 10) {
    const auto d = readCalendarDate(text);
    if (!d) return badRequest("'" + text + "' is not a date", name, "use YYYY-MM-DD or an RFC 3339 date-time");
    const auto days = daysFromCivil(d->year, d->month, d->day) + (end ? 1 : 0);
    return days * kDayMs;
  }
  auto ms = audit::parseRfc3339Millis(text);
  if (!ms) return badRequest("'" + text + "' is not a date or date-time", name, "use YYYY-MM-DD or 2026-12-01T00:00:00Z");
  return ms.value();
}

}  // namespace

using dates::civilFromDays;
using dates::daysFromCivil;
using dates::isLeapYear;
using dates::readCalendarDate;

std::int64_t accountingStartMillis(std::int64_t now_ms, int years) {
  const auto today = civilFromDays(now_ms >= 0 ? now_ms / kDayMs : (now_ms - kDayMs + 1) / kDayMs);
  const std::int64_t year = today.year - years;
  unsigned day = today.day;
  if (today.month == 2 && day == 29 && !isLeapYear(year)) day = 28;
  return daysFromCivil(year, today.month, day) * kDayMs;
}

std::string addDays(std::string_view date, int days) {
  const auto d = readCalendarDate(date);
  if (!d) return {};
  const auto c = civilFromDays(daysFromCivil(d->year, d->month, d->day) + days);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(c.year), c.month, c.day);
  return buf;
}

// GET /v1/compliance/patient?clinic=&mrn= | &patient_key=
void compliancePatient(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  if (auto checked = checkParams(req, {"clinic", "mrn", "patient_key"}); !checked) return fail(respond, checked.error());
  auto p = patientFromQuery(runtime, req);
  if (!p) return fail(respond, p.error());
  auto& store = runtime.store();
  auto consents = clinicConsents(store, p.value());
  if (!consents) return fail(respond, consents.error());
  store::AuditQuery q;
  q.clinic = p.value().clinic;
  q.patient_key = p.value().patient_key;
  q.legacy_patient_key = p.value().legacy_key;
  auto rows = allRows(store, q);
  if (!rows) return fail(respond, rows.error());
  std::vector<store::AuditEntry> events;
  for (auto& e : rows.value()) {
    if (audit::isPatientEvent(e)) events.push_back(std::move(e));
  }
  if (consents.value().empty() && events.empty()) {
    return fail(respond, makeError(ErrorCode::NotFound,
                                   "clinic '" + p.value().clinic + "' has no consent and no log entry for this patient",
                                   "mrn", "check the MRN and the clinic (the MRN as the clinic posts it)"));
  }
  if (auto logged = logRead(runtime, "patient", p.value(), req, events.size() + consents.value().size()); !logged) {
    return fail(respond, logged.error());
  }
  std::vector<audit::ConsentView> views;
  // Newest recorded first: the timeline reads down from today.
  for (auto it = consents.value().rbegin(); it != consents.value().rend(); ++it) {
    views.push_back({it->row, partnerName(runtime, it->row.partner_id)});
  }
  const auto describe = [](const store::AuditEntry& e) {
    return e.resource_type.empty() ? std::string() : audit::describeResourceType(e.resource_type, e.classes);
  };
  respond(consoleJson(200, audit::patientJson(p.value().clinic, p.value().patient_key, views, events, partnerNames(runtime),
                                              consentIds(consents.value()), describe)));
}

// GET /v1/compliance/accounting?clinic=&mrn=|patient_key=[&years=][&format=json|csv|fhir]
void complianceAccounting(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  if (auto checked = checkParams(req, {"clinic", "mrn", "patient_key", "years", "format"}); !checked) {
    return fail(respond, checked.error());
  }
  auto p = patientFromQuery(runtime, req);
  if (!p) return fail(respond, p.error());
  int years = runtime.config().audit.accounting_years;
  if (const auto y = req.queryParam("years")) {
    if (y->empty() || y->size() > 2 || !std::all_of(y->begin(), y->end(), isDigit) || std::stoi(*y) < 1 ||
        std::stoi(*y) > 10) {
      return fail(respond, badRequest("years must be a whole number from 1 to 10", "years", "e.g. years=3"));
    }
    years = std::stoi(*y);
  }
  const std::string format = req.queryParam("format").value_or("json");
  if (format != "json" && format != "csv" && format != "fhir") {
    return fail(respond, badRequest("format '" + format + "' is not known", "format", "use json, csv or fhir"));
  }
  const auto started = std::chrono::steady_clock::now();
  auto& store = runtime.store();
  audit::Accounting a;
  a.clinic = p.value().clinic;
  a.patient_key = p.value().patient_key;
  a.years = years;
  a.to_ms = nowMs(runtime);
  a.from_ms = accountingStartMillis(a.to_ms, years);
  store::AuditQuery q;
  q.clinic = a.clinic;
  q.patient_key = a.patient_key;
  q.legacy_patient_key = p.value().legacy_key;
  q.kind = store::AuditKind::Disclosure;
  q.outcome = store::AuditOutcome::Delivered;  // 42 CFR 2.24: what was disclosed, never what was held back
  q.from_ms = a.from_ms;
  auto rows = allRows(store, q);
  if (!rows) return fail(respond, rows.error());
  auto consents = clinicConsents(store, p.value());
  if (!consents) return fail(respond, consents.error());
  if (rows.value().empty() && consents.value().empty()) {
    // An empty accounting handed to a patient must be true, not a mistyped MRN: a patient the
    // gateway never heard of (no consent, no log entry at all) is not found, as in the patient view.
    store::AuditQuery any;
    any.clinic = a.clinic;
    any.patient_key = a.patient_key;
    any.legacy_patient_key = p.value().legacy_key;
    any.limit = 1;
    auto seen = store.queryAudit(any);
    if (!seen) return fail(respond, seen.error());
    if (seen.value().entries.empty()) {
      return fail(respond, makeError(ErrorCode::NotFound,
                                     "clinic '" + a.clinic + "' has no consent and no log entry for this patient", "mrn",
                                     "check the MRN and the clinic (the MRN as the clinic posts it)"));
    }
  }
  const auto consent_ids = consentIds(consents.value());

  // What each delivered item carried, from its stored Bundle (decrypted here, never logged):
  // only the items the lines name, partner by partner.
  std::map<std::string, std::set<std::int64_t>> items_by_partner;
  std::vector<std::int64_t> item_of(rows.value().size(), 0);
  for (std::size_t i = 0; i < rows.value().size(); ++i) {
    const auto& e = rows.value()[i];
    const auto at = e.detail.find("\"outbox_item\":");
    if (at == std::string::npos) continue;
    item_of[i] = std::atoll(e.detail.c_str() + at + 14);
    items_by_partner[e.partner_id].insert(item_of[i]);
  }
  std::map<std::int64_t, std::map<std::string, audit::SentResource>> sent;
  const auto& keys = store.lookupKeys();
  const audit::ResourceKeyOf key_of = [&keys](std::string_view type, std::string_view id) {
    return keys.resource(type, id);
  };
  for (const auto& [partner, wanted] : items_by_partner) {
    auto delivered = store.deliveredItems(partner, a.patient_key);
    if (!delivered) return fail(respond, delivered.error());
    for (const auto& item : delivered.value()) {
      if (wanted.count(item.id) == 0) continue;
      audit::describeBundle(item.bundle, key_of, sent[item.id]);
    }
  }
  for (std::size_t i = 0; i < rows.value().size(); ++i) {
    auto& e = rows.value()[i];
    audit::AccountingLine line;
    line.recipient = partnerName(runtime, e.partner_id);
    line.break_glass_id = audit::breakGlassOf(e);
    const auto clear = consent_ids.find(e.consent_id);
    line.consent_id = clear != consent_ids.end() ? clear->second : e.consent_id;
    const auto item = sent.find(item_of[i]);
    const audit::SentResource* what = nullptr;
    if (item != sent.end()) {
      const auto r = item->second.find(e.resource_id);
      if (r != item->second.end()) what = &r->second;
    }
    if (what != nullptr) {
      const auto labels = audit::classLabels(e.classes);
      line.description = what->description + (labels.empty() ? "" : ", " + labels);
      line.reference = what->reference;
    } else {
      line.description = audit::describeResourceType(e.resource_type, e.classes);
    }
    line.entry = std::move(e);
    a.lines.push_back(std::move(line));
  }
  if (auto logged = logRead(runtime, "accounting", p.value(), req, a.lines.size()); !logged) {
    return fail(respond, logged.error());
  }
  http::Response r;
  if (format == "csv") {
    r.content_type = std::string(audit::kCsvContentType);
    r.body = audit::accountingCsv(a);
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"accounting-of-disclosures.csv\"");
  } else if (format == "fhir") {
    r.content_type = "application/fhir+json";
    r.body = audit::accountingAuditEvents(a, "fhir-gateway");
  } else {
    r = consoleJson(200, audit::accountingJson(a));
  }
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
  // How long the server took, for the console and the speed target (issue 13: < 300 ms for 10,000).
  r.headers.emplace_back("Server-Timing", "accounting;dur=" + std::to_string(static_cast<double>(micros) / 1000.0));
  GW_LOG(Info, Audit, "accounting_built")
      .kv("request_id", req.request_id)
      .kv("token", req.token_id)
      .kv("lines", a.lines.size())
      .kv("micros", micros);
  respond(std::move(r));
}

// POST /v1/compliance/accounting-requests?clinic=  {clinic, mrn|patient_key, received_on, note}
void createAccountingRequest(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  constexpr std::string_view kExample =
      R"({"clinic": "c1", "mrn": "MRN-1", "received_on": "2026-12-01", "note": "written request by mail"})";
  auto body = readBody(req, {"clinic", "mrn", "patient_key", "received_on", "note"}, kExample);
  if (!body) return fail(respond, body.error());
  const auto& b = body.value();
  if (auto same = sameClinic(req, b); !same) return fail(respond, same.error());
  auto p = patientRef(runtime, req.queryParam("clinic").value_or(""), field(b, "mrn"), field(b, "patient_key"));
  if (!p) return fail(respond, p.error());
  const std::string received = field(b, "received_on");
  if (!validDate(received)) {
    return fail(respond, badRequest("received_on must be the date of the patient's written request, YYYY-MM-DD",
                                    "received_on", "e.g. \"received_on\": \"2026-12-01\""));
  }
  if (received > todayText(runtime)) {
    return fail(respond, badRequest("received_on is in the future", "received_on", "give the date the request arrived"));
  }
  if (field(b, "note").size() > 1000) {
    return fail(respond, badRequest("note is longer than 1000 bytes", "note", "shorten it"));
  }
  store::AccountingRequest r;
  r.id = "ar-" + ids::randomHex(8);
  r.clinic = p.value().clinic;
  r.patient_key = p.value().patient_key;
  r.received_on = received;
  r.due_on = addDays(received, 30);  // 42 CFR 2.24(b): within 30 days of the request
  r.note = field(b, "note");
  r.created_by = caller.token_id;
  r.created_at_ms = r.updated_at_ms = nowMs(runtime);
  auto e = store::AuditEntryBuilder(store::AuditKind::Operation, store::AuditOutcome::Ok, caller.token_id, r.created_at_ms)
               .clinic(r.clinic)
               .patient(r.patient_key)
               .reason("accounting-request-recorded")
               .detail(R"({"request":")" + r.id + R"(","due_on":")" + r.due_on + R"("})")
               .build();
  if (auto stored = runtime.store().putAccountingRequest(r, {std::move(e)}); !stored) return fail(respond, stored.error());
  respond(consoleJson(201, requestJson(r, todayText(runtime))));
}

// GET /v1/compliance/accounting-requests?clinic=[&state=open|delivered]
void listAccountingRequests(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  if (auto checked = checkParams(req, {"clinic", "state"}); !checked) return fail(respond, checked.error());
  const auto state = req.queryParam("state").value_or("");
  if (!state.empty() && state != "open" && state != "delivered") {
    return fail(respond, badRequest("state '" + state + "' is not known", "state", "use open or delivered"));
  }
  auto rows = runtime.store().accountingRequests(req.queryParam("clinic").value_or(""));
  if (!rows) return fail(respond, rows.error());
  // The list names patients (by key): the read is logged like the other views.
  if (auto logged = logRead(runtime, "accounting-requests", PatientRef{req.queryParam("clinic").value_or(""), "", ""}, req,
                            rows.value().size());
      !logged) {
    return fail(respond, logged.error());
  }
  const auto today = todayText(runtime);
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("requests");
  w.StartArray();
  for (const auto& r : rows.value()) {
    if (state.empty() || r.state == state) writeRequest(w, r, today);
  }
  w.EndArray();
  w.EndObject();
  respond(consoleJson(200, std::string(buffer.GetString(), buffer.GetSize())));
}

// POST /v1/compliance/accounting-requests/{id}/delivered?clinic=  {"delivered_on"?: date}
void deliverAccountingRequest(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  auto body = readBody(req, {"delivered_on", "clinic"}, R"({"delivered_on": "2026-12-07"})");
  if (!body) return fail(respond, body.error());
  if (auto same = sameClinic(req, body.value()); !same) return fail(respond, same.error());
  std::string delivered = field(body.value(), "delivered_on");
  if (delivered.empty()) delivered = todayText(runtime);
  if (!validDate(delivered) || delivered > todayText(runtime)) {
    return fail(respond, badRequest("delivered_on must be a date, YYYY-MM-DD, not in the future", "delivered_on",
                                    "leave it out for today"));
  }
  auto rows = runtime.store().accountingRequests(req.queryParam("clinic").value_or(""));
  if (!rows) return fail(respond, rows.error());
  const std::string id(req.pathParam("id"));
  auto it = std::find_if(rows.value().begin(), rows.value().end(), [&](const auto& r) { return r.id == id; });
  if (it == rows.value().end()) {
    return fail(respond, makeError(ErrorCode::NotFound, "no accounting request '" + id + "' at this clinic", "id",
                                   "list them with GET /v1/compliance/accounting-requests?clinic="));
  }
  auto r = *it;
  if (delivered < r.received_on) {
    return fail(respond, badRequest("delivered_on is before the request was received", "delivered_on", "check the date"));
  }
  r.state = "delivered";
  r.delivered_on = delivered;
  r.delivered_by = caller.token_id;
  r.updated_at_ms = nowMs(runtime);
  auto e = store::AuditEntryBuilder(store::AuditKind::Operation, store::AuditOutcome::Ok, caller.token_id, r.updated_at_ms)
               .clinic(r.clinic)
               .patient(r.patient_key)
               .reason("accounting-request-delivered")
               .detail(R"({"request":")" + r.id + R"(","delivered_on":")" + r.delivered_on + R"("})")
               .build();
  if (auto stored = runtime.store().putAccountingRequest(r, {std::move(e)}); !stored) return fail(respond, stored.error());
  respond(consoleJson(200, requestJson(r, todayText(runtime))));
}

// GET /v1/compliance/partner?clinic=&partner=&from=&to=[&outcome=][&class=][&reason=][&after_seq=][&limit=]
void compliancePartner(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  if (auto checked = checkParams(req,
                                 {"clinic", "partner", "from", "to", "outcome", "class", "reason", "after_seq", "limit"});
      !checked) {
    return fail(respond, checked.error());
  }
  store::PartnerLogQuery q;
  q.clinic = req.queryParam("clinic").value_or("");
  q.partner_id = req.queryParam("partner").value_or("");
  if (runtime.config().findPartner(q.partner_id) == nullptr) {
    return fail(respond, makeError(ErrorCode::NotFound, "no partner '" + q.partner_id + "'", "partner",
                                   "use a partner id of the configuration"));
  }
  const auto from = req.queryParam("from"), to = req.queryParam("to");
  if (!from || !to)
    return fail(respond, badRequest("from and to are required", "from", "e.g. from=2026-11-01&to=2026-11-30"));
  auto from_ms = timeParam(*from, "from", false);
  if (!from_ms) return fail(respond, from_ms.error());
  auto to_ms = timeParam(*to, "to", true);
  if (!to_ms) return fail(respond, to_ms.error());
  if (to_ms.value() <= from_ms.value()) return fail(respond, badRequest("to is not after from", "to", "swap them"));
  q.from_ms = from_ms.value();
  q.to_ms = to_ms.value();
  if (const auto o = req.queryParam("outcome")) {
    const auto parsed = audit::parseOutcomeFilter(*o);
    if (!parsed) {
      return fail(respond, badRequest("outcome '" + *o + "' is not known", "outcome",
                                      "use disclosed, emergency, permitted, denied, redacted, cancelled or failed"));
    }
    q.outcome = parsed->outcome;
    if (parsed->emergency_only) q.reason = "break-glass";
  }
  if (const auto c = req.queryParam("class")) {
    q.data_class = privacy::parseClass(*c);
    if (!q.data_class)
      return fail(respond, badRequest("class '" + *c + "' is not known", "class", "use general, sud or mh"));
  }
  if (const auto r = req.queryParam("reason")) {
    if (!q.reason.empty() && *r != q.reason) {
      return fail(respond, badRequest("outcome=emergency already means reason break-glass", "reason", "leave one out"));
    }
    q.reason = *r;
  }
  auto number = [&](const char* name, std::int64_t& out, std::int64_t min, std::int64_t max) -> Status {
    const auto v = req.queryParam(name);
    if (!v) return ok();
    if (v->empty() || v->size() > 18 || !std::all_of(v->begin(), v->end(), isDigit) || std::stoll(*v) < min ||
        std::stoll(*v) > max) {
      return badRequest(std::string(name) + " must be a whole number from " + std::to_string(min) + " to " +
                            std::to_string(max),
                        name, "e.g. " + std::string(name) + "=" + std::to_string(std::max<std::int64_t>(min, 1)));
    }
    out = std::stoll(*v);
    return ok();
  };
  std::int64_t limit = 100;
  if (auto s = number("after_seq", q.after_seq, 0, INT64_MAX / 2); !s) return fail(respond, s.error());
  if (auto s = number("limit", limit, 1, store::kMaxAuditPageSize); !s) return fail(respond, s.error());
  q.limit = static_cast<int>(limit);
  auto& store = runtime.store();
  auto counts = store.partnerLogCounts(q);
  if (!counts) return fail(respond, counts.error());
  auto page = store.partnerLog(q);
  if (!page) return fail(respond, page.error());
  // The rows name patients (by key): the read is logged, without a partner id (docs/console-api.md).
  if (auto logged = logRead(runtime, "partner", PatientRef{q.clinic, "", ""}, req, page.value().entries.size()); !logged) {
    return fail(respond, logged.error());
  }
  respond(consoleJson(200, audit::partnerViewJson(q.partner_id, partnerName(runtime, q.partner_id), q.from_ms, q.to_ms,
                                                  counts.value(), page.value())));
}

// POST /v1/compliance/break-glass?clinic=  {clinic, mrn|patient_key, partner, recipient,
// authorised_by, nature, minutes}
void openBreakGlass(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  constexpr std::string_view kExample =
      R"({"clinic": "c1", "mrn": "MRN-1", "partner": "st-mary", "recipient": "Dr. A. Rivera, ED", )"
      R"("authorised_by": "J. Chen, medical director", "nature": "unresponsive, suspected overdose", "minutes": 240})";
  auto body = readBody(req, {"clinic", "mrn", "patient_key", "partner", "recipient", "authorised_by", "nature", "minutes"},
                       kExample);
  if (!body) return fail(respond, body.error());
  const auto& b = body.value();
  if (auto same = sameClinic(req, b); !same) return fail(respond, same.error());
  auto p = patientRef(runtime, req.queryParam("clinic").value_or(""), field(b, "mrn"), field(b, "patient_key"));
  if (!p) return fail(respond, p.error());
  for (const auto& [name, max, what] : {std::tuple{"partner", 64, "the partner id receiving the data"},
                                        {"recipient", 200, "the medical personnel receiving it (42 CFR 2.51(c))"},
                                        {"authorised_by", 200, "the person authorising the disclosure"},
                                        {"nature", 1000, "the nature of the emergency"}}) {
    if (auto s = requireText(b, name, static_cast<std::size_t>(max), what); !s) return fail(respond, s.error());
  }
  const std::string partner = field(b, "partner");
  if (runtime.config().findPartner(partner) == nullptr) {
    return fail(respond, makeError(ErrorCode::NotFound, "no partner '" + partner + "'", "partner",
                                   "use a partner id of the configuration"));
  }
  if (!b.minutes || *b.minutes < 1 || *b.minutes > kMaxBreakGlassMinutes) {
    return fail(respond, badRequest("minutes must be from 1 to 1440 (at most 24 hours)", "minutes",
                                    "open it for as long as the emergency needs, e.g. \"minutes\": 240"));
  }
  store::BreakGlass g;
  g.id = "bg-" + ids::randomHex(8);
  g.clinic = p.value().clinic;
  g.patient_key = p.value().patient_key;
  g.partner_id = partner;
  g.recipient = field(b, "recipient");
  g.authorised_by = field(b, "authorised_by");
  g.nature = field(b, "nature");
  g.opened_by = caller.token_id;
  g.opened_at_ms = nowMs(runtime);
  g.expires_at_ms = g.opened_at_ms + *b.minutes * 60'000;
  // The log row names who opened it and for how long; the record itself (names, nature) is in
  // break_glass, not in the log (docs/privacy.md §7.1).
  auto e = store::AuditEntryBuilder(store::AuditKind::Operation, store::AuditOutcome::Ok, caller.token_id, g.opened_at_ms)
               .clinic(g.clinic)
               .patient(g.patient_key)
               .partner(g.partner_id)
               .reason("break-glass-opened")
               .detail(R"({"break_glass":")" + g.id + R"(","expires_at":")" + timeText(g.expires_at_ms) + R"("})")
               .build();
  if (auto stored = runtime.store().putBreakGlass(g, {std::move(e)}); !stored) return fail(respond, stored.error());
  runtime.breakGlassChanged(g);
  GW_LOG(Warn, Consent, "break_glass_opened")
      .kv("break_glass", g.id)
      .kv("clinic", g.clinic)
      .kv("partner", g.partner_id)
      .kv("token", caller.token_id)
      .kv("minutes", *b.minutes);
  respond(consoleJson(201, breakGlassJson(g, runtime, nowMs(runtime))));
}

// GET /v1/compliance/break-glass?clinic=[&active=true]
void listBreakGlass(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  if (auto checked = checkParams(req, {"clinic", "active"}); !checked) return fail(respond, checked.error());
  const auto active = req.queryParam("active").value_or("");
  if (!active.empty() && active != "true" && active != "false") {
    return fail(respond, badRequest("active must be true or false", "active", "e.g. active=true"));
  }
  auto rows = runtime.store().breakGlasses(req.queryParam("clinic").value_or(""));
  if (!rows) return fail(respond, rows.error());
  if (auto logged = logRead(runtime, "break-glass", PatientRef{req.queryParam("clinic").value_or(""), "", ""}, req,
                            rows.value().size());
      !logged) {
    return fail(respond, logged.error());
  }
  const auto now = nowMs(runtime);
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("break_glass");
  w.StartArray();
  for (const auto& g : rows.value()) {
    if (active.empty() || g.activeAt(now) == (active == "true")) writeBreakGlass(w, g, runtime, now);
  }
  w.EndArray();
  w.EndObject();
  respond(consoleJson(200, std::string(buffer.GetString(), buffer.GetSize())));
}

// POST /v1/compliance/break-glass/{id}/end?clinic=
void endBreakGlass(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  auto rows = runtime.store().breakGlasses(req.queryParam("clinic").value_or(""));
  if (!rows) return fail(respond, rows.error());
  const std::string id(req.pathParam("id"));
  auto it = std::find_if(rows.value().begin(), rows.value().end(), [&](const auto& g) { return g.id == id; });
  if (it == rows.value().end()) {
    return fail(respond, makeError(ErrorCode::NotFound, "no break-glass '" + id + "' at this clinic", "id",
                                   "list them with GET /v1/compliance/break-glass?clinic="));
  }
  auto g = *it;
  const auto now = nowMs(runtime);
  if (!g.activeAt(now)) {
    return fail(respond, makeError(ErrorCode::InvalidInput, "break-glass '" + id + "' is over already", "id",
                                   "nothing to end: it " + std::string(g.ended_at_ms > 0 ? "was ended" : "expired")));
  }
  g.ended_at_ms = now;
  g.ended_by = caller.token_id;
  auto e = store::AuditEntryBuilder(store::AuditKind::Operation, store::AuditOutcome::Ok, caller.token_id, now)
               .clinic(g.clinic)
               .patient(g.patient_key)
               .partner(g.partner_id)
               .reason("break-glass-ended")
               .detail(R"({"break_glass":")" + g.id + R"("})")
               .build();
  auto stored = runtime.store().endBreakGlass(g, {std::move(e)});
  if (!stored) return fail(respond, stored.error());
  if (!stored.value()) {
    // Ended by another officer, or marked expired by an instance's scan, since it was read above.
    return fail(respond, makeError(ErrorCode::InvalidInput, "break-glass '" + id + "' is over already", "id",
                                   "nothing to end: it was ended or expired a moment ago"));
  }
  runtime.breakGlassChanged(g);
  GW_LOG(Info, Consent, "break_glass_ended").kv("break_glass", g.id).kv("token", caller.token_id);
  respond(consoleJson(200, breakGlassJson(g, runtime, now)));
}

}  // namespace gw::app

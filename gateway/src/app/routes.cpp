#include "app/routes.hpp"

#include <algorithm>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "app/compliance.hpp"
#include "app/engineer_tools.hpp"
#include "app/instances.hpp"
#include "app/metrics.hpp"
#include "app/operations.hpp"
#include "app/settings.hpp"
#include "app/views.hpp"
#include "audit/anchor_file.hpp"
#include "audit/audit_format.hpp"
#include "audit/audit_query.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace gw::app {
namespace {

using http::Request;
using http::Respond;

// ?clinic=ID&mrn=MRN -> the patient's lookup key, which the log and registry use (the MRN
// itself is neither stored nor logged).
Result<std::string> patientKeyFromQuery(Runtime& runtime, const Request& req) {
  const auto clinic = req.queryParam("clinic");
  const auto mrn = req.queryParam("mrn");
  if (!clinic || clinic->empty() || !mrn || mrn->empty()) {
    return makeError(ErrorCode::BadRequest, "the patient is named by the clinic and mrn query parameters", "mrn",
                     "add ?clinic=<clinic id>&mrn=<the patient's MRN at that clinic>");
  }
  return runtime.store().lookupKeys().patient(*clinic, *mrn);
}

std::int64_t nowMillis(const Runtime& runtime) { return toUnixMillis(runtime.clock().now()); }

// POST /v1/records: read, map, decide and commit; answered after the commit.
void postRecords(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  // A database that cannot commit (disk full, read-only) would fail the batch after mapping it:
  // the client is told to come back instead, and readyz says why (docs/operations.md).
  if (const auto storage = runtime.lastStorageHealth(); !storage.writable) {
    auto busy = http::errorResponse(makeError(
        ErrorCode::Unavailable, "the gateway cannot store records now (" + storage.reason + "); nothing was stored",
        "database", "retry after the time in Retry-After; operators: see /readyz"));
    busy.headers.emplace_back("Retry-After", "5");
    return respond(std::move(busy));
  }
  const ingest::Submitter submitter{caller.token_id, caller.clinics};
  auto running = runtime.current();
  // text/csv bodies name their CSV input mapper: ?mapper=harm-reduction-weekly/weekly-export
  const std::string mapper = req.queryParam("mapper").value_or("");
  running->ingest->ingest({req.body, req.header("content-type"), mapper}, submitter,
                          [&runtime, respond, running](ingest::BatchResult result) {
                            // Only the workers of partners something was queued for: the
                            // others (a denied partner, a paused one with nothing new) would
                            // read the outbox for nothing after every request.
                            std::vector<std::string> queued_for;
                            for (const auto& r : result.records) {
                              for (const auto& partner : r.queued_for) {
                                if (std::find(queued_for.begin(), queued_for.end(), partner) == queued_for.end()) {
                                  queued_for.push_back(partner);
                                }
                              }
                            }
                            if (!queued_for.empty()) runtime.wakeWorkers(queued_for);
                            respond(batchResponse(result));
                          });
}

// Dry run of one mapper (engineer tool): the record pipeline, a diff, nothing stored.
void testMapping(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  auto running = runtime.current();
  MappingSnapshot snapshot;
  snapshot.rules = running->rules;
  auto answer = testMappingRequest(snapshot, req.pathParam("name"), req.body, running->rules->csv_mappers.get(),
                                   req.header("content-type"));
  GW_LOG(Info, Mapping, "mapping_test")
      .kv("request_id", req.request_id)
      .kv("token", req.token_id)
      .kv("status", answer.status);
  respond(http::jsonResponse(answer.status, std::move(answer.body)));
}

void reload(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  GW_LOG(Info, Mapping, "reload_requested").kv("request_id", req.request_id).kv("token", req.token_id);
  // Reloads read and compile files, and run the golden cases: on the jobs thread, one at a time.
  runtime.jobs().post([&runtime, respond, ticket = runtime.reloadTicket()] {
    auto reloaded = runtime.reloadEverywhere(ticket);
    if (!reloaded) {
      Error e = reloaded.error();
      e.hint = "the running mapping set stays in place; " +
               (e.hint.empty() ? std::string("fix the file and reload again") : e.hint);
      return respond(http::errorResponse(e, 422));
    }
    respond(http::jsonResponse(200, reloadSummaryJson(reloaded.value())));
  });
}

// The gateway instances on this database and the versions each runs, the odd ones flagged.
void listInstances(Runtime& runtime, Request&, const http::Principal&, Respond respond) {
  runtime.recordInstance();  // this instance's row as of now
  auto rows = runtime.store().instances();
  if (!rows) return respond(http::errorResponse(rows.error(), 503));
  respond(http::jsonResponse(200, instancesJson(describeInstances(std::move(rows).value(), runtime.clock().now()),
                                                runtime.instanceId())));
}

void recordStatus(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  const auto clinic = req.queryParam("clinic");
  if (!clinic || clinic->empty()) {
    return respond(http::errorResponse(makeError(ErrorCode::BadRequest, "the clinic query parameter is missing", "clinic",
                                                 "call /v1/records/{record_id}?clinic=<clinic id>")));
  }
  auto status = runtime.store().recordStatus(*clinic, req.pathParam("record_id"));
  if (!status) return respond(http::errorResponse(status.error()));
  if (!status.value()) {
    return respond(http::errorResponse(makeError(ErrorCode::NotFound, "no such record for this clinic", "record_id",
                                                 "check the record_id and clinic you posted")));
  }
  // The answer names the record's patient, resources and partners: the read is itself logged.
  const std::string record_key = ids::recordKey(runtime.recordKeySecret(), *clinic, req.pathParam("record_id"));
  if (auto logged = runtime.logRead(audit::recordReadEntry(*status.value(), record_key, req.token_id, nowMillis(runtime)));
      !logged) {
    return respond(http::errorResponse(logged.error()));
  }
  // Per partner why it went or not, in clinic-safe words (docs/operations.md).
  std::vector<PartnerWhy> why;
  auto decisions = runtime.store().lastDecisions(*clinic, req.pathParam("record_id"));
  auto pauses = runtime.store().partnerPauses();
  if (decisions && pauses) {
    std::vector<std::string> partner_ids;
    for (const auto& p : runtime.config().partners) partner_ids.push_back(p.id);
    why = explainDeliveries(*status.value(), decisions.value(), partner_ids, pauses.value());
  }
  respond(http::jsonResponse(200, recordStatusJson(*status.value(), runtime.recordKeySecret(), why)));
}

// A patient's consents and their history (compliance): ?clinic=ID&mrn=MRN.
void consents(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  auto patient = patientKeyFromQuery(runtime, req);
  if (!patient) return respond(http::errorResponse(patient.error()));
  auto stored = runtime.store().consents(patient.value());
  if (!stored) return respond(http::errorResponse(stored.error()));
  audit::AuditRequest read;
  read.query.patient_key = patient.value();
  read.query.kind = store::AuditKind::Consent;
  if (auto logged = runtime.logRead(audit::auditReadEntry(read, req.token_id, nowMillis(runtime), stored.value().size()));
      !logged) {
    return respond(http::errorResponse(logged.error()));
  }
  const auto zone_of = [&runtime](std::string_view clinic) {
    const auto* c = runtime.config().findClinic(clinic);
    return c == nullptr ? std::string() : c->time_zone;
  };
  respond(http::jsonResponse(200, consentsJson(patient.value(), stored.value(), zone_of)));
}

// The decision and disclosure log (compliance): filters, keyset paging, JSON or CSV.
void auditDecisions(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  // A compliance officer knows the clinic and MRN, not the internal patient id.
  auto params = req.query;
  std::string legacy_patient_key;
  if (params.count("mrn") != 0) {
    auto patient = patientKeyFromQuery(runtime, req);
    if (!patient) return respond(http::errorResponse(patient.error()));
    params.erase("mrn");
    params.emplace("patient_key", patient.value());
    // Rows logged before lookup keys name the patient by its FHIR id: found too.
    legacy_patient_key = ids::resourceId(*req.queryParam("clinic"), "Patient", *req.queryParam("mrn"));
  }
  auto request = audit::parseAuditQuery(params);
  if (!request) return respond(http::errorResponse(request.error()));
  request.value().query.legacy_patient_key = std::move(legacy_patient_key);
  auto page = runtime.store().queryAudit(request.value().query);
  if (!page) return respond(http::errorResponse(page.error()));
  if (auto logged = runtime.logRead(
          audit::auditReadEntry(request.value(), req.token_id, nowMillis(runtime), page.value().entries.size()));
      !logged) {
    return respond(http::errorResponse(logged.error()));
  }
  if (request.value().format == audit::ExportFormat::Csv) {
    http::Response r;
    r.content_type = std::string(audit::kCsvContentType);
    r.body = audit::pageToCsv(page.value());
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"audit-decisions.csv\"");
    return respond(std::move(r));
  }
  respond(http::jsonResponse(200, audit::pageToJson(page.value())));
}

// Recomputes the chain and checks it against the latest published anchor (or ?anchor=); a large
// log takes a while, so on the jobs thread, one at a time.
void auditVerify(Runtime& runtime, Request& req, const http::Principal&, Respond respond) {
  auto anchor = audit::parseVerifyParams(req.query);
  if (!anchor) return respond(http::errorResponse(anchor.error()));
  runtime.jobs().post([&runtime, respond, anchor = anchor.value(), actor = req.token_id] {
    auto report = runtime.verifyAudit(anchor, actor);
    if (!report) return respond(http::errorResponse(report.error()));
    respond(http::jsonResponse(200, audit::verifyReportToJson(report.value())));
  });
}

// The public halves of the gateway's signing keys, for hospitals that register the gateway by
// JWKS URL (SMART Backend Services). Public by design: no key here can sign anything.
void jwks(Runtime& runtime, Request&, const http::Principal&, Respond respond) {
  auto response = http::jsonResponse(200, runtime.jwks());
  response.headers.emplace_back("Cache-Control", "public, max-age=300");
  respond(std::move(response));
}

// Each partner's write mode and the writes it cannot take (docs/architecture.md §5.6): partner
// ids, resource types and reasons only, never anything about a record.
std::string capabilitiesJson(const Runtime& runtime) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartArray();
  for (const auto& [partner, report] : runtime.partnerCapabilities()) {
    w.StartObject();
    w.Key("partner");
    json::writeString(w, partner);
    w.Key("write_mode");
    json::writeString(w, report.write_mode);
    w.Key("why");
    json::writeString(w, report.why);
    w.Key("statement_read");
    w.Bool(report.statement_read);
    if (!report.fhir_version.empty()) {
      w.Key("fhir_version");
      json::writeString(w, report.fhir_version);
    }
    if (report.read_at != SystemTime{}) {
      w.Key("read_at");
      json::writeString(w, formatRfc3339(report.read_at));
    }
    if (!report.error.empty()) {
      w.Key("statement_error");
      json::writeString(w, report.error);
    }
    w.Key("unsupported");
    w.StartArray();
    for (const auto& reason : report.unsupported) json::writeString(w, reason);
    w.EndArray();
    w.Key("waiting_items");
    w.Uint64(report.waiting_items);
    // The partner's circuit breaker (docs/architecture.md §5.7): one partner's outage is shown
    // here, not made the gateway's readiness.
    const auto& circuit = report.circuit;
    w.Key("circuit");
    w.StartObject();
    w.Key("state");
    json::writeString(w, delivery::circuitStateName(circuit.state));
    if (circuit.since != SystemTime{}) {
      w.Key("since");
      json::writeString(w, formatRfc3339(circuit.since));
    }
    if (circuit.state == delivery::CircuitState::Open) {
      w.Key("probe_at");
      json::writeString(w, formatRfc3339(circuit.probe_at));
    }
    w.Key("consecutive_failures");
    w.Int(circuit.consecutive_failures);
    if (!circuit.last_error.empty()) {
      w.Key("last_error");
      json::writeString(w, circuit.last_error);
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  return std::string(b.GetString(), b.GetSize());
}

// Each partner's delivery health (public answer: partner ids, states, times, error
// classes; never a record, patient or error text).
std::string partnersHealthJson(const std::vector<PartnerHealth>& partners) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartArray();
  for (const auto& p : partners) {
    w.StartObject();
    w.Key("partner");
    json::writeString(w, p.partner_id);
    w.Key("state");
    json::writeString(w, p.state);
    if (p.failing_since != SystemTime{}) {
      w.Key("failing_since");
      json::writeString(w, formatRfc3339(p.failing_since));
    }
    if (!p.last_error_class.empty()) {
      w.Key("last_error_class");
      json::writeString(w, p.last_error_class);
    }
    w.Key("paused");
    w.Bool(p.paused);
    if (p.paused) {
      w.Key("paused_at");
      json::writeString(w, formatRfc3339(p.paused_at));
    }
    w.Key("circuit");
    json::writeString(w, p.circuit);
    if (p.circuit_since != SystemTime{}) {
      w.Key("circuit_since");
      json::writeString(w, formatRfc3339(p.circuit_since));
    }
    w.EndObject();
  }
  w.EndArray();
  return std::string(b.GetString(), b.GetSize());
}

std::string storageJson(const StorageHealth& h) {
  std::string out = R"({"writable":)" + std::string(h.writable ? "true" : "false");
  if (h.free_bytes >= 0) out += R"(,"free_bytes":)" + std::to_string(h.free_bytes);
  if (!h.writable) {
    out += R"(,"reason":")" + h.reason + R"(","failing_since":")" + formatRfc3339(h.failing_since) + R"(")";
  }
  return out + "}";
}

}  // namespace

http::Response readinessResponse(Runtime& runtime) {
  if (auto ping = runtime.store().ping(); !ping) {
    GW_LOG(Error, Store, "not_ready").kv("error", ping.error().message);
    return http::jsonResponse(503, R"({"status":"unavailable","reason":"database"})");
  }
  // Not ready when the database cannot commit; one partner's outage is reported, not fatal.
  const auto storage = runtime.storageHealth();
  const std::string partners = partnersHealthJson(runtime.partnerHealth());
  if (!storage.writable) {
    auto r = http::jsonResponse(503, R"({"status":"unavailable","reason":")" + storage.reason + R"(","database":)" +
                                         storageJson(storage) + R"(,"partners":)" + partners + "}");
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  // A reconciliation that keeps failing leaves data held or queued under an old rule: visible
  // here (counts and times only: this answer is public), and in the log with its error.
  const auto health = runtime.reconcileHealth();
  std::string reconcile = R"({"failing":)" + std::to_string(health.failing);
  if (health.failing > 0) {
    reconcile += R"(,"stuck":)" + std::string(health.stuck() ? "true" : "false") + R"(,"attempts":)" +
                 std::to_string(health.most_attempts) + R"(,"failing_since":")" + formatRfc3339(health.failing_since) +
                 R"(","next_retry_in_ms":)" + std::to_string(health.next_retry_in.count());
  }
  reconcile += "}";
  return http::jsonResponse(200, R"({"status":"ready","database":)" + storageJson(storage) + R"(,"partners":)" + partners +
                                     R"(,"reconcile":)" + reconcile + R"(,"capabilities":)" + capabilitiesJson(runtime) +
                                     "}");
}

namespace {

void ready(Runtime& runtime, Request&, const http::Principal&, Respond respond) { respond(readinessResponse(runtime)); }

// --- operations (docs/operations.md) ---------------------------------------------------------

OperatorContext operatorContext(Runtime& runtime, const http::Principal& caller) {
  return OperatorContext{runtime.store(), runtime.registry(), runtime.config().privacy.policy_version,
                         caller.token_id, caller.clinics,     runtime.clock().now()};
}

std::map<std::string, std::string> singleParams(const Request& req) {
  std::map<std::string, std::string> params;
  for (const auto& [k, v] : req.query) params[k] = v;
  return params;
}

// GET /v1/outbox?partner=&state=&clinic=&older_than=&limit=&after=
void listOutbox(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  auto query = parseOutboxQuery(singleParams(req), caller.clinics, runtime.clock().now());
  if (!query) return respond(http::errorResponse(query.error()));
  auto page = runtime.store().listOutbox(query.value());
  if (!page) return respond(http::errorResponse(page.error()));
  // The answer names records: logged like a read, or not answered.
  if (auto logged = runtime.logRead(
          outboxListEntry(query.value(), page.value().items.size(), req.token_id, runtime.clock().now()));
      !logged) {
    return respond(http::errorResponse(logged.error()));
  }
  GW_LOG(Info, Delivery, "outbox_listed")
      .kv("request_id", req.request_id)
      .kv("token", req.token_id)
      .kv("items", page.value().items.size());
  respond(http::jsonResponse(200, outboxPageJson(page.value())));
}

// POST /v1/outbox/replay  {"item": id} | {"partner": id, "older_than"?: age}  (?clinic= narrows)
void replayOutbox(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  rapidjson::Document body;
  body.Parse(req.body.data(), req.body.size());
  if (body.HasParseError() || !body.IsObject()) {
    return respond(http::errorResponse(makeError(ErrorCode::BadRequest, "the body must be a JSON object", "body",
                                                 R"(send {"item": <id>} or {"partner": "<partner id>"})")));
  }
  ReplayFilter filter;
  std::map<std::string, std::string> params;
  for (auto m = body.MemberBegin(); m != body.MemberEnd(); ++m) {
    const std::string key = m->name.GetString();
    if (key == "item" && m->value.IsInt64()) {
      filter.item_id = m->value.GetInt64();
    } else if (key == "partner" && m->value.IsString()) {
      filter.partner_id = m->value.GetString();
    } else if (key == "older_than" && (m->value.IsString() || m->value.IsInt64())) {
      params["older_than"] = m->value.IsString() ? m->value.GetString() : std::to_string(m->value.GetInt64());
    } else {
      return respond(http::errorResponse(makeError(ErrorCode::BadRequest, "unknown or mistyped member '" + key + "'", key,
                                                   "use item (a number), partner and older_than")));
    }
  }
  auto parsed = parseOutboxQuery(params, caller.clinics, runtime.clock().now());
  if (!parsed) return respond(http::errorResponse(parsed.error()));
  filter.created_before_ms = parsed.value().created_before_ms;
  if (const auto clinic = req.queryParam("clinic"); clinic && !clinic->empty()) filter.clinics = {*clinic};
  if (!filter.partner_id.empty() && runtime.config().findPartner(filter.partner_id) == nullptr) {
    return respond(http::errorResponse(makeError(ErrorCode::NotFound, "no partner '" + filter.partner_id + "'", "partner",
                                                 "use a partner id of the configuration")));
  }
  auto replayed = replayDead(operatorContext(runtime, caller), filter);
  if (!replayed) return respond(http::errorResponse(replayed.error()));
  if (replayed.value().replayed > 0) runtime.wakeWorkers();
  respond(http::jsonResponse(200, replayResultJson(replayed.value())));
}

// POST /v1/partners/{partner}/pause and /resume: every clinic's deliveries to the partner, so
// the token must cover every clinic.
void pauseOrResume(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond, bool paused) {
  const std::string partner(req.pathParam("partner"));
  if (runtime.config().findPartner(partner) == nullptr) {
    return respond(http::errorResponse(
        makeError(ErrorCode::NotFound, "no partner '" + partner + "'", "partner", "use a partner id of the configuration")));
  }
  if (const auto clinic = req.queryParam("clinic"); clinic && !clinic->empty()) {
    return respond(
        http::errorResponse(makeError(ErrorCode::BadRequest, "a pause stops the partner's deliveries for every clinic",
                                      "clinic", "leave out ?clinic= (the token must cover every clinic)")));
  }
  const std::string why = req.queryParam("reason").value_or("");
  if (auto done = setPartnerPaused(operatorContext(runtime, caller), partner, paused, why); !done) {
    return respond(http::errorResponse(done.error()));
  }
  if (!paused) runtime.wakeWorkers();
  respond(http::jsonResponse(200, R"({"partner":")" + partner + R"(","paused":)" + (paused ? "true" : "false") + "}"));
}

// POST /v1/records/$reprocess  {"state": "invalid"|"unmapped", "record_type"?: T, "dry_run"?: bool}
// (?clinic= narrows): as `fhir-gateway records reprocess`, with the running mapping set; a long
// run, so on the jobs thread, one at a time.
void reprocess(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  rapidjson::Document body;
  body.Parse(req.body.data(), req.body.size());
  const auto bad = [&](std::string message, std::string where) {
    respond(http::errorResponse(makeError(ErrorCode::BadRequest, std::move(message), std::move(where),
                                          R"(send {"state": "invalid", "record_type": "patient", "dry_run": true})")));
  };
  if (body.HasParseError() || !body.IsObject()) return bad("the body must be a JSON object", "body");
  ReprocessOptions options;
  options.state = store::RecordState::Received;  // required below
  for (auto m = body.MemberBegin(); m != body.MemberEnd(); ++m) {
    const std::string key = m->name.GetString();
    if (key == "state" && m->value.IsString()) {
      options.state = store::parseRecordState(m->value.GetString()).value_or(store::RecordState::Received);
    } else if (key == "record_type" && m->value.IsString()) {
      options.record_type = m->value.GetString();
    } else if (key == "dry_run" && m->value.IsBool()) {
      options.dry_run = m->value.GetBool();
    } else {
      return bad("unknown or mistyped member '" + key + "'", key);
    }
  }
  if (options.state != store::RecordState::Invalid && options.state != store::RecordState::Unmapped) {
    return bad("state must be invalid or unmapped", "state");
  }
  auto ctx = operatorContext(runtime, caller);
  if (const auto clinic = req.queryParam("clinic"); clinic && !clinic->empty()) ctx.clinics = {*clinic};
  runtime.jobs().post([&runtime, respond, ctx = std::move(ctx), options] {
    auto running = runtime.current();
    ReprocessParts parts{running->ingest.get(), running->rules, pipelineSettings(runtime.config())};
    auto done = reprocessRecords(ctx, parts, options);
    if (!done) return respond(http::errorResponse(done.error()));
    if (done.value().queued > 0) runtime.wakeWorkers();
    respond(http::jsonResponse(200, reprocessResultJson(done.value(), options.dry_run)));
  });
}

void pausePartner(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  pauseOrResume(runtime, req, caller, std::move(respond), true);
}

void resumePartner(Runtime& runtime, Request& req, const http::Principal& caller, Respond respond) {
  pauseOrResume(runtime, req, caller, std::move(respond), false);
}

// Counts and states for Prometheus (docs/operations.md §8): no clinic's data, so no clinic scope.
void metricsPage(Runtime& runtime, Request&, const http::Principal&, Respond respond) {
  respond({200, std::string(Metrics::kContentType), runtime.metrics()->scrape(), {}});
}

}  // namespace

Status addGatewayRoutes(RouteTable& table, Runtime& runtime) {
  using enum Role;
  using enum ClinicScope;
  using enum Execution;
  const auto bind = [&runtime](void (*handler)(Runtime&, Request&, const http::Principal&, Respond)) {
    return [&runtime, handler](Request& req, const http::Principal& caller, Respond respond) {
      handler(runtime, req, caller, std::move(respond));
    };
  };
  // method, pattern, {roles, clinic scope}, where it runs, handler
  const Route routes[] = {
      {"POST", "/v1/records", {{Ingest}, RecordClinics}, Blocking, bind(postRecords)},
      {"GET", "/v1/records/{record_id}", {{Ingest, Compliance, Admin}, QueryClinic}, Blocking, bind(recordStatus)},
      {"POST", "/v1/mappings/{name}/$test", {{Engineer}, None}, IoThread, bind(testMapping)},
      {"POST", "/v1/admin/reload", {{Engineer, Admin}, None}, IoThread, bind(reload)},
      {"GET", "/v1/admin/instances", {{Engineer, Operator, Admin}, None}, Blocking, bind(listInstances)},
      {"GET", "/v1/consents", {{Compliance, Admin}, QueryClinic}, Blocking, bind(consents)},
      {"GET", "/v1/audit/decisions", {{Compliance}, QueryClinicOrAll}, Blocking, bind(auditDecisions)},
      {"GET", "/v1/audit/verify", {{Compliance, Admin}, None}, IoThread, bind(auditVerify)},
      // The compliance console (docs/console-api.md).
      {"GET", "/v1/compliance/patient", {{Compliance}, QueryClinic}, Blocking, bind(compliancePatient)},
      {"GET", "/v1/compliance/accounting", {{Compliance}, QueryClinic}, Blocking, bind(complianceAccounting)},
      {"POST", "/v1/compliance/accounting-requests", {{Compliance}, QueryClinic}, Blocking, bind(createAccountingRequest)},
      {"GET", "/v1/compliance/accounting-requests", {{Compliance}, QueryClinic}, Blocking, bind(listAccountingRequests)},
      {"POST",
       "/v1/compliance/accounting-requests/{id}/delivered",
       {{Compliance}, QueryClinic},
       Blocking,
       bind(deliverAccountingRequest)},
      {"GET", "/v1/compliance/partner", {{Compliance}, QueryClinic}, Blocking, bind(compliancePartner)},
      {"POST", "/v1/compliance/break-glass", {{Compliance, Admin}, QueryClinic}, Blocking, bind(openBreakGlass)},
      {"GET", "/v1/compliance/break-glass", {{Compliance, Admin}, QueryClinic}, Blocking, bind(listBreakGlass)},
      {"POST", "/v1/compliance/break-glass/{id}/end", {{Compliance, Admin}, QueryClinic}, Blocking, bind(endBreakGlass)},
      {"GET", "/v1/outbox", {{Operator, Admin}, QueryClinicOrAll}, Blocking, bind(listOutbox)},
      {"POST", "/v1/outbox/replay", {{Operator, Admin}, QueryClinicOrAll}, Blocking, bind(replayOutbox)},
      {"POST", "/v1/records/$reprocess", {{Operator, Admin}, QueryClinicOrAll}, IoThread, bind(reprocess)},
      {"POST", "/v1/partners/{partner}/pause", {{Operator, Admin}, QueryClinicOrAll}, Blocking, bind(pausePartner)},
      {"POST", "/v1/partners/{partner}/resume", {{Operator, Admin}, QueryClinicOrAll}, Blocking, bind(resumePartner)},
      {"GET", "/healthz", Access::publicRoute(), IoThread,
       [](Request&, const http::Principal&, Respond respond) { respond(http::jsonResponse(200, R"({"status":"ok"})")); }},
      {"GET", "/readyz", Access::publicRoute(), Blocking, bind(ready)},
      {"GET", "/.well-known/jwks.json", Access::publicRoute(), IoThread, bind(jwks)},
      {"GET", "/metrics", {{Role::Metrics}, None}, Blocking, bind(metricsPage)},
  };
  for (const auto& route : routes) {
    GW_TRY(table.add(route));
  }
  return ok();
}

}  // namespace gw::app

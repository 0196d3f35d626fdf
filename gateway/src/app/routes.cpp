#include "app/routes.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "app/engineer_tools.hpp"
#include "app/metrics.hpp"
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
  const ingest::Submitter submitter{caller.token_id, caller.clinics};
  auto running = runtime.current();
  // text/csv bodies name their CSV input mapper: ?mapper=harm-reduction-weekly/weekly-export
  const std::string mapper = req.queryParam("mapper").value_or("");
  running->ingest->ingest({req.body, req.header("content-type"), mapper}, submitter,
                          [&runtime, respond, running](ingest::BatchResult result) {
                            if (result.accepted() > 0) runtime.wakeWorkers();
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
    auto reloaded = runtime.reload(ticket);
    if (!reloaded) {
      Error e = reloaded.error();
      e.hint = "the running mapping set stays in place; " +
               (e.hint.empty() ? std::string("fix the file and reload again") : e.hint);
      return respond(http::errorResponse(e, 422));
    }
    respond(http::jsonResponse(200, reloadSummaryJson(reloaded.value())));
  });
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
  respond(http::jsonResponse(200, recordStatusJson(*status.value(), runtime.recordKeySecret())));
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
    auto& store = runtime.store();
    auto report = audit::verifyWithAnchors([&store](const auto& a) { return store.verifyAudit(a); }, store.anchorSealer(),
                                           {anchor, runtime.config().audit.anchor.file, false});
    if (!report) return respond(http::errorResponse(report.error()));
    runtime.stats().audit_verify_result.set(report.value().ok ? 1 : 0);
    runtime.stats().audit_verify_at_ms.set(nowMillis(runtime));
    if (auto logged = runtime.logRead(audit::auditVerifyEntry(report.value(), actor, nowMillis(runtime))); !logged) {
      return respond(http::errorResponse(logged.error()));
    }
    if (!report.value().ok) {
      GW_LOG(Error, Audit, "chain_broken").kv("breaks", report.value().break_count);
    }
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
    w.EndObject();
  }
  w.EndArray();
  return std::string(b.GetString(), b.GetSize());
}

void ready(Runtime& runtime, Request&, const http::Principal&, Respond respond) {
  if (auto ping = runtime.store().ping(); !ping) {
    GW_LOG(Error, Store, "not_ready").kv("error", ping.error().message);
    return respond(http::jsonResponse(503, R"({"status":"unavailable","reason":"database"})"));
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
  respond(http::jsonResponse(200, R"({"status":"ready","reconcile":)" + reconcile + R"(,"capabilities":)" +
                                      capabilitiesJson(runtime) + "}"));
}

// Counts and states for Prometheus (docs/operations.md §1): no clinic's data, so no clinic scope.
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
      {"GET", "/v1/consents", {{Compliance, Admin}, QueryClinic}, Blocking, bind(consents)},
      {"GET", "/v1/audit/decisions", {{Compliance}, QueryClinicOrAll}, Blocking, bind(auditDecisions)},
      {"GET", "/v1/audit/verify", {{Compliance, Admin}, None}, IoThread, bind(auditVerify)},
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

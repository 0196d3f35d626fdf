#include "app/gateway.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "app/consent_registry_loader.hpp"
#include "app/csv_import.hpp"
#include "app/engineer_tools.hpp"
#include "app/keys.hpp"
#include "audit/audit_format.hpp"
#include "audit/audit_query.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "delivery/partner_worker.hpp"
#include "http/auth.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "ingest/group_committer.hpp"
#include "ingest/ingest_service.hpp"
#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"
#include "privacy/classifier.hpp"
#include "store/store.hpp"
#include "validate/profile_set.hpp"

namespace gw::app {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

using json::writeString;

std::string recordStatusJson(const store::RecordStatus& st, std::string_view record_key_secret) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("clinic");
  writeString(w, st.clinic);
  w.Key("record_id");
  writeString(w, st.record_id);
  w.Key("record_key");
  writeString(w, ids::recordKey(record_key_secret, st.clinic, st.record_id));
  w.Key("record_type");
  writeString(w, st.record_type);
  w.Key("version");
  w.Int(st.version);
  w.Key("state");
  writeString(w, store::recordStateName(st.state));
  if (!st.error.empty()) {
    rapidjson::Document outcome;  // invalid records keep the validator's OperationOutcome
    outcome.Parse(st.error.c_str());
    if (!outcome.HasParseError() && outcome.IsObject()) {
      w.Key("outcome");
      outcome.Accept(w);
    } else {
      w.Key("error");
      writeString(w, st.error);
    }
  }
  w.Key("received_at");
  writeString(w, formatRfc3339(fromUnixMillis(st.received_at_ms)));
  w.Key("updated_at");
  writeString(w, formatRfc3339(fromUnixMillis(st.updated_at_ms)));
  w.Key("resources");
  w.StartArray();
  for (const auto& r : st.resources) writeString(w, r.resource_type + "/" + r.resource_id);
  w.EndArray();
  w.Key("deliveries");
  w.StartArray();
  for (const auto& d : st.deliveries) {
    w.StartObject();
    w.Key("partner");
    writeString(w, d.partner_id);
    w.Key("item");
    w.Int64(d.id);
    w.Key("record_version");
    w.Int(d.record_version);
    w.Key("state");
    writeString(w, store::outboxStateName(d.state));
    w.Key("attempts");
    w.Int(d.attempts);
    w.Key("updated_at");
    writeString(w, formatRfc3339(fromUnixMillis(d.updated_at_ms)));
    if (d.state == store::OutboxState::Retrying) {
      w.Key("next_attempt_at");
      writeString(w, formatRfc3339(fromUnixMillis(d.next_attempt_at_ms)));
    }
    if (!d.last_error.empty()) {
      w.Key("last_error");
      writeString(w, d.last_error);
    }
    if (d.state == store::OutboxState::Dead && !d.outcome.empty()) {
      rapidjson::Document outcome;
      outcome.Parse(d.outcome.c_str());
      w.Key("outcome");
      if (outcome.HasParseError()) {
        writeString(w, d.outcome);
      } else {
        outcome.Accept(w);
      }
    }
    if (!d.entries.empty()) {
      w.Key("partner_resources");
      w.StartArray();
      for (const auto& e : d.entries) {
        w.StartObject();
        w.Key("status");
        writeString(w, e.status);
        w.Key("location");
        writeString(w, e.location);
        if (!e.etag.empty()) {
          w.Key("etag");
          writeString(w, e.etag);
        }
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// A patient's consents with every version, newest version first within each consent (what a
// compliance officer reviews: who may receive what, since when, and when it was revoked).
std::string consentsJson(std::string_view patient_key, const std::vector<store::StoredConsent>& stored) {
  std::map<std::pair<std::string, std::string>, std::vector<const consent::ConsentRow*>> by_consent;
  for (const auto& c : stored) by_consent[{c.row.clinic, c.row.consent_id}].push_back(&c.row);
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("patient_key");
  writeString(w, patient_key);
  w.Key("consents");
  w.StartArray();
  for (auto& [key, rows] : by_consent) {
    std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) { return a->version > b->version; });
    w.StartObject();
    w.Key("clinic");
    writeString(w, key.first);
    w.Key("consent_id");
    writeString(w, key.second);
    w.Key("partner");
    writeString(w, rows.front()->partner_id);
    w.Key("current_version");
    w.Int64(rows.front()->version);
    w.Key("versions");
    w.StartArray();
    for (const auto* r : rows) {
      w.StartObject();
      w.Key("version");
      w.Int64(r->version);
      // FHIR Consent.status: R4 has no "revoked"; a revocation is a version with status inactive.
      w.Key("status");
      w.String(r->status == "active" ? "active" : "inactive");
      w.Key("purposes");
      writeString(w, r->purposes);
      w.Key("classes");
      writeString(w, r->classes);
      w.Key("period_start");
      writeString(w, r->period_start);
      if (!r->period_end.empty()) {
        w.Key("period_end");
        writeString(w, r->period_end);
      }
      if (!r->revoked_on.empty()) {
        w.Key("revoked_on");
        writeString(w, r->revoked_on);
      }
      if (!r->signed_on.empty()) {
        w.Key("signed_on");
        writeString(w, r->signed_on);
      }
      w.Key("resource");
      writeString(w, "Consent/" + r->resource_id);
      w.Key("recorded_at");
      writeString(w, formatRfc3339(fromUnixMillis(r->recorded_at)));
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::int64_t nowMillis(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch()).count();
}

http::ServerOptions serverOptions(const config::Server& s) {
  http::ServerOptions o;
  o.address = s.address;
  o.port = s.port;
  o.threads = s.threads;
  o.cert_file = s.tls.cert_file.string();
  o.key_file = s.tls.key_file.string();
  o.client_ca_file = s.tls.client_ca_file.string();
  o.client_cert = s.tls.client_cert == config::ClientCertMode::Required   ? http::ClientCertMode::Required
                  : s.tls.client_cert == config::ClientCertMode::Optional ? http::ClientCertMode::Optional
                                                                          : http::ClientCertMode::None;
  o.max_body_bytes = s.max_body_bytes;
  o.read_timeout = s.read_timeout;
  o.write_timeout = s.write_timeout;
  o.idle_timeout = s.idle_timeout;
  o.max_connections = s.max_connections;
  return o;
}

std::vector<http::TokenEntry> tokenEntries(const std::vector<config::Token>& tokens) {
  std::vector<http::TokenEntry> entries;
  for (const auto& t : tokens) {
    http::TokenEntry e{t.id, t.sha256, {}, t.clinics};
    for (const auto& r : t.roles) {
      if (auto role = http::parseRole(r)) e.roles.push_back(*role);
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

}  // namespace

struct Gateway::Parts {
  config::GatewayConfig config;
  const Clock* clock = nullptr;
  std::unique_ptr<store::Store> store;
  std::string record_key_secret;  // pseudonymises record ids in logs and status answers
  std::unique_ptr<ingest::GroupCommitter> committer;
  // The running mapping set (schemas, mappers, profiles, CSV input mappers) with the
  // IngestService over it, replaced whole on reload. A request copies the shared_ptr when it
  // starts and keeps that set until it has answered, so a reload never changes anything under a
  // record being mapped.
  struct Live {
    std::shared_ptr<const MappingSnapshot> mapping;
    std::shared_ptr<const privacy::Classifier> classifier;  // profiles_dir/ValueSet/gw-sensitivity-*
    std::shared_ptr<const mapping::CsvMapperSet> csv_mappers;  // mapping.csv_mappers_dir; may be empty
    std::unique_ptr<ingest::IngestService> ingest;
  };
  mutable std::mutex live_mutex;
  std::shared_ptr<const Live> live;
  std::mutex reload_mutex;  // one reload at a time
  // Coalescing: each request takes a ticket; a reload covers every ticket taken before it began.
  std::atomic<std::uint64_t> reload_tickets{0};
  std::uint64_t reload_covered = 0;                    // guarded by reload_mutex
  std::optional<Result<ReloadSummary>> last_reload;    // guarded by reload_mutex
  // Reloads read and compile files: they run on this thread, never on an io thread.
  std::thread reload_thread;
  std::mutex jobs_mutex;
  std::condition_variable jobs_cv;
  std::deque<std::function<void()>> jobs;
  bool jobs_stopping = false;
  consent::ConsentRegistry registry;  // current consents; decisions read it from every thread
  std::unique_ptr<http::Authenticator> auth;
  std::vector<std::unique_ptr<delivery::PartnerWorker>> workers;
  std::unique_ptr<http::Server> server;

  // Authenticates and checks the role; answers 401/403 itself and returns nullopt when refused.
  std::optional<http::Principal> admit(http::Request& req, http::Respond& respond,
                                       std::initializer_list<http::Role> any_of) const {
    auto principal = auth->authenticate(req);
    if (!principal) {  // authenticate() logged why, without the token
      respond(http::errorResponse(principal.error()));
      return std::nullopt;
    }
    req.token_id = principal.value().token_id;
    for (auto role : any_of) {
      if (principal.value().has(role)) return std::move(principal).value();
    }
    std::string roles;
    for (auto role : any_of) roles += (roles.empty() ? "" : " or ") + std::string(http::roleName(role));
    GW_LOG(Warn, Auth, "forbidden").kv("request_id", req.request_id).kv("token", req.token_id).kv("route", req.route);
    respond(http::errorResponse(makeError(ErrorCode::Forbidden, "this token lacks the role this endpoint needs",
                                          req.route, "use a token with the " + roles + " role")));
    return std::nullopt;
  }

  // ?clinic=ID&mrn=MRN -> the internal Patient id the log and registry use.
  static Result<std::string> patientKeyFromQuery(const http::Request& req) {
    const auto clinic = req.queryParam("clinic");
    const auto mrn = req.queryParam("mrn");
    if (!clinic || clinic->empty() || !mrn || mrn->empty()) {
      return makeError(ErrorCode::BadRequest, "the patient is named by the clinic and mrn query parameters", "mrn",
                       "add ?clinic=<clinic id>&mrn=<the patient's MRN at that clinic>");
    }
    return ids::resourceId(*clinic, "Patient", *mrn);
  }

  std::shared_ptr<const Live> current() const {
    std::lock_guard lock(live_mutex);
    return live;
  }

  void install(std::shared_ptr<const MappingSnapshot> mapping, std::shared_ptr<const mapping::CsvMapperSet> csv,
               std::shared_ptr<const privacy::Classifier> classifier) {
    auto next = std::make_shared<Live>();
    next->ingest = std::make_unique<ingest::IngestService>(ingest::IngestParts{
        config, *mapping->schemas, *mapping->mappers, *mapping->profiles, csv.get(), *committer, *store, *classifier,
        registry, ingest::DisclosurePolicy{config.privacy.part2_notice, config.privacy.policy_version},
        record_key_secret, [this](const consent::ConsentVersion& v) { scheduleReconcile(v); },
        [this](const std::string& patient_key) { scheduleReconcilePatient(patient_key); }});
    next->mapping = std::move(mapping);
    next->csv_mappers = std::move(csv);
    next->classifier = std::move(classifier);
    std::lock_guard lock(live_mutex);
    live = std::move(next);
  }

  std::uint64_t reloadTicket() { return ++reload_tickets; }

  Result<ReloadSummary> reload(std::uint64_t ticket) {
    std::lock_guard serial(reload_mutex);
    if (last_reload && reload_covered >= ticket) {
      // The files were read after this request arrived: that reload's answer is this one's too.
      if (!*last_reload) return last_reload->error();
      ReloadSummary shared = last_reload->value();
      shared.coalesced = true;
      return shared;
    }
    const std::uint64_t covering = reload_tickets.load();
    auto result = loadAndInstall();
    reload_covered = covering;
    last_reload = result;
    return result;
  }

  Result<ReloadSummary> loadAndInstall() {
    auto loaded = loadMappingSnapshot(config.mapping.format_dir, config.mapping.profiles_dir);
    if (!loaded) {
      GW_LOG(Error, Mapping, "reload_rejected").kv("error", loaded.error().describe());
      return loaded.error();
    }
    auto csv = loadCsvMappers(config);
    if (!csv) {
      GW_LOG(Error, Mapping, "reload_rejected").kv("error", csv.error().describe());
      return csv.error();
    }
    auto classifier = loadClassifier(config);
    if (!classifier) {
      GW_LOG(Error, Mapping, "reload_rejected").kv("error", classifier.error().describe());
      return classifier.error();
    }
    const auto& m = *loaded.value();
    ReloadSummary summary{m.schemas->recordTypes().size(), m.mappers->recordTypes().size(),
                          m.profiles->profileUrls().size()};
    install(std::move(loaded).value(), std::shared_ptr<const mapping::CsvMapperSet>(std::move(csv).value()),
            std::move(classifier).value());
    GW_LOG(Info, Mapping, "reloaded")
        .kv("schemas", summary.schemas)
        .kv("mappers", summary.mappers)
        .kv("profiles", summary.profiles);
    return summary;
  }

  // A consent version entered the registry: settle what is queued and held for its patient and
  // partner on the jobs thread (it reads and maps stored records), then mark it reconciled so a
  // restart does not redo it. A crash before that mark redoes it at the next start.
  void scheduleReconcile(const consent::ConsentVersion& v) {
    post([this, patient = v.patient_key, partner = v.partner_id, clinic = v.clinic, consent_id = v.consent_id,
          version = v.version] {
      auto running = current();
      if (auto settled = running->ingest->reconcile(patient, partner); !settled) {
        GW_LOG(Error, Consent, "reconcile_failed").kv("partner", partner).kv("error", settled.error().describe());
        return;
      }
      if (auto marked = store->markConsentReconciled(clinic, consent_id, version); !marked) {
        GW_LOG(Error, Consent, "reconcile_not_marked").kv("error", marked.error().describe());
      }
      wakeWorkers();
    });
  }

  // Answers a compliance read and logs it in the audit log (who read what, how many rows).
  void auditRead(const http::Request& req, const audit::AuditRequest& request, std::size_t returned) {
    auto entry = audit::auditReadEntry(request, req.token_id, nowMillis(*clock), returned);
    if (auto logged = store->appendAudit({std::move(entry)}); !logged) {
      GW_LOG(Error, Audit, "audit_read_not_logged").kv("error", logged.error().describe());
    }
  }

  // Records decided under a registry that changed before they committed: settle the patient's
  // queue with every partner (a no-op when nothing differs).
  void scheduleReconcilePatient(const std::string& patient_key) {
    post([this, patient_key] {
      auto running = current();
      for (const auto& partner : config.partners) {
        if (auto settled = running->ingest->reconcile(patient_key, partner.id); !settled) {
          GW_LOG(Error, Consent, "reconcile_failed").kv("partner", partner.id).kv("error", settled.error().describe());
        }
      }
      wakeWorkers();
    });
  }

  void post(std::function<void()> job) {
    {
      std::lock_guard lock(jobs_mutex);
      if (!jobs_stopping) jobs.push_back(std::move(job));
    }
    jobs_cv.notify_one();
  }

  // The jobs thread: reloads, consent reconciliation, audit verification, and the retention
  // purge every privacy.purge_interval (first shortly after start) when a retention is set.
  void runJobs() {
    const auto& retention = config.privacy.retention_days;
    const bool purging = retention.general > 0 || retention.sud > 0 || retention.mh > 0;
    auto next_purge = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(jobs_mutex);
        const auto ready = [this] { return jobs_stopping || !jobs.empty(); };
        if (purging) {
          jobs_cv.wait_until(lock, next_purge, ready);
        } else {
          jobs_cv.wait(lock, ready);
        }
        if (jobs_stopping && jobs.empty()) return;
        if (!jobs.empty()) {
          job = std::move(jobs.front());
          jobs.pop_front();
        }
      }
      if (job) {
        job();
      } else if (purging && std::chrono::steady_clock::now() >= next_purge) {
        purgeExpired();
        next_purge = std::chrono::steady_clock::now() + config.privacy.purge_interval;
      }
    }
  }

  void purgeExpired() {
    auto purged = store->purgeExpired(clock->now(), retentionOf(config.privacy));
    if (!purged) {
      GW_LOG(Error, Store, "purge_failed").kv("error", purged.error().describe());
      return;
    }
    const auto& n = purged.value();
    GW_LOG(Info, Store, "purged")
        .kv("record_versions", n.record_versions)
        .kv("resources", n.resources)
        .kv("outbox_items", n.outbox_items)
        .kv("records", n.records);
  }

  void stopJobs() {
    {
      std::lock_guard lock(jobs_mutex);
      jobs_stopping = true;
    }
    jobs_cv.notify_all();
    if (reload_thread.joinable()) reload_thread.join();
  }

  void wakeWorkers() {
    for (auto& w : workers) w->wake();
  }

  std::shared_ptr<http::Router> routes() {
    auto router = std::make_shared<http::Router>();
    router->add("POST", "/v1/records", [this](http::Request& req, http::Respond respond) {
      auto principal = admit(req, respond, {http::Role::Ingest});
      if (!principal) return;
      ingest::Submitter submitter{principal->token_id, principal->clinics};
      auto running = current();
      // text/csv bodies name their CSV input mapper: ?mapper=harm-reduction-weekly/weekly-export
      running->ingest->ingest(req.body, req.header("content-type"), req.queryParam("mapper").value_or(""), submitter,
                              [this, respond, running](ingest::IngestReply reply) {
                                if (reply.status == 202) wakeWorkers();
                                respond(http::jsonResponse(reply.status, std::move(reply.body)));
                              });
    });
    // Dry run of one mapper (engineer tool): maps, validates and diffs, stores nothing.
    router->add("POST", "/v1/mappings/{name}/$test", [this](http::Request& req, http::Respond respond) {
      auto principal = admit(req, respond, {http::Role::Engineer});
      if (!principal) return;
      auto running = current();
      auto answer = testMappingRequest(*running->mapping, req.pathParam("name"), req.body, running->csv_mappers.get(),
                                       req.header("content-type"));
      GW_LOG(Info, Mapping, "mapping_test").kv("request_id", req.request_id).kv("token", req.token_id)
          .kv("status", answer.status);
      respond(http::jsonResponse(answer.status, std::move(answer.body)));
    });
    router->add("POST", "/v1/admin/reload", [this](http::Request& req, http::Respond respond) {
      auto principal = admit(req, respond, {http::Role::Engineer, http::Role::Admin});
      if (!principal) return;
      GW_LOG(Info, Mapping, "reload_requested").kv("request_id", req.request_id).kv("token", req.token_id);
      post([this, respond, ticket = reloadTicket()] {
        auto reloaded = reload(ticket);
        if (!reloaded) {
          Error e = reloaded.error();
          e.hint = "the running mapping set stays in place; " + (e.hint.empty() ? std::string("fix the file and reload again") : e.hint);
          return respond(http::errorResponse(e, 422));
        }
        const auto& s = reloaded.value();
        respond(http::jsonResponse(200, R"({"status":"reloaded","schemas":)" + std::to_string(s.schemas) +
                                            R"(,"mappers":)" + std::to_string(s.mappers) + R"(,"profiles":)" +
                                            std::to_string(s.profiles) + R"(,"coalesced":)" +
                                            (s.coalesced ? "true" : "false") + "}"));
      });
    });
    router->add("GET", "/v1/records/{record_id}", [this](http::Request& req, http::Respond respond) {
      auto principal = admit(req, respond, {http::Role::Ingest, http::Role::Compliance, http::Role::Admin});
      if (!principal) return;
      const auto clinic = req.queryParam("clinic");
      if (!clinic || clinic->empty()) {
        return respond(http::errorResponse(makeError(ErrorCode::BadRequest, "the clinic query parameter is missing",
                                                     "clinic", "call /v1/records/{record_id}?clinic=<clinic id>")));
      }
      // An ingest token sees the records of its own clinics only.
      const bool oversight = principal->has(http::Role::Compliance) || principal->has(http::Role::Admin);
      if (!oversight && !principal->mayActForClinic(*clinic)) {
        return respond(http::errorResponse(makeError(ErrorCode::Forbidden, "this token may not read records of that clinic",
                                                     "clinic", "use the clinic's own token")));
      }
      auto status = store->recordStatus(*clinic, req.pathParam("record_id"));
      if (!status) return respond(http::errorResponse(status.error()));
      if (!status.value()) {
        return respond(http::errorResponse(makeError(ErrorCode::NotFound, "no such record for this clinic",
                                                     "record_id", "check the record_id and clinic you posted")));
      }
      respond(http::jsonResponse(200, recordStatusJson(*status.value(), record_key_secret)));
    });
    // A patient's consents and their history (compliance): ?clinic=ID&mrn=MRN.
    router->add("GET", "/v1/consents", [this](http::Request& req, http::Respond respond) {
      auto principal = admit(req, respond, {http::Role::Compliance, http::Role::Admin});
      if (!principal) return;
      auto patient = patientKeyFromQuery(req);
      if (!patient) return respond(http::errorResponse(patient.error()));
      auto stored = store->consents(patient.value());
      if (!stored) return respond(http::errorResponse(stored.error()));
      audit::AuditRequest read;
      read.query.patient_key = patient.value();
      read.query.kind = store::AuditKind::Consent;
      auditRead(req, read, stored.value().size());
      respond(http::jsonResponse(200, consentsJson(patient.value(), stored.value())));
    });
    // The decision and disclosure log (compliance): filters, keyset paging, JSON or CSV.
    router->add("GET", "/v1/audit/decisions", [this](http::Request& req, http::Respond respond) {
      auto principal = admit(req, respond, {http::Role::Compliance});
      if (!principal) return;
      // A compliance officer knows the clinic and MRN, not the internal patient id.
      auto params = req.query;
      if (params.count("mrn") != 0) {
        auto patient = patientKeyFromQuery(req);
        if (!patient) return respond(http::errorResponse(patient.error()));
        params.erase("mrn");
        params.emplace("patient_key", patient.value());
      }
      auto request = audit::parseAuditQuery(params);
      if (!request) return respond(http::errorResponse(request.error()));
      auto page = store->queryAudit(request.value().query);
      if (!page) return respond(http::errorResponse(page.error()));
      auditRead(req, request.value(), page.value().entries.size());
      if (request.value().format == audit::ExportFormat::Csv) {
        http::Response r;
        r.content_type = std::string(audit::kCsvContentType);
        r.body = audit::pageToCsv(page.value());
        r.headers.emplace_back("Content-Disposition", "attachment; filename=\"audit-decisions.csv\"");
        return respond(std::move(r));
      }
      respond(http::jsonResponse(200, audit::pageToJson(page.value())));
    });
    // Recomputes the hash chain (compliance); a large log takes a while, so off the io threads.
    router->add("GET", "/v1/audit/verify", [this](http::Request& req, http::Respond respond) {
      auto principal = admit(req, respond, {http::Role::Compliance, http::Role::Admin});
      if (!principal) return;
      auto anchor = audit::parseVerifyParams(req.query);
      if (!anchor) return respond(http::errorResponse(anchor.error()));
      post([this, respond, anchor = anchor.value(), actor = req.token_id] {
        auto report = store->verifyAudit(anchor);
        if (!report) return respond(http::errorResponse(report.error()));
        if (auto logged = store->appendAudit({audit::auditVerifyEntry(report.value(), actor, nowMillis(*clock))}); !logged) {
          GW_LOG(Error, Audit, "audit_verify_not_logged").kv("error", logged.error().describe());
        }
        if (!report.value().ok) {
          GW_LOG(Error, Audit, "chain_broken").kv("breaks", report.value().break_count);
        }
        respond(http::jsonResponse(200, audit::verifyReportToJson(report.value())));
      });
    });
    router->add("GET", "/healthz", [](http::Request&, http::Respond respond) {
      respond(http::jsonResponse(200, R"({"status":"ok"})"));
    });
    router->add("GET", "/readyz", [this](http::Request&, http::Respond respond) {
      if (auto ping = store->ping(); !ping) {
        GW_LOG(Error, Store, "not_ready").kv("error", ping.error().message);
        return respond(http::jsonResponse(503, R"({"status":"unavailable","reason":"database"})"));
      }
      respond(http::jsonResponse(200, R"({"status":"ready"})"));
    });
    return router;
  }
};

Gateway::Gateway(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
Gateway::~Gateway() { stop(); }

Result<std::unique_ptr<Gateway>> Gateway::create(config::GatewayConfig config, const Clock& clock) {
  auto parts = std::make_unique<Parts>();
  parts->config = std::move(config);
  parts->clock = &clock;
  const auto& cfg = parts->config;
  log::setLevel(cfg.log_level);

  GW_TRY(auto store, openConfiguredStore(cfg, cfg.server.threads + static_cast<int>(cfg.partners.size()) + 4));
  parts->store = std::move(store);
  GW_TRY(auto record_key_secret, parts->store->deploymentSecret("record-key"));
  parts->record_key_secret = std::move(record_key_secret);
  GW_TRY(auto mapping, loadMappingSnapshot(cfg.mapping.format_dir, cfg.mapping.profiles_dir));
  GW_LOG(Info, Mapping, "loaded")
      .kv("schemas", mapping->schemas->recordTypes().size())
      .kv("mappers", mapping->mappers->recordTypes().size())
      .kv("profiles", mapping->profiles->profileUrls().size());

  GW_TRY(auto csv_mappers, loadCsvMappers(cfg));
  GW_TRY(auto classifier, loadClassifier(cfg));

  GW_TRY(auto unreconciled, loadConsentRegistry(*parts->store, parts->registry));

  parts->committer = std::make_unique<ingest::GroupCommitter>(*parts->store, clock);
  parts->install(std::move(mapping), std::shared_ptr<const mapping::CsvMapperSet>(std::move(csv_mappers)),
                 std::move(classifier));
  parts->auth = std::make_unique<http::Authenticator>(tokenEntries(cfg.tokens));

  for (const auto& partner : cfg.partners) {
    GW_TRY(auto endpoint, delivery::endpointFor(partner));
    GW_TRY(auto client, delivery::FhirClient::create(std::move(endpoint)));
    parts->workers.push_back(
        std::make_unique<delivery::PartnerWorker>(partner, cfg.delivery, *parts->store, clock, std::move(client),
                                                  delivery::DisclosureCheck{&parts->registry, cfg.privacy.policy_version}));
  }
  GW_TRY(auto server, http::Server::create(serverOptions(cfg.server), parts->routes()));
  parts->server = std::move(server);
  parts->reload_thread = std::thread([p = parts.get()] { p->runJobs(); });
  // Consents stored but not settled before the last stop (a crash between the two) settle now.
  for (const auto& v : unreconciled) parts->scheduleReconcile(v);
  return std::unique_ptr<Gateway>(new Gateway(std::move(parts)));
}

Status Gateway::check(const config::GatewayConfig& cfg) {
  GW_TRY(auto master_key, config::loadMasterKey(cfg.privacy));  // readable, private, well-formed
  (void)master_key;
  GW_TRY(auto mapping, loadMappingSnapshot(cfg.mapping.format_dir, cfg.mapping.profiles_dir));
  GW_TRY(auto csv_mappers, loadCsvMappers(cfg));
  GW_TRY(auto classifier, loadClassifier(cfg));
  (void)mapping;
  (void)csv_mappers;
  (void)classifier;
  for (const auto& partner : cfg.partners) {
    GW_TRY(auto endpoint, delivery::endpointFor(partner));
    GW_TRY(auto client, delivery::FhirClient::create(std::move(endpoint)));
  }
  GW_TRY(auto server, http::Server::create(serverOptions(cfg.server), std::make_shared<http::Router>()));
  return ok();
}

Status Gateway::start() {
  GW_TRY(parts_->server->start());
  for (auto& w : parts_->workers) w->start();
  GW_LOG(Info, Main, "started")
      .kv("address", parts_->config.server.address)
      .kv("port", parts_->server->port())
      .kv("partners", parts_->workers.size());
  return ok();
}

void Gateway::stop() {
  if (!parts_) return;
  if (parts_->server) parts_->server->stop();
  parts_->stopJobs();  // a reload in progress finishes first
  for (auto& w : parts_->workers) w->stop();
  parts_->committer.reset();  // drains and commits what is queued
}

std::uint16_t Gateway::port() const { return parts_->server->port(); }

Result<Gateway::ReloadSummary> Gateway::reloadMappings() { return parts_->reload(parts_->reloadTicket()); }

}  // namespace gw::app

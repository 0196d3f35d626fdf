#include "app/gateway.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

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
  std::unique_ptr<mapping::RecordSchemas> schemas;
  std::unique_ptr<mapping::MapperSet> mappers;
  std::unique_ptr<validate::ProfileSet> profiles;
  std::unique_ptr<ingest::GroupCommitter> committer;
  std::unique_ptr<ingest::IngestService> ingest;
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

  void wakeWorkers() {
    for (auto& w : workers) w->wake();
  }

  std::shared_ptr<http::Router> routes() {
    auto router = std::make_shared<http::Router>();
    router->add("POST", "/v1/records", [this](http::Request& req, http::Respond respond) {
      auto principal = admit(req, respond, {http::Role::Ingest});
      if (!principal) return;
      ingest::Submitter submitter{principal->token_id, principal->clinics};
      ingest->ingest(req.body, req.header("content-type"), submitter,
                     [this, respond](ingest::IngestReply reply) {
                       if (reply.status == 202) wakeWorkers();
                       respond(http::jsonResponse(reply.status, std::move(reply.body)));
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

  GW_TRY(auto store, store::openSqliteStore({cfg.storage.sqlite_path.string(), cfg.storage.synchronous_full,
                                                      cfg.server.threads + static_cast<int>(cfg.partners.size()) + 4}));
  parts->store = std::move(store);
  GW_TRY(auto record_key_secret, parts->store->deploymentSecret("record-key"));
  parts->record_key_secret = std::move(record_key_secret);
  GW_TRY(auto schemas, mapping::RecordSchemas::loadDirectory(cfg.mapping.format_dir / "schemas"));
  parts->schemas = std::make_unique<mapping::RecordSchemas>(std::move(schemas));
  GW_TRY(auto mappers, mapping::MapperSet::loadDirectory(cfg.mapping.format_dir, parts->schemas.get()));
  parts->mappers = std::make_unique<mapping::MapperSet>(std::move(mappers));
  GW_TRY(auto profiles, validate::ProfileSet::loadDirectory(cfg.mapping.profiles_dir));
  parts->profiles = std::make_unique<validate::ProfileSet>(std::move(profiles));
  GW_LOG(Info, Mapping, "loaded")
      .kv("schemas", parts->schemas->recordTypes().size())
      .kv("mappers", parts->mappers->recordTypes().size())
      .kv("profiles", parts->profiles->profileUrls().size());

  parts->committer = std::make_unique<ingest::GroupCommitter>(*parts->store, clock);
  parts->ingest = std::make_unique<ingest::IngestService>(cfg, *parts->schemas, *parts->mappers, *parts->profiles,
                                                          *parts->committer,
                                                          parts->record_key_secret);
  parts->auth = std::make_unique<http::Authenticator>(tokenEntries(cfg.tokens));

  for (const auto& partner : cfg.partners) {
    GW_TRY(auto endpoint, delivery::endpointFor(partner));
    GW_TRY(auto client, delivery::FhirClient::create(std::move(endpoint)));
    parts->workers.push_back(
        std::make_unique<delivery::PartnerWorker>(partner, cfg.delivery, *parts->store, clock, std::move(client)));
  }
  GW_TRY(auto server, http::Server::create(serverOptions(cfg.server), parts->routes()));
  parts->server = std::move(server);
  return std::unique_ptr<Gateway>(new Gateway(std::move(parts)));
}

Status Gateway::check(const config::GatewayConfig& cfg) {
  GW_TRY(auto schemas, mapping::RecordSchemas::loadDirectory(cfg.mapping.format_dir / "schemas"));
  GW_TRY(auto mappers, mapping::MapperSet::loadDirectory(cfg.mapping.format_dir, &schemas));
  GW_TRY(auto profiles, validate::ProfileSet::loadDirectory(cfg.mapping.profiles_dir));
  (void)mappers;
  (void)profiles;
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
  for (auto& w : parts_->workers) w->stop();
  parts_->committer.reset();  // drains and commits what is queued
}

std::uint16_t Gateway::port() const { return parts_->server->port(); }

}  // namespace gw::app

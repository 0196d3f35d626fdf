#include "store/postgres_backend.hpp"

#include <poll.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "common/log.hpp"
#include "store/postgres_store.hpp"
#include "store/record_store.hpp"

namespace gw::store {
namespace postgres {
namespace {

// One claim book per instance: the backends of one process on one database share it (an
// instance is a process; two Store objects of it, e.g. a tool's beside the gateway's, are one
// sender), so what one claimed the other is still offered. Kept while any backend uses it.
std::shared_ptr<OutboxClaims> claimsFor(const PostgresOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<OutboxClaims>> books;
  std::lock_guard lock(mutex);
  const std::string key = options.dsn + '\n' + options.instance_id;
  if (auto held = books[key].lock()) return held;
  auto made = std::make_shared<OutboxClaims>(options);
  books[key] = made;
  return made;
}

class PostgresBackend final : public StoreBackend {
 public:
  explicit PostgresBackend(const PostgresOptions& options)
      : options_(options),
        location_(describePostgresDsn(options.dsn)),
        readers_(options),
        claims_(claimsFor(options)),
        holds_(std::make_shared<SendHolds>(options)) {}

  Status init() {
    GW_TRY(auto writer, connect(options_));
    writer_ = std::move(writer);
    try {
      if (options_.read_only) {
        const int version = storedSchemaVersion(*writer_);
        if (version != kPostgresSchemaVersion) {
          return makeError(ErrorCode::Storage,
                           version == 0 ? std::string("the database holds no fhir-gateway schema")
                                        : "the database schema is version " + std::to_string(version) +
                                              " but this build needs version " + std::to_string(kPostgresSchemaVersion) +
                                              ", which a read-only open does not make",
                           location_, "start the gateway of this version on the database once");
        }
        return ok();
      }
      applyMigrations(*writer_);
      return ok();
    } catch (const PgFailure& f) {
      return makeError(ErrorCode::Storage, "schema migration failed: " + f.message(), location_,
                       "check that the database is a fhir-gateway database and the user may create tables in it");
    }
  }

  std::string_view name() const override { return "postgresql"; }
  std::string location() const override { return location_; }

  Result<std::unique_ptr<StoreReader>> read() override {
    GW_TRY(auto c, readers_.take());
    return makeReader(std::move(c), readers_, options_.read_only ? nullptr : claims_.get());
  }

  Result<std::unique_ptr<StoreWriter>> beginConsentWrite(const std::vector<PatientPartner>& consent_changes) override {
    if (options_.read_only) {
      return makeError(ErrorCode::Storage, "the database was opened read-only: nothing may be written to it", location_,
                       "open it without --read-only to write");
    }
    std::unique_lock lock(writer_mutex_);
    // A connection the server dropped (restart, failover) is made again before the transaction.
    if (PQstatus(writer_->handle()) != CONNECTION_OK) {
      PQreset(writer_->handle());
      if (PQstatus(writer_->handle()) != CONNECTION_OK) {
        return makeError(ErrorCode::Unavailable, "the PostgreSQL connection for writes is down", location_,
                         "check that the database server is up; the request can be retried");
      }
      try {
        writer_->exec("SET bytea_output = 'hex'");
        writer_->exec("SET client_min_messages = warning");
      } catch (const PgFailure& f) {
        return storageError("setting up a connection", f);
      }
    }
    return beginWriter(*writer_, std::move(lock), *claims_, consent_changes, SendHolds::changeWait(options_.longest_send));
  }

  Result<std::unique_ptr<StoreWriter>> beginWrite() override { return beginConsentWrite({}); }

  Result<SendHold> holdSend(std::string_view patient_key, std::string_view partner_id) override {
    if (options_.read_only) return SendHold();  // sends nothing
    return holds_->hold(patient_key, partner_id);
  }

  Status watchConsents(std::function<void(const std::string& patient_key)> changed) override {
    return watchChannel(consents_changed_, std::move(changed));
  }

  // A reload asked of any instance: every instance LISTENs on gw_reload (the watcher's connection,
  // shared with the consent watch) and reloads its own files; the origin's own announcement is
  // not passed on.
  Status watchReloads(std::function<void(const std::string& origin)> requested) override {
    return watchChannel(reload_requested_, std::move(requested));
  }

  Status announceReload(std::string_view origin) override {
    if (options_.read_only) return ok();
    GW_TRY(auto c, readers_.take());
    Status sent = ok();
    try {
      c->exec("SELECT pg_notify('gw_reload', $1)", Params().text(origin));
    } catch (const PgFailure& f) {
      sent = storageError("announcing a reload to the other instances", f);
    }
    readers_.give(std::move(c));
    return sent;
  }

  ~PostgresBackend() override {
    stopping_ = true;
    if (watcher_.joinable()) watcher_.join();
  }

  std::string instanceId() const override { return options_.instance_id; }

  // PostgreSQL support began after lookup keys: no database of it ever held clear identifiers.
  Result<std::int64_t> convertLegacyIdentifiers(const LegacyIdentifiers&) override { return std::int64_t{0}; }

 private:
  using Handler = std::function<void(const std::string&)>;

  // Sets one channel's handler (null clears it) and starts the watcher thread when the first is
  // set; when both are cleared the thread stops, waiting for a call in progress to return.
  Status watchChannel(Handler& slot, Handler handler) {
    std::unique_lock lock(watch_mutex_);
    const bool set = static_cast<bool>(handler);
    slot = std::move(handler);
    if (!set) {
      if (consents_changed_ || reload_requested_ || !watcher_.joinable()) return ok();
      stopping_ = true;
      lock.unlock();
      watcher_.join();
      return ok();
    }
    if (watcher_.joinable()) return ok();
    auto listener = listen();
    if (!listener) {
      slot = nullptr;
      return listener.error();
    }
    stopping_ = false;
    watcher_ = std::thread([this, c = std::move(listener).value()]() mutable { watch(std::move(c)); });
    return ok();
  }

  Result<std::unique_ptr<PgConnection>> listen() {
    GW_TRY(auto listener, connect(options_));
    try {
      listener->exec("LISTEN gw_consents");
      listener->exec("LISTEN gw_reload");
    } catch (const PgFailure& f) {
      return storageError("listening for consent changes and reloads", f);
    }
    return listener;
  }

  void dispatch(const std::string& channel, const std::string& payload) {
    std::lock_guard lock(watch_mutex_);
    if (channel == "gw_consents") {
      if (consents_changed_) consents_changed_(payload);
    } else if (channel == "gw_reload") {
      if (reload_requested_ && payload != options_.instance_id) reload_requested_(payload);
    }
  }

  // LISTEN on a connection of its own; a lost connection is made again, and since notifications
  // sent meanwhile are gone, the consent watch hears "" (reload everything). A reload announced
  // meanwhile is missed: the instances table shows the version each instance runs.
  void watch(std::unique_ptr<PgConnection> c) {
    while (!stopping_) {
      if (!c || PQstatus(c->handle()) != CONNECTION_OK) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        auto made = listen();
        if (!made) continue;
        c = std::move(made).value();
        GW_LOG(Warn, Store, "consent_watch_reconnected").kv("database", location_);
        dispatch("gw_consents", "");
        continue;
      }
      pollfd fd{PQsocket(c->handle()), POLLIN, 0};
      if (::poll(&fd, 1, 200) <= 0) continue;
      if (PQconsumeInput(c->handle()) == 0) continue;  // the connection broke: made again above
      while (PGnotify* n = PQnotifies(c->handle())) {
        const std::string channel = n->relname ? n->relname : "";
        const std::string payload = n->extra ? n->extra : "";
        PQfreemem(n);
        dispatch(channel, payload);
      }
    }
  }

  PostgresOptions options_;
  std::string location_;
  ConnectionPool readers_;
  std::shared_ptr<OutboxClaims> claims_;
  std::shared_ptr<SendHolds> holds_;
  std::unique_ptr<PgConnection> writer_;
  std::mutex writer_mutex_;
  std::mutex watch_mutex_;  // the handlers; held while one runs, so clearing one waits for it
  Handler consents_changed_;
  Handler reload_requested_;
  std::atomic<bool> stopping_{false};
  std::thread watcher_;
};

}  // namespace
}  // namespace postgres

Result<std::unique_ptr<StoreBackend>> openPostgresBackend(const PostgresOptions& options) {
  if (options.dsn.empty()) {
    return makeError(ErrorCode::Config, "no PostgreSQL connection string", "storage.postgres",
                     "set storage.postgres.dsn_file or storage.postgres.dsn_env");
  }
  auto backend = std::make_unique<postgres::PostgresBackend>(options);
  GW_TRY(backend->init());
  return std::unique_ptr<StoreBackend>(std::move(backend));
}

Result<std::unique_ptr<Store>> openPostgresStore(const PostgresOptions& options) {
  if (options.read_only) {
    return makeError(ErrorCode::Internal, "a store cannot be opened read-only: it makes its keys on first open",
                     describePostgresDsn(options.dsn), "open the backend read-only and use store::ReadOnlyAuditLog");
  }
  if (options.master_key.empty()) {
    return makeError(ErrorCode::Config, "no master key: stored payloads are encrypted under data keys it wraps",
                     "privacy.master_key_file / privacy.master_key_env",
                     "set one of the two in the config (make a key: openssl rand -hex 32 > FILE; chmod 600 FILE)");
  }
  GW_TRY(auto backend, openPostgresBackend(options));
  GW_TRY(auto store, openStore(std::move(backend), options.master_key, options.master_key_source));
  GW_LOG(Info, Store, "opened")
      .kv("backend", "postgresql")
      .kv("database", describePostgresDsn(options.dsn))  // user, host, port, database: no password
      .kv("schema_version", postgres::kPostgresSchemaVersion)
      .kv("master_key_id", options.master_key.id());
  return store;
}

}  // namespace gw::store

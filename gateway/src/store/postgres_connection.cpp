// libpq connections of the PostgreSQL backend: parameters, results, the pool.
#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "common/log.hpp"
#include "store/postgres_backend.hpp"

namespace gw::store {

std::string describePostgresDsn(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) return "postgresql (a connection string that does not parse)";
  std::string user, host, port, dbname;
  for (auto* o = opts; o->keyword; ++o) {
    if (!o->val) continue;
    const std::string_view k = o->keyword;
    if (k == "user") user = o->val;
    if (k == "host" || (k == "hostaddr" && host.empty())) host = o->val;
    if (k == "port") port = o->val;
    if (k == "dbname") dbname = o->val;
  }
  PQconninfoFree(opts);
  std::string out = "postgresql://";
  if (!user.empty()) out += user + "@";
  out += host.empty() ? "localhost" : host;
  if (!port.empty()) out += ":" + port;
  out += "/" + dbname;
  return out;
}

namespace postgres {

Error storageError(std::string_view what, const PgFailure& f) {
  return makeError(ErrorCode::Storage, (f.what().empty() ? std::string(what) : f.what()) + ": " + f.message(), "postgresql",
                   "check that the database server is up and reachable; the request can be retried");
}

Params& Params::text(std::string_view v) {
  values_.emplace_back(v);
  formats_.push_back(0);
  return *this;
}

Params& Params::bytes(std::string_view v) {
  values_.emplace_back(v);
  formats_.push_back(1);
  return *this;
}

Params& Params::i64(std::int64_t v) { return text(std::to_string(v)); }

std::vector<const char*> Params::pointers() const {
  std::vector<const char*> p;
  p.reserve(values_.size());
  for (const auto& v : values_) p.push_back(v.data());
  return p;
}

std::vector<int> Params::lengths() const {
  std::vector<int> l;
  l.reserve(values_.size());
  for (const auto& v : values_) l.push_back(static_cast<int>(v.size()));
  return l;
}

std::string PgResult::text(int row, int col) const {
  return std::string(PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
}

std::int64_t PgResult::i64(int row, int col) const {
  if (null(row, col)) return 0;
  return std::strtoll(PQgetvalue(r_.get(), row, col), nullptr, 10);
}

namespace {
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}
}  // namespace

std::string PgResult::bytes(int row, int col) const {
  // bytea in text results is "\x" and two hex digits per byte (bytea_output=hex, set per session).
  const char* v = PQgetvalue(r_.get(), row, col);
  const auto n = static_cast<std::size_t>(PQgetlength(r_.get(), row, col));
  if (n < 2 || v[0] != '\\' || v[1] != 'x') return std::string(v, n);
  std::string out((n - 2) / 2, '\0');
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>(hexValue(v[2 + 2 * i]) << 4 | hexValue(v[3 + 2 * i]));
  }
  return out;
}

int PgResult::affected() const {
  const char* n = PQcmdTuples(r_.get());
  return n && *n ? std::atoi(n) : 0;
}

PgConnection::~PgConnection() {
  if (c_) PQfinish(c_);
}

namespace {

// Writes in one pipeline before it is flushed: their results (a few dozen bytes each) must fit the
// socket buffers, or the server blocks writing them while this side blocks sending.
constexpr std::size_t kMaxPipelined = 256;

PgFailure failureOf(PGconn* c, PGresult* r, std::string what = {}) {
  std::string message = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
  if (message.empty()) message = PQerrorMessage(c);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  return PgFailure(message, state ? state : "", std::move(what));
}

}  // namespace

PgResult PgConnection::exec(const std::string& sql, const Params& params) {
  if (!sent_.empty()) flush();
  const auto values = params.pointers();
  const auto lengths = params.lengths();
  PGresult* r = PQexecParams(c_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                             values.empty() ? nullptr : values.data(), lengths.empty() ? nullptr : lengths.data(),
                             params.formats().empty() ? nullptr : params.formats().data(), 0);
  PgResult result(r);
  const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw failureOf(c_, r);
  return result;
}

void PgConnection::send(std::string_view what, const std::string& sql, const Params& params) {
  if (PQpipelineStatus(c_) == PQ_PIPELINE_OFF && PQenterPipelineMode(c_) != 1) {
    throw failureOf(c_, nullptr, std::string(what));
  }
  const auto values = params.pointers();
  const auto lengths = params.lengths();
  if (PQsendQueryParams(c_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.empty() ? nullptr : values.data(),
                        lengths.empty() ? nullptr : lengths.data(),
                        params.formats().empty() ? nullptr : params.formats().data(), 0) != 1) {
    auto failure = failureOf(c_, nullptr, std::string(what));
    discard();
    throw failure;
  }
  sent_.emplace_back(what);
  if (sent_.size() >= kMaxPipelined) flush();
}

void PgConnection::flush() { collect(true); }

void PgConnection::discard() noexcept {
  try {
    collect(false);
  } catch (...) {
  }
}

void PgConnection::collect(bool report) {
  if (PQpipelineStatus(c_) == PQ_PIPELINE_OFF) {
    sent_.clear();
    return;
  }
  std::optional<PgFailure> first;
  if (PQpipelineSync(c_) != 1) first = failureOf(c_, nullptr, sent_.empty() ? std::string() : sent_.front());
  // Each write's result, a NULL after each, then the sync's; a failure aborts the writes after it
  // (PGRES_PIPELINE_ABORTED). Two NULLs in a row: nothing more will come (the connection broke).
  std::size_t index = 0;
  bool after_null = false;
  while (!first || PQstatus(c_) == CONNECTION_OK) {
    PGresult* r = PQgetResult(c_);
    if (r == nullptr) {
      if (after_null) break;
      after_null = true;
      continue;
    }
    after_null = false;
    const auto status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      break;
    }
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_PIPELINE_ABORTED && !first) {
      first = failureOf(c_, r, index < sent_.size() ? sent_[index] : std::string());
    }
    PQclear(r);
    ++index;
  }
  sent_.clear();
  if (PQexitPipelineMode(c_) != 1 && !first) first = failureOf(c_, nullptr);
  if (first && report) throw *first;
}

void PgConnection::execScript(const std::string& sql) {
  // PQexec runs the statements in one transaction and returns the last result, or the first
  // failure (where it stopped).
  PgResult result(PQexec(c_, sql.c_str()));
  const auto status = PQresultStatus(result.raw());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string message = result.raw() ? PQresultErrorMessage(result.raw()) : PQerrorMessage(c_);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    throw PgFailure(message, "");
  }
}

bool PgConnection::healthy() const { return c_ && PQstatus(c_) == CONNECTION_OK && PQtransactionStatus(c_) == PQTRANS_IDLE; }

namespace {
void ignoreNotice(void*, const char*) {}
}  // namespace

Result<std::unique_ptr<PgConnection>> connect(const PostgresOptions& options) {
  // The DSN first, expanded; the settings after it override what it says.
  std::vector<const char*> keys{"dbname"}, values{options.dsn.c_str()};
  const std::string timeout = std::to_string(options.connect_timeout_seconds);
  keys.push_back("connect_timeout");
  values.push_back(timeout.c_str());
  if (!options.sslmode.empty()) keys.push_back("sslmode"), values.push_back(options.sslmode.c_str());
  if (!options.sslrootcert.empty()) keys.push_back("sslrootcert"), values.push_back(options.sslrootcert.c_str());
  if (!options.sslcert.empty()) keys.push_back("sslcert"), values.push_back(options.sslcert.c_str());
  if (!options.sslkey.empty()) keys.push_back("sslkey"), values.push_back(options.sslkey.c_str());
  const std::string app = options.instance_id.empty() ? "fhir-gateway" : "fhir-gateway " + options.instance_id;
  keys.push_back("application_name");
  values.push_back(app.c_str());
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* c = PQconnectdbParams(keys.data(), values.data(), 1);
  auto conn = std::make_unique<PgConnection>(c);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    std::string message = c ? PQerrorMessage(c) : "out of memory";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return makeError(ErrorCode::Storage, "cannot connect to PostgreSQL: " + message, describePostgresDsn(options.dsn),
                     "check storage.postgres (the DSN, sslmode and sslrootcert) and that the server accepts this "
                     "user from this host");
  }
  PQsetNoticeProcessor(c, ignoreNotice, nullptr);
  try {
    conn->exec("SET bytea_output = 'hex'");
    conn->exec("SET client_min_messages = warning");
    if (options.read_only) conn->exec("SET default_transaction_read_only = on");
  } catch (const PgFailure& f) {
    return storageError("setting up a connection", f);
  }
  return conn;
}

Result<std::unique_ptr<PgConnection>> ConnectionPool::take() {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options_.connect_timeout_seconds);
  for (;;) {
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      if (PQstatus(c->handle()) != CONNECTION_OK) continue;  // broke while idle: dropped
      ++lent_;
      return c;
    }
    if (lent_ < options_.pool_size) {
      ++lent_;
      lock.unlock();
      auto made = connect(options_);
      if (!made) {
        lock.lock();
        --lent_;
        freed_.notify_one();
      }
      return made;
    }
    if (freed_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return makeError(ErrorCode::Unavailable,
                       "every PostgreSQL read connection (" + std::to_string(options_.pool_size) + ") is in use",
                       "storage.postgres.pool_size", "raise pool_size, or lower the number of worker threads");
    }
  }
}

void ConnectionPool::give(std::unique_ptr<PgConnection> c) {
  std::lock_guard lock(mutex_);
  --lent_;
  if (c && c->healthy()) idle_.push_back(std::move(c));
  freed_.notify_one();
}

namespace {
// Claims are two-key advisory locks (namespace, item id): a space apart from the one-key write
// and migration locks. Item ids wrap at 2^31 in the key, harmless until 2 billion items apart.
constexpr const char* kClaimKey = "74123, ($1::bigint & 2147483647)::int";
}  // namespace

bool OutboxClaims::connected() {
  if (c_ && PQstatus(c_->handle()) == CONNECTION_OK) return true;
  // A new session holds none of the old one's locks.
  held_.clear();
  auto made = connect(options_);
  if (!made) return false;
  c_ = std::move(made).value();
  return true;
}

bool OutboxClaims::tryClaim(std::int64_t item_id, std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  if (std::binary_search(held_.begin(), held_.end(), item_id)) return true;
  if (!connected()) return false;
  try {
    if (c_->exec(std::string("SELECT pg_try_advisory_lock(") + kClaimKey + ")", Params().i64(item_id)).text(0, 0) != "t") {
      return false;  // another instance is sending it
    }
    // Read after the lock: an instance that sent it committed before letting go.
    auto still = c_->exec("SELECT 1 FROM outbox WHERE id=$1 AND state IN ('queued','retrying') AND next_attempt_at<=$2",
                          Params().i64(item_id).i64(now_ms));
    if (still.rows() == 0) {
      c_->exec(std::string("SELECT pg_advisory_unlock(") + kClaimKey + ")", Params().i64(item_id));
      return false;
    }
    held_.insert(std::lower_bound(held_.begin(), held_.end(), item_id), item_id);
    return true;
  } catch (const PgFailure&) {
    return false;
  }
}

void OutboxClaims::release(const std::vector<std::int64_t>& item_ids) {
  std::lock_guard lock(mutex_);
  for (const auto id : item_ids) {
    const auto at = std::lower_bound(held_.begin(), held_.end(), id);
    if (at == held_.end() || *at != id) continue;
    held_.erase(at);
    try {
      if (c_) c_->exec(std::string("SELECT pg_advisory_unlock(") + kClaimKey + ")", Params().i64(id));
    } catch (const PgFailure&) {
      // The session is gone, and its locks with it.
    }
  }
}

void OutboxClaims::releaseSettled() {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (held_.empty() || now - last_sweep_ < std::chrono::seconds(1) || !c_) return;
  last_sweep_ = now;
  std::string ids = "{";
  for (std::size_t i = 0; i < held_.size(); ++i) ids += (i == 0 ? "" : ",") + std::to_string(held_[i]);
  ids += "}";
  try {
    auto settled = c_->exec("SELECT id FROM outbox WHERE id = ANY($1::bigint[]) AND state NOT IN ('queued','retrying')",
                            Params().text(ids));
    for (int i = 0; i < settled.rows(); ++i) {
      const auto id = settled.i64(i, 0);
      const auto at = std::lower_bound(held_.begin(), held_.end(), id);
      if (at == held_.end() || *at != id) continue;
      held_.erase(at);
      c_->exec(std::string("SELECT pg_advisory_unlock(") + kClaimKey + ")", Params().i64(id));
    }
  } catch (const PgFailure&) {
    // Tried again at the next sweep; a broken session has lost its locks anyway.
  }
}

std::size_t OutboxClaims::held() {
  std::lock_guard lock(mutex_);
  return held_.size();
}

std::string sendHoldKey(std::string_view patient_key, std::string_view partner_id) {
  std::string key(partner_id);
  key += '\t';
  key += patient_key;
  return key;
}

// A send's requests start within the longest send (and a little) of taking the hold, so they end
// within twice that; the lease adds a margin for the hold's own statements. A consent change
// waits out a whole lease and a little more: past that no live hold can be in its way, so a
// longer wait means instances with other timeouts, and the change fails (nothing stored: 503).
std::chrono::milliseconds SendHolds::lease(std::chrono::milliseconds longest_send) {
  return 2 * longest_send + std::chrono::seconds(10);
}
std::chrono::milliseconds SendHolds::startWindow(std::chrono::milliseconds longest_send) {
  return longest_send + std::chrono::seconds(5);
}
std::chrono::milliseconds SendHolds::changeWait(std::chrono::milliseconds longest_send) {
  return lease(longest_send) + std::chrono::seconds(10);
}

namespace {
// The shared/exclusive per-(patient, partner) key: namespace 74124, beside the claims' 74123.
constexpr const char* kHoldLock =
    "SELECT pg_advisory_lock_shared(74124, hashtext($1)), "
    "set_config('idle_session_timeout', $2, false)";
constexpr const char* kHoldUnlock =
    "SELECT pg_advisory_unlock_shared(74124, hashtext($1)), "
    "set_config('idle_session_timeout', '0', false)";
}  // namespace

Result<SendHold> SendHolds::hold(std::string_view patient_key, std::string_view partner_id) {
  const std::string key = sendHoldKey(patient_key, partner_id);
  const auto lease_ms = std::to_string(lease(options_.longest_send).count());
  // A pooled connection may have been closed by the server meanwhile: one more try on a new one.
  for (int tries = 0; tries < 2; ++tries) {
    std::shared_ptr<PgConnection> c;
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        c = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (!c) {
      GW_TRY(auto made, connect(options_));
      c = std::shared_ptr<PgConnection>(std::move(made));
      try {
        // A consent change holds the key for its transaction only: a wait longer than a change
        // can take means something is wrong; the send then waits for a later turn.
        c->exec("SET lock_timeout = '" + std::to_string(changeWait(options_.longest_send).count()) + "ms'");
      } catch (const PgFailure& f) {
        return storageError("setting up a connection for send holds", f);
      }
    }
    try {
      c->exec(kHoldLock, Params().text(key).text(lease_ms + "ms"));
    } catch (const PgFailure& f) {
      if (PQstatus(c->handle()) != CONNECTION_OK && tries == 0) continue;
      if (f.sqlstate() == "55P03") {
        std::lock_guard lock(mutex_);
        idle_.push_back(std::move(c));
        return makeError(ErrorCode::Unavailable,
                         "a consent change for this patient and partner is being committed and took too long", "",
                         "the item is sent at a later turn");
      }
      return storageError("holding a send against consent changes", f);
    }
    const auto start_by = std::chrono::steady_clock::now() + startWindow(options_.longest_send);
    return SendHold([self = shared_from_this(), c = std::move(c), key]() mutable { self->release(std::move(c), key); },
                    start_by);
  }
  return makeError(ErrorCode::Unavailable, "no connection to the database for send holds", "",
                   "check that the database server is up");
}

void SendHolds::release(std::shared_ptr<PgConnection> c, const std::string& key) {
  try {
    c->exec(kHoldUnlock, Params().text(key));
  } catch (const PgFailure& f) {
    // The session ended first (its lease passed: idle_session_timeout, or the connection broke):
    // the database let go of the hold before the send ended.
    GW_LOG(Warn, Store, "send_hold_lost").kv("error", f.message());
    return;
  }
  std::lock_guard lock(mutex_);
  idle_.push_back(std::move(c));
}

}  // namespace postgres
}  // namespace gw::store

#pragma once
// Internals of the PostgreSQL backend, shared by its files (postgres_*.cpp). Other modules open it
// through store/postgres_store.hpp.
//
//   postgres_connection.cpp  libpq connections, parameters, results, the connection pool
//   postgres_backend.cpp     the backend: open, migrations run, read(), beginWrite()
//   postgres_reader.cpp      StoreReader on a pooled connection
//   postgres_writer.cpp      StoreWriter on the writer connection (retention, rotation, operations)
//   postgres_migrations.cpp  the schema (the SQLite schema's tables, PostgreSQL types)
//
// libpq directly rather than Poco::Data::PostgreSQL: parameters are sent binary where they are
// bytes (envelopes) and text elsewhere, in one round trip per statement (PQexecParams), results
// are read by column without Poco's per-type extraction quirks (a scalar into() over two rows
// throws), and LISTEN/NOTIFY needs libpq's PQnotifies anyway, which Poco does not expose.
#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/postgres_store.hpp"
#include "store/store_backend.hpp"

namespace gw::store::postgres {

/// A failed statement: what was being done and PostgreSQL's message (never a parameter value).
class PgFailure {
 public:
  PgFailure(std::string message, std::string sqlstate, std::string what = {})
      : message_(std::move(message)), sqlstate_(std::move(sqlstate)), what_(std::move(what)) {}
  const std::string& message() const { return message_; }
  const std::string& sqlstate() const { return sqlstate_; }
  /// For a pipelined write (PgConnection::send) that failed: what it was doing, which the error
  /// names instead of the statement whose flush reported it.
  const std::string& what() const { return what_; }

 private:
  std::string message_;
  std::string sqlstate_;
  std::string what_;
};

Error storageError(std::string_view what, const PgFailure& f);

/// Statement parameters, $1.. in the order added: text, or bytes sent binary (bytea).
class Params {
 public:
  Params& text(std::string_view v);
  Params& bytes(std::string_view v);
  Params& i64(std::int64_t v);
  std::size_t size() const { return values_.size(); }

  // For PQexecParams.
  std::vector<const char*> pointers() const;
  std::vector<int> lengths() const;
  const std::vector<int>& formats() const { return formats_; }

 private:
  std::vector<std::string> values_;
  std::vector<int> formats_;
};

/// A statement's result rows (text format; bytea decoded from its hex form on read).
class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r, &PQclear) {}
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const;
  std::int64_t i64(int row, int col) const;
  int i32(int row, int col) const { return static_cast<int>(i64(row, col)); }
  /// A bytea column: the bytes it holds.
  std::string bytes(int row, int col) const;
  /// Rows an UPDATE, DELETE or INSERT changed.
  int affected() const;
  const PGresult* raw() const { return r_.get(); }

 private:
  std::shared_ptr<PGresult> r_;
};

/// One libpq connection. Not thread-safe: used by one thread at a time.
class PgConnection {
 public:
  PgConnection(PGconn* c) : c_(c) {}
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// Runs one statement; throws PgFailure when it fails, or when a write sent before it failed.
  PgResult exec(const std::string& sql, const Params& params = {});
  /// Sends a write whose result only matters when it fails, without waiting for it (libpq
  /// pipeline mode): a transaction's writes go out back to back instead of a round trip each.
  /// The next exec() (a read, COMMIT) waits for them first and throws the first failure, named
  /// by `what`. Only inside a transaction: a failure aborts it, and its rollback follows.
  void send(std::string_view what, const std::string& sql, const Params& params);
  /// Waits for the writes sent; throws the first failure.
  void flush();
  /// Drops what was sent without reporting failures (before a ROLLBACK).
  void discard() noexcept;
  /// Runs statements without parameters (several, separated by ';').
  void execScript(const std::string& sql);
  bool healthy() const;
  PGconn* handle() const { return c_; }

 private:
  void collect(bool report);
  PGconn* c_;
  std::vector<std::string> sent_;  // what each write in the pipeline does, in order
};

/// Connects with `options` (sslmode, sslrootcert, ... and the timeout added to the DSN); the
/// error names the database without its password.
Result<std::unique_ptr<PgConnection>> connect(const PostgresOptions& options);

/// Up to options.pool_size connections, made when first needed and kept.
class ConnectionPool {
 public:
  explicit ConnectionPool(PostgresOptions options) : options_(std::move(options)) {}
  /// A connection; waits up to connect_timeout_seconds when every one is lent out.
  Result<std::unique_ptr<PgConnection>> take();
  /// Takes back a connection (dropped when it broke).
  void give(std::unique_ptr<PgConnection> c);

 private:
  PostgresOptions options_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  int lent_ = 0;
};

/// Outbox items this process is sending, so that several gateway instances on one database never
/// send the same item: each claim is a session-level advisory lock, held on a connection of its
/// own until the item's state changes (a delivery, a retry, its death or cancellation, committed)
/// or the process ends. The lock is the lease: a crashed or killed instance's connection closes
/// and the server drops its locks at once, so another instance takes its items over. Per-patient
/// order holds across instances because dueItems offers only a patient's oldest pending item,
/// and an item is sent only by whoever holds it.
class OutboxClaims {
 public:
  explicit OutboxClaims(PostgresOptions options) : options_(std::move(options)) {}
  /// True when this process holds the item (now, or already): it is still queued or retrying
  /// and due at now_ms. False when another instance holds it, it changed meanwhile, or the claim
  /// could not be taken (the database unreachable: nothing is sent then).
  bool tryClaim(std::int64_t item_id, std::int64_t now_ms);
  /// Lets go of the items (after the commit that changed their state).
  void release(const std::vector<std::int64_t>& item_ids);
  /// Lets go of held items that are no longer queued or retrying (superseded or cancelled by
  /// another transaction while held, never settled here): at most once per second, when any is
  /// held. dueItems calls it.
  void releaseSettled();
  std::size_t held();

 private:
  bool connected();  // with mutex_ held
  PostgresOptions options_;
  std::mutex mutex_;
  std::unique_ptr<PgConnection> c_;
  std::vector<std::int64_t> held_;  // sorted
  std::chrono::steady_clock::time_point last_sweep_{};
};

/// Sends' holds against consent changes (store.hpp SendHold; docs/architecture.md §5.3): a shared
/// session-level advisory lock (74124, hashtext(partner, patient)) on a connection of its own,
/// taken before the patient's consents are read for the re-check and let go when the send's last
/// request has ended. A consent (or break-glass) change takes the same key exclusively, in its
/// transaction, before the write lock (beginWriter): it waits for the sends in flight, and sends
/// starting after it read what it committed. The session ends itself when a hold outlasts its
/// lease (idle_session_timeout, set while held), so a hung instance cannot stall consent changes
/// for longer; a killed one's holds go with its connections at once.
class SendHolds : public std::enable_shared_from_this<SendHolds> {
 public:
  explicit SendHolds(PostgresOptions options) : options_(std::move(options)) {}
  Result<SendHold> hold(std::string_view patient_key, std::string_view partner_id);

  /// How long the database keeps a hold (its lease), how long after taking it a request may still
  /// start, and how long a consent change waits for the holds in its way.
  static std::chrono::milliseconds lease(std::chrono::milliseconds longest_send);
  static std::chrono::milliseconds startWindow(std::chrono::milliseconds longest_send);
  static std::chrono::milliseconds changeWait(std::chrono::milliseconds longest_send);

 private:
  void release(std::shared_ptr<PgConnection> c, const std::string& key);
  PostgresOptions options_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<PgConnection>> idle_;  // guarded by mutex_
};

/// The text a (patient, partner) pair's hold key is hashed from, by the server (hashtext), so
/// every instance computes the same key.
std::string sendHoldKey(std::string_view patient_key, std::string_view partner_id);

// Schema (postgres_migrations.cpp). The version numbers are SQLite's (store/sqlite_migrations.hpp):
// one number is one schema whatever the database.
inline constexpr int kPostgresSchemaVersion = 9;
void applyMigrations(PgConnection& c);
/// The schema version stored (0: none).
int storedSchemaVersion(PgConnection& c);

/// `claims` null: a read-only backend, whose dueItems claims nothing.
std::unique_ptr<StoreReader> makeReader(std::unique_ptr<PgConnection> c, ConnectionPool& pool, OutboxClaims* claims);

/// Begins a write transaction on `connection`, whose mutex `lock` holds: BEGIN, then the
/// transaction-scoped advisory lock every writer of the database takes, so write transactions
/// are one at a time across every gateway instance.
/// Claims of the items the transaction changes are released when it commits.
/// `consent_changes` (consent versions, break-glass grants): their send holds are taken
/// exclusively first, waiting at most `change_wait` for sends in flight, and the write lock after
/// them, so no transaction ever holds the write lock while it waits for a send.
Result<std::unique_ptr<StoreWriter>> beginWriter(PgConnection& connection, std::unique_lock<std::mutex> lock,
                                                 OutboxClaims& claims,
                                                 const std::vector<PatientPartner>& consent_changes = {},
                                                 std::chrono::milliseconds change_wait = {});

// Queries both kinds of connection run; throw PgFailure.
std::vector<DataKeyRow> selectDataKeys(PgConnection& c);
std::vector<AuditRow> selectAuditRows(PgConnection& c, std::int64_t after_seq, int limit);
ChainTail selectAuditTail(PgConnection& c);
std::vector<AuditRow> selectAuditQuery(PgConnection& c, const AuditQuery& query, int limit);
std::vector<DecisionRow> selectDecisionRows(PgConnection& c, std::string_view partner, std::string_view clinic,
                                            std::string_view record_key, int version);
std::vector<OutboxRow> selectOutboxList(PgConnection& c, const OutboxQuery& query, int limit);
std::optional<OutboxRow> selectOutboxItem(PgConnection& c, std::int64_t item_id);
std::vector<PartnerPause> selectPartnerPauses(PgConnection& c);
std::vector<InstanceRow> selectInstances(PgConnection& c);
/// Break-glass rows of `clinic` and of `patient_key` (each ignored when empty), newest opened first.
std::vector<BreakGlass> selectBreakGlasses(PgConnection& c, std::string_view clinic, std::string_view patient_key = {});
std::vector<AccountingRequest> selectAccountingRequests(PgConnection& c, std::string_view clinic);
/// The partner view's page: rows in time order (at_ms, then seq), at most `limit`.
std::vector<AuditRow> selectPartnerLogRows(PgConnection& c, const PartnerLogQuery& query, int limit);
std::vector<PartnerLogCount> selectPartnerLogCounts(PgConnection& c, const PartnerLogQuery& query);
std::vector<CopyRow> selectCopyRows(PgConnection& c, const CopyTable& table, const CopyRow* after, int limit);
void insertCopyRows(PgConnection& c, const CopyTable& table, const std::vector<CopyRow>& rows);

}  // namespace gw::store::postgres

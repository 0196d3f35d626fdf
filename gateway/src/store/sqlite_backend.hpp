#pragma once
// Internals of the SQLite backend, shared by its files (sqlite_*.cpp). Other modules open it
// through store/sqlite_store.hpp.
//
//   sqlite_backend.cpp  connections, pragmas, read pool, the write lock, openSqliteStore
//   sqlite_reader.cpp   StoreReader on a pooled connection
//   sqlite_writer.cpp   StoreWriter on the one writer connection (ingest statements prepared once)
//   sqlite_purge.cpp    the retention primitives of the writer
//   sqlite_rotation.cpp the data key rotation primitives of the writer (sealed cells)
//   sqlite_audit.cpp    audit_log rows: insert, chunked read, filtered query
//   sqlite_decisions.cpp  resource_decisions rows: the last decision per (partner, record, resource)
//   sqlite_console.cpp  the compliance console: break-glass, accounting requests, partner view
//   sqlite_legacy.cpp   the conversion of older databases' clear identifiers to lookup keys
//   sqlite_migrations.cpp  the schema
#include <Poco/Data/LOB.h>
#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Session.h>
#include <Poco/Exception.h>

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store_backend.hpp"

namespace gw::store::sqlite {

Error storageError(std::string_view what, const Poco::Exception& e);

// File modes (the database, its WAL and shared memory hold record ids with MRNs and consent metadata):
/// Creates the missing folders of `folder`, each 0700 (an existing folder is left as it is).
Status makePrivateFolder(const std::filesystem::path& folder);
/// Logs a warning line when group or others may enter or list `folder`.
void warnIfFolderIsOpen(const std::filesystem::path& folder);
/// Creates the database `file` 0600 when missing (SQLite gives its -wal, -shm and -journal files the database file's
/// mode) and takes group and other access from the file and those siblings when they have it, with a warning line
/// naming each file.
Status makePrivateFiles(const std::filesystem::path& file);

std::string_view blobView(const Poco::Data::BLOB& b);
// Copies bytes into a bound BLOB in place, reusing its buffer (assignRaw allocates anew).
void setBlob(Poco::Data::BLOB& b, std::string_view bytes);
Poco::Data::BLOB toBlob(std::string_view bytes);
std::string str(const Poco::Data::RecordSet& rs, std::size_t col, std::size_t row);
std::int64_t i64(const Poco::Data::RecordSet& rs, std::size_t col, std::size_t row);

// Queries both kinds of connection run (on the session given).
Result<std::vector<AuditRow>> selectAuditRows(Poco::Data::Session& s, std::int64_t after_seq, int limit);
Result<ChainTail> selectAuditTail(Poco::Data::Session& s);
Result<std::vector<AuditRow>> selectAuditQuery(Poco::Data::Session& s, const AuditQuery& query, int limit);
// The rows of these seqs, in seq order; throws Poco::Exception.
std::vector<AuditRow> selectAuditRowsBySeq(Poco::Data::Session& s, const std::vector<Poco::Int64>& seqs);

// Retention primitives of the writer (sqlite_purge.cpp); throw Poco::Exception.
PurgedRows purgeRecordVersions(Poco::Data::Session& s, std::string_view data_class, std::int64_t cutoff_ms, int limit);
PurgedRows purgeResources(Poco::Data::Session& s, std::string_view data_class, std::int64_t cutoff_ms, int limit);
PurgedRows purgeFinishedItems(Poco::Data::Session& s, std::string_view data_class, std::int64_t cutoff_ms, int limit);
std::int64_t deleteRecordsIfEmpty(Poco::Data::Session& s, const std::vector<RecordKey>& records);

// Data key rotation primitives of the writer (sqlite_rotation.cpp); throw Poco::Exception.
SealedBatch selectSealedCells(Poco::Data::Session& s, SealedTable table, std::int64_t after_row, int limit);
std::int64_t selectLastSealedRow(Poco::Data::Session& s, SealedTable table);
void updateSealedCell(Poco::Data::Session& s, const SealedCell& cell);

// Operations' rows (sqlite_operations.cpp); throw Poco::Exception.
std::vector<OutboxRow> selectOutboxList(Poco::Data::Session& s, const OutboxQuery& query, int limit);
std::optional<OutboxRow> selectOutboxItem(Poco::Data::Session& s, std::int64_t item_id);
std::vector<PartnerPause> selectPartnerPauses(Poco::Data::Session& s);
std::vector<std::pair<RecordRow, std::string>> selectRecordsInState(Poco::Data::Session& s, std::string_view state,
                                                                    std::string_view record_type,
                                                                    std::string_view after_clinic,
                                                                    std::string_view after_key, int limit);
int requeueDeadItem(Poco::Data::Session& s, std::int64_t item_id, std::string_view note, std::int64_t now_ms);
void putPartnerPause(Poco::Data::Session& s, const PartnerPause& pause);
void deletePartnerPause(Poco::Data::Session& s, std::string_view partner_id);
void writeProbe(Poco::Data::Session& s, std::int64_t now_ms);
// gateway_instances (schema 9).
std::vector<InstanceRow> selectInstances(Poco::Data::Session& s);
void putInstance(Poco::Data::Session& s, const InstanceRow& row);
void deleteInstancesSeenBefore(Poco::Data::Session& s, std::int64_t cutoff_ms);

// The compliance console's rows (sqlite_console.cpp); throw Poco::Exception.
/// Break-glass rows of `clinic` and of `patient_key` (each ignored when empty), newest opened first.
std::vector<BreakGlass> selectBreakGlasses(Poco::Data::Session& s, std::string_view clinic,
                                           std::string_view patient_key = {});
void putBreakGlass(Poco::Data::Session& s, const BreakGlass& row);
int endBreakGlassIfOpen(Poco::Data::Session& s, std::string_view id, std::int64_t ended_at_ms, std::string_view ended_by);
std::vector<AccountingRequest> selectAccountingRequests(Poco::Data::Session& s, std::string_view clinic);
void putAccountingRequest(Poco::Data::Session& s, const AccountingRequest& row);
std::vector<PartnerLogCount> selectPartnerLogCounts(Poco::Data::Session& s, const PartnerLogQuery& query);
std::vector<Poco::Int64> selectPartnerLogSeqs(Poco::Data::Session& s, const PartnerLogQuery& query, int limit);

class PreparedStatement;  // store/sqlite_statement.hpp

/// The INSERT of one audit_log row, and its parameters bound from `row` (prepared once on the writer connection).
std::string insertAuditSql();
PreparedStatement& bindAuditRow(PreparedStatement& insert, const AuditRow& row);
/// Reads both kinds of connection run as statements prepared once on them; throw Poco::Exception.
/// data_keys, in (class, version) order (sqlite_backend.cpp).
extern const char* const kSelectDataKeysSql;
std::vector<DataKeyRow> selectDataKeys(PreparedStatement& select);
/// resource_decisions of a record version, in (partner, type, key) order; every partner's when
/// `partner` is empty (sqlite_decisions.cpp).
extern const char* const kSelectDecisionsSql;
std::vector<DecisionRow> selectDecisionRows(PreparedStatement& select, std::string_view partner, std::string_view clinic,
                                            std::string_view record_key, int version);

// Statements of a read connection prepared once (sqlite_reader.cpp): ingest reads a record's
// earlier resources and the patient's Consent for every record.
struct ReaderStatements;
struct ReaderStatementsDeleter {
  void operator()(ReaderStatements* p) const;
};
using ReaderStatementsPtr = std::unique_ptr<ReaderStatements, ReaderStatementsDeleter>;

/// A read connection the backend keeps open for its lifetime, with its statements.
struct ReaderConnection {
  explicit ReaderConnection(const std::string& uri) : session("SQLite", uri) {}
  Poco::Data::Session session;
  ReaderStatementsPtr statements;  // made on first use; dropped after a statement threw
};

/// Read connections opened on demand up to a size and kept: a borrower waits for a free one (up
/// to a time limit, then an error rather than a hang). Unlike Poco's SessionPool, a connection
/// keeps its prepared statements between borrowers, and nothing is run on it per borrow.
class ReaderPool {
 public:
  struct Return {
    ReaderPool* pool;
    void operator()(ReaderConnection* c) const { pool->giveBack(c); }
  };
  using Lease = std::unique_ptr<ReaderConnection, Return>;

  ReaderPool(std::string uri, int size);
  ~ReaderPool();
  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;

  /// Throws Poco::Exception when a connection cannot be opened or none is free in time.
  Lease borrow();

 private:
  void giveBack(ReaderConnection* c);

  std::string uri_;
  std::size_t size_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<ReaderConnection>> open_;  // every connection, for the destructor
  std::vector<ReaderConnection*> free_;
};

std::unique_ptr<StoreReader> makeReader(ReaderPool::Lease connection);

// Copying a store (sqlite_copy.cpp); throw Poco::Exception.
std::vector<CopyRow> selectCopyRows(Poco::Data::Session& s, const CopyTable& table, const CopyRow* after, int limit);
void insertCopyRows(Poco::Data::Session& s, const CopyTable& table, const std::vector<CopyRow>& rows);

// Statements of the writer connection prepared once and re-executed (sqlite_writer.cpp):
// compiling SQL per record cost more than the inserts themselves.
struct WriterStatements;
struct WriterStatementsDeleter {
  void operator()(WriterStatements* p) const;
};
using WriterStatementsPtr = std::unique_ptr<WriterStatements, WriterStatementsDeleter>;

/// The one writer connection, its statements and the lock that makes it one transaction at a
/// time. Owned by the backend; a writer borrows it for the length of its transaction.
struct WriterConnection {
  explicit WriterConnection(const std::string& path) : session("SQLite", path) {}
  Poco::Data::Session session;
  WriterStatementsPtr statements;  // made on first use; dropped after a statement threw
  std::mutex mutex;
};

/// StoreBackend::convertLegacyIdentifiers on the writer connection (sqlite_legacy.cpp).
Result<std::int64_t> convertLegacyIdentifiers(WriterConnection& connection, const LegacyIdentifiers& convert);

/// Begins (BEGIN IMMEDIATE) on `connection`, whose mutex `lock` holds.
Result<std::unique_ptr<StoreWriter>> beginWriter(WriterConnection& connection, std::unique_lock<std::mutex> lock);

}  // namespace gw::store::sqlite

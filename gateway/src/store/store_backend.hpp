#pragma once
// The primitives a database offers the store, and nothing more: read a row, insert a row,
// update these rows. The store's rules (unchanged detection, superseding, consent version
// numbers, the audit chain, payload encryption) sit above, in store/record_store.cpp, and are the
// same for every database. The shape follows Orthanc's IDatabaseWrapper::ITransaction: the
// primitives live on transaction objects, the rules on top.
//
// A backend never sees plaintext payloads: the *_sealed fields below hold envelopes the store
// sealed (store/keyring.hpp), stored and returned byte for byte. Nor does it see clear
// identifiers: record_key, resource_key, consent_key and patient_key are lookup keys
// (store/lookup_keys.hpp) the store computed, so a backend looks rows up by them and never by a
// record id, resource id, consent id or MRN. It stores the texts of the enums the rows carry
// (recordStateName, outboxStateName) so every backend's rows read the same.
//
// Adding a backend (e.g. PostgreSQL): implement StoreBackend, StoreReader and StoreWriter over
// the schema of store/sqlite_migrations.cpp, add a factory to tests/store/store_contract_test.cpp
// and make that suite pass.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "privacy/consent_row.hpp"
#include "store/audit_log.hpp"
#include "store/store.hpp"

namespace gw::store {

class LegacyIdentifiers;

/// What ingest compares a new version with.
struct RecordHead {
  int version = 0;
  std::string content_hash;
  RecordState state = RecordState::Received;
};

/// A row of `records`: the current version of a record.
struct RecordRow {
  std::string clinic;
  std::string record_key;
  std::string record_type;
  int version = 0;
  std::string content_hash;
  RecordState state = RecordState::Received;
  std::string error;
  std::string patient_key;
  std::int64_t received_at_ms = 0;  // set on insert; an update keeps the stored value
  std::int64_t updated_at_ms = 0;
  std::string data_class;  // privacy::className of the payload's storage class
};

/// A row of `record_versions`: every version as received.
struct RecordVersionRow {
  std::string clinic;
  std::string record_key;
  int version = 0;
  std::string content_hash;
  std::string payload_sealed;
  std::int64_t received_at_ms = 0;
  std::string data_class;
};

/// A row of `resources`. Reads of a record's resources leave body_sealed empty.
struct ResourceRow {
  std::string resource_type;
  std::string resource_key;
  std::string resource_id_sealed;  // the FHIR id, for answers that show it
  std::string clinic;
  std::string record_key;
  int record_version = 0;
  std::string identifier_system;
  std::string identifier_value_sealed;
  std::string body_sealed;
  std::string data_class;
  std::int64_t stored_at_ms = 0;
};

/// A row of `outbox`. Each read fills the columns its comment names; the rest keep defaults.
struct OutboxRow {
  std::int64_t id = 0;  // assigned on insert
  std::string partner_id;
  std::string clinic;
  std::string record_key;
  int record_version = 0;
  std::string patient_key;
  std::string bundle_sealed;
  int entry_count = 0;
  OutboxState state = OutboxState::Queued;
  int attempts = 0;
  std::int64_t next_attempt_at_ms = 0;
  std::string last_error;
  std::string outcome_sealed;  // empty when there is none
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::string data_class;
  std::string disclosure_sealed;  // outbox::Disclosure JSON (resource ids and consent ids: sealed)
};

/// A pending item's next state (retrying, dead, cancelled).
struct OutboxStateChange {
  std::int64_t id = 0;
  OutboxState state = OutboxState::Retrying;
  int attempts = -1;  // < 0 keeps the stored count
  std::int64_t next_attempt_at_ms = 0;
  std::string last_error;
  std::string outcome_sealed;  // empty clears the column
  std::int64_t updated_at_ms = 0;
};

/// A row of `data_keys`: one data key wrapped by the master key.
struct DataKeyRow {
  std::string data_class;
  int key_version = 0;
  std::string wrapped;
  std::string master_key_id;
  std::int64_t created_at_ms = 0;
};

/// The tables holding sealed payloads, in the order data key rotation walks them.
enum class SealedTable { RecordVersions, Resources, Outbox, Consents, DeploymentSecrets, BreakGlass, AccountingRequests };
inline constexpr std::array<SealedTable, 7> kSealedTables = {
    SealedTable::RecordVersions,    SealedTable::Resources,         SealedTable::Outbox,
    SealedTable::Consents,          SealedTable::DeploymentSecrets, SealedTable::BreakGlass,
    SealedTable::AccountingRequests};
std::string_view sealedTableName(SealedTable t);

/// Every sealed column (store/store_payloads.cpp binds each to its row identity).
enum class SealedColumn {
  RecordPayload,       // record_versions.payload
  ResourceId,          // resources.resource_id
  ResourceIdentifier,  // resources.identifier_value
  ResourceBody,        // resources.body
  OutboxBundle,        // outbox.bundle
  OutboxDisclosure,    // outbox.disclosure
  OutboxOutcome,       // outbox.outcome (only when the item has one)
  ConsentId,           // consents.consent_id
  ConsentResourceId,   // consents.resource_id
  SecretValue,         // deployment_secrets.value (not the audit chain's start marker: a MAC, not sealed)
  // The console's free text (schema 8 tables), kept in TEXT columns in the text form of
  // StorePayloads::sealText. Their rows are scanned by position in id order, not by a row id.
  BreakGlassRecipient,     // break_glass.recipient
  BreakGlassAuthorisedBy,  // break_glass.authorised_by
  BreakGlassNature,        // break_glass.nature
  AccountingRequestNote,   // accounting_requests.note
};

/// Whether the column holds text (StorePayloads' text form) rather than bytes.
inline bool isTextSealedColumn(SealedColumn c) { return c >= SealedColumn::BreakGlassRecipient; }

/// One sealed value with the identity of the row that holds it: what data key rotation opens
/// and re-seals. Only the fields its column's identity uses are filled.
struct SealedCell {
  SealedColumn column = SealedColumn::RecordPayload;
  std::int64_t row = 0;  // the row's position in its table's scan (SQLite: rowid; outbox: id)
  std::string clinic;
  std::string record_key;
  std::int64_t version = 0;  // record version (record_versions, outbox) or consent version
  std::string resource_type;
  std::string resource_key;
  std::string partner_id;
  std::string consent_key;
  std::string name;  // a deployment secret's, or a console row's id
  std::string sealed;
};

/// What one sealedCells call read: the cells of `rows` rows, the last at position last_row.
struct SealedBatch {
  std::vector<SealedCell> cells;
  std::int64_t rows = 0;      // 0: no row after the position asked for
  std::int64_t last_row = 0;  // the position to continue after
};

/// A row of `consents`: the facts of privacy::ConsentRow, its ids as a lookup key and envelopes.
struct ConsentKeyedRow {
  privacy::ConsentRow facts;  // consent_id and resource_id left empty: they are the fields below
  std::string consent_key;    // LookupKeys::consent(clinic, consent_id)
  std::string consent_id_sealed;
  std::string resource_id_sealed;
  bool reconciled = false;
};

/// A row of `resource_decisions`: the last decision for one resource of a record and a partner.
struct DecisionRow {
  std::string partner_id;
  std::string clinic;
  std::string record_key;
  std::string resource_type;
  std::string resource_key;
  std::string patient_key;
  int record_version = 0;
  std::string outcome;             // auditOutcomeName: permit, redact or deny
  std::string removed_activities;  // redact: activity indexes, comma-separated ("3" or "1,4")
  std::string reason;
  std::int64_t updated_at_ms = 0;
};

/// A record as the purge names it.
struct RecordKey {
  std::string clinic;
  std::string record_key;
  friend auto operator<=>(const RecordKey&, const RecordKey&) = default;
};

/// What one purge primitive deleted, and the records the deleted rows belonged to.
struct PurgedRows {
  std::int64_t count = 0;
  std::vector<RecordKey> records;
};

/// The partner view's hourly counters (schema 8): how many decision, cancel and disclosure rows of
/// one partner and clinic fall in one hour (at_ms / 3,600,000) with one (kind, outcome, classes,
/// reason). Derived from the log and written with it, in the same transaction, so a period's
/// counts come from a few counters per hour instead of every row.
struct PartnerLogBucket {
  std::string partner_id;
  std::string clinic;
  std::int64_t hour = 0;
  std::string kind;
  std::string outcome;
  std::string classes;
  std::string reason;
  std::int64_t count = 0;
};
inline constexpr std::int64_t kPartnerLogBucketMs = 3'600'000;

// --- copying a whole store from one database to another (`fhir-gateway store migrate`) ---

/// How a copied column's values travel: integers, text, or bytes (envelopes, moved as they are).
enum class CopyKind { Int, Text, Bytes };
struct CopyColumn {
  std::string_view name;
  CopyKind kind = CopyKind::Text;
  bool nullable = false;
};
/// A table copied whole: its first key_columns columns are its primary key (Int or Text), by
/// which rows are read in order, a chunk at a time.
struct CopyTable {
  std::string_view name;
  std::vector<CopyColumn> columns;
  std::size_t key_columns = 1;
};
/// Every table that holds a store, in the order a copy inserts them (a table before those that
/// refer to it). Not copied: schema_version (each database has its own) and write_probe.
const std::vector<CopyTable>& copiedTables();
/// One column value: null, an integer (number) or text and bytes (text).
struct CopyValue {
  bool null = false;
  std::int64_t number = 0;
  std::string text;
};
using CopyRow = std::vector<CopyValue>;

/// Reads outside any write transaction, on a connection of its own. Used by one thread at a time.
class StoreReader {
 public:
  virtual ~StoreReader() = default;

  virtual Result<std::optional<RecordRow>> record(std::string_view clinic, std::string_view record_key) = 0;
  virtual Result<std::optional<std::string>> recordPayload(std::string_view clinic, std::string_view record_key,
                                                           int version) = 0;
  /// The record's resources ordered by type and key, without bodies.
  virtual Result<std::vector<ResourceRow>> resources(std::string_view clinic, std::string_view record_key) = 0;
  virtual Result<std::optional<std::string>> resourceBody(std::string_view resource_type, std::string_view resource_key) = 0;
  /// Current versions (payload sealed) of the patient's mapped records other than consents that
  /// have no queued, retrying, delivered or dead item for the partner at that version, oldest
  /// received first.
  /// ... and those with a `resource_decisions` row for the partner at that version whose outcome is
  /// deny or redact.
  virtual Result<std::vector<HeldRecord>> heldRecords(std::string_view partner, std::string_view patient_key) = 0;
  /// The record's decision rows at `version`, ordered by partner, resource type and key.
  virtual Result<std::vector<DecisionRow>> decisionRows(std::string_view clinic, std::string_view record_key,
                                                        int version) = 0;

  /// Every item of a record, oldest first, without bundle, created_at or disclosure.
  virtual Result<std::vector<OutboxRow>> recordItems(std::string_view clinic, std::string_view record_key) = 0;
  virtual Result<std::vector<DeliveredEntry>> deliveries(std::int64_t item_id) = 0;
  /// Queued and retrying items of the partner due at now_ms, oldest first, that no older queued
  /// or retrying item of the same patient (and partner) precedes; at most `limit`. Fills id,
  /// clinic, record_key, record_version, patient_key, bundle, state, attempts, entry_count,
  /// disclosure.
  virtual Result<std::vector<OutboxRow>> dueItems(std::string_view partner, std::int64_t now_ms, int limit) = 0;
  /// Earliest next_attempt_at among the items dueItems could return at some time.
  virtual Result<std::optional<std::int64_t>> nextDueAt(std::string_view partner) = 0;
  /// Queued and retrying items of a patient for a partner, oldest first: id, clinic, record_key,
  /// record_version, state, attempts, entry_count, disclosure.
  virtual Result<std::vector<OutboxRow>> pendingItems(std::string_view partner, std::string_view patient_key) = 0;
  /// Delivered items of a patient for a partner, oldest first, with the same columns and bundle.
  virtual Result<std::vector<OutboxRow>> deliveredItems(std::string_view partner, std::string_view patient_key) = 0;
  virtual Result<OutboxCounts> outboxCounts(std::string_view partner) = 0;

  /// Consent versions ordered by recorded_at, clinic, consent_key, version (all patients when
  /// patient_key is empty).
  virtual Result<std::vector<ConsentKeyedRow>> consents(std::string_view patient_key) = 0;
  virtual Result<std::vector<DataKeyRow>> dataKeys() = 0;

  /// Up to `limit` audit rows with seq > after_seq, in seq order.
  virtual Result<std::vector<AuditRow>> auditRows(std::int64_t after_seq, int limit) = 0;
  /// The row with the highest seq; {0, genesis} when the log is empty.
  virtual Result<ChainTail> auditTail() = 0;
  /// The deployment secret stored under `name`; nullopt when there is none (never makes one).
  virtual Result<std::optional<std::string>> deploymentSecret(std::string_view name) = 0;
  /// Rows matching the query's filters with seq > query.after_seq, in seq order, at most
  /// `limit` (the store asks one more than a page to tell whether there is a next one).
  virtual Result<std::vector<AuditRow>> queryAudit(const AuditQuery& query, int limit) = 0;

  // --- operations ---
  /// Items matching the query in id order, at most `limit`: every column but bundle and disclosure.
  virtual Result<std::vector<OutboxRow>> listOutbox(const OutboxQuery& query, int limit) = 0;
  /// The item with every column but bundle; nullopt when there is none.
  virtual Result<std::optional<OutboxRow>> outboxItem(std::int64_t item_id) = 0;
  virtual Result<std::vector<PartnerPause>> partnerPauses() = 0;
  /// Every row of gateway_instances (schema 9), by instance id.
  virtual Result<std::vector<InstanceRow>> instances() = 0;
  // --- compliance console (schema 8) ---
  /// Break-glass rows of `clinic` (all when empty), newest opened first.
  virtual Result<std::vector<BreakGlass>> breakGlasses(std::string_view clinic) = 0;
  /// Break-glass rows for one patient (any clinic, any partner), newest opened first.
  virtual Result<std::vector<BreakGlass>> breakGlassesOfPatient(std::string_view patient_key) = 0;
  /// Accounting requests of `clinic`, newest received first (then newest created).
  virtual Result<std::vector<AccountingRequest>> accountingRequests(std::string_view clinic) = 0;
  /// audit_log rows of kind decision, cancel or disclosure matching the query (clinic, partner,
  /// from_ms <= at_ms < to_ms, outcome, class as in queryAudit, reason), in time order (at_ms,
  /// then seq), after the row after_seq (when > 0) in that order, at most `limit`.
  virtual Result<std::vector<AuditRow>> partnerLogRows(const PartnerLogQuery& query, int limit) = 0;
  /// The same rows (after_seq ignored) counted by (kind, outcome, classes, reason): whole hours
  /// from the hourly counters, the hours the period cuts into from the rows.
  virtual Result<std::vector<PartnerLogCount>> partnerLogCounts(const PartnerLogQuery& query) = 0;
  /// Current records in `state` (of `record_type` unless empty) after (after_clinic,
  /// after_record_key), in that order, with the payload of their current version (sealed).
  virtual Result<std::vector<std::pair<RecordRow, std::string>>> recordsInState(std::string_view state,
                                                                                std::string_view record_type,
                                                                                std::string_view after_clinic,
                                                                                std::string_view after_record_key,
                                                                                int limit) = 0;

  virtual Status ping() = 0;

  // --- copying a store (`store migrate`) ---
  /// Up to `limit` rows of `table` whose key is above the key of `after` (from the first row
  /// when null), in key order, every column in table.columns order.
  virtual Result<std::vector<CopyRow>> copyRows(const CopyTable& table, const CopyRow* after, int limit) = 0;
  virtual Result<std::int64_t> countRows(const CopyTable& table) = 0;
};

/// One open write transaction. It must exclude every other write transaction on the database
/// from its start (SQLite: BEGIN IMMEDIATE; a server database: a transaction-scoped lock taken
/// at begin), so what it reads (the audit tail, the current version) stays true until it ends.
/// Only WriteTransaction calls commit and rollback. Any primitive may fail; the store then rolls
/// the whole transaction back.
class StoreWriter {
 public:
  virtual ~StoreWriter() = default;
  virtual Status commit() = 0;
  /// Never fails: a backend that cannot roll back makes its connection unusable instead.
  virtual void rollback() noexcept = 0;

  // --- records ---
  virtual Result<std::optional<RecordHead>> recordHead(std::string_view clinic, std::string_view record_key) = 0;
  virtual Status insertRecordVersion(const RecordVersionRow& row) = 0;
  virtual Status insertRecord(const RecordRow& row) = 0;
  virtual Status updateRecord(const RecordRow& row) = 0;
  virtual Status deleteResources(std::string_view clinic, std::string_view record_key) = 0;
  /// Inserts, or replaces the resource of the same type and key (whichever record it came from).
  virtual Status putResource(const ResourceRow& row) = 0;

  // --- outbox ---
  /// The record's queued and retrying items become superseded at now_ms.
  virtual Status supersedePending(std::string_view clinic, std::string_view record_key, std::int64_t now_ms) = 0;
  /// Inserts a queued item (attempts 0, due at created_at).
  virtual Status insertOutboxItem(const OutboxRow& row) = 0;
  /// data_class of an item; nullopt when there is no such item.
  virtual Result<std::optional<std::string>> outboxItemClass(std::int64_t item_id) = 0;
  /// Applies the change only if the item is queued or retrying; returns the rows changed (0 or 1).
  virtual Result<int> updatePendingItem(const OutboxStateChange& change) = 0;
  /// The item becomes delivered (attempts + 1, last_error cleared) with these ledger entries
  /// replacing any it had, whatever its state.
  virtual Status markDelivered(std::int64_t item_id, std::int64_t now_ms, const std::vector<DeliveredEntry>& entries) = 0;

  // --- last decisions per (partner, record, resource) ---
  /// The partner's decision rows of the record at `version`.
  virtual Result<std::vector<DecisionRow>> decisionRows(std::string_view partner, std::string_view clinic,
                                                        std::string_view record_key, int version) = 0;
  /// Inserts the rows, each replacing the row of the same partner, record and resource.
  virtual Status putDecisionRows(const std::vector<DecisionRow>& rows) = 0;
  /// Deletes every decision row of the record (a new version decides afresh).
  virtual Status deleteDecisionRows(std::string_view clinic, std::string_view record_key) = 0;
  /// Whether the partner has a queued, retrying, delivered or dead item of the record at `version`.
  virtual Result<bool> hasLiveItem(std::string_view partner, std::string_view clinic, std::string_view record_key,
                                   int version) = 0;

  // --- consents ---
  /// The highest version stored for the consent; 0 when none.
  virtual Result<std::int64_t> highestConsentVersion(std::string_view clinic, std::string_view consent_key) = 0;
  /// Inserts the row as given (reconciled false).
  virtual Status insertConsent(const ConsentKeyedRow& row) = 0;
  virtual Status markConsentReconciled(std::string_view clinic, std::string_view consent_key, std::int64_t version) = 0;

  // --- audit log ---
  /// The row with the highest seq; {0, genesis} when the log is empty.
  virtual Result<ChainTail> auditTail() = 0;
  /// Inserts rows already chained (seq, prev_hash, hash filled).
  virtual Status appendAudit(const std::vector<AuditRow>& rows) = 0;

  // --- keys and secrets ---
  virtual Result<std::vector<DataKeyRow>> dataKeys() = 0;
  /// Inserts unless a key of the same class and version exists (then keeps that one).
  virtual Status insertDataKeyIfAbsent(const DataKeyRow& row) = 0;
  /// Replaces wrapped and master_key_id of the key of that class and version.
  virtual Status updateDataKey(const DataKeyRow& row) = 0;
  /// Stores `candidate` (sealed) under `name` unless a value is stored; returns the stored value.
  virtual Result<std::string> deploymentSecret(std::string_view name, std::string_view candidate) = 0;

  // --- data key rotation ---
  /// The sealed cells of up to `limit` rows of `table` whose position is after `after_row`, in
  /// position order (a row's cells together). A row gets a position when inserted and keeps it.
  virtual Result<SealedBatch> sealedCells(SealedTable table, std::int64_t after_row, int limit) = 0;
  /// The highest position in `table` now (0 when empty): where a pass of the rotation ends, since
  /// rows inserted later are sealed under the new version already.
  virtual Result<std::int64_t> lastSealedRow(SealedTable table) = 0;
  /// Replaces the sealed value of the cell's column in the row at cell.row.
  virtual Status replaceSealed(const SealedCell& cell) = 0;
  /// Deletes the wrapped key of that class and version (the key is destroyed: what it sealed
  /// can no longer be opened by anyone).
  virtual Status deleteDataKey(std::string_view data_class, int key_version) = 0;

  // --- operations ---
  /// A dead item becomes queued (attempts 0, due at now_ms, last_error `note`); returns rows changed (0 or 1).
  virtual Result<int> requeueDeadItem(std::int64_t item_id, std::string_view note, std::int64_t now_ms) = 0;
  /// Inserts or replaces the partner's pause row.
  virtual Status putPartnerPause(const PartnerPause& pause) = 0;
  virtual Status deletePartnerPause(std::string_view partner_id) = 0;
  /// Adds each bucket's count to its hourly counter (made at 0 when missing). The store calls it
  /// with the rows of every appendAudit, in the same transaction.
  virtual Status addPartnerLogCounts(const std::vector<PartnerLogBucket>& buckets) = 0;
  /// Inserts or replaces (by id) a break-glass row.
  virtual Status putBreakGlass(const BreakGlass& row) = 0;
  /// Sets ended_at/ended_by of break-glass `id` when it is still open (neither set); returns rows
  /// changed (0 or 1). Two instances ending or marking one grant at once: one of them changes it.
  virtual Result<int> endBreakGlassIfOpen(std::string_view id, std::int64_t ended_at_ms, std::string_view ended_by) = 0;
  /// Inserts or replaces (by id) an accounting request.
  virtual Status putAccountingRequest(const AccountingRequest& row) = 0;
  /// Inserts or replaces (by instance_id) a row of gateway_instances.
  virtual Status putInstance(const InstanceRow& row) = 0;
  /// Deletes the instance rows last seen before cutoff_ms.
  virtual Status deleteInstancesSeenBefore(std::int64_t cutoff_ms) = 0;
  /// Writes the one row of write_probe (the readiness probe's commit).
  virtual Status writeProbe(std::int64_t now_ms) = 0;

  // --- retention (each deletes at most `limit` rows of `data_class` older than cutoff_ms) ---
  virtual Result<PurgedRows> purgeRecordVersions(std::string_view data_class, std::int64_t cutoff_ms, int limit) = 0;
  virtual Result<PurgedRows> purgeResources(std::string_view data_class, std::int64_t cutoff_ms, int limit) = 0;
  /// Delivered, dead, superseded and cancelled items last changed before cutoff_ms, with their
  /// ledger entries.
  virtual Result<PurgedRows> purgeFinishedItems(std::string_view data_class, std::int64_t cutoff_ms, int limit) = 0;
  /// Deletes each of the records that has no version, resource or item left, with its decision
  /// rows; returns how many.
  virtual Result<std::int64_t> deleteRecordsIfEmpty(const std::vector<RecordKey>& records) = 0;

  // --- copying a store (`store migrate`) ---
  /// Inserts rows read by StoreReader::copyRows from another database, values as they are (outbox
  /// ids included: the database's own id sequence then continues after the highest). The rows
  /// hold lookup keys: a conversion of clear identifiers the database still had due is dropped.
  virtual Status insertCopiedRows(const CopyTable& table, const std::vector<CopyRow>& rows) = 0;
};

/// A database the store runs on. Thread-safe: any thread may read or begin a write.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  /// "sqlite", ...: for logs.
  virtual std::string_view name() const = 0;
  /// Where the data is (a file path, a server), for error messages.
  virtual std::string location() const = 0;
  virtual Result<std::unique_ptr<StoreReader>> read() = 0;
  /// Waits for the write lock, then begins. Use WriteTransaction::begin rather than this.
  virtual Result<std::unique_ptr<StoreWriter>> beginWrite() = 0;
  /// beginWrite for a transaction that changes what partners may receive of some patients
  /// (consent versions, break-glass grants): several instances on one database (PostgreSQL) first
  /// wait for the sends in flight that hold those (patient, partner) pairs (holdSend), on any
  /// instance, and keep new ones from starting until the transaction ends; then the write lock.
  /// The default (one process serves the database) is beginWrite.
  virtual Result<std::unique_ptr<StoreWriter>> beginConsentWrite(const std::vector<PatientPartner>& changes) {
    (void)changes;
    return beginWrite();
  }
  /// A send's hold against consent changes of (patient, partner) on every instance (store.hpp
  /// SendHold). The default, for a database one process serves, is an empty hold.
  virtual Result<SendHold> holdSend(std::string_view patient_key, std::string_view partner_id) {
    (void)patient_key;
    (void)partner_id;
    return SendHold();
  }
  /// Converts, once, rows written before lookup keys (a database of an older schema): every
  /// clear identifier becomes its lookup key and every envelope is re-sealed, in one transaction,
  /// after which no clear identifier is left in the database's files. Returns the rows converted
  /// (0 when there was nothing to convert; a backend that never had the older schema returns 0).
  /// The store calls it at every open, before any other write.
  virtual Result<std::int64_t> convertLegacyIdentifiers(const LegacyIdentifiers& convert) = 0;
  /// Calls `changed` (on a thread of the backend's) with the patient key of each consent committed
  /// to this database by any process (this one's own commits included), soon after the commit
  /// ("" when some may have been missed: all may have changed). For several gateway instances on
  /// one server database; the default (SQLite: one process serves a database) never calls it.
  /// A null `changed` stops the watch (waiting for a call in progress to return).
  virtual Status watchConsents(std::function<void(const std::string& patient_key)> changed) {
    (void)changed;
    return ok();
  }
  /// The gateway instance this backend was opened for (its options' instance_id): written into
  /// the log rows the store appends. Empty: none named.
  virtual std::string instanceId() const { return {}; }
  /// Calls `requested` (on a thread of the backend's) with the instance id of each reload
  /// announced on this database by another process (announceReload); this process's own
  /// announcements are not passed on. Same threading and stop rule as watchConsents; the
  /// default (SQLite: one process) never calls it.
  virtual Status watchReloads(std::function<void(const std::string& origin)> requested) {
    (void)requested;
    return ok();
  }
  /// Tells every process watching reloads on this database that `origin` reloaded and so should
  /// they. No-op by default.
  virtual Status announceReload(std::string_view origin) {
    (void)origin;
    return ok();
  }
};

/// A write transaction that commits only when told: destroyed without a successful commit()
/// (an early return, an error), it rolls back. So no caller writes begin/commit/rollback by hand.
///
///   GW_TRY(auto tx, WriteTransaction::begin(backend));
///   GW_TRY(tx->insertRecord(row));   // an error returns: the destructor rolls back
///   GW_TRY(tx.commit());
class WriteTransaction {
 public:
  static Result<WriteTransaction> begin(StoreBackend& backend);
  /// A transaction that changes consents or break-glass grants of `changes` (beginConsentWrite).
  static Result<WriteTransaction> begin(StoreBackend& backend, const std::vector<PatientPartner>& changes);

  WriteTransaction(WriteTransaction&& other) noexcept = default;
  WriteTransaction& operator=(WriteTransaction&&) = delete;
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  ~WriteTransaction();

  StoreWriter* operator->() const { return writer_.get(); }
  StoreWriter& operator*() const { return *writer_; }

  /// Commits. Afterwards the transaction is over either way: a failed commit rolls back.
  Status commit();

 private:
  explicit WriteTransaction(std::unique_ptr<StoreWriter> writer) : writer_(std::move(writer)) {}
  std::unique_ptr<StoreWriter> writer_;  // null once over
};

}  // namespace gw::store

#pragma once
// Durable state of the gateway: the inbox of received records (with every version), the FHIR
// resources mapped from them, and the per-partner outbox. One interface and one implementation
// of its rules (store/record_store.hpp) over a backend of primitives per database
// (store/store_backend.hpp; SQLite embedded by default, store/sqlite_store.hpp; PostgreSQL for
// several instances is a later backend). Every backend passes tests/store/store_contract_test.cpp.
// Payloads (record versions, resource bodies and identifiers, outbox Bundles, partner outcomes)
// are stored encrypted under the data key of their privacy class (store/keyring.hpp); each write
// struct's `classes` picks it, and an empty set (unclassified) is stored as sud.
//
// Identifiers are stored as lookup keys (store/lookup_keys.hpp, docs/privacy.md §9): callers
// pass clear record ids, resource ids and consent ids, and the store keys them at this
// boundary; patient_key is a lookup key already (LookupKeys::patient, from lookupKeys()).
// Reads give back the clear ids a caller needs (a record's resources, a consent's ids); what
// only the store needs to tell rows apart comes back as a key (OutboxItem::record_key).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/error.hpp"
#include "privacy/consent_row.hpp"
#include "privacy/data_class.hpp"
#include "store/audit_anchor.hpp"
#include "store/audit_log.hpp"
#include "store/lookup_keys.hpp"

namespace gw::store {

/// received -> mapped | unmapped (no mapper for the type yet) | invalid (mapping failed)
enum class RecordState { Received, Mapped, Unmapped, Invalid };
std::string_view recordStateName(RecordState s);
std::optional<RecordState> parseRecordState(std::string_view s);

/// queued -> delivered | retrying -> ... | dead; superseded when a newer version of the record is
/// queued; cancelled when the partner may no longer receive it (checked again before each send).
enum class OutboxState { Queued, Retrying, Delivered, Dead, Superseded, Cancelled };
std::string_view outboxStateName(OutboxState s);
std::optional<OutboxState> parseOutboxState(std::string_view s);

struct MappedResourceRow {
  std::string resource_type;
  std::string resource_id;
  std::string identifier_system;
  std::string identifier_value;
  std::string body;           // FHIR JSON
  privacy::ClassSet classes;  // of this resource; picks the data key of body and identifier_value
};

struct NewOutboxItem {
  std::string partner_id;
  std::string bundle;  // transaction Bundle JSON, exactly what will be posted
  int entry_count = 0;
  privacy::ClassSet classes;  // every class of the Bundle's resources; picks the data key
  std::string disclosure;     // outbox::Disclosure JSON: the decisions, re-taken before each send
};

/// The last decision for one resource of a record and one partner (docs/privacy.md §8.2): what
/// was disclosed (permit, or redact with the activities left out) or held (deny), and why. The
/// store keeps one per (partner, record, resource) for the record's current version, written with
/// the items it queued, and re-plans a record when a decision would now disclose more.
struct ResourceDecision {
  std::string partner_id;
  std::string resource_type;
  std::string resource_id;                        // writes: the clear FHIR id (the store keys it); reads: its lookup key
  AuditOutcome outcome = AuditOutcome::Deny;      // Permit, Redact or Deny
  std::vector<std::uint32_t> removed_activities;  // Redact: indexes of the CarePlan activities left out
  std::string reason;                             // as in the decision log, e.g. class-not-covered:mh
  int record_version = 0;                         // reads: the version it was taken for
  std::int64_t updated_at_ms = 0;                 // reads
};

/// True when `now` discloses something `last` did not: a denied resource now permitted or
/// redacted, or a redaction that leaves out an activity `last` left out no longer.
bool disclosesMore(const ResourceDecision& last, const ResourceDecision& now);

/// A record's writes sealed ahead of the commit (Store::sealAhead), for the version the record
/// would get as read then. The committer uses them only when that is still the version it gets
/// and every envelope is under the data key version the transaction sees as newest; otherwise it
/// seals again. Sealing is most of ingest's work that does not need the write lock.
struct SealedWrite {
  int version = 0;
  std::string record_key;  // LookupKeys::record
  std::string payload;     // record_versions.payload
  struct Resource {
    std::string resource_key, resource_id, identifier_value, body;
  };
  std::vector<Resource> resources;  // one per IngestWrite::resources, in order
  struct Item {
    std::string bundle, disclosure;
  };
  std::vector<Item> outbox;  // one per IngestWrite::outbox, in order
};

/// Everything one accepted record changes; committed atomically with the others of its batch.
struct IngestWrite {
  std::string clinic;
  std::string record_id;
  std::string record_type;
  std::string content_hash;  // SHA-256 of the canonical record JSON
  std::string payload;       // the record JSON as received (canonical form)
  std::string patient_key;   // LookupKeys::patient: groups a patient's items for ordering
  RecordState state = RecordState::Received;
  std::string error;  // for Invalid: what was wrong (no PHI)
  std::vector<MappedResourceRow> resources;
  std::vector<NewOutboxItem> outbox;
  privacy::ClassSet classes;  // of the record as received; picks the data key of payload
  /// A consent record: its registry row (version 0: the store numbers it, 1 + the highest stored).
  std::optional<privacy::ConsentRow> consent;
  /// Decision log entries, appended in the same transaction (seq and hashes filled by the store).
  /// Entries of kind AuditKind::Consent get the consent version the store assigned.
  std::vector<AuditEntry> audit;
  /// The decision per (resource, partner) behind `outbox` and `audit` (ResourceDecision).
  std::vector<ResourceDecision> decisions;
  /// Store::sealAhead's work, when it ran.
  std::optional<SealedWrite> sealed;
};

enum class IngestDisposition { Created, NewVersion, Unchanged };
std::string_view dispositionName(IngestDisposition d);

struct IngestOutcome {
  IngestDisposition disposition = IngestDisposition::Created;
  int version = 1;
  std::int64_t consent_version = 0;  // the version stored for a consent record (0: none stored)
  /// Unchanged records only: partners this content was queued for again, since their decisions
  /// now disclose more than the last ones (a resend after a consent widened).
  std::vector<std::string> requeued_for;
};

struct DeliveredEntry {
  std::string status;    // partner's entry status, e.g. "201 Created"
  std::string location;  // partner's resource location, e.g. Patient/123/_history/1
  std::string etag;
};

/// One outcome of a delivery attempt, as markDelivered / markRetry / markDead / markCancelled
/// record it (see there).
struct OutboxOutcome {
  enum class Kind { Delivered, Retry, Dead, Cancelled };
  Kind kind = Kind::Retry;
  std::int64_t item_id = 0;
  int attempts = -1;                    // Retry, Dead: the count after this attempt
  SystemTime next_attempt{};            // Retry
  std::string error;                    // Retry, Dead: last_error; Cancelled: the reason
  std::string outcome;                  // Dead: the partner's OperationOutcome (sealed when stored)
  std::vector<DeliveredEntry> entries;  // Delivered
  SystemTime now{};
  std::vector<AuditEntry> audit;  // Delivered, Dead, Cancelled: appended with the change

  static OutboxOutcome delivered(std::int64_t item_id, std::vector<DeliveredEntry> entries, SystemTime now,
                                 std::vector<AuditEntry> audit) {
    return {Kind::Delivered, item_id, -1, {}, {}, {}, std::move(entries), now, std::move(audit)};
  }
  static OutboxOutcome retry(std::int64_t item_id, int attempts, SystemTime next_attempt, std::string error,
                             SystemTime now) {
    return {Kind::Retry, item_id, attempts, next_attempt, std::move(error), {}, {}, now, {}};
  }
  static OutboxOutcome dead(std::int64_t item_id, int attempts, std::string error, std::string outcome, SystemTime now,
                            std::vector<AuditEntry> audit) {
    return {Kind::Dead, item_id, attempts, {}, std::move(error), std::move(outcome), {}, now, std::move(audit)};
  }
  static OutboxOutcome cancelled(std::int64_t item_id, std::string reason, SystemTime now, std::vector<AuditEntry> audit) {
    return {Kind::Cancelled, item_id, -1, {}, std::move(reason), {}, {}, now, std::move(audit)};
  }
};

struct OutboxItem {
  std::int64_t id = 0;
  std::string partner_id;
  std::string clinic;
  std::string record_key;  // LookupKeys::record of its record (the clear id is not stored)
  int record_version = 0;
  std::string patient_key;
  std::string bundle;
  int entry_count = 0;  // requests in the Bundle; the partner must answer as many entries
  OutboxState state = OutboxState::Queued;
  int attempts = 0;
  std::int64_t next_attempt_at_ms = 0;
  std::string last_error;
  std::string outcome;     // partner's OperationOutcome (dead items)
  std::string disclosure;  // outbox::Disclosure JSON (dueItems and pendingItems fill it)
  std::int64_t updated_at_ms = 0;
  std::int64_t created_at_ms = 0;       // when it was queued (dueItems fills it: delivery latency)
  std::vector<DeliveredEntry> entries;  // delivered items
};

struct RecordStatus {
  std::string clinic;
  std::string record_id;    // as asked for
  std::string patient_key;  // the patient the record is about, as its lookup key (for the read's audit row)
  std::string record_type;
  int version = 0;
  RecordState state = RecordState::Received;
  std::string error;
  std::int64_t received_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::vector<MappedResourceRow> resources;  // body left empty: status needs ids only
  std::vector<OutboxItem> deliveries;        // bundle left empty
};

struct OutboxCounts {
  std::int64_t queued = 0, retrying = 0, delivered = 0, dead = 0, superseded = 0, cancelled = 0;
  std::int64_t oldest_pending_created_ms = 0;  // the oldest queued or retrying item's creation; 0: none
};

/// Which items GET /v1/outbox and `fhir-gateway outbox list` show: by partner, state, clinic and
/// age, in id order, a page at a time (docs/operations.md).
struct OutboxQuery {
  std::string partner_id;              // empty: every partner
  std::optional<OutboxState> state;    // none: every state
  std::vector<std::string> clinics;    // empty: every clinic
  std::int64_t created_before_ms = 0;  // > 0: only items created before this time (older_than)
  std::int64_t after_id = 0;           // the page after the item with this id
  int limit = 100;
};

/// One item as an operator sees it. record_id is the clinic's own id of the record (read from the
/// stored record; empty for a consent's update or a record version the retention purged): shown to
/// an operator of that clinic, never logged.
struct OutboxListItem {
  std::int64_t id = 0;
  std::string partner_id;
  std::string clinic;
  std::string record_id;
  std::string record_type;
  int record_version = 0;
  OutboxState state = OutboxState::Queued;
  int attempts = 0;
  std::string last_error;
  std::int64_t next_attempt_at_ms = 0;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct OutboxPage {
  std::vector<OutboxListItem> items;
  std::int64_t next_after_id = 0;  // 0: no further page
};

/// A partner an operator paused: its worker sends nothing until it is resumed (kept across restarts).
struct PartnerPause {
  std::string partner_id;
  std::int64_t paused_at_ms = 0;
  std::string actor;   // the operator's token id, or the CLI's --operator
  std::string reason;  // as the operator gave it (no PHI)
};

/// The current version of a record in a given state, payload decrypted: what `records reprocess`
/// puts through the pipeline again.
struct StoredRecord {
  std::string clinic;
  std::string record_key;
  std::string record_type;
  int version = 0;
  RecordState state = RecordState::Received;
  std::string payload;
};

struct ResourceKey {
  std::string resource_type;
  std::string resource_id;
  std::string identifier_system;
  std::string identifier_value;
  privacy::ClassSet classes;  // its storage class (sud for an unclassified row)
};

struct HeldRecord {
  std::string clinic;
  std::string record_key;  // LookupKeys::record; the clear id is in the payload
  int version = 0;
  std::string payload;  // the record JSON
};

struct EnqueueWrite {
  std::string clinic;
  std::string record_id;
  int record_version = 0;
  std::string patient_key;
  std::vector<NewOutboxItem> outbox;
  std::vector<AuditEntry> audit;
  std::vector<ResourceDecision> decisions;  // per (resource, partner) of `outbox` and `audit`
};

struct ConsentUpdateWrite {
  std::string clinic;
  std::string consent_id;  // clear; filed under its lookup key
  std::int64_t consent_version = 0;
  std::string patient_key;
  NewOutboxItem item;
  std::vector<AuditEntry> audit;
};

struct StoredConsent {
  privacy::ConsentRow row;
  bool reconciled = false;  // queued and held items were settled after it was stored
  std::string consent_key;  // LookupKeys::consent: the consent_id of its decision-log rows
};

/// How long stored payloads of each class are kept, in days after they were stored; 0 keeps
/// them forever. A row's class is the storage class of its payload (privacy::storageClass).
struct Retention {
  int general_days = 0;
  int sud_days = 0;
  int mh_days = 0;
  int daysFor(privacy::DataClass c) const;
};

struct PurgeCounts {
  std::int64_t record_versions = 0;
  std::int64_t resources = 0;
  std::int64_t outbox_items = 0;  // terminal items only (delivered, dead, superseded, cancelled)
  std::int64_t records = 0;       // records left with no version, resource or outbox item
};

/// What `fhir-gateway keys rotate` did.
struct KeyRotation {
  int data_keys = 0;          // data keys re-wrapped
  std::string old_master_id;  // crypto::SecretKey::id() of the old and new master keys
  std::string new_master_id;
  std::vector<std::string> keys;  // "general v1", "sud v1", ...
};

/// How `fhir-gateway keys rotate-data` paces itself next to a running gateway.
struct DataKeyRotationOptions {
  int batch_rows = 200;  // rows read (and re-sealed where needed) per write transaction
  /// After each batch the write lock is left free at least this long, and at least as long as
  /// the batch held it times pause_ratio, so a gateway waiting to write gets in between.
  std::chrono::milliseconds min_pause{5};
  double pause_ratio = 1.0;
  std::string actor = "cli";  // of the audit rows
};

/// What `fhir-gateway keys rotate-data` did.
struct DataKeyRotation {
  privacy::DataClass data_class = privacy::DataClass::Sud;
  std::uint32_t key_version = 0;  // every payload of the class is sealed under it now
  bool resumed = false;           // an interrupted rotation's version was finished, none added
  std::int64_t rows_scanned = 0;  // rows read over every pass (all classes)
  std::int64_t payloads_resealed = 0;
  std::int64_t batches = 0;
  int passes = 0;                        // the last pass found nothing left to re-seal
  std::vector<std::uint32_t> destroyed;  // versions whose wrapped key was deleted
  double seconds = 0;
};

/// An emergency disclosure opened under 42 CFR 2.51 (docs/privacy.md §7.1): while active it
/// permits every class of one patient's data to one partner. The record 2.51(c) asks for: who
/// received it (recipient), who authorised it, when, and the nature of the emergency. Names of
/// staff and the nature are kept as given (no patient identifiers: the patient is its key).
/// BreakGlass::ended_by of one that ran out (ended_at stays 0: nobody ended it).
inline constexpr std::string_view kBreakGlassExpired = "(expired)";

struct BreakGlass {
  std::string id;  // "bg-" + random hex
  std::string clinic;
  std::string patient_key;
  std::string partner_id;
  std::string recipient;      // the medical personnel receiving it
  std::string authorised_by;  // the person authorising it
  std::string nature;         // of the emergency
  std::string opened_by;      // token id
  std::int64_t opened_at_ms = 0;
  std::int64_t expires_at_ms = 0;  // at most 24 h after opened_at
  std::int64_t ended_at_ms = 0;    // 0: not ended by hand
  std::string ended_by;            // token id; kBreakGlassExpired once the gateway logged its expiry
  bool activeAt(std::int64_t now_ms) const { return ended_at_ms == 0 && now_ms >= opened_at_ms && now_ms < expires_at_ms; }
};

/// A patient's written request for an accounting of disclosures (42 CFR 2.24): due 30 days
/// after it was received.
struct AccountingRequest {
  std::string id;  // "ar-" + random hex
  std::string clinic;
  std::string patient_key;
  std::string received_on;     // YYYY-MM-DD, the date of the patient's written request
  std::string due_on;          // received_on + 30 days
  std::string note;            // as the officer wrote it
  std::string state = "open";  // open | delivered
  std::string delivered_on;    // YYYY-MM-DD when delivered
  std::string created_by;      // token ids
  std::string delivered_by;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

/// The partner and period view (compliance console): decision, cancel and disclosure rows of one
/// clinic and partner over [from_ms, to_ms), narrowed by outcome, class and reason.
struct PartnerLogQuery {
  std::string clinic;
  std::string partner_id;
  std::int64_t from_ms = 0;
  std::int64_t to_ms = 0;
  std::optional<AuditOutcome> outcome;
  std::optional<privacy::DataClass> data_class;
  std::string reason;          // exact match; empty: any
  std::int64_t after_seq = 0;  // rows: keyset cursor
  int limit = 100;             // rows: 1..kMaxAuditPageSize
};

/// How many rows of a PartnerLogQuery share one (kind, outcome, classes, reason).
struct PartnerLogCount {
  std::string kind;
  std::string outcome;
  std::string classes;
  std::string reason;
  std::int64_t count = 0;
};

/// A gateway instance on this database and the versions it runs (table gateway_instances,
/// schema 9; docs/architecture.md §5.3). Each instance writes its own row at start, after every
/// reload (whether it took or not) and on a heartbeat; `fhir-gateway instances` and
/// GET /v1/admin/instances show them side by side.
struct InstanceRow {
  std::string instance_id;
  std::int64_t started_at_ms = 0;
  std::int64_t last_seen_at_ms = 0;  // the heartbeat
  std::int64_t stopped_at_ms = 0;    // 0: not stopped cleanly (running, or killed)
  std::string binary_version;        // the build (kGatewayVersion)
  std::string config_version;        // "sha256:<16 hex>" of the configuration, per-instance keys left out
  std::string mappers_version;       // "sha256:<16 hex>" of the mapping set running now
  std::int64_t mappers_loaded_at_ms = 0;
  std::int64_t last_reload_at_ms = 0;  // 0: no reload since start
  std::string last_reload_error;       // empty: the last reload took (or none was tried)
  friend bool operator==(const InstanceRow&, const InstanceRow&) = default;
};

/// Rows of instances not seen for this long are dropped when an instance writes its row (a
/// default instance id names a process, so every restart leaves one behind).
inline constexpr std::int64_t kForgetInstanceAfterMs = 7LL * 24 * 3600 * 1000;

/// A patient and a partner: what a consent version or a break-glass grant governs, and what a
/// send holds against their changes.
struct PatientPartner {
  std::string patient_key;
  std::string partner_id;
  bool operator==(const PatientPartner&) const = default;
};

/// Held by a partner worker from before it reads the patient's consents for the re-check until
/// the send's last request has ended (never while its outcome is recorded): while any instance
/// holds one for (patient, partner), a consent or break-glass change of that pair commits on no
/// instance, and once such a change has committed every hold taken after it reads it
/// (docs/architecture.md §5.3, docs/privacy.md §8.3). Several gateway instances on one
/// PostgreSQL database; an empty hold (SQLite: one process serves a database, the in-process
/// SendGate orders its sends) holds nothing. Move-only; released when destroyed.
class SendHold {
 public:
  using Clock = std::chrono::steady_clock;
  SendHold() = default;
  /// `release` ends the hold; no request may start after `start_by` (past it, a request could
  /// outlast the hold's lease, which the database enforces).
  SendHold(std::function<void()> release, Clock::time_point start_by) : release_(std::move(release)), start_by_(start_by) {}
  SendHold(SendHold&& other) noexcept : release_(std::move(other.release_)), start_by_(other.start_by_) {
    other.release_ = nullptr;
  }
  SendHold& operator=(SendHold&& other) noexcept {
    if (this != &other) {
      release();
      release_ = std::move(other.release_);
      start_by_ = other.start_by_;
      other.release_ = nullptr;
    }
    return *this;
  }
  SendHold(const SendHold&) = delete;
  SendHold& operator=(const SendHold&) = delete;
  ~SendHold() { release(); }

  bool held() const { return static_cast<bool>(release_); }
  /// Whether a request may start now under this hold (always, for an empty hold).
  bool mayStart(Clock::time_point now = Clock::now()) const { return !release_ || now <= start_by_; }
  /// Ends the hold now (again: nothing).
  void release() {
    if (!release_) return;
    auto release = std::move(release_);
    release_ = nullptr;
    release();
  }

 private:
  std::function<void()> release_;
  Clock::time_point start_by_{};
};

class Store {
 public:
  virtual ~Store() = default;

  /// Applies every write in one transaction (one fsync): all or nothing. For each record: same
  /// content hash and same state as the current version -> Unchanged (nothing written); else a
  /// new version, its resources replaced, older pending outbox items of the record superseded,
  /// new items queued, the record's decisions replaced. (Same content, new state: an unmapped or
  /// invalid record resent after its mapper or profile was fixed.) An unchanged record is queued
  /// again at its version for the partners whose decisions now disclose more than the stored ones
  /// (IngestOutcome::requeued_for), as enqueue would.
  virtual Result<std::vector<IngestOutcome>> ingest(const std::vector<IngestWrite>& writes, SystemTime now) = 0;

  virtual Result<std::optional<RecordStatus>> recordStatus(std::string_view clinic, std::string_view record_id) = 0;

  /// Items of `partner` due at `now`, oldest first, at most one per patient and only when no
  /// earlier item of that patient is still pending (per-patient order is kept).
  virtual Result<std::vector<OutboxItem>> dueItems(std::string_view partner, SystemTime now, int limit) = 0;
  /// Earliest next_attempt_at among pending items of the partner (to sleep until then).
  virtual Result<std::optional<SystemTime>> nextDueTime(std::string_view partner) = 0;

  /// markDelivered, markDead and markCancelled append `audit` (the disclosure log) in the same
  /// transaction as the state change.
  virtual Status markDelivered(std::int64_t item_id, const std::vector<DeliveredEntry>& entries, SystemTime now,
                               std::vector<AuditEntry> audit = {}) = 0;
  virtual Status markRetry(std::int64_t item_id, int attempts, SystemTime next_attempt, std::string_view error,
                           SystemTime now) = 0;
  virtual Status markDead(std::int64_t item_id, int attempts, std::string_view error, std::string_view outcome,
                          SystemTime now, std::vector<AuditEntry> audit = {}) = 0;

  /// The item may no longer go to its partner; `reason` says why (no PHI).
  virtual Status markCancelled(std::int64_t item_id, std::string_view reason, SystemTime now,
                               std::vector<AuditEntry> audit = {}) = 0;

  /// Several of the changes above in one transaction (one commit, one fsync): the partner
  /// workers' senders record the outcomes that arrive together this way. All or none.
  virtual Status recordOutcomes(std::vector<OutboxOutcome> outcomes) = 0;

  /// Seals `write`'s payloads (record, resources, outbox items) for the version the record would
  /// get now, into write.sealed, so the committer does not: called on the request's thread. A
  /// record whose content is unchanged, or that cannot be read, is left to the committer.
  virtual void sealAhead(IngestWrite& write) = 0;

  // --- consent-driven disclosure ---
  /// The resources the current version of a record made (no bodies), to tell which a newer
  /// version drops. Empty for a record never seen.
  virtual Result<std::vector<ResourceKey>> resourceKeys(std::string_view clinic, std::string_view record_id) = 0;
  /// Queued and retrying items of a patient for a partner, oldest first, with their disclosure.
  virtual Result<std::vector<OutboxItem>> pendingItems(std::string_view partner, std::string_view patient_key) = 0;
  /// Delivered items of a patient for a partner, oldest first, with their disclosure, Bundle and
  /// the partner's answer per entry.
  virtual Result<std::vector<OutboxItem>> deliveredItems(std::string_view partner, std::string_view patient_key) = 0;
  /// Queues the item that passes a consent's version on to a partner (docs/privacy.md §8.4),
  /// filed under the consent (its lookup key and version in place of a record's) with its log
  /// entries, in one transaction. Writes nothing and returns false when that consent version
  /// already has a queued, retrying, delivered or dead item for the partner.
  virtual Result<bool> queueConsentUpdate(const ConsentUpdateWrite& write, SystemTime now) = 0;
  /// Current versions of a patient's mapped records (consents excluded) a consent change may make
  /// more disclosable to the partner: those with no queued, retrying, delivered or dead item for
  /// the partner at that version (posted before their consent, items cancelled), and those whose
  /// last decisions for the partner at that version hold a resource back (deny or redact).
  /// Payloads decrypted.
  virtual Result<std::vector<HeldRecord>> heldRecords(std::string_view partner, std::string_view patient_key) = 0;
  /// Queues items for a record version already stored (nothing else about the record changes),
  /// with their decision log entries and decisions, in one transaction; returns the items queued.
  /// Per partner of `decisions`: when it has a queued, retrying, delivered or dead item at that
  /// version, its items are queued only if some decision discloses more than the stored one
  /// (disclosesMore), else nothing of it is written; so a held resource goes once. Skips
  /// everything when the record has moved on to another version meanwhile (its own ingest
  /// queued what that version needs).
  virtual Result<int> enqueue(const EnqueueWrite& write, SystemTime now) = 0;
  /// The last decisions stored for the record's current version (every partner; resource_id is
  /// the resource's lookup key), ordered by partner, resource type and key.
  virtual Result<std::vector<ResourceDecision>> lastDecisions(std::string_view clinic, std::string_view record_id) = 0;
  /// Every stored consent version (all patients when `patient_key` is empty), oldest first.
  virtual Result<std::vector<StoredConsent>> consents(std::string_view patient_key = {}) = 0;
  /// StoreBackend::watchConsents: consents committed by other gateway instances on the same
  /// database, by patient key ("" : possibly any). A no-op where one process serves a database.
  virtual Status watchConsents(std::function<void(const std::string& patient_key)> changed) {
    (void)changed;
    return ok();
  }
  /// StoreBackend::holdSend: orders this send against consent changes committed by any gateway
  /// instance on the database. An empty hold where one process serves a database.
  virtual Result<SendHold> holdSend(std::string_view patient_key, std::string_view partner_id) {
    (void)patient_key;
    (void)partner_id;
    return SendHold();
  }
  virtual Status markConsentReconciled(std::string_view clinic, std::string_view consent_id, std::int64_t version) = 0;

  // --- several instances (docs/architecture.md §5.3) ---
  /// The instance id this store writes into the log rows it appends (AuditEntry::instance_id of
  /// an entry that names none); empty when the backend was opened without one.
  virtual std::string instanceId() const { return {}; }
  /// Inserts or replaces the instance's row (by instance_id) and drops rows not seen for
  /// kForgetInstanceAfterMs before row.last_seen_at_ms, in one transaction.
  virtual Status putInstance(const InstanceRow& row) = 0;
  /// Every instance row, by instance id.
  virtual Result<std::vector<InstanceRow>> instances() = 0;
  /// StoreBackend::watchReloads / announceReload: a reload asked of one instance reaches every
  /// instance on the database. No-ops where one process serves a database.
  virtual Status watchReloads(std::function<void(const std::string& origin)> requested) {
    (void)requested;
    return ok();
  }
  virtual Status announceReload(std::string_view origin) {
    (void)origin;
    return ok();
  }

  // --- decision and disclosure log ---
  /// Chains the entries onto the log (v2: keyed with the audit-chain secret) in one transaction.
  virtual Status appendAudit(std::vector<AuditEntry> entries) = 0;
  /// Checks the whole chain (store/audit_log.hpp), and the row at `anchor` when one is given.
  virtual Result<VerifyReport> verifyAudit(const std::optional<ChainAnchor>& anchor) = 0;
  /// The log's last row (seq, hash): what an anchor publishes. Cheap: one indexed read.
  virtual Result<ChainTail> auditHead() = 0;
  /// Seals and checks published anchor lines with this database's audit-chain secret.
  virtual AnchorSealer anchorSealer() const = 0;
  virtual Result<AuditPage> queryAudit(const AuditQuery& query) = 0;

  virtual Result<OutboxCounts> outboxCounts(std::string_view partner) = 0;
  /// A random secret of this deployment, made (32 bytes, hex) the first time it is asked for;
  /// stored sealed.
  virtual Result<std::string> deploymentSecret(std::string_view name) = 0;
  /// The keys this database stores instead of identifiers (under its lookup secret). Callers
  /// compute patient keys with it; the store computes the others itself.
  virtual const LookupKeys& lookupKeys() const = 0;

  /// The record as received (decrypted); nullopt when there is no such version (or it was purged).
  virtual Result<std::optional<std::string>> recordPayload(std::string_view clinic, std::string_view record_id,
                                                           int version) = 0;
  /// The stored FHIR JSON of a resource (decrypted); nullopt when there is none.
  virtual Result<std::optional<std::string>> resourceBody(std::string_view resource_type, std::string_view resource_id) = 0;

  /// Deletes what is older than its class's retention: record versions and resources by the
  /// time they were stored, outbox items in a terminal state (delivered, dead, superseded,
  /// cancelled; never queued or retrying) by the time they reached it, and then records left
  /// with nothing. Works in short transactions so ingest is never held up for long. The audit
  /// log is not touched (disclosures are kept for accounting).
  virtual Result<PurgeCounts> purgeExpired(SystemTime now, const Retention& retention) = 0;

  /// Re-wraps every data key under `next_master` in one transaction (`fhir-gateway keys rotate`);
  /// `current_master` must be the key the store was opened with. Stored payloads are unchanged.
  virtual Result<KeyRotation> rotateMasterKey(const crypto::SecretKey& current_master,
                                              const crypto::SecretKey& next_master) = 0;

  /// `fhir-gateway keys rotate-data`: adds a new version of class `c`'s data key (wrapped by
  /// `master`, which must be the key that wrapped the others), re-seals every payload of the
  /// class under it in short transactions (options.batch_rows rows each, pausing between them),
  /// then deletes the older versions' wrapped keys. While it runs, every process writing to the
  /// database seals under the new version from its commit on (each write transaction checks
  /// data_keys), so nothing is sealed under a version that is then destroyed. A rotation that
  /// was interrupted is finished by the next call (no further version is added). Each step
  /// commits with an audit row (kind key-rotation, counts and versions only).
  virtual Result<DataKeyRotation> rotateDataKey(privacy::DataClass c, const crypto::SecretKey& master,
                                                const DataKeyRotationOptions& options = {}) = 0;

  // --- operations (docs/operations.md) ---
  virtual Result<OutboxPage> listOutbox(const OutboxQuery& query) = 0;
  /// One item with its disclosure (no Bundle); nullopt when there is none.
  virtual Result<std::optional<OutboxItem>> outboxItem(std::int64_t item_id) = 0;
  /// A dead item is queued again (attempts 0, due now, `note` as its last error) with `audit`,
  /// in one transaction; false (nothing written) when the item is not dead.
  virtual Result<bool> requeueDead(std::int64_t item_id, std::string_view note, SystemTime now,
                                   std::vector<AuditEntry> audit) = 0;
  /// Pauses (a row kept until resumed) or resumes the partner's deliveries, with `audit`. A paused
  /// partner's items are never due (dueItems, nextDueTime) until it is resumed.
  virtual Status setPartnerPaused(const PartnerPause& pause, bool paused, std::vector<AuditEntry> audit) = 0;
  virtual Result<std::vector<PartnerPause>> partnerPauses() = 0;
  /// Up to `limit` current record versions in `state` (of `record_type` when not empty), after
  /// (after_clinic, after_record_key) in that order, payloads decrypted.
  virtual Result<std::vector<StoredRecord>> recordsInState(RecordState state, std::string_view record_type,
                                                           std::string_view after_clinic, std::string_view after_record_key,
                                                           int limit) = 0;
  // --- compliance console (docs/console-api.md) ---
  /// Stores (inserts or replaces by id) a break-glass row with its audit entries, in one transaction.
  virtual Status putBreakGlass(const BreakGlass& row, std::vector<AuditEntry> audit) = 0;
  /// Ends a break-glass that is still open as stored: its ended_at_ms and ended_by are written and
  /// the audit entries appended, in one transaction. False, and nothing written or logged, when
  /// it was ended or marked expired already (by another officer, or another instance's scan).
  virtual Result<bool> endBreakGlass(const BreakGlass& ended, std::vector<AuditEntry> audit) = 0;
  /// Break-glass rows of `clinic` (every clinic when empty), newest first.
  virtual Result<std::vector<BreakGlass>> breakGlasses(std::string_view clinic) = 0;
  /// Break-glass rows for one patient, newest first: what the re-check before a send reads under
  /// the send's hold, so a grant ended through another instance is seen before its announcement.
  virtual Result<std::vector<BreakGlass>> breakGlassesOfPatient(std::string_view patient_key) = 0;
  /// Stores (inserts or replaces by id) an accounting request with its audit entries, in one transaction.
  virtual Status putAccountingRequest(const AccountingRequest& row, std::vector<AuditEntry> audit) = 0;
  /// Accounting requests of `clinic`, newest received first.
  virtual Result<std::vector<AccountingRequest>> accountingRequests(std::string_view clinic) = 0;
  /// A page of the partner view's rows in time order (at_ms, then seq; next_after_seq continues
  /// it), and the counts of every matching row.
  virtual Result<AuditPage> partnerLog(const PartnerLogQuery& query) = 0;
  virtual Result<std::vector<PartnerLogCount>> partnerLogCounts(const PartnerLogQuery& query) = 0;

  /// Commits a small write (the readiness probe): fails when the database cannot commit (disk
  /// full, read-only file system).
  virtual Status probeWrite(SystemTime now) = 0;

  /// Cheap liveness probe of the database (for /readyz).
  virtual Status ping() = 0;
};

}  // namespace gw::store

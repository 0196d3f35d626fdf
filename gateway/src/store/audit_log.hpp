#pragma once
// Decision and disclosure log (docs/privacy.md §11): append-only and hash-chained, in the
// gateway's own database (table audit_log of schema v3), so a decision and the outbox change it
// causes commit in the same transaction. Rows hold internal ids, codes and outcomes only: never
// names, birth dates, MRNs or clinical values.
//
// Chain: row N stores prev_hash = hash of row N-1 (64 zeros for seq 1) and
// hash = entryHash(row N), a SHA-256 over canonicalAuditBytes(row N), which covers every column
// except hash itself. verify recomputes it all. An attacker who can write the file can
// still rewrite the whole chain from some row on, or cut its tail: keep the head (seq, hash) of
// each verify report somewhere else and pass it back as an anchor to detect that.
//
// This header is backend-neutral: the store computes seq and hashes (chainEntries) inside its
// write transaction and verifies with ChainVerifier over rows any backend reads back.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "privacy/data_class.hpp"

namespace gw::store {

/// What happened. Intended pairings with the outcome: Decision -> Permit|Deny|Redact;
/// Cancel -> Cancelled; Disclosure -> Delivered|Retrying|Failed; Consent, AuditRead,
/// AuditVerify, KeyRotation -> Ok|Error. Adding one is a code change on purpose: the log is read
/// by compliance reviews that need a closed vocabulary.
enum class AuditKind { Decision, Cancel, Disclosure, Consent, AuditRead, AuditVerify, KeyRotation };
enum class AuditOutcome { Permit, Deny, Redact, Cancelled, Delivered, Retrying, Failed, Ok, Error };

/// The stored text of each value ("decision", "audit-read", "permit", ...): the audit_log
/// columns, the API's filters and exports, and the hashed bytes all use exactly these names.
std::string_view auditKindName(AuditKind k);
std::string_view auditOutcomeName(AuditOutcome o);
std::optional<AuditKind> parseAuditKind(std::string_view s);
std::optional<AuditOutcome> parseAuditOutcome(std::string_view s);
/// Every name, in declaration order (for messages listing the accepted values).
const std::vector<std::string_view>& auditKindNames();
const std::vector<std::string_view>& auditOutcomeNames();

/// prev_hash of the first row.
inline constexpr std::string_view kGenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";

/// One row of audit_log. Build one with AuditEntryBuilder; the store fills seq, prev_hash, hash
/// when it appends. Text fields: no control characters; ids and codes at most 256 bytes,
/// reason 1024.
struct AuditEntry {
  std::int64_t seq = 0;
  std::int64_t at_ms = 0;  // Unix milliseconds of the event (> 0)
  AuditKind kind = AuditKind::Decision;
  std::string actor;  // token id of the caller, or "gateway" for its own decisions
  std::string clinic;
  std::string patient_key;  // LookupKeys::patient (rows before schema 5: the Patient's FHIR id)
  std::string partner_id;
  std::string purpose;  // v3-ActReason code, e.g. TREAT
  std::string resource_type;
  std::string resource_id;           // appended as the FHIR id; the store keeps LookupKeys::resource of it
  std::string classes;               // privacy::classSetName form: "sud", "sud,mh", "" when none apply
  std::string labels;                // security label codes sent, comma-separated: "R,SUD,42CFRPart2"
  std::string consent_id;            // appended as "<clinic>/<consent id>"; kept as LookupKeys::consentReference
  std::int64_t consent_version = 0;  // 0 when no consent applied
  AuditOutcome outcome = AuditOutcome::Ok;
  std::string reason;  // e.g. no-consent, class-not-covered:mh, partner status text
  std::string policy_version;
  /// Empty, or a compact JSON object of at most 4096 bytes: partner status and response ids,
  /// redacted activity kinds, outbox id... Never clinical values.
  std::string detail;
  std::string prev_hash;
  std::string hash;

  friend bool operator==(const AuditEntry&, const AuditEntry&) = default;
};

/// The one way to make an entry: what happened, who did it and when up front, then what it was
/// about. Fields left out stay empty (0 for consent_version).
///
///   auto e = AuditEntryBuilder(AuditKind::Cancel, AuditOutcome::Cancelled, "gateway", at_ms)
///                .clinic(item.clinic)
///                .patient(patient_key)
///                .partner(item.partner_id, purpose)
///                .resource(type, id, classes)
///                .reason(why)
///                .build();
class AuditEntryBuilder {
 public:
  AuditEntryBuilder(AuditKind kind, AuditOutcome outcome, std::string_view actor, std::int64_t at_ms);

  AuditEntryBuilder& clinic(std::string_view clinic);
  AuditEntryBuilder& patient(std::string_view patient_key);
  AuditEntryBuilder& partner(std::string_view partner_id, std::string_view purpose = {});
  AuditEntryBuilder& resource(std::string_view type, std::string_view id);
  AuditEntryBuilder& resource(std::string_view type, std::string_view id, privacy::ClassSet classes);
  AuditEntryBuilder& labels(std::string labels);
  AuditEntryBuilder& consent(std::string_view consent_id, std::int64_t version);
  AuditEntryBuilder& reason(std::string reason);
  AuditEntryBuilder& policy(std::string_view policy_version);
  AuditEntryBuilder& detail(std::string json);

  AuditEntry build() const& { return entry_; }
  AuditEntry build() && { return std::move(entry_); }

 private:
  AuditEntry entry_;
};

/// An audit_log row as stored: AuditEntry with kind and outcome as their stored text. The chain
/// is defined over these columns, so a row whose text was altered to something outside the
/// vocabulary still verifies as what it is (a hash mismatch) instead of being unreadable.
struct AuditRow {
  std::int64_t seq = 0;
  std::int64_t at_ms = 0;
  std::string kind;
  std::string actor;
  std::string clinic;
  std::string patient_key;
  std::string partner_id;
  std::string purpose;
  std::string resource_type;
  std::string resource_id;
  std::string classes;
  std::string labels;
  std::string consent_id;
  std::int64_t consent_version = 0;
  std::string outcome;
  std::string reason;
  std::string policy_version;
  std::string detail;
  std::string prev_hash;
  std::string hash;
};

AuditRow toAuditRow(AuditEntry e);
/// A Storage error naming the seq when the row's kind or outcome is not in the vocabulary (the
/// row was altered: `audit verify` reports it).
Result<AuditEntry> fromAuditRow(AuditRow row);

/// The bytes hashed for a row: "gw-audit-v1\n", then for each column in table order (seq,
/// at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id,
/// classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail,
/// prev_hash) "<name>:<byte length>:<value>\n", integers in decimal, kind and outcome by their
/// names. Length prefixes make it unambiguous whatever the values contain. Published so an
/// export can be checked elsewhere.
std::string canonicalAuditBytes(const AuditEntry& e);
std::string canonicalAuditBytes(const AuditRow& row);
/// Lowercase hex SHA-256 of canonicalAuditBytes(e).
std::string entryHash(const AuditEntry& e);

/// Field checks made before an entry is appended (a bad one is a bug: ErrorCode::Internal with
/// where = "audit_log.<field>"). Exposed for callers that build entries early.
Status validateAuditEntry(const AuditEntry& e);

/// The last row of the log: where the next append continues.
struct ChainTail {
  std::int64_t seq = 0;
  std::string hash = std::string(kGenesisHash);
};

/// Checks every entry (the first bad one is an error naming its index; nothing is changed),
/// then fills seq, prev_hash and hash of each, continuing `tail`. Returns the new tail.
Result<ChainTail> chainEntries(ChainTail tail, std::vector<AuditEntry>& entries);

enum class ChainProblem {
  HashMismatch,      // the row's content no longer matches its hash: the row was altered
  PrevHashMismatch,  // the link to the previous row is wrong: rows were inserted or removed and
                     // renumbered, or the previous row was altered and re-hashed
  SeqGap,            // seq jumps: rows were deleted
  AnchorMismatch,    // the anchor row's hash differs: the chain was rewritten up to there
  Truncated,         // the anchor row is gone: the tail of the log was cut
};
std::string_view chainProblemName(ChainProblem p);  // "hash-mismatch", "prev-hash-mismatch", ...

struct ChainBreak {
  std::int64_t seq = 0;  // first affected seq (for a gap: the first missing one)
  ChainProblem problem = ChainProblem::HashMismatch;
  std::string message;  // what is wrong, for people
};

/// A (seq, hash) recorded earlier from a good verify report.
struct ChainAnchor {
  std::int64_t seq = 0;
  std::string hash;
};

struct VerifyReport {
  bool ok = true;
  std::int64_t rows = 0;      // rows read
  std::int64_t last_seq = 0;  // seq of the last row (0: empty log)
  std::string head_hash;      // its stored hash (genesis when empty): record it as an anchor
  std::int64_t break_count = 0;
  std::vector<ChainBreak> breaks;  // the first kMaxReportedBreaks, in seq order
};
inline constexpr std::size_t kMaxReportedBreaks = 20;

/// Checks rows fed in seq order: each row's hash, its link to the previous row and seq
/// continuity from 1. Continues past a break (links are checked against the stored hashes, so
/// one altered row is one break). The store feeds it the whole table in chunks, so memory stays
/// flat for millions of rows.
class ChainVerifier {
 public:
  explicit ChainVerifier(std::optional<ChainAnchor> anchor = std::nullopt);
  void add(const AuditRow& row);
  /// Seq of the last row added (0 before any): read the next chunk after it.
  std::int64_t lastSeq() const { return report_.last_seq; }
  /// The report, with the anchor checked against what was read.
  VerifyReport finish();

 private:
  void addBreak(std::int64_t seq, ChainProblem problem, std::string message);
  std::optional<ChainAnchor> anchor_;
  bool anchor_seen_ = false;
  VerifyReport report_;
  std::string canonical_;  // scratch
};

inline constexpr int kMaxAuditPageSize = 1000;

/// Filters combine with AND; empty / unset means any. Results are oldest first (ascending seq):
/// exports and accountings of disclosures read chronologically, and a client paging with
/// after_seq never misses rows appended while it pages. For recent entries, set from_ms.
struct AuditQuery {
  std::string clinic;
  std::string patient_key;
  /// Also match rows written before lookup keys (schema 4), which hold the patient's FHIR id,
  /// ids::resourceId(clinic, "Patient", mrn), as patient_key. Set with patient_key by callers
  /// that know the clinic and MRN; never stored.
  std::string legacy_patient_key;
  std::string partner_id;
  std::optional<AuditOutcome> outcome;
  std::optional<AuditKind> kind;
  std::optional<privacy::DataClass> data_class;  // rows whose classes contain it
  std::optional<std::int64_t> from_ms;           // at_ms >= from_ms
  std::optional<std::int64_t> to_ms;             // at_ms < to_ms
  std::int64_t after_seq = 0;                    // keyset cursor: rows with seq > after_seq
  int limit = 100;                               // clamped to 1..kMaxAuditPageSize
};

struct AuditPage {
  std::vector<AuditEntry> entries;
  std::optional<std::int64_t> next_after_seq;  // set when more rows match: pass as after_seq
};

}  // namespace gw::store

#pragma once
// Decision and disclosure log (docs/privacy.md §11): append-only and chained, in the gateway's
// own database (table audit_log of schema v3), so a decision and the outbox change it causes
// commit in the same transaction. Rows hold internal ids, codes and outcomes only: never names,
// birth dates, MRNs or clinical values.
//
// Chain: row N stores prev_hash = hash of row N-1 (64 zeros for seq 1) and hash = a digest of
// canonicalAuditBytes(row N), which covers every column except hash itself. Two versions, told
// apart by the hash's form:
//   v1 (rows written before the chain was keyed): 64 hex digits, plain SHA-256 of the
//      "gw-audit-v1" bytes. Anyone who can write the database can recompute it.
//   v2 (rows written by keyed builds before schema 9): "v2:" + 64 hex digits, HMAC-SHA256 of the
//      "gw-audit-v2" bytes under the audit-chain secret (store/keyring.hpp, wrapped by the master
//      key), so a rewritten row cannot be re-sealed without the master key. The first v2 row
//      links to the last v1 row; a keyed start marker (chainStartMarker) records where the keyed
//      chain begins, so the log cannot be rewritten as v1 rows either.
//   v3 (every row written since schema 9): "v3:" + 64 hex digits, as v2 over the "gw-audit-v3"
//      bytes, which add the instance_id of the gateway that wrote the row. v1 and v2 rows keep
//      their hashes (their bytes have no instance_id) and must have an empty instance_id: one
//      set on them later is not covered by their hash, so the verifier reports it as altered.
// A chain alone cannot show that its tail was cut: the gateway publishes its head (seq, hash) to
// a sink the database's writer cannot rewrite (audit/anchor_file.hpp), and verify checks the
// log against the latest published anchor.
//
// This header is backend-neutral: the store computes seq and hashes (chainEntries) inside its
// write transaction and verifies with ChainVerifier over rows any backend reads back.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/crypto.hpp"
#include "common/error.hpp"
#include "privacy/data_class.hpp"

namespace gw::store {

/// What happened. Intended pairings with the outcome: Decision -> Permit|Deny|Redact;
/// Cancel -> Cancelled; Disclosure -> Delivered|Retrying|Failed; Consent, AuditRead,
/// AuditVerify, KeyRotation -> Ok|Error. Adding one is a code change on purpose: the log is read
/// by compliance reviews that need a closed vocabulary.
/// Operation: an operator's action on the outbox or on records (replay, reprocess, pause, resume;
/// docs/operations.md), with the operator's token id (or --operator) as actor.
enum class AuditKind { Decision, Cancel, Disclosure, Consent, AuditRead, AuditVerify, KeyRotation, RecordRead, Operation };
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
  /// The gateway instance that appended the row (config::instanceId; docs/architecture.md §5.3).
  /// The store fills it when it appends; empty on rows written before schema 9.
  std::string instance_id;

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
  std::string instance_id;
};

AuditRow toAuditRow(AuditEntry e);
/// A Storage error naming the seq when the row's kind or outcome is not in the vocabulary (the
/// row was altered: `audit verify` reports it).
Result<AuditEntry> fromAuditRow(AuditRow row);

/// Which digest a row's hash is (see the top of this file).
enum class ChainVersion { V1, V2, V3 };
/// Prefix of a v2 (keyed) hash.
inline constexpr std::string_view kKeyedHashPrefix = "v2:";
/// Prefix of a v3 (keyed, with the instance id) hash: what every new row carries.
inline constexpr std::string_view kInstanceHashPrefix = "v3:";
/// V1 for 64 lowercase hex digits, V2 / V3 for "v2:" / "v3:" + 64 lowercase hex digits, nullopt
/// otherwise.
std::optional<ChainVersion> chainVersionOf(std::string_view hash);

/// The bytes hashed for a row: "gw-audit-v1\n" (v2: "gw-audit-v2\n"), then for each column in
/// table order (seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type,
/// resource_id, classes, labels, consent_id, consent_version, outcome, reason, policy_version,
/// detail, prev_hash) "<name>:<byte length>:<value>\n", integers in decimal, kind and outcome by
/// their names; v3 ("gw-audit-v3\n") adds "instance_id:<length>:<value>\n" after prev_hash.
/// Length prefixes make it unambiguous whatever the values contain. Published so an export can
/// be checked elsewhere (v2 and v3 with the audit-chain secret).
std::string canonicalAuditBytes(const AuditEntry& e, ChainVersion version = ChainVersion::V1);
std::string canonicalAuditBytes(const AuditRow& row, ChainVersion version = ChainVersion::V1);
/// v1: lowercase hex SHA-256 of canonicalAuditBytes(e). What rows written before the chain was
/// keyed carry, and what someone without the master key can compute.
std::string entryHash(const AuditEntry& e);
/// v2: "v2:" + lowercase hex HMAC-SHA256 of canonicalAuditBytes(e, V2) under `chain_key`; v3
/// (the default, what every new row carries): "v3:" + the same over canonicalAuditBytes(e, V3).
std::string keyedEntryHash(const crypto::SecretKey& chain_key, const AuditEntry& e, ChainVersion version = ChainVersion::V3);

/// The deployment secret (Store::deploymentSecret's table) that records where the keyed chain
/// begins: written with the audit-chain secret, in the same transaction.
inline constexpr std::string_view kChainStartSecretName = "audit-chain-start";
/// "<last v1 seq>:<hex HMAC-SHA256 of "gw-audit-v2-start|<seq>">": rows up to that seq may be v1,
/// every later row must be v2. Keyed, so it cannot be moved without the master key.
std::string chainStartMarker(const crypto::SecretKey& chain_key, std::int64_t last_unkeyed_seq);
/// The seq a marker names; nullopt when it is malformed or its MAC does not check.
std::optional<std::int64_t> readChainStartMarker(const crypto::SecretKey& chain_key, std::string_view marker);

/// Field checks made before an entry is appended (a bad one is a bug: ErrorCode::Internal with
/// where = "audit_log.<field>"). Exposed for callers that build entries early.
Status validateAuditEntry(const AuditEntry& e);

/// The last row of the log: where the next append continues.
struct ChainTail {
  std::int64_t seq = 0;
  std::string hash = std::string(kGenesisHash);
};

/// Checks every entry (the first bad one is an error naming its index; nothing is changed),
/// then fills seq, prev_hash and hash (v3, under `chain_key`) of each, continuing `tail`.
/// Returns the new tail.
Result<ChainTail> chainEntries(const crypto::SecretKey& chain_key, ChainTail tail, std::vector<AuditEntry>& entries);

enum class ChainProblem {
  HashMismatch,      // the row's content no longer matches its hash: the row was altered (also: an
                     // instance_id on a v1 or v2 row, whose hash does not cover it)
  PrevHashMismatch,  // the link to the previous row is wrong: rows were inserted or removed and
                     // renumbered, or the previous row was altered and re-hashed
  SeqGap,            // seq jumps: rows were deleted
  AnchorMismatch,    // the anchor row's hash differs: the chain was rewritten up to there
  Truncated,         // the anchor row is gone: the tail of the log was cut
  UnkeyedRow,        // a v1 (unkeyed) row where the keyed chain had begun: rewritten without the key
  StartMarker,       // where the keyed chain begins is unknown (marker missing or altered) or the
                     // audit-chain secret is gone while keyed rows exist
  AnchorForged,      // a published anchor line fails its MAC: altered, or not written by this database
};
std::string_view chainProblemName(ChainProblem p);  // "hash-mismatch", "prev-hash-mismatch", ...

struct ChainBreak {
  std::int64_t seq = 0;  // first affected seq (for a gap: the first missing one)
  ChainProblem problem = ChainProblem::HashMismatch;
  std::string message;  // what is wrong, for people
};

/// A (seq, hash) recorded earlier: published by the gateway (audit/anchor_file.hpp) or kept
/// from a good verify report.
struct ChainAnchor {
  std::int64_t seq = 0;
  std::string hash;
  friend bool operator==(const ChainAnchor&, const ChainAnchor&) = default;
};

/// How the log compares with the anchor it was checked against.
enum class AnchorStatus {
  None,       // no anchor to check against
  Ok,         // the row at the anchor's seq has the anchor's hash
  Truncated,  // the log ends before the anchor's seq
  Rewritten,  // the row at the anchor's seq has another hash
};
std::string_view anchorStatusName(AnchorStatus s);  // "none", "ok", "truncated", "rewritten"

struct AnchorCheck {
  AnchorStatus status = AnchorStatus::None;
  std::optional<ChainAnchor> anchor;  // the anchor checked against
  std::string source = "none";        // "none", "argument", or "file <path>" (filled by the caller)
  std::int64_t published_at_ms = 0;   // when a file anchor was published (0: not from a file)
  std::int64_t lines = 0;             // anchor lines read from the file
  std::int64_t forged_lines = 0;      // of those, lines whose MAC does not check
};

struct VerifyReport {
  bool ok = true;
  std::int64_t rows = 0;      // rows read
  std::int64_t last_seq = 0;  // seq of the last row (0: empty log)
  std::string head_hash;      // its stored hash (genesis when empty): record it as an anchor
  std::int64_t break_count = 0;
  std::vector<ChainBreak> breaks;   // the first kMaxReportedBreaks, in seq order
  std::int64_t unkeyed_rows = 0;    // v1 rows (written before the chain was keyed)
  std::int64_t keyed_from_seq = 0;  // first seq that must be keyed (v2); 0: the database has no chain key
  AnchorCheck anchor;
};

/// Records a break found outside the rows (a forged anchor line): the report is no longer ok.
void addReportBreak(VerifyReport& report, ChainBreak b);
inline constexpr std::size_t kMaxReportedBreaks = 20;

/// What the verifier knows about the keyed chain of the database it reads.
struct ChainKeying {
  /// The audit-chain secret; null when the database has none (a log written entirely before the
  /// chain was keyed, opened read-only so none could be made).
  const crypto::SecretKey* key = nullptr;
  /// The stored kChainStartSecretName value; nullopt when there is none.
  std::optional<std::string> start_marker;
};

/// Checks rows fed in seq order: each row's hash (v1 or v2 by its form), its link to the previous
/// row, seq continuity from 1, and that no v1 row follows the keyed chain's start. Continues past
/// a break (links are checked against the stored hashes, so one altered row is one break). The
/// store feeds it the whole table in chunks, so memory stays flat for millions of rows.
class ChainVerifier {
 public:
  explicit ChainVerifier(ChainKeying keying, std::optional<ChainAnchor> anchor = std::nullopt);
  void add(const AuditRow& row);
  /// Seq of the last row added (0 before any): read the next chunk after it.
  std::int64_t lastSeq() const { return report_.last_seq; }
  /// The report, with the anchor checked against what was read.
  VerifyReport finish();

 private:
  void addBreak(std::int64_t seq, ChainProblem problem, std::string message);
  ChainKeying keying_;
  std::optional<std::int64_t> last_unkeyed_seq_;  // from the start marker
  bool keyed_seen_ = false;
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

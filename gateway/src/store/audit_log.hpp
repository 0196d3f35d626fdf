#pragma once
// Decision and disclosure log (docs/privacy.md §11): append-only and hash-chained, in the
// gateway's own database (table audit_log of schema v3), so a decision and the outbox change it
// causes commit in the same transaction. Rows hold internal ids, codes and outcomes only: never
// names, birth dates, MRNs or clinical values.
//
// Chain: row N stores prev_hash = hash of row N-1 (64 zeros for seq 1) and
// hash = entryHash(row N), a SHA-256 over canonicalAuditBytes(row N), which covers every column
// except hash itself. verifyChain recomputes it all. An attacker who can write the file can
// still rewrite the whole chain from some row on, or cut its tail: keep the head (seq, hash) of
// each verify report somewhere else and pass it back as an anchor to detect that.
#include <Poco/Data/Session.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "privacy/data_class.hpp"

namespace gw::store {

/// What happened. Intended pairings with outcome: decision -> permit|deny|redact;
/// cancel -> cancelled; disclosure -> delivered|retrying|failed; consent, audit-read,
/// audit-verify, key-rotation -> ok|error.
namespace audit_kind {
inline constexpr std::string_view kDecision = "decision";
inline constexpr std::string_view kCancel = "cancel";
inline constexpr std::string_view kDisclosure = "disclosure";
inline constexpr std::string_view kConsent = "consent";
inline constexpr std::string_view kAuditRead = "audit-read";
inline constexpr std::string_view kAuditVerify = "audit-verify";
inline constexpr std::string_view kKeyRotation = "key-rotation";
}  // namespace audit_kind

namespace audit_outcome {
inline constexpr std::string_view kPermit = "permit";
inline constexpr std::string_view kDeny = "deny";
inline constexpr std::string_view kRedact = "redact";
inline constexpr std::string_view kCancelled = "cancelled";
inline constexpr std::string_view kDelivered = "delivered";
inline constexpr std::string_view kRetrying = "retrying";
inline constexpr std::string_view kFailed = "failed";
inline constexpr std::string_view kOk = "ok";
inline constexpr std::string_view kError = "error";
}  // namespace audit_outcome

/// Every kind / outcome append accepts (adding one is a code change on purpose: the log is read
/// by compliance reviews that need a closed vocabulary).
const std::vector<std::string_view>& auditKinds();
const std::vector<std::string_view>& auditOutcomes();
bool isAuditKind(std::string_view s);
bool isAuditOutcome(std::string_view s);

/// prev_hash of the first row.
inline constexpr std::string_view kGenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";

/// One row of audit_log. The caller fills at_ms .. detail; append fills seq, prev_hash, hash.
/// Text fields: no control characters; ids and codes at most 256 bytes, reason 1024.
struct AuditEntry {
  std::int64_t seq = 0;
  std::int64_t at_ms = 0;        // Unix milliseconds of the event (> 0)
  std::string kind;              // audit_kind
  std::string actor;             // token id of the caller, or "gateway" for its own decisions
  std::string clinic;
  std::string patient_key;       // internal Patient resource id
  std::string partner_id;
  std::string purpose;           // v3-ActReason code, e.g. TREAT
  std::string resource_type;
  std::string resource_id;
  std::string classes;           // privacy::classSetName form: "sud", "sud,mh", "" when none apply
  std::string labels;            // security label codes sent, comma-separated: "R,SUD,42CFRPart2"
  std::string consent_id;
  std::int64_t consent_version = 0;  // 0 when no consent applied
  std::string outcome;           // audit_outcome
  std::string reason;            // e.g. no-consent, class-not-covered:mh, partner status text
  std::string policy_version;
  /// Empty, or a compact JSON object of at most 4096 bytes: partner status and response ids,
  /// redacted activity kinds, outbox id... Never clinical values.
  std::string detail;
  std::string prev_hash;
  std::string hash;

  friend bool operator==(const AuditEntry&, const AuditEntry&) = default;
};

/// The bytes hashed for a row: "gw-audit-v1\n", then for each column in table order (seq,
/// at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id,
/// classes, labels, consent_id, consent_version, outcome, reason, policy_version, detail,
/// prev_hash) "<name>:<byte length>:<value>\n", integers in decimal. Length prefixes make it
/// unambiguous whatever the values contain. Published so an export can be checked elsewhere.
std::string canonicalAuditBytes(const AuditEntry& e);
/// Lowercase hex SHA-256 of canonicalAuditBytes(e).
std::string entryHash(const AuditEntry& e);

/// Appends entries inside the caller's open write transaction, on the store's single writer
/// connection, under the store's write mutex (not thread-safe by itself).
///
/// Chain tail and rollbacks: the tail (last seq, last hash) is read from the table inside the
/// transaction unless the appender was told, by committed(), that its previous append was
/// committed; only then is the cached tail used. So a rollback needs no call (rolledBack() just
/// says so explicitly), and a caller that forgets committed() only pays one indexed read.
/// If another connection appended meanwhile, the cached tail is stale: the first insert then
/// collides on seq, and append re-reads the tail and retries once in the same transaction.
/// The one misuse that breaks the chain is calling committed() after a rollback.
///
///   writer.begin();
///   ... the writes the entries describe ...
///   GW_TRY(appender.append(writer, entries));   // on error: roll back
///   writer.commit();
///   appender.committed();
class AuditAppender {
 public:
  AuditAppender();
  ~AuditAppender();
  AuditAppender(const AuditAppender&) = delete;
  AuditAppender& operator=(const AuditAppender&) = delete;

  /// Checks every entry (a bad one is a bug: ErrorCode::Internal naming entry and field, nothing
  /// written), then fills seq, prev_hash and hash and inserts them in order. Refuses a session
  /// without an open transaction. On a Storage error the caller must roll back.
  Status append(Poco::Data::Session& session, std::vector<AuditEntry>& entries);
  /// The transaction of the last append committed: its tail may be trusted next time.
  void committed();
  /// The transaction rolled back (optional: without committed() the tail is re-read anyway).
  void rolledBack();

  /// Field checks append applies, exposed for callers that build entries early.
  static Status validate(const AuditEntry& e);

 private:
  struct Tail {
    std::int64_t seq = 0;
    std::string hash;
  };
  struct PerSession;
  Tail readTail(Poco::Data::Session& session);
  void insertAll(Poco::Data::Session& session, std::vector<AuditEntry>& entries, const Tail& tail);

  const void* session_id_ = nullptr;  // connection the statement and cache belong to
  std::unique_ptr<PerSession> per_session_;
  std::optional<Tail> confirmed_;  // tail after the last committed append
  std::optional<Tail> pending_;    // tail after the last append, commit not yet confirmed
};

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
  std::string message;   // what is wrong, for people
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

/// Reads the whole table in seq order, in chunks (memory stays flat for millions of rows), and
/// checks each row's hash, its link to the previous row and seq continuity from 1. Continues
/// past a break (links are checked against the stored hashes, so one altered row is one break).
/// Rows appended while it runs are checked too. Errors only when the table cannot be read.
Result<VerifyReport> verifyChain(Poco::Data::Session& session, const std::optional<ChainAnchor>& anchor = std::nullopt);

inline constexpr int kMaxAuditPageSize = 1000;

/// Filters combine with AND; empty / unset means any. Results are oldest first (ascending seq):
/// exports and accountings of disclosures read chronologically, and a client paging with
/// after_seq never misses rows appended while it pages. For recent entries, set from_ms.
struct AuditQuery {
  std::string clinic;
  std::string patient_key;
  std::string partner_id;
  std::string outcome;
  std::string kind;
  std::optional<privacy::DataClass> data_class;  // rows whose classes contain it
  std::optional<std::int64_t> from_ms;            // at_ms >= from_ms
  std::optional<std::int64_t> to_ms;              // at_ms < to_ms
  std::int64_t after_seq = 0;                     // keyset cursor: rows with seq > after_seq
  int limit = 100;                                // clamped to 1..kMaxAuditPageSize
};

struct AuditPage {
  std::vector<AuditEntry> entries;
  std::optional<std::int64_t> next_after_seq;  // set when more rows match: pass as after_seq
};

Result<AuditPage> queryAudit(Poco::Data::Session& session, const AuditQuery& query);

}  // namespace gw::store

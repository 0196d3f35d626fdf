#include "store/audit_log.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <array>
#include <utility>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace gw::store {
namespace {

constexpr std::size_t kMaxIdBytes = 256;
constexpr std::size_t kMaxReasonBytes = 1024;
constexpr std::size_t kMaxDetailBytes = 4096;

// The stored names, indexed by the enum value: the one place each is spelt.
constexpr std::array<std::string_view, 9> kKindNames = {
    "decision", "cancel", "disclosure", "consent", "audit-read", "audit-verify", "key-rotation", "record-read", "operation",
};
constexpr std::array<std::string_view, 9> kOutcomeNames = {
    "permit", "deny", "redact", "cancelled", "delivered", "retrying", "failed", "ok", "error",
};
static_assert(kKindNames.size() == static_cast<std::size_t>(AuditKind::Operation) + 1);
static_assert(kOutcomeNames.size() == static_cast<std::size_t>(AuditOutcome::Error) + 1);

template <class Enum, std::size_t N>
std::optional<Enum> parseName(const std::array<std::string_view, N>& names, std::string_view s) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

Error entryError(std::string_view field, std::string message) {
  return makeError(ErrorCode::Internal, "audit entry " + std::string(field) + ": " + std::move(message),
                   "audit_log." + std::string(field), "fix the code that builds this audit entry");
}

void appendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.push_back(':');
  out.append(std::to_string(value.size()));
  out.push_back(':');
  out.append(value);
  out.push_back('\n');
}

void appendField(std::string& out, std::string_view name, std::int64_t value) {
  appendField(out, name, std::string_view(std::to_string(value)));
}

// One body for entries and stored rows: they differ only in how kind and outcome are held.
template <class Row>
void appendCanonical(std::string& out, const Row& e, std::string_view kind, std::string_view outcome, ChainVersion version) {
  out.append(version == ChainVersion::V1   ? "gw-audit-v1\n"
             : version == ChainVersion::V2 ? "gw-audit-v2\n"
                                           : "gw-audit-v3\n");
  appendField(out, "seq", e.seq);
  appendField(out, "at_ms", e.at_ms);
  appendField(out, "kind", kind);
  appendField(out, "actor", e.actor);
  appendField(out, "clinic", e.clinic);
  appendField(out, "patient_key", e.patient_key);
  appendField(out, "partner_id", e.partner_id);
  appendField(out, "purpose", e.purpose);
  appendField(out, "resource_type", e.resource_type);
  appendField(out, "resource_id", e.resource_id);
  appendField(out, "classes", e.classes);
  appendField(out, "labels", e.labels);
  appendField(out, "consent_id", e.consent_id);
  appendField(out, "consent_version", e.consent_version);
  appendField(out, "outcome", outcome);
  appendField(out, "reason", e.reason);
  appendField(out, "policy_version", e.policy_version);
  appendField(out, "detail", e.detail);
  appendField(out, "prev_hash", e.prev_hash);
  if (version == ChainVersion::V3) appendField(out, "instance_id", e.instance_id);
}

Status checkText(std::string_view field, std::string_view value, std::size_t max_bytes) {
  if (value.size() > max_bytes) {
    return entryError(field, "is " + std::to_string(value.size()) + " bytes; at most " + std::to_string(max_bytes));
  }
  for (unsigned char c : value) {
    // Control characters would break CSV exports and log lines; ids and codes never need them.
    if (c < 0x20 || c == 0x7f) return entryError(field, "contains a control character");
  }
  return ok();
}

bool isLowerHex(std::string_view s, std::size_t digits) {
  return s.size() == digits && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string chainStartMessage(std::int64_t seq) { return "gw-audit-v2-start|" + std::to_string(seq); }

}  // namespace

std::string_view auditKindName(AuditKind k) { return kKindNames[static_cast<std::size_t>(k)]; }
std::string_view auditOutcomeName(AuditOutcome o) { return kOutcomeNames[static_cast<std::size_t>(o)]; }
std::optional<AuditKind> parseAuditKind(std::string_view s) { return parseName<AuditKind>(kKindNames, s); }
std::optional<AuditOutcome> parseAuditOutcome(std::string_view s) { return parseName<AuditOutcome>(kOutcomeNames, s); }

const std::vector<std::string_view>& auditKindNames() {
  static const std::vector<std::string_view> names(kKindNames.begin(), kKindNames.end());
  return names;
}

const std::vector<std::string_view>& auditOutcomeNames() {
  static const std::vector<std::string_view> names(kOutcomeNames.begin(), kOutcomeNames.end());
  return names;
}

// ---------------------------------------------------------------------------------------------
// Building

AuditEntryBuilder::AuditEntryBuilder(AuditKind kind, AuditOutcome outcome, std::string_view actor, std::int64_t at_ms) {
  entry_.at_ms = at_ms;
  entry_.kind = kind;
  entry_.actor = std::string(actor);
  entry_.outcome = outcome;
}

AuditEntryBuilder& AuditEntryBuilder::clinic(std::string_view clinic) {
  entry_.clinic = std::string(clinic);
  return *this;
}

AuditEntryBuilder& AuditEntryBuilder::patient(std::string_view patient_key) {
  entry_.patient_key = std::string(patient_key);
  return *this;
}

AuditEntryBuilder& AuditEntryBuilder::partner(std::string_view partner_id, std::string_view purpose) {
  entry_.partner_id = std::string(partner_id);
  entry_.purpose = std::string(purpose);
  return *this;
}

AuditEntryBuilder& AuditEntryBuilder::resource(std::string_view type, std::string_view id) {
  entry_.resource_type = std::string(type);
  entry_.resource_id = std::string(id);
  return *this;
}

AuditEntryBuilder& AuditEntryBuilder::resource(std::string_view type, std::string_view id, privacy::ClassSet classes) {
  entry_.classes = privacy::classSetName(classes);
  return resource(type, id);
}

AuditEntryBuilder& AuditEntryBuilder::labels(std::string labels) {
  entry_.labels = std::move(labels);
  return *this;
}

AuditEntryBuilder& AuditEntryBuilder::consent(std::string_view consent_id, std::int64_t version) {
  entry_.consent_id = std::string(consent_id);
  entry_.consent_version = version;
  return *this;
}

AuditEntryBuilder& AuditEntryBuilder::reason(std::string reason) {
  entry_.reason = std::move(reason);
  return *this;
}

AuditEntryBuilder& AuditEntryBuilder::policy(std::string_view policy_version) {
  entry_.policy_version = std::string(policy_version);
  return *this;
}

AuditEntryBuilder& AuditEntryBuilder::detail(std::string json) {
  entry_.detail = std::move(json);
  return *this;
}

// ---------------------------------------------------------------------------------------------
// Rows and hashing

AuditRow toAuditRow(AuditEntry e) {
  return AuditRow{e.seq,
                  e.at_ms,
                  std::string(auditKindName(e.kind)),
                  std::move(e.actor),
                  std::move(e.clinic),
                  std::move(e.patient_key),
                  std::move(e.partner_id),
                  std::move(e.purpose),
                  std::move(e.resource_type),
                  std::move(e.resource_id),
                  std::move(e.classes),
                  std::move(e.labels),
                  std::move(e.consent_id),
                  e.consent_version,
                  std::string(auditOutcomeName(e.outcome)),
                  std::move(e.reason),
                  std::move(e.policy_version),
                  std::move(e.detail),
                  std::move(e.prev_hash),
                  std::move(e.hash),
                  std::move(e.instance_id)};
}

Result<AuditEntry> fromAuditRow(AuditRow row) {
  const auto kind = parseAuditKind(row.kind);
  const auto outcome = parseAuditOutcome(row.outcome);
  if (!kind || !outcome) {
    return makeError(ErrorCode::Storage,
                     "audit log row seq " + std::to_string(row.seq) + " has an unknown " + (kind ? "outcome" : "kind") +
                         ": the row was altered",
                     "audit_log", "run `fhir-gateway audit verify` to locate every altered row");
  }
  return AuditEntry{row.seq,
                    row.at_ms,
                    *kind,
                    std::move(row.actor),
                    std::move(row.clinic),
                    std::move(row.patient_key),
                    std::move(row.partner_id),
                    std::move(row.purpose),
                    std::move(row.resource_type),
                    std::move(row.resource_id),
                    std::move(row.classes),
                    std::move(row.labels),
                    std::move(row.consent_id),
                    row.consent_version,
                    *outcome,
                    std::move(row.reason),
                    std::move(row.policy_version),
                    std::move(row.detail),
                    std::move(row.prev_hash),
                    std::move(row.hash),
                    std::move(row.instance_id)};
}

std::optional<ChainVersion> chainVersionOf(std::string_view hash) {
  if (isLowerHex(hash, 64)) return ChainVersion::V1;
  if (hash.starts_with(kKeyedHashPrefix) && isLowerHex(hash.substr(kKeyedHashPrefix.size()), 64)) {
    return ChainVersion::V2;
  }
  if (hash.starts_with(kInstanceHashPrefix) && isLowerHex(hash.substr(kInstanceHashPrefix.size()), 64)) {
    return ChainVersion::V3;
  }
  return std::nullopt;
}

std::string canonicalAuditBytes(const AuditEntry& e, ChainVersion version) {
  std::string out;
  out.reserve(512);
  appendCanonical(out, e, auditKindName(e.kind), auditOutcomeName(e.outcome), version);
  return out;
}

std::string canonicalAuditBytes(const AuditRow& row, ChainVersion version) {
  std::string out;
  out.reserve(512);
  appendCanonical(out, row, row.kind, row.outcome, version);
  return out;
}

std::string entryHash(const AuditEntry& e) { return ids::sha256Hex(canonicalAuditBytes(e)); }

std::string keyedEntryHash(const crypto::SecretKey& chain_key, const AuditEntry& e, ChainVersion version) {
  const auto prefix = version == ChainVersion::V2 ? kKeyedHashPrefix : kInstanceHashPrefix;
  return std::string(prefix) + crypto::hmacSha256Hex(chain_key, canonicalAuditBytes(e, version));
}

std::string chainStartMarker(const crypto::SecretKey& chain_key, std::int64_t last_unkeyed_seq) {
  return std::to_string(last_unkeyed_seq) + ":" + crypto::hmacSha256Hex(chain_key, chainStartMessage(last_unkeyed_seq));
}

std::optional<std::int64_t> readChainStartMarker(const crypto::SecretKey& chain_key, std::string_view marker) {
  const auto colon = marker.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 18) return std::nullopt;
  std::int64_t seq = 0;
  for (char c : marker.substr(0, colon)) {
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + (c - '0');
  }
  const auto mac = marker.substr(colon + 1);
  if (!isLowerHex(mac, 64) || !ids::constantTimeEquals(mac, crypto::hmacSha256Hex(chain_key, chainStartMessage(seq)))) {
    return std::nullopt;
  }
  return seq;
}

// ---------------------------------------------------------------------------------------------
// Appending

Status validateAuditEntry(const AuditEntry& e) {
  if (e.at_ms <= 0) return entryError("at_ms", "is not set");
  if (static_cast<std::size_t>(e.kind) >= kKindNames.size()) return entryError("kind", "is not a known kind");
  if (static_cast<std::size_t>(e.outcome) >= kOutcomeNames.size()) {
    return entryError("outcome", "is not a known outcome");
  }
  if (e.actor.empty()) return entryError("actor", "is empty (use the token id, or \"gateway\")");
  const std::pair<std::string_view, const std::string*> ids[] = {
      {"actor", &e.actor},
      {"clinic", &e.clinic},
      {"patient_key", &e.patient_key},
      {"partner_id", &e.partner_id},
      {"purpose", &e.purpose},
      {"resource_type", &e.resource_type},
      {"resource_id", &e.resource_id},
      {"classes", &e.classes},
      {"labels", &e.labels},
      {"consent_id", &e.consent_id},
      {"policy_version", &e.policy_version},
      {"instance_id", &e.instance_id},
  };
  for (const auto& [name, value] : ids) {
    GW_TRY(checkText(name, *value, kMaxIdBytes));
  }
  GW_TRY(checkText("reason", e.reason, kMaxReasonBytes));
  // Canonical class names only, so the class filter can match whole names.
  const auto classes = privacy::parseClassSet(e.classes);
  if (!classes || privacy::classSetName(*classes) != e.classes) {
    return entryError("classes", "is not in classSetName form (\"general\", \"sud\", \"mh\", \"sud,mh\" or empty)");
  }
  if (!e.labels.empty()) {
    std::string_view rest = e.labels;
    while (true) {
      const auto comma = rest.find(',');
      const auto code = rest.substr(0, comma);
      if (code.empty() || code.find_first_of(" \"'") != std::string_view::npos) {
        return entryError("labels", "must be label codes separated by single commas, without spaces or quotes");
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (e.consent_version < 0) return entryError("consent_version", "is negative");
  if (!e.detail.empty()) {
    if (e.detail.size() > kMaxDetailBytes) {
      return entryError("detail",
                        "is " + std::to_string(e.detail.size()) + " bytes; at most " + std::to_string(kMaxDetailBytes));
    }
    rapidjson::Document doc;
    if (!json::parse(e.detail, doc) || !doc.IsObject()) return entryError("detail", "is not a JSON object");
  }
  return ok();
}

Result<ChainTail> chainEntries(const crypto::SecretKey& chain_key, ChainTail tail, std::vector<AuditEntry>& entries) {
  if (chain_key.empty()) {
    return makeError(ErrorCode::Internal, "no audit-chain secret to seal the log's rows with", "audit_log",
                     "open the store with its keyring before appending");
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (auto st = validateAuditEntry(entries[i]); !st) {
      auto e = st.error();
      e.message = "entry " + std::to_string(i) + ": " + e.message;
      return e;
    }
  }
  for (auto& e : entries) {
    e.seq = tail.seq + 1;
    e.prev_hash = std::move(tail.hash);
    e.hash = keyedEntryHash(chain_key, e);
    tail.seq = e.seq;
    tail.hash = e.hash;
  }
  return tail;
}

// ---------------------------------------------------------------------------------------------
// Verification

std::string_view chainProblemName(ChainProblem p) {
  switch (p) {
    case ChainProblem::HashMismatch: return "hash-mismatch";
    case ChainProblem::PrevHashMismatch: return "prev-hash-mismatch";
    case ChainProblem::SeqGap: return "seq-gap";
    case ChainProblem::AnchorMismatch: return "anchor-mismatch";
    case ChainProblem::Truncated: return "truncated";
    case ChainProblem::UnkeyedRow: return "unkeyed-row";
    case ChainProblem::StartMarker: return "start-marker";
    case ChainProblem::AnchorForged: return "anchor-forged";
  }
  return "hash-mismatch";
}

std::string_view anchorStatusName(AnchorStatus s) {
  switch (s) {
    case AnchorStatus::None: return "none";
    case AnchorStatus::Ok: return "ok";
    case AnchorStatus::Truncated: return "truncated";
    case AnchorStatus::Rewritten: return "rewritten";
  }
  return "none";
}

void addReportBreak(VerifyReport& report, ChainBreak b) {
  report.ok = false;
  ++report.break_count;
  const auto at = std::upper_bound(report.breaks.begin(), report.breaks.end(), b.seq,
                                   [](std::int64_t seq, const ChainBreak& x) { return seq < x.seq; });
  report.breaks.insert(at, std::move(b));
  if (report.breaks.size() > kMaxReportedBreaks) report.breaks.pop_back();
}

ChainVerifier::ChainVerifier(ChainKeying keying, std::optional<ChainAnchor> anchor)
    : keying_(std::move(keying)), anchor_(std::move(anchor)) {
  report_.head_hash = std::string(kGenesisHash);
  if (keying_.key == nullptr) return;  // an unkeyed log: every row must be v1
  if (!keying_.start_marker) {
    addBreak(0, ChainProblem::StartMarker,
             "the marker of where the keyed chain begins (deployment secret '" + std::string(kChainStartSecretName) +
                 "') is missing, so unkeyed (v1) rows cannot be told from rows rewritten without the master key: "
                 "check the log against a published anchor");
  } else if (auto seq = readChainStartMarker(*keying_.key, *keying_.start_marker)) {
    last_unkeyed_seq_ = *seq;
  } else {
    addBreak(0, ChainProblem::StartMarker,
             "the marker of where the keyed chain begins (deployment secret '" + std::string(kChainStartSecretName) +
                 "') does not check with the audit-chain secret: it was altered");
  }
  // Without a trustworthy marker, no v1 row is accepted: rows of the keyed era are all v2.
  report_.keyed_from_seq = last_unkeyed_seq_.value_or(0) + 1;
}

void ChainVerifier::addBreak(std::int64_t seq, ChainProblem problem, std::string message) {
  report_.ok = false;
  ++report_.break_count;
  if (report_.breaks.size() < kMaxReportedBreaks) report_.breaks.push_back({seq, problem, std::move(message)});
}

void ChainVerifier::add(const AuditRow& e) {
  const std::int64_t expected_seq = report_.last_seq + 1;
  const std::string seq_text = std::to_string(e.seq);
  if (e.seq != expected_seq) {
    addBreak(expected_seq, ChainProblem::SeqGap,
             "seq " + std::to_string(expected_seq) +
                 (e.seq - 1 > expected_seq ? " to " + std::to_string(e.seq - 1) : std::string()) +
                 " missing (next row is seq " + seq_text + "): rows were deleted");
  } else if (e.prev_hash != report_.head_hash) {
    addBreak(e.seq, ChainProblem::PrevHashMismatch,
             "seq " + seq_text + " does not link to the row before it: rows were inserted or " +
                 "removed and renumbered, or the previous row was altered and re-hashed");
  }
  const auto version = chainVersionOf(e.hash);
  bool matches = false;
  if (version == ChainVersion::V1) {
    ++report_.unkeyed_rows;
    canonical_.clear();
    appendCanonical(canonical_, e, e.kind, e.outcome, ChainVersion::V1);
    // v1 bytes never held the instance id: one on such a row was put there later.
    matches = ids::sha256Hex(canonical_) == e.hash && e.instance_id.empty();
    // A v1 row is only believable where the log was written before the chain was keyed.
    if (keying_.key != nullptr && (keyed_seen_ || !last_unkeyed_seq_ || e.seq > *last_unkeyed_seq_)) {
      addBreak(e.seq, ChainProblem::UnkeyedRow,
               "seq " + seq_text + " carries an unkeyed (v1) hash where the keyed chain had begun" +
                   (last_unkeyed_seq_ ? " (after seq " + std::to_string(*last_unkeyed_seq_) + ")" : std::string()) +
                   ": it was written or rewritten by someone without the master key");
      matches = true;  // one break per row
    }
  } else if (version == ChainVersion::V2 || version == ChainVersion::V3) {
    keyed_seen_ = true;
    if (keying_.key == nullptr) {
      if (report_.keyed_from_seq == 0) {
        report_.keyed_from_seq = e.seq;
        addBreak(e.seq, ChainProblem::StartMarker,
                 "seq " + seq_text + " is keyed (v" + std::string(*version == ChainVersion::V2 ? "2" : "3") +
                     ") but the database has no audit-chain secret to check it with: " +
                     "the data_keys row 'audit-chain' was deleted");
      }
      matches = true;  // reported once above
    } else {
      canonical_.clear();
      appendCanonical(canonical_, e, e.kind, e.outcome, *version);
      const auto prefix = *version == ChainVersion::V2 ? kKeyedHashPrefix : kInstanceHashPrefix;
      const std::string expected = std::string(prefix) + crypto::hmacSha256Hex(*keying_.key, canonical_);
      // v2 bytes do not hold the instance id either: on such a row it can only have been set later.
      matches = ids::constantTimeEquals(expected, e.hash) && (*version == ChainVersion::V3 || e.instance_id.empty());
    }
  }
  if (!matches) {
    addBreak(e.seq, ChainProblem::HashMismatch,
             "seq " + seq_text + " does not match its hash: the row was altered after it was written");
  }
  if (anchor_ && e.seq == anchor_->seq) {
    anchor_seen_ = true;
    if (e.hash != anchor_->hash) {
      report_.anchor.status = AnchorStatus::Rewritten;
      addBreak(e.seq, ChainProblem::AnchorMismatch,
               "seq " + seq_text + " has another hash than the anchor: the log was rewritten up to here");
    }
  }
  report_.last_seq = e.seq;
  report_.head_hash = e.hash;
  ++report_.rows;
}

VerifyReport ChainVerifier::finish() {
  report_.anchor.anchor = anchor_;
  if (anchor_) {
    if (!anchor_seen_ && anchor_->seq > report_.last_seq) {
      report_.anchor.status = AnchorStatus::Truncated;
      addBreak(report_.last_seq + 1, ChainProblem::Truncated,
               "the log ends at seq " + std::to_string(report_.last_seq) + " but the anchor names seq " +
                   std::to_string(anchor_->seq) + ": rows after " + std::to_string(report_.last_seq) + " were removed");
    } else if (!anchor_seen_ && anchor_->seq > 0) {
      report_.anchor.status = AnchorStatus::Rewritten;
      addBreak(anchor_->seq, ChainProblem::AnchorMismatch,
               "the anchor's row, seq " + std::to_string(anchor_->seq) + ", is missing from the log");
    } else if (report_.anchor.status == AnchorStatus::None) {
      report_.anchor.status = AnchorStatus::Ok;  // seen with its hash, or seq 0: the empty log's anchor
    }
  }
  if (!report_.ok) {
    std::sort(report_.breaks.begin(), report_.breaks.end(),
              [](const ChainBreak& a, const ChainBreak& b) { return a.seq < b.seq; });
    GW_LOG(Warn, Store, "audit_chain_broken")
        .kv("first_seq", report_.breaks.front().seq)
        .kv("problem", chainProblemName(report_.breaks.front().problem))
        .kv("breaks", report_.break_count);
  }
  return std::move(report_);
}

}  // namespace gw::store

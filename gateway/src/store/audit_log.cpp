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
constexpr std::array<std::string_view, 8> kKindNames = {
    "decision", "cancel", "disclosure", "consent", "audit-read", "audit-verify", "key-rotation", "record-read",
};
constexpr std::array<std::string_view, 9> kOutcomeNames = {
    "permit", "deny", "redact", "cancelled", "delivered", "retrying", "failed", "ok", "error",
};
static_assert(kKindNames.size() == static_cast<std::size_t>(AuditKind::RecordRead) + 1);
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
void appendCanonical(std::string& out, const Row& e, std::string_view kind, std::string_view outcome) {
  out.append("gw-audit-v1\n");
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
                  std::move(e.hash)};
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
                    std::move(row.hash)};
}

std::string canonicalAuditBytes(const AuditEntry& e) {
  std::string out;
  out.reserve(512);
  appendCanonical(out, e, auditKindName(e.kind), auditOutcomeName(e.outcome));
  return out;
}

std::string canonicalAuditBytes(const AuditRow& row) {
  std::string out;
  out.reserve(512);
  appendCanonical(out, row, row.kind, row.outcome);
  return out;
}

std::string entryHash(const AuditEntry& e) { return ids::sha256Hex(canonicalAuditBytes(e)); }

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

Result<ChainTail> chainEntries(ChainTail tail, std::vector<AuditEntry>& entries) {
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
    e.hash = entryHash(e);
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
  }
  return "hash-mismatch";
}

ChainVerifier::ChainVerifier(std::optional<ChainAnchor> anchor) : anchor_(std::move(anchor)) {
  report_.head_hash = std::string(kGenesisHash);
}

void ChainVerifier::addBreak(std::int64_t seq, ChainProblem problem, std::string message) {
  report_.ok = false;
  ++report_.break_count;
  if (report_.breaks.size() < kMaxReportedBreaks) report_.breaks.push_back({seq, problem, std::move(message)});
}

void ChainVerifier::add(const AuditRow& e) {
  const std::int64_t expected_seq = report_.last_seq + 1;
  if (e.seq != expected_seq) {
    addBreak(expected_seq, ChainProblem::SeqGap,
             "seq " + std::to_string(expected_seq) +
                 (e.seq - 1 > expected_seq ? " to " + std::to_string(e.seq - 1) : std::string()) +
                 " missing (next row is seq " + std::to_string(e.seq) + "): rows were deleted");
  } else if (e.prev_hash != report_.head_hash) {
    addBreak(e.seq, ChainProblem::PrevHashMismatch,
             "seq " + std::to_string(e.seq) + " does not link to the row before it: rows were inserted or " +
                 "removed and renumbered, or the previous row was altered and re-hashed");
  }
  canonical_.clear();
  appendCanonical(canonical_, e, e.kind, e.outcome);
  if (ids::sha256Hex(canonical_) != e.hash) {
    addBreak(e.seq, ChainProblem::HashMismatch,
             "seq " + std::to_string(e.seq) + " does not match its hash: the row was altered after it was written");
  }
  if (anchor_ && e.seq == anchor_->seq) {
    anchor_seen_ = true;
    if (e.hash != anchor_->hash) {
      addBreak(e.seq, ChainProblem::AnchorMismatch,
               "seq " + std::to_string(e.seq) + " has another hash than the anchor: the log was rewritten up to here");
    }
  }
  report_.last_seq = e.seq;
  report_.head_hash = e.hash;
  ++report_.rows;
}

VerifyReport ChainVerifier::finish() {
  if (anchor_ && !anchor_seen_ && anchor_->seq > report_.last_seq) {
    addBreak(report_.last_seq + 1, ChainProblem::Truncated,
             "the log ends at seq " + std::to_string(report_.last_seq) + " but the anchor names seq " +
                 std::to_string(anchor_->seq) + ": rows after " + std::to_string(report_.last_seq) + " were removed");
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

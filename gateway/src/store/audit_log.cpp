#include "store/audit_log.hpp"

#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <utility>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace gw::store {
namespace {

using namespace Poco::Data::Keywords;
using Poco::Data::Session;
using Poco::Data::Statement;

constexpr std::size_t kMaxIdBytes = 256;
constexpr std::size_t kMaxReasonBytes = 1024;
constexpr std::size_t kMaxDetailBytes = 4096;
// Rows per read while verifying: large enough that the per-statement cost vanishes, small
// enough that memory does not grow with the table.
constexpr int kVerifyChunk = 2048;
// Rows per INSERT execution: one statement compile per chunk, and buffers that stay small
// whatever the batch size.
constexpr std::size_t kInsertChunk = 512;

constexpr const char* kColumns =
    "seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, "
    "labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash";

Error storageError(std::string_view what, const Poco::Exception& e) {
  return makeError(ErrorCode::Storage, std::string(what) + ": " + e.displayText(), "sqlite",
                   "check the disk and the database file; the request can be retried");
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

void appendCanonical(std::string& out, const AuditEntry& e) {
  out.append("gw-audit-v1\n");
  appendField(out, "seq", e.seq);
  appendField(out, "at_ms", e.at_ms);
  appendField(out, "kind", e.kind);
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
  appendField(out, "outcome", e.outcome);
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

// Column buffers for SELECT ... INTO: one vector per column, reused between chunks.
struct Columns {
  std::vector<Poco::Int64> seq, at_ms, consent_version;
  std::vector<std::string> kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id,
      classes, labels, consent_id, outcome, reason, policy_version, detail, prev_hash, hash;

  void into(Statement& st) {
    st, Poco::Data::Keywords::into(seq), Poco::Data::Keywords::into(at_ms), Poco::Data::Keywords::into(kind),
        Poco::Data::Keywords::into(actor), Poco::Data::Keywords::into(clinic), Poco::Data::Keywords::into(patient_key),
        Poco::Data::Keywords::into(partner_id), Poco::Data::Keywords::into(purpose),
        Poco::Data::Keywords::into(resource_type), Poco::Data::Keywords::into(resource_id),
        Poco::Data::Keywords::into(classes), Poco::Data::Keywords::into(labels), Poco::Data::Keywords::into(consent_id),
        Poco::Data::Keywords::into(consent_version), Poco::Data::Keywords::into(outcome),
        Poco::Data::Keywords::into(reason), Poco::Data::Keywords::into(policy_version),
        Poco::Data::Keywords::into(detail), Poco::Data::Keywords::into(prev_hash), Poco::Data::Keywords::into(hash);
  }

  // Binds each column vector as the parameters of an INSERT in kColumns order (one row per
  // element, one execute for all).
  void use(Statement& st) {
    using Poco::Data::Keywords::use;
    st, use(seq), use(at_ms), use(kind), use(actor), use(clinic), use(patient_key), use(partner_id), use(purpose),
        use(resource_type), use(resource_id), use(classes), use(labels), use(consent_id), use(consent_version),
        use(outcome), use(reason), use(policy_version), use(detail), use(prev_hash), use(hash);
  }

  void push(const AuditEntry& e) {
    seq.push_back(e.seq);
    at_ms.push_back(e.at_ms);
    kind.push_back(e.kind);
    actor.push_back(e.actor);
    clinic.push_back(e.clinic);
    patient_key.push_back(e.patient_key);
    partner_id.push_back(e.partner_id);
    purpose.push_back(e.purpose);
    resource_type.push_back(e.resource_type);
    resource_id.push_back(e.resource_id);
    classes.push_back(e.classes);
    labels.push_back(e.labels);
    consent_id.push_back(e.consent_id);
    consent_version.push_back(e.consent_version);
    outcome.push_back(e.outcome);
    reason.push_back(e.reason);
    policy_version.push_back(e.policy_version);
    detail.push_back(e.detail);
    prev_hash.push_back(e.prev_hash);
    hash.push_back(e.hash);
  }

  void clear() {
    for (auto* v : {&seq, &at_ms, &consent_version}) v->clear();
    for (auto* v : {&kind, &actor, &clinic, &patient_key, &partner_id, &purpose, &resource_type, &resource_id, &classes,
                    &labels, &consent_id, &outcome, &reason, &policy_version, &detail, &prev_hash, &hash}) {
      v->clear();
    }
  }

  std::size_t size() const { return seq.size(); }

  // Moves row i out (the buffers are cleared before the next chunk anyway).
  void take(std::size_t i, AuditEntry& e) {
    e.seq = seq[i];
    e.at_ms = at_ms[i];
    e.kind = std::move(kind[i]);
    e.actor = std::move(actor[i]);
    e.clinic = std::move(clinic[i]);
    e.patient_key = std::move(patient_key[i]);
    e.partner_id = std::move(partner_id[i]);
    e.purpose = std::move(purpose[i]);
    e.resource_type = std::move(resource_type[i]);
    e.resource_id = std::move(resource_id[i]);
    e.classes = std::move(classes[i]);
    e.labels = std::move(labels[i]);
    e.consent_id = std::move(consent_id[i]);
    e.consent_version = consent_version[i];
    e.outcome = std::move(outcome[i]);
    e.reason = std::move(reason[i]);
    e.policy_version = std::move(policy_version[i]);
    e.detail = std::move(detail[i]);
    e.prev_hash = std::move(prev_hash[i]);
    e.hash = std::move(hash[i]);
  }
};

}  // namespace

const std::vector<std::string_view>& auditKinds() {
  static const std::vector<std::string_view> kinds = {
      audit_kind::kDecision,  audit_kind::kCancel,      audit_kind::kDisclosure,   audit_kind::kConsent,
      audit_kind::kAuditRead, audit_kind::kAuditVerify, audit_kind::kKeyRotation,
  };
  return kinds;
}

const std::vector<std::string_view>& auditOutcomes() {
  static const std::vector<std::string_view> outcomes = {
      audit_outcome::kPermit,   audit_outcome::kDeny,   audit_outcome::kRedact,
      audit_outcome::kCancelled, audit_outcome::kDelivered, audit_outcome::kRetrying,
      audit_outcome::kFailed,   audit_outcome::kOk,     audit_outcome::kError,
  };
  return outcomes;
}

bool isAuditKind(std::string_view s) {
  const auto& k = auditKinds();
  return std::find(k.begin(), k.end(), s) != k.end();
}

bool isAuditOutcome(std::string_view s) {
  const auto& o = auditOutcomes();
  return std::find(o.begin(), o.end(), s) != o.end();
}

std::string canonicalAuditBytes(const AuditEntry& e) {
  std::string out;
  out.reserve(512);
  appendCanonical(out, e);
  return out;
}

std::string entryHash(const AuditEntry& e) { return ids::sha256Hex(canonicalAuditBytes(e)); }

// ---------------------------------------------------------------------------------------------
// Appender

// Buffers and the tail query, kept per connection. The INSERT binds column vectors and runs once
// per chunk of rows: Poco 1.11 re-prepares a SQLite statement on every execute(), which cost as
// much as the inserts themselves when it ran once per row. (Poco refuses to bind an empty
// vector, so the INSERT is built after the rows are filled in.)
struct AuditAppender::PerSession {
  Columns rows;
  std::vector<Poco::Int64> tail_seq;
  std::vector<std::string> tail_hash;
  Statement tail;

  explicit PerSession(Session& s) : tail(s) {
    // seq is the INTEGER PRIMARY KEY (the rowid): the last row is one b-tree descent away.
    tail << "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", into(tail_seq), into(tail_hash);
  }
};

AuditAppender::AuditAppender() = default;
AuditAppender::~AuditAppender() = default;

Status AuditAppender::validate(const AuditEntry& e) {
  if (e.at_ms <= 0) return entryError("at_ms", "is not set");
  if (!isAuditKind(e.kind)) return entryError("kind", "'" + e.kind.substr(0, 40) + "' is not a known kind");
  if (!isAuditOutcome(e.outcome)) {
    return entryError("outcome", "'" + e.outcome.substr(0, 40) + "' is not a known outcome");
  }
  if (e.actor.empty()) return entryError("actor", "is empty (use the token id, or \"gateway\")");
  const std::pair<std::string_view, const std::string*> ids[] = {
      {"actor", &e.actor},           {"clinic", &e.clinic},
      {"patient_key", &e.patient_key}, {"partner_id", &e.partner_id},
      {"purpose", &e.purpose},       {"resource_type", &e.resource_type},
      {"resource_id", &e.resource_id}, {"classes", &e.classes},
      {"labels", &e.labels},         {"consent_id", &e.consent_id},
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
      return entryError("detail", "is " + std::to_string(e.detail.size()) + " bytes; at most " +
                                      std::to_string(kMaxDetailBytes));
    }
    rapidjson::Document doc;
    if (!json::parse(e.detail, doc) || !doc.IsObject()) return entryError("detail", "is not a JSON object");
  }
  return ok();
}

AuditAppender::Tail AuditAppender::readTail(Session&) {
  per_session_->tail_seq.clear();
  per_session_->tail_hash.clear();
  per_session_->tail.execute();
  if (per_session_->tail_seq.empty()) return Tail{0, std::string(kGenesisHash)};
  return Tail{per_session_->tail_seq.front(), per_session_->tail_hash.front()};
}

void AuditAppender::insertAll(Session& session, std::vector<AuditEntry>& entries, const Tail& tail) {
  Tail t = tail;
  auto& rows = per_session_->rows;
  for (std::size_t start = 0; start < entries.size(); start += kInsertChunk) {
    rows.clear();
    const std::size_t end = std::min(entries.size(), start + kInsertChunk);
    for (std::size_t i = start; i < end; ++i) {
      auto& e = entries[i];
      e.seq = t.seq + 1;
      e.prev_hash = t.hash;
      e.hash = entryHash(e);
      rows.push(e);
      t.seq = e.seq;
      t.hash = e.hash;
    }
    Statement insert(session);
    insert << "INSERT INTO audit_log(" << kColumns << ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    rows.use(insert);
    insert.execute();
  }
  rows.clear();
  pending_ = std::move(t);
}

Status AuditAppender::append(Session& session, std::vector<AuditEntry>& entries) {
  // Whatever an earlier append left pending belongs to a transaction that is over: a committed()
  // after an empty append must never promote it (it may have been rolled back).
  pending_.reset();
  if (entries.empty()) return ok();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (auto st = validate(entries[i]); !st) {
      auto e = st.error();
      e.message = "entry " + std::to_string(i) + ": " + e.message;
      return e;
    }
  }
  if (!session.isTransaction()) {
    return makeError(ErrorCode::Internal, "audit entries must be appended inside the caller's write transaction",
                     "audit_log", "call append between session.begin() and session.commit()");
  }
  // Another connection (or a reopened one): nothing cached belongs to it.
  if (session_id_ != session.impl()) {
    session_id_ = session.impl();
    per_session_.reset();
    confirmed_.reset();
  }
  pending_.reset();
  const std::optional<Tail> cached = std::exchange(confirmed_, std::nullopt);
  try {
    if (!per_session_) per_session_ = std::make_unique<PerSession>(session);
    if (!cached) {
      insertAll(session, entries, readTail(session));
      return ok();
    }
    try {
      insertAll(session, entries, *cached);
      return ok();
    } catch (const Poco::Exception&) {
      // A stale cache (another connection appended) fails on the first row, whose seq is taken;
      // SQLite undoes just that row, so re-read the tail and retry once in this transaction.
      // If the tail is unchanged, or is one of our own rows (a later row failed), it was not
      // staleness: the caller gets the error.
      per_session_ = std::make_unique<PerSession>(session);  // statements that threw are not reused
      const Tail actual = readTail(session);
      const bool ours = actual.seq >= entries.front().seq && actual.seq <= entries.back().seq &&
                        actual.hash == entries[static_cast<std::size_t>(actual.seq - entries.front().seq)].hash;
      if (ours || (actual.seq == cached->seq && actual.hash == cached->hash)) throw;
      GW_LOG(Info, Store, "audit_tail_reread").kv("cached_seq", cached->seq).kv("actual_seq", actual.seq);
      insertAll(session, entries, actual);
      return ok();
    }
  } catch (const Poco::Exception& e) {
    per_session_.reset();
    pending_.reset();
    return storageError("appending to the audit log", e);
  }
}

void AuditAppender::committed() {
  if (pending_) confirmed_ = std::move(pending_);
  pending_.reset();
}

void AuditAppender::rolledBack() {
  confirmed_.reset();
  pending_.reset();
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

Result<VerifyReport> verifyChain(Session& session, const std::optional<ChainAnchor>& anchor) {
  VerifyReport report;
  report.head_hash = std::string(kGenesisHash);
  auto addBreak = [&report](std::int64_t seq, ChainProblem problem, std::string message) {
    report.ok = false;
    ++report.break_count;
    if (report.breaks.size() < kMaxReportedBreaks) report.breaks.push_back({seq, problem, std::move(message)});
  };
  bool anchor_seen = false;
  try {
    Poco::Int64 after = 0;
    int chunk = kVerifyChunk;
    Columns cols;
    Statement st(session);
    // Keyset chunks rather than one long read: no read transaction is held open for the whole
    // table (which would stop WAL checkpoints), and memory is one chunk.
    st << "SELECT " << kColumns << " FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", use(after), use(chunk);
    cols.into(st);
    AuditEntry e;
    std::string canonical;
    while (true) {
      cols.clear();
      st.execute();
      const std::size_t n = cols.size();
      if (n == 0) break;
      for (std::size_t i = 0; i < n; ++i) {
        cols.take(i, e);
        const std::int64_t expected_seq = report.last_seq + 1;
        if (e.seq != expected_seq) {
          addBreak(expected_seq, ChainProblem::SeqGap,
                   "seq " + std::to_string(expected_seq) +
                       (e.seq - 1 > expected_seq ? " to " + std::to_string(e.seq - 1) : std::string()) +
                       " missing (next row is seq " + std::to_string(e.seq) + "): rows were deleted");
        } else if (e.prev_hash != report.head_hash) {
          addBreak(e.seq, ChainProblem::PrevHashMismatch,
                   "seq " + std::to_string(e.seq) + " does not link to the row before it: rows were inserted or " +
                       "removed and renumbered, or the previous row was altered and re-hashed");
        }
        canonical.clear();
        appendCanonical(canonical, e);
        if (ids::sha256Hex(canonical) != e.hash) {
          addBreak(e.seq, ChainProblem::HashMismatch,
                   "seq " + std::to_string(e.seq) +
                       " does not match its hash: the row was altered after it was written");
        }
        if (anchor && e.seq == anchor->seq) {
          anchor_seen = true;
          if (e.hash != anchor->hash) {
            addBreak(e.seq, ChainProblem::AnchorMismatch,
                     "seq " + std::to_string(e.seq) +
                         " has another hash than the anchor: the log was rewritten up to here");
          }
        }
        report.last_seq = e.seq;
        report.head_hash = std::move(e.hash);
        ++report.rows;
      }
      after = report.last_seq;
    }
  } catch (const Poco::Exception& e) {
    return storageError("reading the audit log", e);
  }
  if (anchor && !anchor_seen && anchor->seq > report.last_seq) {
    addBreak(report.last_seq + 1, ChainProblem::Truncated,
             "the log ends at seq " + std::to_string(report.last_seq) + " but the anchor names seq " +
                 std::to_string(anchor->seq) + ": rows after " + std::to_string(report.last_seq) + " were removed");
  }
  if (!report.ok) {
    std::sort(report.breaks.begin(), report.breaks.end(),
              [](const ChainBreak& a, const ChainBreak& b) { return a.seq < b.seq; });
    GW_LOG(Warn, Store, "audit_chain_broken")
        .kv("first_seq", report.breaks.front().seq)
        .kv("problem", chainProblemName(report.breaks.front().problem))
        .kv("breaks", report.break_count);
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Query

Result<AuditPage> queryAudit(Session& session, const AuditQuery& q) {
  const int limit = std::clamp(q.limit, 1, kMaxAuditPageSize);
  std::string sql = "SELECT " + std::string(kColumns) + " FROM audit_log WHERE seq > ?";
  std::vector<std::string> text;  // values bound in order after after_seq
  std::vector<Poco::Int64> numbers;
  auto textFilter = [&](std::string_view column, const std::string& value) {
    if (value.empty()) return;
    sql += " AND " + std::string(column) + " = ?";
    text.push_back(value);
  };
  textFilter("clinic", q.clinic);
  textFilter("patient_key", q.patient_key);
  textFilter("partner_id", q.partner_id);
  textFilter("outcome", q.outcome);
  textFilter("kind", q.kind);
  if (q.data_class) {
    // classes is a canonical comma list: match whole names only ("sud" must not match "sud2").
    sql += " AND instr(',' || classes || ',', ?) > 0";
    text.push_back("," + std::string(privacy::className(*q.data_class)) + ",");
  }
  if (q.from_ms) {
    sql += " AND at_ms >= ?";
    numbers.push_back(*q.from_ms);
  }
  if (q.to_ms) {
    sql += " AND at_ms < ?";
    numbers.push_back(*q.to_ms);
  }
  sql += " ORDER BY seq LIMIT ?";
  try {
    Statement st(session);
    st << sql;
    st, bind(static_cast<Poco::Int64>(q.after_seq));
    for (const auto& t : text) st, bind(t);
    for (const auto n : numbers) st, bind(n);
    st, bind(limit + 1);  // one more than asked: tells whether there is a next page
    Columns cols;
    cols.into(st);
    st.execute();
    AuditPage page;
    const std::size_t n = std::min<std::size_t>(cols.size(), static_cast<std::size_t>(limit));
    page.entries.resize(n);
    for (std::size_t i = 0; i < n; ++i) cols.take(i, page.entries[i]);
    if (cols.size() > n) page.next_after_seq = page.entries.back().seq;
    return page;
  } catch (const Poco::Exception& e) {
    return storageError("reading the audit log", e);
  }
}

}  // namespace gw::store

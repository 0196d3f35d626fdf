// audit_log rows in SQLite: the store chains and verifies them (store/audit_log.hpp); this file
// only moves them in and out.
#include <Poco/Data/Statement.h>

#include <algorithm>

#include "store/sqlite_backend.hpp"
#include "store/sqlite_statement.hpp"

namespace gw::store::sqlite {
namespace {

using Poco::Data::Session;
using Poco::Data::Statement;

constexpr const char* kColumns =
    "seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, "
    "labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash, instance_id";

// Column buffers for SELECT ... INTO and INSERT: one vector per column.
struct Columns {
  std::vector<Poco::Int64> seq, at_ms, consent_version;
  std::vector<std::string> kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes,
      labels, consent_id, outcome, reason, policy_version, detail, prev_hash, hash, instance_id;

  void into(Statement& st) {
    using Poco::Data::Keywords::into;
    st, into(seq), into(at_ms), into(kind), into(actor), into(clinic), into(patient_key), into(partner_id), into(purpose),
        into(resource_type), into(resource_id), into(classes), into(labels), into(consent_id), into(consent_version),
        into(outcome), into(reason), into(policy_version), into(detail), into(prev_hash), into(hash), into(instance_id);
  }

  std::size_t size() const { return seq.size(); }

  // Moves the first n rows out.
  std::vector<AuditRow> take(std::size_t n) {
    std::vector<AuditRow> rows(std::min(n, size()));
    for (std::size_t i = 0; i < rows.size(); ++i) {
      rows[i] = AuditRow{seq[i],
                         at_ms[i],
                         std::move(kind[i]),
                         std::move(actor[i]),
                         std::move(clinic[i]),
                         std::move(patient_key[i]),
                         std::move(partner_id[i]),
                         std::move(purpose[i]),
                         std::move(resource_type[i]),
                         std::move(resource_id[i]),
                         std::move(classes[i]),
                         std::move(labels[i]),
                         std::move(consent_id[i]),
                         consent_version[i],
                         std::move(outcome[i]),
                         std::move(reason[i]),
                         std::move(policy_version[i]),
                         std::move(detail[i]),
                         std::move(prev_hash[i]),
                         std::move(hash[i]),
                         std::move(instance_id[i])};
    }
    return rows;
  }
};

}  // namespace

std::string insertAuditSql() {
  return std::string("INSERT INTO audit_log(") + kColumns + ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
}

PreparedStatement& bindAuditRow(PreparedStatement& insert, const AuditRow& e) {
  return insert.i64(1, e.seq)
      .i64(2, e.at_ms)
      .text(3, e.kind)
      .text(4, e.actor)
      .text(5, e.clinic)
      .text(6, e.patient_key)
      .text(7, e.partner_id)
      .text(8, e.purpose)
      .text(9, e.resource_type)
      .text(10, e.resource_id)
      .text(11, e.classes)
      .text(12, e.labels)
      .text(13, e.consent_id)
      .i64(14, e.consent_version)
      .text(15, e.outcome)
      .text(16, e.reason)
      .text(17, e.policy_version)
      .text(18, e.detail)
      .text(19, e.prev_hash)
      .text(20, e.hash)
      .text(21, e.instance_id);
}

Result<std::vector<AuditRow>> selectAuditRows(Session& s, std::int64_t after_seq, int limit) {
  try {
    // Keyset chunks rather than one long read: no read transaction is held open for the whole
    // table (which would stop WAL checkpoints), and memory is one chunk.
    Poco::Int64 after = after_seq;
    Columns cols;
    Statement st(s);
    st << "SELECT " << kColumns << " FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", Poco::Data::Keywords::use(after),
        Poco::Data::Keywords::use(limit);
    cols.into(st);
    st.execute();
    return cols.take(cols.size());
  } catch (const Poco::Exception& e) {
    return storageError("reading the audit log", e);
  }
}

Result<ChainTail> selectAuditTail(Session& s) {
  try {
    std::vector<Poco::Int64> seq;
    std::vector<std::string> hash;
    s << "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", Poco::Data::Keywords::into(seq),
        Poco::Data::Keywords::into(hash), Poco::Data::Keywords::now;
    if (seq.empty()) return ChainTail{};
    return ChainTail{seq.front(), std::move(hash.front())};
  } catch (const Poco::Exception& e) {
    return storageError("reading the audit log's head", e);
  }
}

std::vector<AuditRow> selectAuditRowsBySeq(Session& s, const std::vector<Poco::Int64>& seqs) {
  if (seqs.empty()) return {};
  std::string sql = "SELECT " + std::string(kColumns) + " FROM audit_log WHERE seq IN (";
  for (std::size_t i = 0; i < seqs.size(); ++i) sql += i == 0 ? "?" : ",?";
  sql += ") ORDER BY seq";
  Statement st(s);
  st << sql;
  for (const auto seq : seqs) st, Poco::Data::Keywords::bind(seq);
  Columns cols;
  cols.into(st);
  st.execute();
  return cols.take(cols.size());
}

Result<std::vector<AuditRow>> selectAuditQuery(Session& s, const AuditQuery& q, int limit) {
  using Poco::Data::Keywords::bind;
  std::string sql = "SELECT " + std::string(kColumns) + " FROM audit_log WHERE seq > ?";
  std::vector<std::string> text;  // values bound in order after after_seq
  std::vector<Poco::Int64> numbers;
  auto textFilter = [&](std::string_view column, std::string_view value) {
    if (value.empty()) return;
    sql += " AND " + std::string(column) + " = ?";
    text.emplace_back(value);
  };
  textFilter("clinic", q.clinic);
  if (!q.patient_key.empty() && !q.legacy_patient_key.empty()) {
    sql += " AND patient_key IN (?, ?)";
    text.push_back(q.patient_key);
    text.push_back(q.legacy_patient_key);
  } else {
    textFilter("patient_key", q.patient_key);
  }
  textFilter("partner_id", q.partner_id);
  if (q.outcome) textFilter("outcome", auditOutcomeName(*q.outcome));
  if (q.kind) textFilter("kind", auditKindName(*q.kind));
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
    Statement st(s);
    st << sql;
    st, bind(static_cast<Poco::Int64>(q.after_seq));
    for (const auto& t : text) st, bind(t);
    for (const auto n : numbers) st, bind(n);
    st, bind(limit);
    Columns cols;
    cols.into(st);
    st.execute();
    return cols.take(cols.size());
  } catch (const Poco::Exception& e) {
    return storageError("reading the audit log", e);
  }
}

}  // namespace gw::store::sqlite

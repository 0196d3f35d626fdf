// The compliance console's rows (schema 8, docs/console-api.md): break-glass disclosures,
// accounting requests, and the partner and period view of the log (rows and counts from the
// covering index audit_by_partner_period).
#include <Poco/Data/Statement.h>

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

#include "store/sqlite_backend.hpp"

namespace gw::store::sqlite {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;

namespace {

constexpr const char* kBreakGlassColumns =
    "id, clinic, patient_key, partner_id, recipient, authorised_by, nature, opened_by, opened_at, expires_at, ended_at, "
    "ended_by";
constexpr const char* kRequestColumns =
    "id, clinic, patient_key, received_on, due_on, note, state, delivered_on, created_by, delivered_by, created_at, "
    "updated_at";

// The WHERE clause of the partner view (kinds that are decisions about a partner's data only;
// audit reads never count) and its bound values, in order after the leading ones.
struct PartnerFilter {
  std::string sql;
  std::vector<std::string> text;
  std::vector<Poco::Int64> numbers;
};

PartnerFilter partnerFilter(const PartnerLogQuery& q) {
  PartnerFilter f;
  f.sql = " WHERE partner_id=? AND clinic=? AND at_ms>=? AND at_ms<? AND kind IN ('decision','cancel','disclosure')";
  if (q.outcome) {
    f.sql += " AND outcome=?";
    f.text.emplace_back(auditOutcomeName(*q.outcome));
  }
  if (q.data_class) {
    f.sql += " AND instr(',' || classes || ',', ?) > 0";
    f.text.push_back("," + std::string(privacy::className(*q.data_class)) + ",");
  }
  if (!q.reason.empty()) {
    f.sql += " AND reason=?";
    f.text.push_back(q.reason);
  }
  return f;
}

void bindPartnerFilter(Statement& st, const PartnerLogQuery& q, const PartnerFilter& f) {
  st, bind(q.partner_id), bind(q.clinic), bind(static_cast<Poco::Int64>(q.from_ms)), bind(static_cast<Poco::Int64>(q.to_ms));
  for (const auto& t : f.text) st, bind(t);
}

}  // namespace

std::vector<BreakGlass> selectBreakGlasses(Session& s, std::string_view clinic_v) {
  std::string clinic(clinic_v);
  Statement q(s);
  q << "SELECT " << kBreakGlassColumns << " FROM break_glass" << (clinic.empty() ? "" : " WHERE clinic=?")
    << " ORDER BY opened_at DESC, id";
  if (!clinic.empty()) q, use(clinic);
  q.execute();
  RecordSet rs(q);
  std::vector<BreakGlass> out;
  for (std::size_t i = 0; i < rs.rowCount(); ++i) {
    BreakGlass b;
    b.id = str(rs, 0, i);
    b.clinic = str(rs, 1, i);
    b.patient_key = str(rs, 2, i);
    b.partner_id = str(rs, 3, i);
    b.recipient = str(rs, 4, i);
    b.authorised_by = str(rs, 5, i);
    b.nature = str(rs, 6, i);
    b.opened_by = str(rs, 7, i);
    b.opened_at_ms = i64(rs, 8, i);
    b.expires_at_ms = i64(rs, 9, i);
    b.ended_at_ms = i64(rs, 10, i);
    b.ended_by = str(rs, 11, i);
    out.push_back(std::move(b));
  }
  return out;
}

void putBreakGlass(Session& s, const BreakGlass& b) {
  std::string id = b.id, clinic = b.clinic, patient = b.patient_key, partner = b.partner_id, recipient = b.recipient,
              authorised = b.authorised_by, nature = b.nature, opened_by = b.opened_by, ended_by = b.ended_by;
  Poco::Int64 opened = b.opened_at_ms, expires = b.expires_at_ms, ended = b.ended_at_ms;
  s << "INSERT OR REPLACE INTO break_glass(" << kBreakGlassColumns << ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", use(id),
      use(clinic), use(patient), use(partner), use(recipient), use(authorised), use(nature), use(opened_by), use(opened),
      use(expires), use(ended), use(ended_by), now;
}

std::vector<AccountingRequest> selectAccountingRequests(Session& s, std::string_view clinic_v) {
  std::string clinic(clinic_v);
  Statement q(s);
  q << "SELECT " << kRequestColumns << " FROM accounting_requests WHERE clinic=? "
    << "ORDER BY received_on DESC, created_at DESC, id",
      use(clinic);
  q.execute();
  RecordSet rs(q);
  std::vector<AccountingRequest> out;
  for (std::size_t i = 0; i < rs.rowCount(); ++i) {
    AccountingRequest r;
    r.id = str(rs, 0, i);
    r.clinic = str(rs, 1, i);
    r.patient_key = str(rs, 2, i);
    r.received_on = str(rs, 3, i);
    r.due_on = str(rs, 4, i);
    r.note = str(rs, 5, i);
    r.state = str(rs, 6, i);
    r.delivered_on = str(rs, 7, i);
    r.created_by = str(rs, 8, i);
    r.delivered_by = str(rs, 9, i);
    r.created_at_ms = i64(rs, 10, i);
    r.updated_at_ms = i64(rs, 11, i);
    out.push_back(std::move(r));
  }
  return out;
}

void putAccountingRequest(Session& s, const AccountingRequest& r) {
  std::string id = r.id, clinic = r.clinic, patient = r.patient_key, received = r.received_on, due = r.due_on, note = r.note,
              state = r.state, delivered = r.delivered_on, created_by = r.created_by, delivered_by = r.delivered_by;
  Poco::Int64 created = r.created_at_ms, updated = r.updated_at_ms;
  s << "INSERT OR REPLACE INTO accounting_requests(" << kRequestColumns << ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", use(id),
      use(clinic), use(patient), use(received), use(due), use(note), use(state), use(delivered), use(created_by),
      use(delivered_by), use(created), use(updated), now;
}

namespace {

// Rows of [from_ms, to_ms) counted from the covering index, added into `out`.
void countRows(Session& s, PartnerLogQuery q, std::int64_t from_ms, std::int64_t to_ms,
               std::map<std::tuple<std::string, std::string, std::string, std::string>, std::int64_t>& out) {
  if (from_ms >= to_ms) return;
  q.from_ms = from_ms;
  q.to_ms = to_ms;
  const auto f = partnerFilter(q);
  Statement st(s);
  st << "SELECT kind, outcome, classes, reason, COUNT(*) FROM audit_log INDEXED BY audit_by_partner_period" << f.sql
     << " GROUP BY kind, outcome, classes, reason";
  bindPartnerFilter(st, q, f);
  std::vector<std::string> kind, outcome, classes, reason;
  std::vector<Poco::Int64> count;
  st, into(kind), into(outcome), into(classes), into(reason), into(count);
  st.execute();
  for (std::size_t i = 0; i < kind.size(); ++i) out[{kind[i], outcome[i], classes[i], reason[i]}] += count[i];
}

}  // namespace

std::vector<PartnerLogCount> selectPartnerLogCounts(Session& s, const PartnerLogQuery& q) {
  std::map<std::tuple<std::string, std::string, std::string, std::string>, std::int64_t> counts;
  // Whole hours from the counters; the hours the period cuts into from the rows themselves.
  const std::int64_t first_hour = (q.from_ms + kPartnerLogBucketMs - 1) / kPartnerLogBucketMs;
  const std::int64_t end_hour = q.to_ms / kPartnerLogBucketMs;
  if (q.from_ms < 0 || first_hour >= end_hour) {
    countRows(s, q, q.from_ms, q.to_ms, counts);
  } else {
    countRows(s, q, q.from_ms, first_hour * kPartnerLogBucketMs, counts);
    countRows(s, q, end_hour * kPartnerLogBucketMs, q.to_ms, counts);
    std::string sql =
        "SELECT kind, outcome, classes, reason, SUM(count) FROM audit_hourly_counts WHERE partner_id=? AND clinic=? "
        "AND hour>=? AND hour<?";
    std::vector<std::string> text;
    if (q.outcome) {
      sql += " AND outcome=?";
      text.emplace_back(auditOutcomeName(*q.outcome));
    }
    if (q.data_class) {
      sql += " AND instr(',' || classes || ',', ?) > 0";
      text.push_back("," + std::string(privacy::className(*q.data_class)) + ",");
    }
    if (!q.reason.empty()) {
      sql += " AND reason=?";
      text.push_back(q.reason);
    }
    sql += " GROUP BY kind, outcome, classes, reason";
    Statement st(s);
    st << sql, bind(q.partner_id), bind(q.clinic), bind(static_cast<Poco::Int64>(first_hour)),
        bind(static_cast<Poco::Int64>(end_hour));
    for (const auto& t : text) st, bind(t);
    std::vector<std::string> kind, outcome, classes, reason;
    std::vector<Poco::Int64> count;
    st, into(kind), into(outcome), into(classes), into(reason), into(count);
    st.execute();
    for (std::size_t i = 0; i < kind.size(); ++i) counts[{kind[i], outcome[i], classes[i], reason[i]}] += count[i];
  }
  std::vector<PartnerLogCount> out;
  out.reserve(counts.size());
  for (const auto& [k, n] : counts) {
    const auto& [kind, outcome, classes, reason] = k;
    out.push_back({kind, outcome, classes, reason, n});
  }
  return out;
}

void addPartnerLogCounts(Session& s, const std::vector<PartnerLogBucket>& buckets) {
  for (const auto& b : buckets) {
    std::string partner = b.partner_id, clinic = b.clinic, kind = b.kind, outcome = b.outcome, classes = b.classes,
                reason = b.reason;
    Poco::Int64 hour = b.hour, count = b.count;
    s << "INSERT INTO audit_hourly_counts(partner_id, clinic, hour, kind, outcome, classes, reason, count) "
         "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(partner_id, clinic, hour, kind, outcome, classes, reason) "
         "DO UPDATE SET count = count + excluded.count",
        use(partner), use(clinic), use(hour), use(kind), use(outcome), use(classes), use(reason), use(count), now;
  }
}

// The seqs of a page in time order (at_ms, then seq), found in the covering index so that a page
// stops after `limit` rows instead of sorting every row of the period; after_seq continues after
// that row's place in the same order.
std::vector<Poco::Int64> selectPartnerLogSeqs(Session& s, const PartnerLogQuery& q, int limit) {
  const auto f = partnerFilter(q);
  std::optional<Poco::Int64> after_at;
  if (q.after_seq > 0) {
    std::vector<Poco::Int64> at;
    Poco::Int64 seq = q.after_seq;
    s << "SELECT at_ms FROM audit_log WHERE seq=?", use(seq), into(at), now;
    if (!at.empty()) after_at = at.front();
  }
  Statement st(s);
  st << "SELECT seq FROM audit_log INDEXED BY audit_by_partner_period" << f.sql
     << (after_at ? " AND (at_ms>? OR (at_ms=? AND seq>?))" : "") << " ORDER BY at_ms, seq LIMIT ?";
  bindPartnerFilter(st, q, f);
  if (after_at) st, bind(*after_at), bind(*after_at), bind(static_cast<Poco::Int64>(q.after_seq));
  std::vector<Poco::Int64> seqs;
  st, bind(limit), into(seqs);
  st.execute();
  return seqs;
}

}  // namespace gw::store::sqlite

// The compliance console's rows (schema 8, docs/console-api.md): break-glass disclosures,
// accounting requests, and the partner and period view of the log (rows and counts from the
// covering index audit_by_partner_period).
#include <Poco/Data/Statement.h>

#include <algorithm>
#include <optional>

#include "store/partner_log_sql.hpp"
#include "store/sqlite_backend.hpp"

namespace gw::store::sqlite {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;

namespace {

PartnerLogDialect sqliteDialect() {
  return {[] { return std::string("?"); }, "instr"};
}

// Binds the leading four parameters of a partnerLogFilter (the period in `from`..`to`) and its text.
void bindPartnerFilter(Statement& st, const PartnerLogQuery& q, std::int64_t from, std::int64_t to,
                       const PartnerLogFilter& f) {
  st, bind(q.partner_id), bind(q.clinic), bind(static_cast<Poco::Int64>(from)), bind(static_cast<Poco::Int64>(to));
  for (const auto& t : f.text) st, bind(t);
}

}  // namespace

std::vector<BreakGlass> selectBreakGlasses(Session& s, std::string_view clinic_v, std::string_view patient_v) {
  std::string clinic(clinic_v), patient(patient_v);
  Statement q(s);
  // Empty filters match everything: one statement for the console's list and the send's re-check.
  q << "SELECT " << kBreakGlassColumns << " FROM break_glass WHERE (?1='' OR clinic=?1) AND (?2='' OR patient_key=?2)"
    << " ORDER BY opened_at DESC, id",
      use(clinic), use(patient);
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

int endBreakGlassIfOpen(Session& s, std::string_view id_v, std::int64_t ended_at_ms, std::string_view ended_by_v) {
  std::string id(id_v), ended_by(ended_by_v);
  Poco::Int64 ended_at = ended_at_ms;
  Statement update(s);
  update << "UPDATE break_glass SET ended_at=?, ended_by=? WHERE id=? AND ended_at=0 AND ended_by=''", use(ended_at),
      use(ended_by), use(id);
  return static_cast<int>(update.execute());
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

// (kind, outcome, classes, reason, count) rows of a statement, added into `tally`.
void tallyRows(Statement& st, PartnerLogTally& tally) {
  std::vector<std::string> kind, outcome, classes, reason;
  std::vector<Poco::Int64> count;
  st, into(kind), into(outcome), into(classes), into(reason), into(count);
  st.execute();
  for (std::size_t i = 0; i < kind.size(); ++i) tally.add(kind[i], outcome[i], classes[i], reason[i], count[i]);
}

}  // namespace

std::vector<PartnerLogCount> selectPartnerLogCounts(Session& s, const PartnerLogQuery& q) {
  PartnerLogTally tally;
  const auto spans = partnerLogSpans(q);
  for (const auto& [from, to] : spans.row_periods) {
    // Counted from the covering index alone.
    auto dialect = sqliteDialect();
    const auto f = partnerLogFilter(q, dialect, false);
    Statement st(s);
    st << "SELECT kind, outcome, classes, reason, COUNT(*) FROM audit_log INDEXED BY audit_by_partner_period" << f.sql
       << " GROUP BY kind, outcome, classes, reason";
    bindPartnerFilter(st, q, from, to, f);
    tallyRows(st, tally);
  }
  if (spans.first_hour < spans.end_hour) {
    auto dialect = sqliteDialect();
    const auto f = partnerLogFilter(q, dialect, true);
    Statement st(s);
    st << "SELECT kind, outcome, classes, reason, SUM(count) FROM audit_hourly_counts" << f.sql
       << " GROUP BY kind, outcome, classes, reason";
    bindPartnerFilter(st, q, spans.first_hour, spans.end_hour, f);
    tallyRows(st, tally);
  }
  return tally.counts();
}

// The seqs of a page in time order (at_ms, then seq), found in the covering index so that a page
// stops after `limit` rows instead of sorting every row of the period; after_seq continues after
// that row's place in the same order.
std::vector<Poco::Int64> selectPartnerLogSeqs(Session& s, const PartnerLogQuery& q, int limit) {
  std::optional<Poco::Int64> after_at;
  if (q.after_seq > 0) {
    std::vector<Poco::Int64> at;
    Poco::Int64 seq = q.after_seq;
    s << "SELECT at_ms FROM audit_log WHERE seq=?", use(seq), into(at), now;
    if (!at.empty()) after_at = at.front();
  }
  auto dialect = sqliteDialect();
  const auto f = partnerLogPage(q, dialect, after_at.has_value());
  Statement st(s);
  st << "SELECT seq FROM audit_log INDEXED BY audit_by_partner_period" << f.sql;
  bindPartnerFilter(st, q, q.from_ms, q.to_ms, f);
  if (after_at) st, bind(*after_at), bind(*after_at), bind(static_cast<Poco::Int64>(q.after_seq));
  std::vector<Poco::Int64> seqs;
  st, bind(limit), into(seqs);
  st.execute();
  return seqs;
}

}  // namespace gw::store::sqlite

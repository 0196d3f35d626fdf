#include "store/partner_log_sql.hpp"

#include "privacy/data_class.hpp"
#include "store/audit_log.hpp"

namespace gw::store {

PartnerLogFilter partnerLogFilter(const PartnerLogQuery& q, PartnerLogDialect& d, bool hourly) {
  PartnerLogFilter f;
  const std::string_view period = hourly ? "hour" : "at_ms";
  // One marker per statement: the order of evaluation inside an expression is unspecified, and
  // PostgreSQL's markers are numbered.
  const auto partner = d.next_marker();
  const auto clinic = d.next_marker();
  const auto start = d.next_marker();
  const auto end = d.next_marker();
  f.sql = " WHERE partner_id=" + partner + " AND clinic=" + clinic;
  f.sql += " AND " + std::string(period) + ">=" + start + " AND " + std::string(period) + "<" + end;
  // The counters hold these kinds only; audit reads never count.
  if (!hourly) f.sql += " AND kind IN ('decision','cancel','disclosure')";
  if (q.outcome) {
    f.sql += " AND outcome=" + d.next_marker();
    f.text.emplace_back(auditOutcomeName(*q.outcome));
  }
  if (q.data_class) {
    // classes is a canonical comma list: match whole names only ("sud" must not match "sud2").
    f.sql += " AND " + std::string(d.find_function) + "(',' || classes || ',', " + d.next_marker() + ") > 0";
    f.text.push_back("," + std::string(privacy::className(*q.data_class)) + ",");
  }
  if (!q.reason.empty()) {
    f.sql += " AND reason=" + d.next_marker();
    f.text.push_back(q.reason);
  }
  return f;
}

PartnerLogSpans partnerLogSpans(const PartnerLogQuery& q) {
  PartnerLogSpans spans;
  auto rows = [&](std::int64_t from, std::int64_t to) {
    if (from < to) spans.row_periods.emplace_back(from, to);
  };
  const std::int64_t first_hour = (q.from_ms + kPartnerLogBucketMs - 1) / kPartnerLogBucketMs;
  const std::int64_t end_hour = q.to_ms / kPartnerLogBucketMs;
  if (q.from_ms < 0 || first_hour >= end_hour) {
    rows(q.from_ms, q.to_ms);
    return spans;
  }
  rows(q.from_ms, first_hour * kPartnerLogBucketMs);
  rows(end_hour * kPartnerLogBucketMs, q.to_ms);
  spans.first_hour = first_hour;
  spans.end_hour = end_hour;
  return spans;
}

void PartnerLogTally::add(std::string kind, std::string outcome, std::string classes, std::string reason, std::int64_t n) {
  counts_[{std::move(kind), std::move(outcome), std::move(classes), std::move(reason)}] += n;
}

std::vector<PartnerLogCount> PartnerLogTally::counts() const {
  std::vector<PartnerLogCount> out;
  out.reserve(counts_.size());
  for (const auto& [k, n] : counts_) {
    const auto& [kind, outcome, classes, reason] = k;
    out.push_back({kind, outcome, classes, reason, n});
  }
  return out;
}

PartnerLogFilter partnerLogPage(const PartnerLogQuery& q, PartnerLogDialect& d, bool after) {
  auto f = partnerLogFilter(q, d, false);
  if (after) {
    const auto at = d.next_marker(), at_again = d.next_marker(), seq = d.next_marker();
    f.sql += " AND (at_ms>" + at + " OR (at_ms=" + at_again + " AND seq>" + seq + "))";
  }
  f.sql += " ORDER BY at_ms, seq LIMIT " + d.next_marker();
  return f;
}

}  // namespace gw::store

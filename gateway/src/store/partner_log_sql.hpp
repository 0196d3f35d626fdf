#pragma once
// The compliance console's SQL (schema 8), written once for both backends
// (store/sqlite_console.cpp, store/postgres_queries.cpp): the columns of its own tables, and for
// the partner and period view the filter, the split of a period into whole hours (from the
// counters) and the parts around them (from the rows), and the page's keyset order.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "store/store.hpp"
#include "store/store_backend.hpp"

namespace gw::store {

/// The columns of break_glass and accounting_requests, in the order both backends read them.
inline constexpr const char* kBreakGlassColumns =
    "id, clinic, patient_key, partner_id, recipient, authorised_by, nature, opened_by, opened_at, expires_at, ended_at, "
    "ended_by";
inline constexpr const char* kRequestColumns =
    "id, clinic, patient_key, received_on, due_on, note, state, delivered_on, created_by, delivered_by, created_at, "
    "updated_at";

// The partner view's SQL, written once for both backends: their dialects differ only in the
// parameter markers and the name of the substring function (`instr` / `strpos`, same arguments).
struct PartnerLogDialect {
  /// The next parameter's marker ("?" each time, or "$1", "$2", ...).
  std::function<std::string()> next_marker;
  std::string_view find_function;
};
/// A WHERE clause of the partner view and the text values it binds after its leading four
/// integers-or-text parameters (partner_id, clinic, then the period's start and end).
struct PartnerLogFilter {
  std::string sql;
  std::vector<std::string> text;
};
/// Over audit_log (`hourly` false: at_ms in [start, end) ms, decision, cancel and disclosure rows
/// only) or audit_hourly_counts (`hourly` true: hour in [start, end)); narrowed by outcome, class
/// and reason.
PartnerLogFilter partnerLogFilter(const PartnerLogQuery& q, PartnerLogDialect& dialect, bool hourly);
/// What a partner view's counts are made of: whole hours from the hourly counters, the parts of
/// hours the period cuts into (or a period before 1970) from the rows themselves.
struct PartnerLogSpans {
  std::vector<std::pair<std::int64_t, std::int64_t>> row_periods;  // [from_ms, to_ms), none empty
  std::int64_t first_hour = 0;                                     // [first_hour, end_hour) ...
  std::int64_t end_hour = 0;                                       // ... from the counters (may be empty)
};
PartnerLogSpans partnerLogSpans(const PartnerLogQuery& q);
/// Counts keyed by (kind, outcome, classes, reason), summed over the spans.
class PartnerLogTally {
 public:
  void add(std::string kind, std::string outcome, std::string classes, std::string reason, std::int64_t n);
  std::vector<PartnerLogCount> counts() const;

 private:
  std::map<std::tuple<std::string, std::string, std::string, std::string>, std::int64_t> counts_;
};
/// The tail of a page query over audit_log after its FROM: the filter, the keyset condition
/// (`after`: at_ms and seq of the row the page continues after, bound as at_ms, at_ms, seq) and
/// the order (at_ms, then seq) with the limit bound last.
PartnerLogFilter partnerLogPage(const PartnerLogQuery& q, PartnerLogDialect& dialect, bool after);

}  // namespace gw::store

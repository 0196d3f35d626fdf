// Queries both kinds of PostgreSQL connection run (the reader's and the writer's).
#include <algorithm>
#include <optional>

#include "store/partner_log_sql.hpp"
#include "store/postgres_backend.hpp"

namespace gw::store::postgres {
namespace {

constexpr const char* kAuditColumns =
    "seq, at_ms, kind, actor, clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes, "
    "labels, consent_id, consent_version, outcome, reason, policy_version, detail, prev_hash, hash, instance_id";

std::vector<AuditRow> auditRowsOf(const PgResult& r) {
  std::vector<AuditRow> rows(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    auto& a = rows[static_cast<std::size_t>(i)];
    a.seq = r.i64(i, 0);
    a.at_ms = r.i64(i, 1);
    a.kind = r.text(i, 2);
    a.actor = r.text(i, 3);
    a.clinic = r.text(i, 4);
    a.patient_key = r.text(i, 5);
    a.partner_id = r.text(i, 6);
    a.purpose = r.text(i, 7);
    a.resource_type = r.text(i, 8);
    a.resource_id = r.text(i, 9);
    a.classes = r.text(i, 10);
    a.labels = r.text(i, 11);
    a.consent_id = r.text(i, 12);
    a.consent_version = r.i64(i, 13);
    a.outcome = r.text(i, 14);
    a.reason = r.text(i, 15);
    a.policy_version = r.text(i, 16);
    a.detail = r.text(i, 17);
    a.prev_hash = r.text(i, 18);
    a.hash = r.text(i, 19);
    a.instance_id = r.text(i, 20);
  }
  return rows;
}

// Columns of every outbox read here but bundle and disclosure.
constexpr const char* kItemColumns =
    "id, partner_id, clinic, record_key, record_version, patient_key, entry_count, state, attempts, "
    "next_attempt_at, last_error, outcome, created_at, updated_at, data_class";

OutboxRow itemRow(const PgResult& r, int i) {
  OutboxRow row;
  row.id = r.i64(i, 0);
  row.partner_id = r.text(i, 1);
  row.clinic = r.text(i, 2);
  row.record_key = r.text(i, 3);
  row.record_version = r.i32(i, 4);
  row.patient_key = r.text(i, 5);
  row.entry_count = r.i32(i, 6);
  row.state = parseOutboxState(r.text(i, 7)).value_or(OutboxState::Queued);
  row.attempts = r.i32(i, 8);
  row.next_attempt_at_ms = r.i64(i, 9);
  row.last_error = r.text(i, 10);
  row.created_at_ms = r.i64(i, 12);
  row.updated_at_ms = r.i64(i, 13);
  row.data_class = r.text(i, 14);
  return row;
}

}  // namespace

std::vector<DataKeyRow> selectDataKeys(PgConnection& c) {
  auto r = c.exec(
      "SELECT data_class, key_version, wrapped, master_key_id, created_at FROM data_keys "
      "ORDER BY data_class, key_version");
  std::vector<DataKeyRow> rows;
  rows.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) rows.push_back({r.text(i, 0), r.i32(i, 1), r.bytes(i, 2), r.text(i, 3), r.i64(i, 4)});
  return rows;
}

std::vector<AuditRow> selectAuditRows(PgConnection& c, std::int64_t after_seq, int limit) {
  return auditRowsOf(c.exec(std::string("SELECT ") + kAuditColumns + " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                            Params().i64(after_seq).i64(limit)));
}

ChainTail selectAuditTail(PgConnection& c) {
  auto r = c.exec("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1");
  if (r.rows() == 0) return ChainTail{};
  return ChainTail{r.i64(0, 0), r.text(0, 1)};
}

std::vector<AuditRow> selectAuditQuery(PgConnection& c, const AuditQuery& q, int limit) {
  Params params;
  params.i64(q.after_seq);
  std::string sql = std::string("SELECT ") + kAuditColumns + " FROM audit_log WHERE seq > $1";
  auto next = [&] { return "$" + std::to_string(params.size()); };
  auto textFilter = [&](std::string_view column, std::string_view value) {
    if (value.empty()) return;
    params.text(value);
    sql += " AND " + std::string(column) + " = " + next();
  };
  textFilter("clinic", q.clinic);
  if (!q.patient_key.empty() && !q.legacy_patient_key.empty()) {
    params.text(q.patient_key);
    sql += " AND patient_key IN (" + next();
    params.text(q.legacy_patient_key);
    sql += ", " + next() + ")";
  } else {
    textFilter("patient_key", q.patient_key);
  }
  textFilter("partner_id", q.partner_id);
  if (q.outcome) textFilter("outcome", auditOutcomeName(*q.outcome));
  if (q.kind) textFilter("kind", auditKindName(*q.kind));
  if (q.data_class) {
    // classes is a canonical comma list: match whole names only ("sud" must not match "sud2").
    params.text("," + std::string(privacy::className(*q.data_class)) + ",");
    sql += " AND strpos(',' || classes || ',', " + next() + ") > 0";
  }
  if (q.from_ms) {
    params.i64(*q.from_ms);
    sql += " AND at_ms >= " + next();
  }
  if (q.to_ms) {
    params.i64(*q.to_ms);
    sql += " AND at_ms < " + next();
  }
  params.i64(limit);
  sql += " ORDER BY seq LIMIT " + next();
  return auditRowsOf(c.exec(sql, params));
}

std::vector<DecisionRow> selectDecisionRows(PgConnection& c, std::string_view partner, std::string_view clinic,
                                            std::string_view record_key, int version) {
  auto r = c.exec(
      "SELECT partner_id, resource_type, resource_key, patient_key, outcome, removed_activities, reason, updated_at "
      "FROM resource_decisions WHERE clinic=$1 AND record_key=$2 AND record_version=$3 AND ($4='' OR partner_id=$4) "
      "ORDER BY partner_id, resource_type, resource_key",
      Params().text(clinic).text(record_key).i64(version).text(partner));
  std::vector<DecisionRow> rows;
  rows.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    rows.push_back({r.text(i, 0), std::string(clinic), std::string(record_key), r.text(i, 1), r.text(i, 2), r.text(i, 3),
                    version, r.text(i, 4), r.text(i, 5), r.text(i, 6), r.i64(i, 7)});
  }
  return rows;
}

std::vector<OutboxRow> selectOutboxList(PgConnection& c, const OutboxQuery& query, int limit) {
  Params params;
  params.i64(query.after_id);
  std::string sql = std::string("SELECT ") + kItemColumns + " FROM outbox WHERE id>$1";
  auto next = [&] { return "$" + std::to_string(params.size()); };
  if (!query.partner_id.empty()) {
    params.text(query.partner_id);
    sql += " AND partner_id=" + next();
  }
  if (query.state) {
    params.text(outboxStateName(*query.state));
    sql += " AND state=" + next();
  }
  if (query.created_before_ms > 0) {
    params.i64(query.created_before_ms);
    sql += " AND created_at<" + next();
  }
  if (!query.clinics.empty()) {
    sql += " AND clinic IN (";
    for (std::size_t i = 0; i < query.clinics.size(); ++i) {
      params.text(query.clinics[i]);
      sql += (i == 0 ? "" : ",") + next();
    }
    sql += ")";
  }
  params.i64(limit);
  sql += " ORDER BY id LIMIT " + next();
  auto r = c.exec(sql, params);
  std::vector<OutboxRow> rows;
  rows.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) rows.push_back(itemRow(r, i));
  return rows;
}

std::optional<OutboxRow> selectOutboxItem(PgConnection& c, std::int64_t item_id) {
  auto r = c.exec(std::string("SELECT ") + kItemColumns + ", disclosure FROM outbox WHERE id=$1", Params().i64(item_id));
  if (r.rows() == 0) return std::nullopt;
  OutboxRow row = itemRow(r, 0);
  row.outcome_sealed = r.bytes(0, 11);
  row.disclosure_sealed = r.bytes(0, 15);
  return row;
}

std::vector<PartnerPause> selectPartnerPauses(PgConnection& c) {
  auto r = c.exec("SELECT partner_id, paused_at, actor, reason FROM partner_pauses ORDER BY partner_id");
  std::vector<PartnerPause> pauses;
  pauses.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) pauses.push_back({r.text(i, 0), r.i64(i, 1), r.text(i, 2), r.text(i, 3)});
  return pauses;
}

std::vector<InstanceRow> selectInstances(PgConnection& c) {
  auto r = c.exec(
      "SELECT instance_id, started_at, last_seen_at, stopped_at, binary_version, config_version, mappers_version, "
      "mappers_loaded_at, last_reload_at, last_reload_error FROM gateway_instances ORDER BY instance_id");
  std::vector<InstanceRow> rows;
  rows.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    rows.push_back({r.text(i, 0), r.i64(i, 1), r.i64(i, 2), r.i64(i, 3), r.text(i, 4), r.text(i, 5), r.text(i, 6),
                    r.i64(i, 7), r.i64(i, 8), r.text(i, 9)});
  }
  return rows;
}

namespace {

PartnerLogDialect postgresDialect() {
  return {[n = 0]() mutable { return "$" + std::to_string(++n); }, "strpos"};
}

// The leading four parameters of a partnerLogFilter (the period in `from`..`to`), then its text.
Params partnerParams(const PartnerLogQuery& q, std::int64_t from, std::int64_t to, const PartnerLogFilter& f) {
  Params params;
  params.text(q.partner_id).text(q.clinic).i64(from).i64(to);
  for (const auto& t : f.text) params.text(t);
  return params;
}

void tallyRows(const PgResult& r, PartnerLogTally& tally) {
  for (int i = 0; i < r.rows(); ++i) tally.add(r.text(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), r.i64(i, 4));
}

}  // namespace

std::vector<BreakGlass> selectBreakGlasses(PgConnection& c, std::string_view clinic, std::string_view patient_key) {
  // Empty filters match everything: one statement for the console's list and the send's re-check.
  auto r = c.exec(std::string("SELECT ") + kBreakGlassColumns +
                      " FROM break_glass WHERE ($1='' OR clinic=$1) AND ($2='' OR patient_key=$2)"
                      " ORDER BY opened_at DESC, id",
                  Params().text(clinic).text(patient_key));
  std::vector<BreakGlass> out(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    auto& b = out[static_cast<std::size_t>(i)];
    b.id = r.text(i, 0);
    b.clinic = r.text(i, 1);
    b.patient_key = r.text(i, 2);
    b.partner_id = r.text(i, 3);
    b.recipient = r.text(i, 4);
    b.authorised_by = r.text(i, 5);
    b.nature = r.text(i, 6);
    b.opened_by = r.text(i, 7);
    b.opened_at_ms = r.i64(i, 8);
    b.expires_at_ms = r.i64(i, 9);
    b.ended_at_ms = r.i64(i, 10);
    b.ended_by = r.text(i, 11);
  }
  return out;
}

std::vector<AccountingRequest> selectAccountingRequests(PgConnection& c, std::string_view clinic) {
  auto r = c.exec(std::string("SELECT ") + kRequestColumns +
                      " FROM accounting_requests WHERE clinic=$1 ORDER BY received_on DESC, created_at DESC, id",
                  Params().text(clinic));
  std::vector<AccountingRequest> out(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    auto& a = out[static_cast<std::size_t>(i)];
    a.id = r.text(i, 0);
    a.clinic = r.text(i, 1);
    a.patient_key = r.text(i, 2);
    a.received_on = r.text(i, 3);
    a.due_on = r.text(i, 4);
    a.note = r.text(i, 5);
    a.state = r.text(i, 6);
    a.delivered_on = r.text(i, 7);
    a.created_by = r.text(i, 8);
    a.delivered_by = r.text(i, 9);
    a.created_at_ms = r.i64(i, 10);
    a.updated_at_ms = r.i64(i, 11);
  }
  return out;
}

std::vector<AuditRow> selectPartnerLogRows(PgConnection& c, const PartnerLogQuery& q, int limit) {
  // The page continues after the row after_seq names, in the same order (as SQLite: a seq that
  // names no row starts from the beginning).
  std::optional<std::int64_t> after_at;
  if (q.after_seq > 0) {
    auto at = c.exec("SELECT at_ms FROM audit_log WHERE seq=$1", Params().i64(q.after_seq));
    if (at.rows() > 0) after_at = at.i64(0, 0);
  }
  auto dialect = postgresDialect();
  const auto f = partnerLogPage(q, dialect, after_at.has_value());
  auto params = partnerParams(q, q.from_ms, q.to_ms, f);
  if (after_at) params.i64(*after_at).i64(*after_at).i64(q.after_seq);
  params.i64(limit);
  return auditRowsOf(c.exec(std::string("SELECT ") + kAuditColumns + " FROM audit_log" + f.sql, params));
}

std::vector<PartnerLogCount> selectPartnerLogCounts(PgConnection& c, const PartnerLogQuery& q) {
  PartnerLogTally tally;
  const auto spans = partnerLogSpans(q);
  for (const auto& [from, to] : spans.row_periods) {
    auto dialect = postgresDialect();
    const auto f = partnerLogFilter(q, dialect, false);
    tallyRows(c.exec("SELECT kind, outcome, classes, reason, COUNT(*) FROM audit_log" + f.sql +
                         " GROUP BY kind, outcome, classes, reason",
                     partnerParams(q, from, to, f)),
              tally);
  }
  if (spans.first_hour < spans.end_hour) {
    auto dialect = postgresDialect();
    const auto f = partnerLogFilter(q, dialect, true);
    tallyRows(c.exec("SELECT kind, outcome, classes, reason, SUM(count) FROM audit_hourly_counts" + f.sql +
                         " GROUP BY kind, outcome, classes, reason",
                     partnerParams(q, spans.first_hour, spans.end_hour, f)),
              tally);
  }
  return tally.counts();
}

std::vector<CopyRow> selectCopyRows(PgConnection& c, const CopyTable& table, const CopyRow* after, int limit) {
  std::string columns, keys;
  for (std::size_t i = 0; i < table.columns.size(); ++i)
    columns += (i == 0 ? "" : ", ") + std::string(table.columns[i].name);
  for (std::size_t k = 0; k < table.key_columns; ++k) keys += (k == 0 ? "" : ", ") + std::string(table.columns[k].name);
  std::string sql = "SELECT " + columns + " FROM " + std::string(table.name);
  Params params;
  if (after) {
    sql += " WHERE (" + keys + ") > (";
    for (std::size_t k = 0; k < table.key_columns; ++k) {
      if (table.columns[k].kind == CopyKind::Int) {
        params.i64((*after)[k].number);
        sql += (k == 0 ? "$" : ", $") + std::to_string(params.size()) + "::bigint";
      } else {
        params.text((*after)[k].text);
        sql += (k == 0 ? "$" : ", $") + std::to_string(params.size()) + "::text";
      }
    }
    sql += ")";
  }
  params.i64(limit);
  sql += " ORDER BY " + keys + " LIMIT $" + std::to_string(params.size());
  auto r = c.exec(sql, params);
  std::vector<CopyRow> rows(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) {
    auto& row = rows[static_cast<std::size_t>(i)];
    row.resize(table.columns.size());
    for (std::size_t col = 0; col < table.columns.size(); ++col) {
      auto& v = row[col];
      const int n = static_cast<int>(col);
      if (r.null(i, n)) {
        v.null = true;
        continue;
      }
      switch (table.columns[col].kind) {
        case CopyKind::Int: v.number = r.i64(i, n); break;
        case CopyKind::Text: v.text = r.text(i, n); break;
        case CopyKind::Bytes: v.text = r.bytes(i, n); break;
      }
    }
  }
  return rows;
}

void insertCopyRows(PgConnection& c, const CopyTable& table, const std::vector<CopyRow>& rows) {
  std::string columns;
  for (std::size_t i = 0; i < table.columns.size(); ++i)
    columns += (i == 0 ? "" : ", ") + std::string(table.columns[i].name);
  // Several rows per statement, under PostgreSQL's 65,535 parameters.
  const std::size_t per_statement = std::max<std::size_t>(1, 30000 / table.columns.size());
  for (std::size_t start = 0; start < rows.size(); start += per_statement) {
    const std::size_t end = std::min(rows.size(), start + per_statement);
    std::string sql = "INSERT INTO " + std::string(table.name) + "(" + columns + ") VALUES";
    Params params;
    for (std::size_t r = start; r < end; ++r) {
      sql += r == start ? "(" : ",(";
      for (std::size_t col = 0; col < table.columns.size(); ++col) {
        const auto& v = rows[r][col];
        sql += col == 0 ? "" : ",";
        if (v.null) {
          sql += "NULL";
          continue;
        }
        switch (table.columns[col].kind) {
          case CopyKind::Int: params.i64(v.number); break;
          case CopyKind::Text: params.text(v.text); break;
          case CopyKind::Bytes: params.bytes(v.text); break;
        }
        sql += "$" + std::to_string(params.size());
      }
      sql += ")";
    }
    c.exec(sql, params);
  }
  // Items queued after the copy get ids above the copied ones.
  if (table.name == "outbox" && !rows.empty()) {
    c.exec("SELECT setval(pg_get_serial_sequence('outbox', 'id'), (SELECT MAX(id) FROM outbox))");
  }
}

}  // namespace gw::store::postgres

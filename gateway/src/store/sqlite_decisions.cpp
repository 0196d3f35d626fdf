// resource_decisions rows of the SQLite backend (schema v6): the last decision per (partner,
// record, resource), as both kinds of connection read them with a prepared statement (the
// writer's statements also write them, sqlite_writer.cpp).
#include "store/sqlite_backend.hpp"
#include "store/sqlite_statement.hpp"

namespace gw::store::sqlite {

const char* const kSelectDecisionsSql =
    "SELECT partner_id, resource_type, resource_key, patient_key, outcome, removed_activities, reason, updated_at "
    "FROM resource_decisions WHERE clinic=?1 AND record_key=?2 AND record_version=?3 AND (?4='' OR partner_id=?4) "
    "ORDER BY partner_id, resource_type, resource_key";

std::vector<DecisionRow> selectDecisionRows(PreparedStatement& select, std::string_view partner, std::string_view clinic,
                                            std::string_view record_key, int version) {
  std::vector<DecisionRow> rows;
  select.text(1, clinic).text(2, record_key).i64(3, version).text(4, partner).each([&](const PreparedStatement& row) {
    rows.push_back({row.columnText(0), std::string(clinic), std::string(record_key), row.columnText(1), row.columnText(2),
                    row.columnText(3), version, row.columnText(4), row.columnText(5), row.columnText(6), row.columnInt(7)});
  });
  return rows;
}

}  // namespace gw::store::sqlite

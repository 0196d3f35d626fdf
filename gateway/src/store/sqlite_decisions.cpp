// resource_decisions rows of the SQLite backend (schema v6): the last decision per (partner,
// record, resource), read and written by both kinds of connection.
#include <Poco/Data/Statement.h>

#include "store/sqlite_backend.hpp"

namespace gw::store::sqlite {

using namespace Poco::Data::Keywords;
using Poco::Data::Session;
using Poco::Data::Statement;

std::vector<DecisionRow> selectDecisionRows(Session& s, std::string_view partner_v, std::string_view clinic_v,
                                            std::string_view record_key_v, int version) {
  std::string partner(partner_v), clinic(clinic_v), record_key(record_key_v);
  std::vector<std::string> partners, types, keys, patients, outcomes, removed, reasons;
  std::vector<Poco::Int64> updated;
  Statement q(s);
  q << "SELECT partner_id, resource_type, resource_key, patient_key, outcome, removed_activities, reason, updated_at "
       "FROM resource_decisions WHERE clinic=? AND record_key=? AND record_version=? AND (?='' OR partner_id=?) "
       "ORDER BY partner_id, resource_type, resource_key",
      use(clinic), use(record_key), use(version), use(partner), use(partner), into(partners), into(types), into(keys),
      into(patients), into(outcomes), into(removed), into(reasons), into(updated);
  q.execute();
  std::vector<DecisionRow> rows(partners.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    rows[i] = {std::move(partners[i]), clinic,         record_key,          std::move(types[i]),
               std::move(keys[i]),     std::move(patients[i]), version, std::move(outcomes[i]),
               std::move(removed[i]),  std::move(reasons[i]),  updated[i]};
  }
  return rows;
}

void putDecisionRows(Session& s, const std::vector<DecisionRow>& rows) {
  if (rows.empty()) return;
  DecisionRow r;
  Poco::Int64 updated = 0;
  Statement put(s);
  put << "INSERT OR REPLACE INTO resource_decisions (partner_id, clinic, record_key, resource_type, resource_key, "
         "patient_key, record_version, outcome, removed_activities, reason, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
      use(r.partner_id), use(r.clinic), use(r.record_key), use(r.resource_type), use(r.resource_key), use(r.patient_key),
      use(r.record_version), use(r.outcome), use(r.removed_activities), use(r.reason), use(updated);
  for (const auto& row : rows) {
    r = row;
    updated = row.updated_at_ms;
    put.execute();
  }
}

void deleteDecisionRows(Session& s, std::string_view clinic_v, std::string_view record_key_v) {
  std::string clinic(clinic_v), record_key(record_key_v);
  s << "DELETE FROM resource_decisions WHERE clinic=? AND record_key=?", use(clinic), use(record_key), now;
}

}  // namespace gw::store::sqlite

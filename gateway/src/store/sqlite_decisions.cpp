// resource_decisions rows of the SQLite backend (schema v6): the last decision per (partner,
// record, resource), as both kinds of connection read them (the writer's prepared statements
// write them, sqlite_writer.cpp).
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
    rows[i] = {std::move(partners[i]),
               clinic,
               record_key,
               std::move(types[i]),
               std::move(keys[i]),
               std::move(patients[i]),
               version,
               std::move(outcomes[i]),
               std::move(removed[i]),
               std::move(reasons[i]),
               updated[i]};
  }
  return rows;
}

}  // namespace gw::store::sqlite

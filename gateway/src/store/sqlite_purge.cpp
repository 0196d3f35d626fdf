// Retention primitives of the SQLite writer: each deletes up to `limit` expired rows of one class
// through the age indexes (schema v4), never by scanning tables.
#include <Poco/Data/Statement.h>

#include "store/sqlite_backend.hpp"

namespace gw::store::sqlite {
namespace {

using namespace Poco::Data::Keywords;
using Poco::Data::Session;
using Poco::Data::Statement;

// Selects (row key, clinic, record_key) with `select`, then deletes each row by key with the
// `deletes` statements (the last one's count is the row's).
PurgedRows purgeSelected(Session& s, const std::string& select, std::initializer_list<const char*> deletes,
                         std::string_view data_class, std::int64_t cutoff_ms, int limit, int cutoff_binds) {
  std::vector<Poco::Int64> rows;
  std::vector<std::string> clinics, record_keys;
  std::string cls(data_class);
  Poco::Int64 cutoff = cutoff_ms;
  Statement q(s);
  q << select;
  for (int i = 0; i < cutoff_binds; ++i) q, use(cutoff);
  q, use(cls), bind(limit), into(rows), into(clinics), into(record_keys);
  q.execute();
  PurgedRows purged;
  Poco::Int64 row = 0;
  std::vector<std::unique_ptr<Statement>> dels;
  for (const char* sql : deletes) {
    dels.push_back(std::make_unique<Statement>(s));
    *dels.back() << sql, use(row);
  }
  for (auto r : rows) {
    row = r;
    std::size_t n = 0;
    for (auto& del : dels) n = del->execute();
    purged.count += static_cast<std::int64_t>(n);
  }
  for (std::size_t i = 0; i < clinics.size(); ++i) {
    purged.records.push_back({std::move(clinics[i]), std::move(record_keys[i])});
  }
  return purged;
}

}  // namespace

PurgedRows purgeRecordVersions(Session& s, std::string_view cls, std::int64_t cutoff_ms, int limit) {
  return purgeSelected(s,
                       "SELECT rowid, clinic, record_key FROM record_versions WHERE received_at<? AND data_class=? LIMIT ?",
                       {"DELETE FROM record_versions WHERE rowid=?"}, cls, cutoff_ms, limit, 1);
}

PurgedRows purgeResources(Session& s, std::string_view cls, std::int64_t cutoff_ms, int limit) {
  return purgeSelected(s, "SELECT rowid, clinic, record_key FROM resources WHERE stored_at<? AND data_class=? LIMIT ?",
                       {"DELETE FROM resources WHERE rowid=?"}, cls, cutoff_ms, limit, 1);
}

PurgedRows purgeFinishedItems(Session& s, std::string_view cls, std::int64_t cutoff_ms, int limit) {
  // Terminal items only, aged from when they last changed (delivered, died, ...): queued and
  // retrying items are never purged, whatever their age. created_at<cutoff is implied by
  // updated_at<cutoff and lets the age index narrow the search.
  return purgeSelected(s,
                       "SELECT id, clinic, record_key FROM outbox WHERE created_at<? AND updated_at<? AND data_class=? "
                       "AND state IN ('delivered','dead','superseded','cancelled') LIMIT ?",
                       {"DELETE FROM deliveries WHERE outbox_id=?", "DELETE FROM outbox WHERE id=?"}, cls, cutoff_ms, limit,
                       2);
}

std::int64_t deleteRecordsIfEmpty(Session& s, const std::vector<RecordKey>& records) {
  // A record with no version, resource or outbox item left goes too (its id may embed an MRN).
  std::string clinic, record_key;
  Statement del(s);
  del << "DELETE FROM records WHERE clinic=? AND record_key=? "
         "AND NOT EXISTS (SELECT 1 FROM record_versions v WHERE v.clinic=records.clinic AND "
         "v.record_key=records.record_key) "
         "AND NOT EXISTS (SELECT 1 FROM resources r WHERE r.clinic=records.clinic AND r.record_key=records.record_key) "
         "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.clinic=records.clinic AND o.record_key=records.record_key)",
      use(clinic), use(record_key);
  // Its last decisions go with it: nothing of the record is left to re-plan.
  Statement del_decisions(s);
  del_decisions << "DELETE FROM resource_decisions WHERE clinic=? AND record_key=?", use(clinic), use(record_key);
  std::int64_t deleted = 0;
  for (const auto& r : records) {
    clinic = r.clinic;
    record_key = r.record_key;
    const auto n = static_cast<std::int64_t>(del.execute());
    if (n > 0) del_decisions.execute();
    deleted += n;
  }
  return deleted;
}

}  // namespace gw::store::sqlite

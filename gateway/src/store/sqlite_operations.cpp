// Operations' rows (docs/operations.md): listing the outbox, replaying a dead item, partner
// pauses, records left invalid or unmapped, and the readiness probe's write.
#include <Poco/Data/Statement.h>

#include "store/sqlite_backend.hpp"

namespace gw::store::sqlite {

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Session;
using Poco::Data::Statement;

namespace {

// Columns of every outbox read here but bundle and disclosure (disclosure only for outboxItem).
constexpr const char* kItemColumns =
    "id, partner_id, clinic, record_key, record_version, patient_key, entry_count, state, attempts, "
    "next_attempt_at, last_error, outcome, created_at, updated_at, data_class";

OutboxRow itemRow(const RecordSet& rs, std::size_t i) {
  OutboxRow r;
  r.id = i64(rs, 0, i);
  r.partner_id = str(rs, 1, i);
  r.clinic = str(rs, 2, i);
  r.record_key = str(rs, 3, i);
  r.record_version = static_cast<int>(i64(rs, 4, i));
  r.patient_key = str(rs, 5, i);
  r.entry_count = static_cast<int>(i64(rs, 6, i));
  r.state = parseOutboxState(str(rs, 7, i)).value_or(OutboxState::Queued);
  r.attempts = static_cast<int>(i64(rs, 8, i));
  r.next_attempt_at_ms = i64(rs, 9, i);
  r.last_error = str(rs, 10, i);
  r.created_at_ms = i64(rs, 12, i);
  r.updated_at_ms = i64(rs, 13, i);
  r.data_class = str(rs, 14, i);
  return r;
}

}  // namespace

std::vector<OutboxRow> selectOutboxList(Session& s, const OutboxQuery& query, int limit) {
  // Filters are bound, never spliced: the SQL text only says which are present.
  std::string sql = std::string("SELECT ") + kItemColumns + " FROM outbox WHERE id>?";
  Poco::Int64 after = query.after_id, before = query.created_before_ms;
  std::string partner = query.partner_id;
  std::string state = query.state ? std::string(outboxStateName(*query.state)) : std::string();
  std::vector<std::string> clinics = query.clinics;
  if (!partner.empty()) sql += " AND partner_id=?";
  if (!state.empty()) sql += " AND state=?";
  if (before > 0) sql += " AND created_at<?";
  if (!clinics.empty()) {
    sql += " AND clinic IN (";
    for (std::size_t i = 0; i < clinics.size(); ++i) sql += i == 0 ? "?" : ",?";
    sql += ")";
  }
  sql += " ORDER BY id LIMIT ?";
  Statement q(s);
  q << sql, use(after);
  if (!partner.empty()) q, use(partner);
  if (!state.empty()) q, use(state);
  if (before > 0) q, use(before);
  for (auto& c : clinics) q, use(c);
  q, bind(limit);
  q.execute();
  RecordSet rs(q);
  std::vector<OutboxRow> rows;
  rows.reserve(rs.rowCount());
  for (std::size_t i = 0; i < rs.rowCount(); ++i) rows.push_back(itemRow(rs, i));
  return rows;
}

std::optional<OutboxRow> selectOutboxItem(Session& s, std::int64_t item_id) {
  Poco::Int64 id = item_id;
  Statement q(s);
  q << std::string("SELECT ") + kItemColumns + " FROM outbox WHERE id=?", use(id), now;
  RecordSet rs(q);
  if (rs.rowCount() == 0) return std::nullopt;
  OutboxRow row = itemRow(rs, 0);
  std::vector<Poco::Data::BLOB> outcome, disclosure;
  s << "SELECT outcome, disclosure FROM outbox WHERE id=?", use(id), into(outcome), into(disclosure), now;
  if (!outcome.empty()) {
    row.outcome_sealed = std::string(blobView(outcome.front()));
    row.disclosure_sealed = std::string(blobView(disclosure.front()));
  }
  return row;
}

std::vector<PartnerPause> selectPartnerPauses(Session& s) {
  Statement q(s);
  q << "SELECT partner_id, paused_at, actor, reason FROM partner_pauses ORDER BY partner_id", now;
  RecordSet rs(q);
  std::vector<PartnerPause> pauses;
  for (std::size_t i = 0; i < rs.rowCount(); ++i) {
    pauses.push_back({str(rs, 0, i), i64(rs, 1, i), str(rs, 2, i), str(rs, 3, i)});
  }
  return pauses;
}

std::vector<std::pair<RecordRow, std::string>> selectRecordsInState(Session& s, std::string_view state_v,
                                                                    std::string_view record_type_v,
                                                                    std::string_view after_clinic_v,
                                                                    std::string_view after_key_v, int limit) {
  std::string state(state_v), type(record_type_v), after_clinic(after_clinic_v), after_key(after_key_v);
  std::vector<std::string> clinics, keys, types, hashes, errors, patients, classes;
  std::vector<int> versions;
  std::vector<Poco::Int64> received, updated;
  std::vector<Poco::Data::BLOB> payloads;
  Statement q(s);
  q << "SELECT r.clinic, r.record_key, r.record_type, r.version, r.content_hash, r.error, r.patient_key, "
       "r.received_at, r.updated_at, r.data_class, v.payload FROM records r JOIN record_versions v "
       "ON v.clinic=r.clinic AND v.record_key=r.record_key AND v.version=r.version "
       "WHERE r.state=? AND (r.clinic>? OR (r.clinic=? AND r.record_key>?))" +
           std::string(type.empty() ? "" : " AND r.record_type=?") + " ORDER BY r.clinic, r.record_key LIMIT ?",
      use(state), use(after_clinic), use(after_clinic), use(after_key);
  if (!type.empty()) q, use(type);
  q, bind(limit), into(clinics), into(keys), into(types), into(versions), into(hashes), into(errors), into(patients),
      into(received), into(updated), into(classes), into(payloads);
  q.execute();
  std::vector<std::pair<RecordRow, std::string>> out;
  out.reserve(clinics.size());
  for (std::size_t i = 0; i < clinics.size(); ++i) {
    RecordRow r;
    r.clinic = std::move(clinics[i]);
    r.record_key = std::move(keys[i]);
    r.record_type = std::move(types[i]);
    r.version = versions[i];
    r.content_hash = std::move(hashes[i]);
    r.state = parseRecordState(state).value_or(RecordState::Received);
    r.error = std::move(errors[i]);
    r.patient_key = std::move(patients[i]);
    r.received_at_ms = received[i];
    r.updated_at_ms = updated[i];
    r.data_class = std::move(classes[i]);
    out.emplace_back(std::move(r), std::string(blobView(payloads[i])));
  }
  return out;
}

int requeueDeadItem(Session& s, std::int64_t item_id, std::string_view note_v, std::int64_t now_ms_v) {
  Poco::Int64 id = item_id, now_ms = now_ms_v;
  std::string note(note_v), empty;
  Statement update(s);
  update << "UPDATE outbox SET state='queued', attempts=0, next_attempt_at=?, last_error=?, outcome=?, updated_at=? "
            "WHERE id=? AND state='dead'",
      use(now_ms), use(note), use(empty), use(now_ms), use(id);
  return static_cast<int>(update.execute());
}

void putPartnerPause(Session& s, const PartnerPause& pause) {
  std::string partner = pause.partner_id, actor = pause.actor, reason = pause.reason;
  Poco::Int64 at = pause.paused_at_ms;
  s << "INSERT OR REPLACE INTO partner_pauses(partner_id, paused_at, actor, reason) VALUES(?,?,?,?)", use(partner), use(at),
      use(actor), use(reason), now;
}

void deletePartnerPause(Session& s, std::string_view partner_v) {
  std::string partner(partner_v);
  s << "DELETE FROM partner_pauses WHERE partner_id=?", use(partner), now;
}

void writeProbe(Session& s, std::int64_t now_ms_v) {
  Poco::Int64 now_ms = now_ms_v;
  s << "INSERT OR REPLACE INTO write_probe(id, at_ms) VALUES(1, ?)", use(now_ms), now;
}

std::vector<InstanceRow> selectInstances(Session& s) {
  Statement q(s);
  q << "SELECT instance_id, started_at, last_seen_at, stopped_at, binary_version, config_version, mappers_version, "
       "mappers_loaded_at, last_reload_at, last_reload_error FROM gateway_instances ORDER BY instance_id",
      now;
  RecordSet rs(q);
  std::vector<InstanceRow> rows;
  for (std::size_t i = 0; i < rs.rowCount(); ++i) {
    rows.push_back({str(rs, 0, i), i64(rs, 1, i), i64(rs, 2, i), i64(rs, 3, i), str(rs, 4, i), str(rs, 5, i), str(rs, 6, i),
                    i64(rs, 7, i), i64(rs, 8, i), str(rs, 9, i)});
  }
  return rows;
}

void putInstance(Session& s, const InstanceRow& row) {
  std::string id = row.instance_id, binary = row.binary_version, config = row.config_version, mappers = row.mappers_version,
              error = row.last_reload_error;
  Poco::Int64 started = row.started_at_ms, seen = row.last_seen_at_ms, stopped = row.stopped_at_ms,
              loaded = row.mappers_loaded_at_ms, reload = row.last_reload_at_ms;
  s << "INSERT OR REPLACE INTO gateway_instances(instance_id, started_at, last_seen_at, stopped_at, binary_version, "
       "config_version, mappers_version, mappers_loaded_at, last_reload_at, last_reload_error) "
       "VALUES(?,?,?,?,?,?,?,?,?,?)",
      use(id), use(started), use(seen), use(stopped), use(binary), use(config), use(mappers), use(loaded), use(reload),
      use(error), now;
}

void deleteInstancesSeenBefore(Session& s, std::int64_t cutoff_ms) {
  Poco::Int64 cutoff = cutoff_ms;
  s << "DELETE FROM gateway_instances WHERE last_seen_at < ?", use(cutoff), now;
}

}  // namespace gw::store::sqlite

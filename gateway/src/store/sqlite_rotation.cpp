// The data key rotation primitives of the writer (StoreWriter::sealedCells, replaceSealed,
// deleteDataKey): every sealed column with the row identity its envelope is bound to.
#include <Poco/Data/Statement.h>

#include "store/audit_chain.hpp"
#include "store/sqlite_backend.hpp"

namespace gw::store::sqlite {
namespace {

using namespace Poco::Data::Keywords;
using Poco::Data::BLOB;
using Poco::Data::Session;

void addCell(std::vector<SealedCell>& cells, const SealedCell& identity, SealedColumn column, const BLOB& value) {
  if (value.size() == 0) return;  // no value (an item without an outcome)
  SealedCell cell = identity;
  cell.column = column;
  cell.sealed.assign(blobView(value));
  cells.push_back(std::move(cell));
}

SealedBatch recordVersionCells(Session& s, Poco::Int64 after, int limit) {
  std::vector<Poco::Int64> rowids;
  std::vector<std::string> clinics, keys;
  std::vector<int> versions;
  std::vector<BLOB> payloads;
  s << "SELECT rowid, clinic, record_key, version, payload FROM record_versions WHERE rowid>? ORDER BY rowid LIMIT ?",
      use(after), bind(limit), into(rowids), into(clinics), into(keys), into(versions), into(payloads), now;
  SealedBatch batch;
  batch.rows = static_cast<std::int64_t>(rowids.size());
  if (!rowids.empty()) batch.last_row = rowids.back();
  auto& cells = batch.cells;
  for (std::size_t i = 0; i < rowids.size(); ++i) {
    SealedCell id;
    id.row = rowids[i];
    id.clinic = clinics[i];
    id.record_key = keys[i];
    id.version = versions[i];
    addCell(cells, id, SealedColumn::RecordPayload, payloads[i]);
  }
  return batch;
}

SealedBatch resourceCells(Session& s, Poco::Int64 after, int limit) {
  std::vector<Poco::Int64> rowids;
  std::vector<std::string> types, keys;
  std::vector<BLOB> ids, values, bodies;
  s << "SELECT rowid, resource_type, resource_key, resource_id, identifier_value, body FROM resources WHERE rowid>? "
       "ORDER BY rowid LIMIT ?",
      use(after), bind(limit), into(rowids), into(types), into(keys), into(ids), into(values), into(bodies), now;
  SealedBatch batch;
  batch.rows = static_cast<std::int64_t>(rowids.size());
  if (!rowids.empty()) batch.last_row = rowids.back();
  auto& cells = batch.cells;
  for (std::size_t i = 0; i < rowids.size(); ++i) {
    SealedCell id;
    id.row = rowids[i];
    id.resource_type = types[i];
    id.resource_key = keys[i];
    addCell(cells, id, SealedColumn::ResourceId, ids[i]);
    addCell(cells, id, SealedColumn::ResourceIdentifier, values[i]);
    addCell(cells, id, SealedColumn::ResourceBody, bodies[i]);
  }
  return batch;
}

SealedBatch outboxCells(Session& s, Poco::Int64 after, int limit) {
  std::vector<Poco::Int64> ids;
  std::vector<std::string> partners, clinics, keys, outcome_types;
  std::vector<int> versions;
  std::vector<BLOB> bundles, disclosures, outcomes;
  // No outcome is stored as '' (text); an outcome is a BLOB envelope.
  s << "SELECT id, partner_id, clinic, record_key, record_version, bundle, disclosure, "
       "CASE WHEN typeof(outcome)='blob' THEN outcome ELSE x'' END FROM outbox WHERE id>? ORDER BY id LIMIT ?",
      use(after), bind(limit), into(ids), into(partners), into(clinics), into(keys), into(versions), into(bundles),
      into(disclosures), into(outcomes), now;
  SealedBatch batch;
  batch.rows = static_cast<std::int64_t>(ids.size());
  if (!ids.empty()) batch.last_row = ids.back();
  auto& cells = batch.cells;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    SealedCell id;
    id.row = ids[i];
    id.partner_id = partners[i];
    id.clinic = clinics[i];
    id.record_key = keys[i];
    id.version = versions[i];
    addCell(cells, id, SealedColumn::OutboxBundle, bundles[i]);
    addCell(cells, id, SealedColumn::OutboxDisclosure, disclosures[i]);
    addCell(cells, id, SealedColumn::OutboxOutcome, outcomes[i]);
  }
  return batch;
}

SealedBatch consentCells(Session& s, Poco::Int64 after, int limit) {
  std::vector<Poco::Int64> rowids, versions;
  std::vector<std::string> clinics, keys;
  std::vector<BLOB> consent_ids, resource_ids;
  s << "SELECT rowid, clinic, consent_key, version, consent_id, resource_id FROM consents WHERE rowid>? "
       "ORDER BY rowid LIMIT ?",
      use(after), bind(limit), into(rowids), into(clinics), into(keys), into(versions), into(consent_ids),
      into(resource_ids), now;
  SealedBatch batch;
  batch.rows = static_cast<std::int64_t>(rowids.size());
  if (!rowids.empty()) batch.last_row = rowids.back();
  auto& cells = batch.cells;
  for (std::size_t i = 0; i < rowids.size(); ++i) {
    SealedCell id;
    id.row = rowids[i];
    id.clinic = clinics[i];
    id.consent_key = keys[i];
    id.version = versions[i];
    addCell(cells, id, SealedColumn::ConsentId, consent_ids[i]);
    addCell(cells, id, SealedColumn::ConsentResourceId, resource_ids[i]);
  }
  return batch;
}

SealedBatch secretCells(Session& s, Poco::Int64 after, int limit) {
  std::vector<Poco::Int64> rowids;
  std::vector<std::string> names;
  std::vector<BLOB> values;
  // The audit chain's start marker is a MAC, not sealed (audit_chain.cpp reads it raw).
  std::string marker(kChainStartSecretName);
  s << "SELECT rowid, name, value FROM deployment_secrets WHERE rowid>? AND name<>? ORDER BY rowid LIMIT ?", use(after),
      use(marker), bind(limit), into(rowids), into(names), into(values), now;
  SealedBatch batch;
  batch.rows = static_cast<std::int64_t>(rowids.size());
  if (!rowids.empty()) batch.last_row = rowids.back();
  auto& cells = batch.cells;
  for (std::size_t i = 0; i < rowids.size(); ++i) {
    SealedCell id;
    id.row = rowids[i];
    id.name = names[i];
    addCell(cells, id, SealedColumn::SecretValue, values[i]);
  }
  return batch;
}

// The console's tables (schema 8) hold their sealed text in TEXT columns and are scanned by
// position in id order (rows are few; a row inserted mid-pass can shift the positions, and the
// rotation's next pass finds what that skipped).
SealedBatch consoleTextCells(Session& s, SealedTable table, Poco::Int64 after, int limit) {
  const bool break_glass = table == SealedTable::BreakGlass;
  std::vector<std::string> ids, first, second, third;
  Poco::Int64 offset = after;
  if (break_glass) {
    s << "SELECT id, recipient, authorised_by, nature FROM break_glass ORDER BY id LIMIT ? OFFSET ?", bind(limit),
        use(offset), into(ids), into(first), into(second), into(third), now;
  } else {
    s << "SELECT id, note FROM accounting_requests ORDER BY id LIMIT ? OFFSET ?", bind(limit), use(offset), into(ids),
        into(first), now;
  }
  SealedBatch batch;
  batch.rows = static_cast<std::int64_t>(ids.size());
  batch.last_row = after + batch.rows;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    SealedCell id;
    id.row = after + static_cast<std::int64_t>(i) + 1;
    id.name = ids[i];
    const auto add = [&](SealedColumn column, const std::string& value) {
      if (value.empty()) return;
      SealedCell cell = id;
      cell.column = column;
      cell.sealed = value;
      batch.cells.push_back(std::move(cell));
    };
    if (break_glass) {
      add(SealedColumn::BreakGlassRecipient, first[i]);
      add(SealedColumn::BreakGlassAuthorisedBy, second[i]);
      add(SealedColumn::BreakGlassNature, third[i]);
    } else {
      add(SealedColumn::AccountingRequestNote, first[i]);
    }
  }
  return batch;
}

}  // namespace

SealedBatch selectSealedCells(Session& s, SealedTable table, std::int64_t after_row, int limit) {
  const Poco::Int64 after = after_row;
  switch (table) {
    case SealedTable::RecordVersions: return recordVersionCells(s, after, limit);
    case SealedTable::Resources: return resourceCells(s, after, limit);
    case SealedTable::Outbox: return outboxCells(s, after, limit);
    case SealedTable::Consents: return consentCells(s, after, limit);
    case SealedTable::DeploymentSecrets: return secretCells(s, after, limit);
    case SealedTable::BreakGlass:
    case SealedTable::AccountingRequests: return consoleTextCells(s, table, after, limit);
  }
  return {};
}

std::int64_t selectLastSealedRow(Session& s, SealedTable table) {
  const char* sql = nullptr;
  switch (table) {
    case SealedTable::RecordVersions: sql = "SELECT COALESCE(MAX(rowid), 0) FROM record_versions"; break;
    case SealedTable::Resources: sql = "SELECT COALESCE(MAX(rowid), 0) FROM resources"; break;
    case SealedTable::Outbox: sql = "SELECT COALESCE(MAX(id), 0) FROM outbox"; break;
    case SealedTable::Consents: sql = "SELECT COALESCE(MAX(rowid), 0) FROM consents"; break;
    case SealedTable::DeploymentSecrets: sql = "SELECT COALESCE(MAX(rowid), 0) FROM deployment_secrets"; break;
    // Scanned by position: the last is the row count.
    case SealedTable::BreakGlass: sql = "SELECT COUNT(*) FROM break_glass"; break;
    case SealedTable::AccountingRequests: sql = "SELECT COUNT(*) FROM accounting_requests"; break;
  }
  Poco::Int64 last = 0;
  s << sql, into(last), now;
  return last;
}

void updateSealedCell(Session& s, const SealedCell& cell) {
  const char* sql = nullptr;
  switch (cell.column) {
    case SealedColumn::RecordPayload: sql = "UPDATE record_versions SET payload=? WHERE rowid=?"; break;
    case SealedColumn::ResourceId: sql = "UPDATE resources SET resource_id=? WHERE rowid=?"; break;
    case SealedColumn::ResourceIdentifier: sql = "UPDATE resources SET identifier_value=? WHERE rowid=?"; break;
    case SealedColumn::ResourceBody: sql = "UPDATE resources SET body=? WHERE rowid=?"; break;
    case SealedColumn::OutboxBundle: sql = "UPDATE outbox SET bundle=? WHERE id=?"; break;
    case SealedColumn::OutboxDisclosure: sql = "UPDATE outbox SET disclosure=? WHERE id=?"; break;
    case SealedColumn::OutboxOutcome: sql = "UPDATE outbox SET outcome=? WHERE id=?"; break;
    case SealedColumn::ConsentId: sql = "UPDATE consents SET consent_id=? WHERE rowid=?"; break;
    case SealedColumn::ConsentResourceId: sql = "UPDATE consents SET resource_id=? WHERE rowid=?"; break;
    case SealedColumn::SecretValue: sql = "UPDATE deployment_secrets SET value=? WHERE rowid=?"; break;
    case SealedColumn::BreakGlassRecipient: sql = "UPDATE break_glass SET recipient=? WHERE id=?"; break;
    case SealedColumn::BreakGlassAuthorisedBy: sql = "UPDATE break_glass SET authorised_by=? WHERE id=?"; break;
    case SealedColumn::BreakGlassNature: sql = "UPDATE break_glass SET nature=? WHERE id=?"; break;
    case SealedColumn::AccountingRequestNote: sql = "UPDATE accounting_requests SET note=? WHERE id=?"; break;
  }
  if (isTextSealedColumn(cell.column)) {
    std::string text = cell.sealed, id = cell.name;
    s << sql, use(text), use(id), now;
    return;
  }
  BLOB value = toBlob(cell.sealed);
  Poco::Int64 row = cell.row;
  s << sql, use(value), use(row), now;
}

}  // namespace gw::store::sqlite

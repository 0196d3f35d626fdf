// The conversion of a database older than schema 5 to lookup keys (StoreBackend::
// convertLegacyIdentifiers): migration 5 renamed the columns and left keyed_conversions_due; the
// rows still hold clear ids until this runs, once, at the first open with the master key. One
// transaction converts every row (a crash leaves the database as it was, converted at the next
// open); then VACUUM rebuilds the file, so no old page, free page or WAL frame keeps a clear id.
#include <Poco/Data/Statement.h>

#include "store/audit_log.hpp"
#include "store/legacy_identifiers.hpp"
#include "store/sqlite_backend.hpp"

namespace gw::store::sqlite {
namespace {

using namespace Poco::Data::Keywords;
using Poco::Data::BLOB;
using Poco::Data::Session;
using Poco::Data::Statement;

constexpr const char* kLookupKeysConversion = "lookup-keys";
constexpr int kChunk = 256;  // rows read at a time: memory stays flat however large the tables

// Thrown out of a chunk loop when the converter refuses a row; the transaction rolls back.
struct ConversionFailed {
  Error error;
};

template <class T>
T orThrow(Result<T> r) {
  if (!r) throw ConversionFailed{r.error()};
  return std::move(r).value();
}

std::int64_t convertRecords(Session& s, const LegacyIdentifiers& convert) {
  std::int64_t n = 0;
  Poco::Int64 after = 0;
  for (;;) {
    std::vector<Poco::Int64> rowids;
    std::vector<std::string> clinics, record_ids, patients;
    s << "SELECT rowid, clinic, record_key, patient_key FROM records WHERE rowid>? ORDER BY rowid LIMIT ?", use(after),
        bind(kChunk), into(rowids), into(clinics), into(record_ids), into(patients), now;
    if (rowids.empty()) return n;
    for (std::size_t i = 0; i < rowids.size(); ++i) {
      std::string key = convert.recordKey(clinics[i], record_ids[i]), patient = convert.patientKey(patients[i]);
      s << "UPDATE records SET record_key=?, patient_key=? WHERE rowid=?", use(key), use(patient), use(rowids[i]), now;
    }
    n += static_cast<std::int64_t>(rowids.size());
    after = rowids.back();
  }
}

std::int64_t convertRecordVersions(Session& s, const LegacyIdentifiers& convert) {
  std::int64_t n = 0;
  Poco::Int64 after = 0;
  for (;;) {
    std::vector<Poco::Int64> rowids;
    std::vector<std::string> clinics, record_ids, classes;
    std::vector<int> versions;
    std::vector<BLOB> payloads;
    s << "SELECT rowid, clinic, record_key, version, payload, data_class FROM record_versions WHERE rowid>? "
         "ORDER BY rowid LIMIT ?",
        use(after), bind(kChunk), into(rowids), into(clinics), into(record_ids), into(versions), into(payloads),
        into(classes), now;
    if (rowids.empty()) return n;
    for (std::size_t i = 0; i < rowids.size(); ++i) {
      std::string key = convert.recordKey(clinics[i], record_ids[i]);
      BLOB payload = toBlob(
          orThrow(convert.recordPayload(blobView(payloads[i]), clinics[i], record_ids[i], versions[i], classes[i])));
      s << "UPDATE record_versions SET record_key=?, payload=? WHERE rowid=?", use(key), use(payload), use(rowids[i]), now;
    }
    n += static_cast<std::int64_t>(rowids.size());
    after = rowids.back();
  }
}

std::int64_t convertResources(Session& s, const LegacyIdentifiers& convert) {
  std::int64_t n = 0;
  Poco::Int64 after = 0;
  for (;;) {
    std::vector<Poco::Int64> rowids;
    std::vector<std::string> types, ids, clinics, record_ids, classes;
    std::vector<BLOB> values, bodies;
    s << "SELECT rowid, resource_type, resource_key, clinic, record_key, identifier_value, body, data_class "
         "FROM resources WHERE rowid>? ORDER BY rowid LIMIT ?",
        use(after), bind(kChunk), into(rowids), into(types), into(ids), into(clinics), into(record_ids), into(values),
        into(bodies), into(classes), now;
    if (rowids.empty()) return n;
    for (std::size_t i = 0; i < rowids.size(); ++i) {
      auto c = orThrow(convert.resource({types[i], ids[i], clinics[i], record_ids[i], std::string(blobView(values[i])),
                                         std::string(blobView(bodies[i])), classes[i]}));
      BLOB id = toBlob(c.resource_id_sealed), value = toBlob(c.identifier_value_sealed), body = toBlob(c.body_sealed);
      s << "UPDATE resources SET resource_key=?, resource_id=?, record_key=?, identifier_value=?, body=? WHERE rowid=?",
          use(c.resource_key), use(id), use(c.record_key), use(value), use(body), use(rowids[i]), now;
    }
    n += static_cast<std::int64_t>(rowids.size());
    after = rowids.back();
  }
}

std::int64_t convertOutbox(Session& s, const LegacyIdentifiers& convert) {
  std::int64_t n = 0;
  Poco::Int64 after = 0;
  for (;;) {
    std::vector<Poco::Int64> ids;
    std::vector<std::string> partners, clinics, record_ids, patients, classes;
    std::vector<int> versions;
    std::vector<BLOB> bundles, disclosures;
    s << "SELECT id, partner_id, clinic, record_key, record_version, patient_key, bundle, disclosure, data_class "
         "FROM outbox WHERE id>? ORDER BY id LIMIT ?",
        use(after), bind(kChunk), into(ids), into(partners), into(clinics), into(record_ids), into(versions), into(patients),
        into(bundles), into(disclosures), into(classes), now;
    if (ids.empty()) return n;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto c = orThrow(
          convert.outboxItem({ids[i], partners[i], clinics[i], record_ids[i], versions[i], patients[i],
                              std::string(blobView(bundles[i])), std::string(blobView(disclosures[i])), classes[i]}));
      BLOB bundle = toBlob(c.bundle_sealed), disclosure = toBlob(c.disclosure_sealed);
      s << "UPDATE outbox SET record_key=?, patient_key=?, bundle=?, disclosure=? WHERE id=?", use(c.record_key),
          use(c.patient_key), use(bundle), use(disclosure), use(ids[i]), now;
    }
    n += static_cast<std::int64_t>(ids.size());
    after = ids.back();
  }
}

std::int64_t convertConsents(Session& s, const LegacyIdentifiers& convert) {
  std::int64_t n = 0;
  Poco::Int64 after = 0;
  for (;;) {
    std::vector<Poco::Int64> rowids, versions;
    std::vector<std::string> clinics, consent_ids, patients, resource_ids;
    s << "SELECT rowid, clinic, consent_key, version, patient_key, resource_id FROM consents WHERE rowid>? "
         "ORDER BY rowid LIMIT ?",
        use(after), bind(kChunk), into(rowids), into(clinics), into(consent_ids), into(versions), into(patients),
        into(resource_ids), now;
    if (rowids.empty()) return n;
    for (std::size_t i = 0; i < rowids.size(); ++i) {
      auto c = orThrow(convert.consent({clinics[i], consent_ids[i], versions[i], patients[i], resource_ids[i]}));
      BLOB consent_id = toBlob(c.consent_id_sealed), resource_id = toBlob(c.resource_id_sealed);
      s << "UPDATE consents SET consent_key=?, consent_id=?, patient_key=?, resource_id=? WHERE rowid=?", use(c.consent_key),
          use(consent_id), use(c.patient_key), use(resource_id), use(rowids[i]), now;
    }
    n += static_cast<std::int64_t>(rowids.size());
    after = rowids.back();
  }
}

std::int64_t convertSecrets(Session& s, const LegacyIdentifiers& convert) {
  std::vector<std::string> names;
  std::vector<BLOB> values;
  // The audit chain's start marker is a MAC, not a secret: it stays as written (audit_chain.cpp
  // reads it raw, also from a read-only open that has no payload keys).
  std::string marker(kChainStartSecretName);
  s << "SELECT name, value FROM deployment_secrets WHERE name<>? ORDER BY name", use(marker), into(names), into(values), now;
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::string clear(blobView(values[i]));
    BLOB sealed = toBlob(orThrow(convert.secret(names[i], clear)));
    crypto::wipe(clear);
    s << "UPDATE deployment_secrets SET value=? WHERE name=?", use(sealed), use(names[i]), now;
  }
  return static_cast<std::int64_t>(names.size());
}

}  // namespace

Result<std::int64_t> convertLegacyIdentifiers(WriterConnection& connection, const LegacyIdentifiers& convert) {
  std::unique_lock lock(connection.mutex);
  Session& s = connection.session;
  bool open = false;
  try {
    Poco::Int64 due = 0;
    std::string name = kLookupKeysConversion;
    s << "SELECT COUNT(*) FROM keyed_conversions_due WHERE name=?", use(name), into(due), now;
    if (due == 0) return std::int64_t{0};
    connection.statements.reset();
    s << "BEGIN IMMEDIATE", now;
    open = true;
    std::int64_t rows = convertRecords(s, convert);
    rows += convertRecordVersions(s, convert);
    rows += convertResources(s, convert);
    rows += convertOutbox(s, convert);
    rows += convertConsents(s, convert);
    rows += convertSecrets(s, convert);
    s << "DELETE FROM keyed_conversions_due WHERE name=?", use(name), now;
    s << "COMMIT", now;
    open = false;
    if (rows > 0) {
      // The old values are still in the main file's pages (until a checkpoint overwrites them) and
      // in pages the conversion freed: rebuild the file and empty the WAL.
      s << "PRAGMA wal_checkpoint(TRUNCATE)", now;
      s << "VACUUM", now;
      s << "PRAGMA wal_checkpoint(TRUNCATE)", now;
    }
    return rows;
  } catch (const ConversionFailed& failed) {
    if (open) s << "ROLLBACK", now;
    Error e = failed.error;
    e.message = "converting the database's identifiers to lookup keys failed, nothing was changed: " + e.message;
    return e;
  } catch (const Poco::Exception& e) {
    if (open) {
      try {
        s << "ROLLBACK", now;
      } catch (const Poco::Exception&) {
      }
    }
    return storageError("converting the database's identifiers to lookup keys", e);
  }
}

}  // namespace gw::store::sqlite

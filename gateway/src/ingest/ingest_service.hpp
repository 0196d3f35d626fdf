#pragma once
// POST /v1/records: parse -> per record (envelope checks, JSON Schema, mapping, profile
// validation, Bundles for the partners that receive the clinic's data) -> one grouped commit ->
// a result per record. A rejected record leaves nothing behind; accepted ones are durable before
// the answer. A record whose mapped resources fail their FHIR profile is kept as "invalid" with
// the OperationOutcome and is never queued for delivery.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/gateway_config.hpp"
#include "ingest/group_committer.hpp"
#include "ingest/payload.hpp"
#include "mapping/csv_input_mapper.hpp"
#include "mapping/mapper_set.hpp"
#include "mapping/record_schemas.hpp"
#include "validate/profile_set.hpp"

namespace gw::ingest {

/// Who is posting: an authenticated token and the clinics it may post for ("*" = any).
struct Submitter {
  std::string token_id;
  std::vector<std::string> clinics;
  bool mayPostFor(std::string_view clinic) const;
};

struct IngestReply {
  int status = 202;  // 202 some accepted, 422 all rejected, 400 unreadable, 413 too many, 5xx storage
  std::string body;  // JSON
};

class IngestService {
 public:
  static constexpr std::size_t kMaxRecordsPerRequest = 10000;

  /// `record_key_secret` keys the record pseudonyms written to logs (see ids::recordKey).
  /// `csv_mappers` (optional) are the named CSV input mappers for text/csv bodies.
  IngestService(const config::GatewayConfig& config, const mapping::RecordSchemas& schemas,
                const mapping::MapperSet& mappers, const validate::ProfileSet& profiles, GroupCommitter& committer,
                std::string record_key_secret, const mapping::CsvMapperSet* csv_mappers = nullptr);

  /// Handles one request body; `done` runs once, possibly on another thread.
  void ingest(std::string_view body, std::string_view content_type, const Submitter& submitter,
              std::function<void(IngestReply)> done) const;

  /// Same, for a body that may be a CSV export: with Content-Type text/csv, `csv_mapper` names the
  /// CSV input mapper (POST /v1/records?mapper=NAME); a missing or unknown name is a 400 naming
  /// the available mappers. Other content types ignore `csv_mapper`.
  void ingest(std::string_view body, std::string_view content_type, std::string_view csv_mapper,
              const Submitter& submitter, std::function<void(IngestReply)> done) const;

  /// Converts CSV text with `mapper` and ingests each data row as one record: every row gets its
  /// own result (index = position among the data rows, line = its CSV line), and a row that
  /// cannot be converted is rejected with its line and column while the others go on. Used by
  /// ingest() and by `fhir-gateway import`.
  void ingestCsv(std::string_view csv_text, const mapping::CsvInputMapper& mapper, const Submitter& submitter,
                 std::function<void(IngestReply)> done) const;

  /// Whether a Content-Type is CSV ("text/csv", any case, optional parameters).
  static bool isCsvContentType(std::string_view content_type);

 private:
  struct Prepared;
  std::string forClients(std::string text) const;
  Prepared prepare(const rapidjson::Value& record, std::size_t index, const Submitter& submitter) const;
  void commit(std::shared_ptr<std::vector<Prepared>> prepared, std::vector<store::IngestWrite> writes,
              const Submitter& submitter, std::function<void(IngestReply)> done) const;

  const config::GatewayConfig& config_;
  const mapping::RecordSchemas& schemas_;
  const mapping::MapperSet& mappers_;
  const validate::ProfileSet& profiles_;
  GroupCommitter& committer_;
  std::string record_key_secret_;
  const mapping::CsvMapperSet* csv_mappers_;
};

/// SHA-256 of the record with object keys sorted, so key order does not make a new version.
std::string canonicalHash(const rapidjson::Value& record, std::string* canonical_json = nullptr);

/// A Patient carrying only what the gateway knows from another record's envelope: the MRN
/// identifier, a data-absent name and gender unknown (US Core minimum). Sent as a conditional
/// create, so it never overwrites the partner's full Patient.
rapidjson::Document stubPatient(std::string_view patient_id, std::string_view mrn_system, std::string_view mrn);

}  // namespace gw::ingest

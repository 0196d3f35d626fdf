#pragma once
// POST /v1/records: parse -> per record (envelope checks, JSON Schema, mapping, profile
// validation, Bundles for the partners that receive the clinic's data) -> one grouped commit ->
// a result per record. A rejected record leaves nothing behind; accepted ones are durable before
// the answer. A record whose mapped resources fail their FHIR profile is kept as "invalid" with
// the OperationOutcome and is never queued for delivery.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/gateway_config.hpp"
#include "ingest/group_committer.hpp"
#include "ingest/payload.hpp"
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
  IngestService(const config::GatewayConfig& config, const mapping::RecordSchemas& schemas,
                const mapping::MapperSet& mappers, const validate::ProfileSet& profiles, GroupCommitter& committer,
                std::string record_key_secret);

  /// Handles one request body; `done` runs once, possibly on another thread.
  void ingest(std::string_view body, std::string_view content_type, const Submitter& submitter,
              std::function<void(IngestReply)> done) const;

 private:
  struct Prepared;
  Prepared prepare(const rapidjson::Value& record, std::size_t index, const Submitter& submitter) const;

  const config::GatewayConfig& config_;
  const mapping::RecordSchemas& schemas_;
  const mapping::MapperSet& mappers_;
  const validate::ProfileSet& profiles_;
  GroupCommitter& committer_;
  std::string record_key_secret_;
};

/// SHA-256 of the record with object keys sorted, so key order does not make a new version.
std::string canonicalHash(const rapidjson::Value& record, std::string* canonical_json = nullptr);

/// A Patient carrying only what the gateway knows from another record's envelope: the MRN
/// identifier, a data-absent name and gender unknown (US Core minimum). Sent as a conditional
/// create, so it never overwrites the partner's full Patient.
rapidjson::Document stubPatient(std::string_view patient_id, std::string_view mrn_system, std::string_view mrn);

}  // namespace gw::ingest

#pragma once
// POST /v1/records: parse -> per record (envelope checks, JSON Schema, mapping, classification
// and security labels, profile validation, a consent decision per resource and partner, Bundles
// of what each partner may receive) -> one grouped commit (record, resources, outbox items and
// the decision log together) -> a result per record. A rejected record leaves nothing behind;
// accepted ones are durable before the answer. A record whose mapped resources fail their FHIR
// profile is kept as "invalid" with the OperationOutcome and is never queued for delivery.
// A consent record is checked against the validity rules (docs/privacy.md §4), stored as
// a new version in the consent registry, and never sent on its own: it travels with Part 2 data.
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/gateway_config.hpp"
#include "consent/consent_registry.hpp"
#include "ingest/disclosure_planner.hpp"
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

/// Everything an IngestService works with; the referenced objects outlive it.
struct IngestParts {
  const config::GatewayConfig& config;
  const mapping::RecordSchemas& schemas;
  const mapping::MapperSet& mappers;
  const validate::ProfileSet& profiles;
  const mapping::CsvMapperSet* csv_mappers = nullptr;  // optional: CSV input mappers for text/csv bodies
  GroupCommitter& committer;
  store::Store& store;  // reads only: a record's current resources, Consents to attach
  const privacy::Classifier& classifier;
  consent::ConsentRegistry& registry;
  DisclosurePolicy policy;
  std::string record_key_secret;  // keys the record pseudonyms written to logs (ids::recordKey)
  /// Called after a consent version committed and entered the registry (on the committer's
  /// thread): reconcile what is queued and held for that patient and partner. Optional.
  std::function<void(const consent::ConsentVersion&)> on_consent_change;
  /// Called (on the committer's thread) for a patient whose records were decided under a
  /// registry that changed before they committed: reconcile that patient with every partner.
  std::function<void(const std::string& patient_key)> on_stale_decisions;
};

class IngestService {
 public:
  static constexpr std::size_t kMaxRecordsPerRequest = 10000;

  explicit IngestService(IngestParts parts);

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

  /// After a consent version entered the registry: cancels the patient's queued items for the
  /// partner that may no longer go (each cancellation logged), and queues what the patient's
  /// stored records may now send there (records posted before their consent). Reads and maps
  /// stored records: run it off the io threads.
  Status reconcile(std::string_view patient_key, std::string_view partner_id) const;

  /// Whether a Content-Type is CSV ("text/csv", any case, optional parameters).
  static bool isCsvContentType(std::string_view content_type);

 private:
  struct Prepared;
  std::string forClients(std::string text) const;
  Prepared prepare(const rapidjson::Value& record, std::size_t index, const Submitter& submitter,
                   std::string_view only_partner = {}) const;
  bool auditableOrRejected(Prepared& p) const;
  void enterConsents(std::vector<Prepared>& prepared, const std::vector<store::IngestOutcome>& outcomes) const;
  void commit(std::shared_ptr<std::vector<Prepared>> prepared, std::vector<store::IngestWrite> writes,
              const Submitter& submitter, std::function<void(IngestReply)> done) const;

  IngestParts parts_;
  const config::GatewayConfig& config_;
  DisclosurePlanner planner_;
};

/// SHA-256 of the record with object keys sorted, so key order does not make a new version.
std::string canonicalHash(const rapidjson::Value& record, std::string* canonical_json = nullptr);

/// A Patient carrying only what the gateway knows from another record's envelope: the MRN
/// identifier, a data-absent name and gender unknown (US Core minimum). Sent as a conditional
/// create, so it never overwrites the partner's full Patient.
rapidjson::Document stubPatient(std::string_view patient_id, std::string_view mrn_system, std::string_view mrn);

}  // namespace gw::ingest

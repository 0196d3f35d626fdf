#pragma once
// POST /v1/records and `fhir-gateway import`: read the body with its input format -> per record
// the record pipeline (schema, mapping, classification and labels, validation) -> the disclosure
// decision per resource and partner (DisclosurePlanner) -> one grouped commit (record, resources,
// outbox items and the decision log together) -> a BatchResult. A rejected record leaves nothing
// behind; accepted ones are durable before the result. A record whose resources fail their FHIR
// profile is kept as "invalid" with the OperationOutcome and is never queued for delivery.
// A consent record is checked against the validity rules (docs/privacy.md §4), stored as
// a new version in the consent registry, and never sent on its own: it travels with Part 2 data.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "consent/consent_registry.hpp"
#include "ingest/batch_result.hpp"
#include "ingest/disclosure_planner.hpp"
#include "ingest/group_committer.hpp"
#include "ingest/ingest_stats.hpp"
#include "ingest/input_format.hpp"
#include "ingest/record_pipeline.hpp"
#include "outbox/send_gate.hpp"

namespace gw::ingest {

/// Who is posting: an authenticated token and the clinics it may post for ("*" = any).
struct Submitter {
  std::string token_id;
  std::vector<std::string> clinics;
};

/// The few settings ingest reads (the app builds them from the gateway configuration).
struct IngestSettings {
  PipelineSettings pipeline;              // clinics, partner ids
  std::vector<config::Partner> partners;  // who may receive what, in this order
  DisclosurePolicy policy;
  std::string record_key_secret;  // keys the record pseudonyms written to logs (ids::recordKey)
  /// Folders whose paths are cut from error texts clients see (mapper files are named relative to
  /// them): clients learn nothing of the server's file system.
  std::vector<std::filesystem::path> private_dirs;
};

/// A request body and how to read it.
struct IngestRequest {
  std::string_view body;
  std::string_view content_type;
  std::string_view csv_mapper;  // ?mapper=NAME for text/csv bodies
};

/// Everything an IngestService works with; the referenced objects outlive it.
struct IngestParts {
  const IngestSettings& settings;
  std::shared_ptr<const RuleSet> rules;
  const InputFormatRegistry& formats;
  GroupCommitter& committer;
  store::Store& store;  // reads only: a record's current resources, Consents to attach
  consent::ConsentRegistry& registry;
  /// Called after a consent version committed and entered the registry (on the committer's
  /// thread): reconcile what is queued and held for that patient and partner. Optional.
  std::function<void(const consent::ConsentVersion&)> on_consent_change;
  /// Called (on the committer's thread) for a patient whose records were decided under a
  /// registry that changed before they committed: reconcile that patient with every partner.
  std::function<void(const std::string& patient_key)> on_stale_decisions;
  /// Where ingest counts what it did; optional (the Runtime's outlives reloads).
  IngestStats* stats = nullptr;
  /// Consent versions enter the registry through it, and wait for the sends of their patient to
  /// their partner that were already claimed (docs/privacy.md §8.3). Optional.
  outbox::SendGate* send_gate = nullptr;
  /// Records by type and reason class, decisions by reason; optional, like `stats`.
  IngestBreakdown* breakdown = nullptr;
};

class IngestService {
 public:
  static constexpr std::size_t kMaxRecordsPerRequest = 10000;

  explicit IngestService(IngestParts parts);

  /// Reads and ingests one request body; `done` runs once, possibly on the committer's thread.
  /// Reads the store (a record's earlier resources): call it off the I/O threads.
  void ingest(const IngestRequest& request, const Submitter& submitter, std::function<void(BatchResult)> done) const;

  /// Ingests records already read (`fhir-gateway import` with a mapper file).
  void ingestBatch(InputBatch batch, const Submitter& submitter, std::function<void(BatchResult)> done) const;

  /// After a consent version entered the registry: cancels the patient's queued items for the
  /// partner that may no longer go (each cancellation logged), and queues what the patient's
  /// held records may now send there (records posted before their consent, and those with a
  /// resource denied or redacted that now discloses more: sent once, docs/privacy.md §8.2).
  /// Then passes a revocation on (docs/privacy.md §8.4): a consent whose FHIR Consent the
  /// partner received and whose latest version is revoked gets that version queued to the
  /// partner, alone, under the same conditional identity (once per version).
  /// Reads and maps stored records: run it off the io threads.
  Status reconcile(std::string_view patient_key, std::string_view partner_id) const;

  const RuleSet& rules() const { return *parts_.rules; }

 private:
  struct Prepared;
  std::string forClients(std::string text) const;
  Result<int> passOnConsentUpdates(std::string_view patient_key, std::string_view partner_id, SystemTime now) const;
  Prepared prepare(const rapidjson::Value& record, std::size_t index, const Submitter& submitter,
                   std::string_view only_partner = {}, const PendingConsents* pending = nullptr) const;
  /// The consents among `prepared` (accepted ones), as a scratch registry over their patients;
  /// null when there are none.
  std::unique_ptr<PendingConsents> pendingConsents(const std::vector<Prepared>& prepared) const;
  bool auditableOrRejected(Prepared& p) const;
  void enterConsents(std::vector<Prepared>& prepared, const std::vector<store::IngestOutcome>& outcomes) const;
  void commit(std::shared_ptr<std::vector<Prepared>> prepared, std::vector<store::IngestWrite> writes,
              const Submitter& submitter, std::function<void(BatchResult)> done) const;

  void count(const BatchResult& result) const;

  IngestParts parts_;
  RecordPipeline pipeline_;
  DisclosurePlanner planner_;
};

}  // namespace gw::ingest

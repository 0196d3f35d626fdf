#pragma once
// What an operator does to the outbox and to records (docs/operations.md): list what is stuck,
// replay dead items after the cause is fixed, re-process records left invalid or unmapped after
// a mapper or profile fix, pause and resume a partner. The CLI (`fhir-gateway outbox ...`,
// `fhir-gateway records reprocess`) and the API (/v1/outbox, /v1/partners/{id}/...) both call
// these, so they behave alike; each operation is logged in the audit log (kind operation) with
// the operator as actor.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/views.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"
#include "consent/consent_registry.hpp"
#include "ingest/ingest_service.hpp"
#include "store/store.hpp"

namespace gw::app {

/// Who acts and under which rules: the operator's token id (CLI: --operator or the OS user) is
/// the actor of every audit row.
struct OperatorContext {
  store::Store& store;
  const consent::ConsentRegistry& registry;  // the consent decision a replay takes again
  std::string policy_version;
  std::string actor;
  std::vector<std::string> clinics;  // the clinics the operator covers; {"*"}: all
  SystemTime now;
};

/// The query parameters of GET /v1/outbox (and the CLI's flags, by the same names): partner,
/// state, clinic, older_than (seconds, or with a unit: 90s, 15m, 2h, 3d), limit (1..1000), after
/// (an item id). `clinics` is what the caller may see: a clinic outside it is refused, and no
/// clinic named means every clinic it covers.
Result<store::OutboxQuery> parseOutboxQuery(const std::map<std::string, std::string>& params,
                                            const std::vector<std::string>& clinics, SystemTime now);
/// The audit row of a listing (kind operation, reason outbox-list): the filters and how many
/// items came back, never their record ids. A listing names records, so it is logged like a read.
store::AuditEntry outboxListEntry(const store::OutboxQuery& query, std::size_t items, std::string_view actor,
                                  SystemTime now);
/// {"items":[{"id","partner","clinic","record_id","record_type","record_version","state",
/// "attempts","last_error","next_attempt_at","created_at","updated_at"}],"next_after":id|null}
std::string outboxPageJson(const store::OutboxPage& page);

/// Which dead items to replay: one item, or every dead item matching a filter (all of a partner).
struct ReplayFilter {
  std::optional<std::int64_t> item_id;
  std::string partner_id;              // required unless item_id
  std::vector<std::string> clinics;    // empty: every clinic the operator covers
  std::int64_t created_before_ms = 0;  // > 0: only items created before
};

struct ReplayedItem {
  std::int64_t id = 0;
  std::string outcome;  // "replayed" | "denied" | "skipped"
  std::string reason;   // why denied or skipped (no PHI)
};

struct ReplayResult {
  int replayed = 0, denied = 0, skipped = 0;
  std::vector<ReplayedItem> items;
};

/// Replays dead items: each one's consent decision is taken again first (outbox::recheckItem,
/// the check the partner worker runs before each send); an item no longer permitted is denied
/// (logged, left dead), an item whose record has a newer version is skipped (that version
/// carries the record), the rest are queued again (attempts 0, due now) and logged. Cancelled
/// items are never replayed: only dead ones are looked at. The worker re-checks again at send.
Result<ReplayResult> replayDead(const OperatorContext& ctx, const ReplayFilter& filter);
std::string replayResultJson(const ReplayResult& result);

/// Pauses (`paused` true) or resumes the partner, logged. The pause is kept in the database, so a
/// restart keeps it.
Status setPartnerPaused(const OperatorContext& ctx, std::string_view partner_id, bool paused, std::string_view reason);

/// Progress of a long operation: done so far of total (total 0: unknown).
using ProgressFn = std::function<void(std::size_t done, std::size_t total)>;

struct ReprocessOptions {
  store::RecordState state = store::RecordState::Invalid;  // invalid or unmapped
  std::string record_type;                                 // empty: every type
  bool dry_run = false;
  std::size_t batch = 500;  // records per ingest batch (one commit each)
};

struct ReprocessResult {
  std::size_t examined = 0;
  std::size_t fixed = 0;                       // now mapped (dry run: would be)
  std::size_t still = 0;                       // still invalid or unmapped
  std::size_t rejected = 0;                    // refused by ingest (e.g. the clinic is no longer configured)
  std::size_t queued = 0;                      // deliveries queued (0 in a dry run)
  std::map<std::string, std::size_t> by_type;  // record type -> fixed
};

/// Puts the current version of every record in `options.state` through the record pipeline
/// again (schema, mapping, validation, the consent decision) with `service`, as POST /v1/records
/// would with the same content: a record now mapped gets a new version and its deliveries queued.
/// A dry run maps with `dry_rules` and `dry_settings` and stores nothing.
struct ReprocessParts {
  const ingest::IngestService* service = nullptr;  // required unless dry run
  std::shared_ptr<const ingest::RuleSet> dry_rules;
  ingest::PipelineSettings dry_settings;
};
Result<ReprocessResult> reprocessRecords(const OperatorContext& ctx, const ReprocessParts& parts,
                                         const ReprocessOptions& options, const ProgressFn& progress = {});
std::string reprocessResultJson(const ReprocessResult& result, bool dry_run);

/// Per configured partner (`partner_ids`, config order), from the record's items at its current
/// version, its last decisions and the paused partners.
std::vector<PartnerWhy> explainDeliveries(const store::RecordStatus& status,
                                          const std::vector<store::ResourceDecision>& decisions,
                                          const std::vector<std::string>& partner_ids,
                                          const std::vector<store::PartnerPause>& pauses);

}  // namespace gw::app

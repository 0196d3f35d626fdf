#pragma once
// What ingest did with one request's records: per record accepted (with disposition, state,
// resources and the partners it was queued for) or rejected (with field paths and reasons); or,
// for the whole request, why nothing was read or stored. Domain terms only: the app turns it
// into an HTTP answer (app/views.hpp), the import command into its output.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "ingest/record_pipeline.hpp"
#include "store/store.hpp"

namespace gw::ingest {

struct RecordResult {
  std::size_t index = 0;  // position in the request (CSV: among the data rows)
  std::size_t line = 0;   // CSV line of the row; 0 when not CSV
  std::string record_id;  // as sent (may be empty when missing)
  bool accepted = false;
  std::vector<FieldError> errors;  // rejected: what was wrong, where
  // For metrics (no PHI): the record type when the rule set knows it, else "other"; and, when
  // rejected, the stage that refused it (schema, clinic, consent, mapping, ...).
  std::string metric_type = "other";
  std::string_view reject_class = "other";

  // Accepted:
  store::IngestDisposition disposition = store::IngestDisposition::Created;
  int version = 0;
  store::RecordState state = store::RecordState::Received;
  std::string record_key;               // pseudonymous id, safe to log
  std::string invalid_outcome;          // OperationOutcome JSON when state is Invalid
  std::vector<std::string> resources;   // "Type/id"
  std::vector<std::string> queued_for;  // partner ids (empty when unchanged)
};

struct BatchResult {
  /// Set when the request as a whole failed: unreadable body (BadRequest, MalformedJson),
  /// too many records (PayloadTooLarge), or the database failed (Unavailable; nothing stored).
  std::optional<Error> failure;
  std::vector<RecordResult> records;

  std::size_t accepted() const;
  std::size_t rejected() const { return records.size() - accepted(); }
};

/// {"results":[{"index","line"?,"record_id","status":"accepted"|"rejected",...}],"accepted":N,"rejected":N},
/// or the failure's OperationOutcome. The body of POST /v1/records and of `fhir-gateway import`.
std::string batchResultJson(const BatchResult& result);

}  // namespace gw::ingest

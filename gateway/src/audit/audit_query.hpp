#pragma once
// Query parameters of GET /v1/audit/decisions and GET /v1/audit/verify (and the anchor option
// of `fhir-gateway audit verify`), parsed into store types. Errors are ErrorCode::BadRequest
// naming the parameter, what was wrong and an example of a good value.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "store/audit_log.hpp"
#include "store/store.hpp"

namespace gw::audit {

enum class ExportFormat { Json, Csv };

struct AuditRequest {
  store::AuditQuery query;
  ExportFormat format = ExportFormat::Json;
};

/// Parameters (each at most once, none empty):
///   clinic, patient_key, partner_id   exact match
///   outcome, kind                     one of store::auditOutcomeNames() / auditKindNames()
///   class                             general | sud | mh: entries whose classes contain it
///   from, to                          RFC 3339 date-times; from <= at < to
///   after_seq                         the next_after_seq of the previous page
///   limit                             1..1000, default 100
///   format                            json (default) | csv
/// Anything else is an error, so a misspelt filter never silently widens the answer.
Result<AuditRequest> parseAuditQuery(const std::multimap<std::string, std::string>& params);

/// Parameters of GET /v1/audit/verify: only `anchor` (optional), as parseChainAnchor reads it.
Result<std::optional<store::ChainAnchor>> parseVerifyParams(const std::multimap<std::string, std::string>& params);

/// "SEQ:HASH" as printed from a verify report (last_seq and head_hash), e.g. "1042:9f86d0...".
Result<store::ChainAnchor> parseChainAnchor(std::string_view text);

/// RFC 3339 date-time ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00.250-05:00") to Unix
/// milliseconds (fraction truncated to ms). A space where the offset sign belongs is read as
/// '+': an unencoded '+' in a query string arrives decoded as a space.
Result<std::int64_t> parseRfc3339Millis(std::string_view text);

/// The entry that records a read of the audit log (who asked for what, how many rows came
/// back): kind audit-read, outcome ok; patient_key / partner_id from the filters so that reads
/// of a patient's log are themselves found by patient. Append it in a write transaction after
/// the answer is built.
store::AuditEntry auditReadEntry(const AuditRequest& request, std::string_view actor, std::int64_t at_ms,
                                 std::size_t returned);

/// The entry that records a read of one clinic record's status (kind record-read, outcome ok):
/// the record's clinic and patient, so the read is found with the patient's other entries;
/// `record_key` (the record's pseudonym, never its id) and what the answer held in detail.
store::AuditEntry recordReadEntry(const store::RecordStatus& status, std::string_view record_key, std::string_view actor,
                                  std::int64_t at_ms);

/// The entry that records a verify run and its result (kind audit-verify, outcome ok or error).
store::AuditEntry auditVerifyEntry(const store::VerifyReport& report, std::string_view actor, std::int64_t at_ms);

}  // namespace gw::audit

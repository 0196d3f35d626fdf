#pragma once
// Renders audit log pages (GET /v1/audit/decisions) as JSON or CSV, and a chain verify report
// (GET /v1/audit/verify, `fhir-gateway audit verify`) as JSON.
#include <string>
#include <string_view>

#include "store/audit_log.hpp"

namespace gw::audit {

/// {"count":N,"next_after_seq":S|null,"entries":[{seq, at (RFC 3339), at_ms, kind, actor,
/// clinic, patient_key, partner_id, purpose, resource_type, resource_id, classes [..],
/// labels [..], consent_id, consent_version, outcome, reason, policy_version, detail {..}|null,
/// prev_hash, hash}]}. detail is embedded as an object (as a string if the stored text is not
/// JSON: the chain check reports such a row).
std::string pageToJson(const store::AuditPage& page);

inline constexpr std::string_view kCsvContentType = "text/csv; charset=utf-8";

/// Header line of the CSV export (CRLF-terminated), the columns of pageToJson in that order,
/// with classes and labels as comma lists.
std::string csvHeader();
/// One CRLF-terminated line per entry (no header): a streaming export writes csvHeader() once
/// and then csvRows() of each page.
std::string csvRows(const store::AuditPage& page);
/// csvHeader() + csvRows(page).
std::string pageToCsv(const store::AuditPage& page);

/// One CSV cell. RFC 4180: wrapped in double quotes (inner quotes doubled) when it holds a
/// comma, quote, CR or LF. Spreadsheet formula injection: a cell starting with = + - @ TAB or
/// CR gets a leading single quote, so it is shown as text and never evaluated (the exported
/// value then differs from the stored one by that quote).
std::string csvCell(std::string_view value);

/// {"ok":bool,"rows":N,"last_seq":S,"head_hash":"..","anchor":"S:hash","keyed_from_seq":K,
///  "unkeyed_rows":N,"anchor_check":{"status":"ok|truncated|rewritten|none","source":"..",
///  "seq":A,"hash":"..","published_at":"RFC 3339","lines":N,"forged_lines":N},"break_count":N,
///  "breaks":[{"seq":S,"problem":"hash-mismatch",..,"message":".."}]}
/// (anchor_check's seq and hash only when there was an anchor, published_at for a file anchor,
/// lines and forged_lines when a file was read.)
std::string verifyReportToJson(const store::VerifyReport& report);

/// Exit status of `fhir-gateway audit verify`: 0 when the chain is intact, 1 when broken (the
/// project's "runtime failure"; a database that cannot be read is also 1, with the error on
/// stderr instead of a report on stdout).
int verifyExitCode(const store::VerifyReport& report);

}  // namespace gw::audit

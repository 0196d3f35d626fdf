#pragma once
// Reading a clinic `consent` record (docs/record-format.md §3.8) into a ConsentVersion, and the
// validity rules checked at ingest (docs/privacy.md §4.2). Messages name field paths and
// codes, never the record's values (dates and free text can identify a patient).
#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <vector>

#include "consent/consent_version.hpp"

namespace gw::consent {

struct FieldError {
  std::string path;    // record field path, e.g. "consent.effective.end"
  std::string reason;  // what is wrong
  std::string hint;    // what to do about it
};

/// Every problem of the record's `consent` object, in field order; empty when valid.
/// All consents: id, recipient, at least one purpose, at least one category, effective.start and
/// status must be present; codes must be known (purposes TREAT/HPAYMT/HOPERAT, categories
/// general/sud/mh, status active/revoked); effective.start and .end are real YYYY-MM-DD days (the
/// clinic's local days) or RFC 3339 date-times with an offset (instants); start must not be after
/// end; a revoked consent needs revoked_on (a day) or revoked_at (a date-time), not both, and an
/// active one must carry neither (ambiguous: fix the status or remove the date).
/// A consent that includes sud (42 CFR 2.31) must also carry signed_on and an end
/// (effective.end or expires_on_event).
std::vector<FieldError> checkValidity(const rapidjson::Value& record);

/// A consent record read once: every validity problem, and the version it describes when there
/// is none (version 0, patient_key and resource_id empty: the caller knows them after mapping).
struct ConsentReading {
  std::vector<FieldError> problems;
  std::optional<ConsentVersion> version;
};
ConsentReading readConsentRecord(const rapidjson::Value& record);

}  // namespace gw::consent

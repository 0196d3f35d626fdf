#pragma once
// One stored consent version as text and integers: the columns of the store's `consents` table
// (the `reconciled` column is the store's own). It lives here, below both the store and the
// consent module, so the store can persist consents without depending on consent rules:
// consent::toRow / consent::fromRow convert it to and from consent::ConsentVersion.
#include <cstdint>
#include <string>

namespace gw::privacy {

/// Dates are YYYY-MM-DD or "" when absent; period_start, period_end and revoked_on may instead
/// hold an RFC 3339 date-time in UTC (a bound given as an instant, docs/privacy.md §5.6); purposes and classes use the
/// set-name forms
/// ("TREAT,HPAYMT", "sud,mh").
struct ConsentRow {
  std::string clinic;
  std::string consent_id;
  std::int64_t version = 0;
  std::string patient_key;
  std::string partner_id;
  std::string status;
  std::string purposes;
  std::string classes;
  std::string period_start;
  std::string period_end;
  std::string revoked_on;
  std::string signed_on;
  std::string resource_id;
  std::int64_t recorded_at = 0;

  friend bool operator==(const ConsentRow&, const ConsentRow&) = default;
};

}  // namespace gw::privacy

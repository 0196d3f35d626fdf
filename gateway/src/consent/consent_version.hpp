#pragma once
// One version of a patient's consent: the facts a disclosure decision needs (docs/privacy.md
// §5), and nothing else: no names, no free text, no form URL. Persisted one row per version
// in the store's `consents` table (schema v3); ConsentRow mirrors its columns.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "privacy/consent_row.hpp"
#include "privacy/data_class.hpp"

namespace gw::consent {

/// A calendar day. Consent periods are whole days; an end date is inclusive.
using Date = std::chrono::sys_days;

/// YYYY-MM-DD naming a real day (years 0001-9999, leap years honoured); nullopt otherwise.
std::optional<Date> parseDate(std::string_view text);
std::string formatDate(Date d);
/// The UTC calendar day of `t`. The registry does not know clinic time zones: callers that do
/// should pass the clinic's local day instead.
Date utcDate(SystemTime t);
/// RFC 3339 date-time with an offset -> milliseconds since the Unix epoch; nullopt when malformed.
std::optional<std::int64_t> parseRfc3339Millis(std::string_view text);

/// Purposes of use a consent can list (v3-ActReason codes used by the clinic format).
enum class Purpose : std::uint8_t { Treat = 1, Hpaymt = 2, Hoperat = 4 };

std::string_view purposeName(Purpose p);  // "TREAT", "HPAYMT", "HOPERAT"
std::optional<Purpose> parsePurpose(std::string_view s);

class PurposeSet {
 public:
  constexpr PurposeSet() = default;
  constexpr explicit PurposeSet(std::uint8_t bits) : bits_(bits) {}
  constexpr PurposeSet(Purpose p) : bits_(static_cast<std::uint8_t>(p)) {}  // NOLINT: implicit on purpose

  constexpr bool has(Purpose p) const { return (bits_ & static_cast<std::uint8_t>(p)) != 0; }
  constexpr PurposeSet& add(Purpose p) {
    bits_ |= static_cast<std::uint8_t>(p);
    return *this;
  }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr std::uint8_t bits() const { return bits_; }
  friend constexpr bool operator==(PurposeSet, PurposeSet) = default;

 private:
  std::uint8_t bits_ = 0;
};

/// "TREAT,HPAYMT,HOPERAT" in that fixed order; "" for the empty set.
std::string purposeSetName(PurposeSet s);
/// Parses purposeSetName's form; nullopt on an unknown code.
std::optional<PurposeSet> parsePurposeSet(std::string_view s);

enum class ConsentStatus : std::uint8_t { Active, Revoked };
std::string_view statusName(ConsentStatus s);  // "active", "revoked"
std::optional<ConsentStatus> parseStatus(std::string_view s);

struct ConsentVersion {
  std::string clinic;
  std::string consent_id;                         // consent.id, unique within the clinic
  std::int64_t version = 0;                       // 1, 2, ... per (clinic, consent_id); 0 = not assigned yet
  std::string patient_key;                        // the patient's lookup key (store::LookupKeys; never the MRN)
  std::string partner_id;                         // consent.recipient
  ConsentStatus status = ConsentStatus::Revoked;  // default deny: an unset row permits nothing
  PurposeSet purposes;
  privacy::ClassSet classes;  // consent.categories
  Date period_start{};
  std::optional<Date> period_end;  // inclusive; none = open-ended (ends on an event or revocation)
  std::optional<Date> revoked_on;
  std::optional<Date> signed_on;
  std::string resource_id;       // the FHIR Consent resource's id (sent with Part 2 disclosures)
  std::int64_t recorded_at = 0;  // record.recorded_at, Unix milliseconds

  friend bool operator==(const ConsentVersion&, const ConsentVersion&) = default;
};

/// The `consents` table's columns (privacy/consent_row.hpp: below the store, which persists it).
using ConsentRow = privacy::ConsentRow;

ConsentRow toRow(const ConsentVersion& v);
/// Reads a stored row back. Any unreadable column is an error naming the column, so a damaged
/// row is never guessed into a permissive consent.
Result<ConsentVersion> fromRow(const ConsentRow& row);

/// Problems a registry row must not have whatever its origin (record, database): empty keys,
/// version < 1, no purpose, no class, end before start. Empty when sound.
std::string rowProblem(const ConsentVersion& v);

}  // namespace gw::consent

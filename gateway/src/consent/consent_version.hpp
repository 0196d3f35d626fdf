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

/// A calendar day. A date-only consent bound names a day of the clinic's time zone; an end date
/// is inclusive.
using Date = std::chrono::sys_days;

/// A consent's start, end or revocation as the record gives it (docs/privacy.md §5.6): a
/// date-only day, read as the clinic's local day, or a date-time, which is an instant.
struct Bound {
  Date day{};                         // the date-only form; unused when at_ms is set
  std::optional<std::int64_t> at_ms;  // the date-time form: Unix milliseconds

  Bound() = default;
  Bound(Date d) : day(d) {}  // NOLINT: implicit on purpose (most bounds are days)
  static Bound instant(std::int64_t unix_ms) {
    Bound b;
    b.at_ms = unix_ms;
    return b;
  }
  bool dateOnly() const { return !at_ms.has_value(); }
  friend bool operator==(const Bound&, const Bound&) = default;
};

/// "YYYY-MM-DD" for a day; RFC 3339 in UTC with milliseconds for an instant
/// ("2026-11-20T14:05:00.000Z"). parseBound reads either (a date-time in any offset).
std::string formatBound(const Bound& b);
std::optional<Bound> parseBound(std::string_view text);
/// "local-day" or "instant": how a bound is read.
std::string_view boundForm(const Bound& b);

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
  Bound period_start{};
  std::optional<Bound> period_end;  // a day is inclusive; none = open-ended (ends on an event or revocation)
  /// When the revocation takes effect: the record's revoked_on (a day: from the start of that
  /// local day) or revoked_at (an instant). A future one is a scheduled end.
  std::optional<Bound> revoked_on;
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
/// version < 1, no purpose, no class, end before start (when both bounds have the same form; the
/// registry checks mixed forms once it has placed them in the clinic's zone). Empty when sound.
std::string rowProblem(const ConsentVersion& v);

/// How each of the consent's time bounds is read, for the decision log and the consents answer:
/// "start:local-day,end:local-day,revoked:instant" (absent bounds left out).
std::string boundForms(const ConsentVersion& v);

}  // namespace gw::consent

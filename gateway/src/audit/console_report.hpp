#pragma once
// What the compliance console shows from the decision and disclosure log (docs/console-api.md):
// each row in plain language, the accounting of disclosures (42 CFR 2.24, 2.25) as JSON, as a
// CSV a patient can be handed and as FHIR R4 AuditEvents (IHE BALP style), and the partner and
// period view. Pure rendering: the store rows, partner names and descriptions come from the caller.
#include <rapidjson/document.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "privacy/consent_row.hpp"
#include "store/audit_log.hpp"
#include "store/store.hpp"

namespace gw::audit {

/// A partner's display name by id (config partners[].name, else the id).
using PartnerNames = std::function<std::string(std::string_view partner_id)>;

/// The break-glass id a row was decided or sent under ("" when none): its detail's break_glass.
std::string breakGlassOf(const store::AuditEntry& e);

/// The console's word for what a row means: "disclosed" (delivered), "emergency" (delivered or
/// permitted under a break-glass), "permitted", "denied", "redacted", "cancelled", "failed", or
/// the log outcome for other kinds.
std::string_view consoleOutcome(const store::AuditEntry& e);
/// Parses a console outcome filter ("disclosed", "denied", ...) or a log outcome ("deny") into
/// the log outcome, and whether only break-glass rows are meant ("emergency").
struct OutcomeFilter {
  std::optional<store::AuditOutcome> outcome;
  bool emergency_only = false;
};
std::optional<OutcomeFilter> parseOutcomeFilter(std::string_view text);

/// "sud,mh" -> "substance use disorder (42 CFR Part 2) and mental-health data".
std::string classesInWords(std::string_view classes);
/// A log reason in words: "class-not-covered:mh" -> "the consent does not cover mental-health data".
std::string reasonInWords(std::string_view reason);
/// The row in plain language, e.g. "Not sent to St. Mary's: the consent does not cover
/// mental-health data".
std::string plainText(const store::AuditEntry& e, std::string_view partner_name);

/// A brief description of a resource as sent, from its FHIR JSON: the type, what it is (the
/// medication, code or type's text or first display) and its classes, e.g. "MedicationRequest
/// buprenorphine 8 mg / naloxone 2 mg, 42 CFR Part 2". Never the patient's name or identifiers.
std::string describeResource(const rapidjson::Value& resource, std::string_view classes);
/// Without the resource (purged by retention): "MedicationRequest, 42 CFR Part 2".
std::string describeResourceType(std::string_view resource_type, std::string_view classes);

/// A delivered item's resources: lookup key of (type, id) -> description and FHIR reference
/// ("MedicationRequest/abc"). `key_of` is store::LookupKeys::resource.
struct SentResource {
  std::string description;
  std::string reference;
};
using ResourceKeyOf = std::function<std::string(std::string_view type, std::string_view id)>;
/// Descriptions are without classes: add classLabels of the log row's.
void describeBundle(std::string_view bundle_json, const ResourceKeyOf& key_of, std::map<std::string, SentResource>& out);
/// "sud,mh" -> "42 CFR Part 2, mental health" (what a description ends with; "" for general).
std::string classLabels(std::string_view classes);

/// One line of an accounting: a delivered resource.
struct AccountingLine {
  store::AuditEntry entry;  // kind disclosure, outcome delivered
  std::string recipient;    // partner display name
  std::string description;
  std::string reference;       // "MedicationRequest/abc" when known
  std::string consent_id;      // clear consent id when known, else the log's consent key
  std::string break_glass_id;  // "" unless sent under a break-glass
};

struct Accounting {
  std::string clinic;
  std::string patient_key;
  int years = 3;
  std::int64_t from_ms = 0;
  std::int64_t to_ms = 0;
  std::vector<AccountingLine> lines;  // oldest first
};

std::string accountingJson(const Accounting& a);
/// date,recipient,recipient_id,description,purpose,consent,consent_version,break_glass,log_seq
/// (CRLF lines, formula-safe cells).
std::string accountingCsv(const Accounting& a);
/// A Bundle (type collection) of one R4 AuditEvent per line, IHE BALP "privacy disclosure at the
/// source" style. `gateway_name` names the gateway agent.
std::string accountingAuditEvents(const Accounting& a, std::string_view gateway_name);

/// One consent version as the patient view shows it.
struct ConsentView {
  privacy::ConsentRow row;
  std::string partner_name;
};

/// The patient view: consents (every version) and the log's decision, cancel and disclosure rows.
/// `consent_ids` maps consent keys to clear consent ids; `describe` gives a row's description.
std::string patientJson(std::string_view clinic, std::string_view patient_key, const std::vector<ConsentView>& consents,
                        const std::vector<store::AuditEntry>& events, const PartnerNames& names,
                        const std::map<std::string, std::string>& consent_ids,
                        const std::function<std::string(const store::AuditEntry&)>& describe);

/// The partner and period view: counts by outcome, class and reason, and one page of rows.
std::string partnerViewJson(std::string_view partner_id, std::string_view partner_name, std::int64_t from_ms,
                            std::int64_t to_ms, const std::vector<store::PartnerLogCount>& counts,
                            const store::AuditPage& page);

/// Whether a log row is one the console shows as a patient's event (decision, cancel, disclosure).
bool isPatientEvent(const store::AuditEntry& e);

/// An audit-read row for a console view (kind audit-read, outcome ok, actor the token id): the
/// clinic and patient it showed, `view` and counts in detail; never a partner id (so reads never
/// show up in partner filters).
store::AuditEntry consoleReadEntry(std::string_view view, std::string_view clinic, std::string_view patient_key,
                                   std::string_view actor, std::int64_t at_ms, std::size_t returned);

}  // namespace gw::audit

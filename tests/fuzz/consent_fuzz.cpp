// Fuzzes clinic consent records as POST /v1/records reads them: the input is parsed like a
// record body (json::parseStrict, as the ingest path reads it), then held to the validity rules
// and turned into a consent version. The raw input also goes to the consent module's date and
// date-time readers.
#include <cstdint>
#include <string_view>

#include "common/json.hpp"
#include "consent/consent_record.hpp"
#include "consent/consent_version.hpp"

namespace {

void dates(std::string_view text) {
  if (const auto d = gw::consent::parseDate(text); d && gw::consent::formatDate(*d) != text) __builtin_trap();
  (void)gw::consent::parseRfc3339Millis(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  dates(text);

  rapidjson::Document record;
  if (!gw::json::parseStrict(text, record)) return 0;
  const auto reading = gw::consent::readConsentRecord(record);
  for (const auto& p : reading.problems) {
    if (p.path.empty() || p.reason.empty() || p.hint.empty()) __builtin_trap();  // each names where and what to do
  }
  // An invalid consent must never be recorded: a reading has a version or problems, never both.
  if (reading.version.has_value() == !reading.problems.empty()) __builtin_trap();
  if (!gw::consent::checkValidity(record).empty() && reading.version) __builtin_trap();
  if (!reading.version) return 0;
  auto v = *reading.version;
  v.patient_key = "pat-fuzz";
  v.resource_id = "res-fuzz";
  // What the registry and the store require of every version read from a record.
  if (v.clinic.empty() || v.consent_id.empty() || v.partner_id.empty() || v.purposes.empty() || v.classes.empty()) {
    __builtin_trap();
  }
  // An end before the start (bounds of one form) is a rowProblem, checked below.
  if (v.status == gw::consent::ConsentStatus::Revoked && !v.revoked_on) __builtin_trap();
  // The version goes to the consents table and is read back before every disclosure decision.
  auto stored = v;
  stored.version = 1;
  if (!gw::consent::rowProblem(stored).empty()) __builtin_trap();
  auto back = gw::consent::fromRow(gw::consent::toRow(stored));
  if (!back || !(back.value() == stored)) __builtin_trap();
  return 0;
}

#include "app/consent_registry_loader.hpp"

#include <map>

#include "common/log.hpp"

namespace gw::app {

consent::ClinicZones clinicZones(const config::GatewayConfig& config) {
  std::map<std::string, std::shared_ptr<const tz::TimeZone>, std::less<>> zones;
  for (const auto& c : config.clinics) zones[c.id] = c.zone;
  return [zones = std::move(zones)](std::string_view clinic) -> std::shared_ptr<const tz::TimeZone> {
    auto it = zones.find(clinic);
    return it == zones.end() ? nullptr : it->second;
  };
}

Result<std::vector<consent::ConsentVersion>> loadConsentRegistry(store::Store& store, consent::ConsentRegistry& registry) {
  GW_TRY(auto stored, store.consents());
  std::vector<consent::ConsentVersion> versions;
  std::vector<consent::ConsentVersion> unreconciled;
  for (const auto& c : stored) {
    auto v = consent::fromRow(c.row);
    if (!v) {
      GW_LOG(Error, Consent, "consent_row_unreadable").kv("error", v.error().describe());
      // Default deny: an unreadable version withdraws the consent (an older, readable version
      // must not come back into force), so it enters the registry as a revoked tombstone.
      consent::ConsentVersion tombstone;
      tombstone.clinic = c.row.clinic;
      tombstone.consent_id = c.row.consent_id;
      tombstone.version = c.row.version;
      tombstone.patient_key = c.row.patient_key;
      tombstone.partner_id = c.row.partner_id;
      tombstone.status = consent::ConsentStatus::Revoked;
      versions.push_back(std::move(tombstone));
      continue;
    }
    if (!c.reconciled) unreconciled.push_back(v.value());
    versions.push_back(std::move(v).value());
  }
  for (const auto& e : registry.load(std::move(versions))) {
    GW_LOG(Error, Consent, "consent_row_refused").kv("error", e.describe());
  }
  GW_LOG(Info, Consent, "registry_loaded").kv("consents", registry.size());
  return unreconciled;
}

}  // namespace gw::app

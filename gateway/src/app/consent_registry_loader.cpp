#include "app/consent_registry_loader.hpp"

#include <algorithm>
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

consent::BreakGlassGrant breakGlassGrant(const store::BreakGlass& row) {
  consent::BreakGlassGrant g;
  g.id = row.id;
  g.clinic = row.clinic;
  g.patient_key = row.patient_key;
  g.partner_id = row.partner_id;
  g.opened_ms = row.opened_at_ms;
  g.expires_ms = row.ended_at_ms > 0 ? std::min(row.expires_at_ms, row.ended_at_ms) : row.expires_at_ms;
  return g;
}

Status loadBreakGlass(store::Store& store, consent::ConsentRegistry& registry) {
  GW_TRY(auto rows, store.breakGlasses(""));
  std::vector<consent::BreakGlassGrant> grants;
  for (const auto& row : rows) grants.push_back(breakGlassGrant(row));
  registry.loadBreakGlass(std::move(grants));
  return ok();
}

}  // namespace gw::app

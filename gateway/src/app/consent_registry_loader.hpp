#pragma once
// The consent registry rebuilt from the database at start-up (serve, import): every stored
// version, newest wins. An unreadable or refused row is logged and permits nothing.
#include <vector>

#include "config/gateway_config.hpp"
#include "consent/consent_registry.hpp"
#include "store/store.hpp"

namespace gw::app {

/// Each configured clinic's time zone (clinics[].time_zone, loaded by the config check); null for
/// a clinic no longer configured, whose date-only consents the registry then refuses.
consent::ClinicZones clinicZones(const config::GatewayConfig& config);

/// Loads every stored consent version into `registry`; returns the versions stored but not yet
/// reconciled (queued and held items not settled after them: a crash in between).
Result<std::vector<consent::ConsentVersion>> loadConsentRegistry(store::Store& store, consent::ConsentRegistry& registry);

/// A stored break-glass row as the registry decides with it: in force from its opening until it
/// expires or was ended, whichever comes first (docs/privacy.md §7.1).
consent::BreakGlassGrant breakGlassGrant(const store::BreakGlass& row);

/// Loads every stored break-glass row into `registry` (start-up); ended and expired ones match no
/// instant, so only those still in force permit anything.
Status loadBreakGlass(store::Store& store, consent::ConsentRegistry& registry);

}  // namespace gw::app

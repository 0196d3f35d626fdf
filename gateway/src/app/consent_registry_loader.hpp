#pragma once
// The consent registry rebuilt from the database at start-up (serve, import): every stored
// version, newest wins. An unreadable or refused row is logged and permits nothing.
#include <vector>

#include "consent/consent_registry.hpp"
#include "store/store.hpp"

namespace gw::app {

/// Loads every stored consent version into `registry`; returns the versions stored but not yet
/// reconciled (queued and held items not settled after them: a crash in between).
Result<std::vector<consent::ConsentVersion>> loadConsentRegistry(store::Store& store, consent::ConsentRegistry& registry);

}  // namespace gw::app

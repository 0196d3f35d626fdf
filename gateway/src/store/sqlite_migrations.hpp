#pragma once
// Numbered schema migrations of the SQLite database, applied in order inside one transaction
// each. Never edit a released migration: add the next number.
#include <Poco/Data/Session.h>

#include "common/error.hpp"

namespace gw::store {

inline constexpr int kSchemaVersion = 4;

/// Brings the database to kSchemaVersion. Refuses a database newer than this build.
Status applyMigrations(Poco::Data::Session& session);

}  // namespace gw::store

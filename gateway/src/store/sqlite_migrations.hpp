#pragma once
// Numbered schema migrations of the SQLite database, applied in order inside one transaction
// each. Never edit a released migration: add the next number. A migration that needs the keys
// (schema 5: clear identifiers become lookup keys) changes the tables here and leaves a row in
// keyed_conversions_due; the store converts the rows when it opens with the master key
// (convertLegacyIdentifiers, sqlite_legacy.cpp).
#include <Poco/Data/Session.h>

#include "common/error.hpp"

namespace gw::store {

inline constexpr int kSchemaVersion = 9;

/// Brings the database to `target` (kSchemaVersion; an older one only to build an old database in
/// a test). Refuses a database newer than this build.
Status applyMigrations(Poco::Data::Session& session, int target = kSchemaVersion);

}  // namespace gw::store

#pragma once
// Turns mapped resources into FHIR transaction Bundles whose entries are conditional on the
// business identifier, so that posting the same Bundle twice never creates a duplicate at the
// partner (docs/record-format.md §4).
#include <rapidjson/document.h>

#include <string>
#include <vector>

namespace gw::outbox {

enum class EntryMethod {
  ConditionalUpdate,  // PUT Type?identifier=system|value: creates or replaces the partner's copy
  ConditionalCreate,  // POST with ifNoneExist: creates only if absent (stub patients)
  ConditionalDelete,  // DELETE Type?identifier=system|value: a resource a newer record version no longer makes
};

struct BundleEntry {
  std::string resource_type;
  std::string id;  // our deterministic id: becomes fullUrl urn:uuid:<id>
  std::string identifier_system;
  std::string identifier_value;
  const rapidjson::Value* resource = nullptr;  // FHIR JSON; not owned (null for ConditionalDelete)
  EntryMethod method = EntryMethod::ConditionalUpdate;
  /// Repeated in every part when the entries are split (ConditionalCreate entries always are):
  /// e.g. the Consent that must travel with each part of a Part 2 disclosure.
  bool in_every_part = false;
};

struct BuiltBundle {
  std::string json;
  int entry_count = 0;
};

/// Builds one or more transaction Bundles holding every entry. References "Type/<id>" to an
/// entry of the same Bundle become "urn:uuid:<id>" and resource ids are dropped (the partner
/// assigns its own). When more than `max_entries` would go in one Bundle the entries are split;
/// ConditionalCreate entries (the referenced patient) and entries marked in_every_part go into
/// every part so each part stands alone.
/// `bundle_security` (optional, an array of Codings) becomes Bundle.meta.security of every part.
std::vector<BuiltBundle> buildTransactionBundles(const std::vector<BundleEntry>& entries, int max_entries,
                                                 const rapidjson::Value* bundle_security = nullptr);

/// "Type?identifier=<system>|<value>" with the system and value percent-encoded as a search
/// parameter needs ('|' inside them escaped, so the separator stays unambiguous).
std::string conditionalUrl(const std::string& resource_type, const std::string& system, const std::string& value);
std::string identifierQuery(const std::string& system, const std::string& value);

}  // namespace gw::outbox

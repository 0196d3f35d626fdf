#pragma once
// The outbox keeps each item as a transaction Bundle (outbox/transaction_bundle.hpp). For a
// partner that takes batch Bundles or single requests only (docs/architecture.md §5.6), the
// worker takes the item apart here: its request entries, Patient first, each still conditional on
// the business identifier, with the references between them (urn:uuid fullUrls, which only a
// transaction resolves) replaced by the ids the partner gave the earlier entries.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "delivery/attempt_outcome.hpp"
#include "delivery/capability.hpp"

namespace gw::delivery {

struct PlannedEntry {
  std::size_t index = 0;                // position in the item's Bundle (its answer goes back in that order)
  std::string full_url;                 // "urn:uuid:..." ("" for a conditional delete)
  RequiredWrite write;                  // type and conditional method
  std::string url;                      // request.url: "Patient?identifier=..." or "Patient" (conditional create)
  std::string if_none_exist;            // conditional create's query
  std::string resource_json;            // the resource as queued ("" for a delete)
  std::vector<std::string> depends_on;  // fullUrls of other entries of the Bundle it references
};

struct WritePlan {
  std::vector<PlannedEntry> entries;  // Patient entries first, then Bundle order
  std::string bundle_security_json;   // the Bundle's meta.security, "" when none (a batch carries it too)
};

/// Takes an outbox transaction Bundle apart. Errors (ErrorCode::Internal) mean the stored Bundle
/// is not one the gateway wrote.
Result<WritePlan> planWrites(std::string_view transaction_bundle_json);

/// "Patient/123" from a response location ("Patient/123/_history/2", an absolute URL), or "" when
/// it names no resource.
std::string resourceReference(std::string_view location);

/// The entry's resource with references to other entries of its Bundle replaced by the partner's
/// ids (`resolved`: fullUrl -> "Type/id"). Every depends_on must be in `resolved`.
std::string resolvedResource(const PlannedEntry& entry, const std::map<std::string, std::string>& resolved);

/// A batch Bundle of `entries` (resolved as above), in the given order.
std::string batchBundle(const WritePlan& plan, const std::vector<const PlannedEntry*>& entries,
                        const std::map<std::string, std::string>& resolved);

/// Reads a batch-response: one EntryResult per request entry, in order, or an error naming what
/// is wrong (not a batch-response, another number of entries).
Result<std::vector<EntryResult>> parseBatchResponse(std::string_view body, std::size_t expected_entries);

/// "201 Created" -> 201; 0 when the status has no leading code.
int entryStatusCode(std::string_view status);

}  // namespace gw::delivery

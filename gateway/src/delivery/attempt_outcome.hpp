#pragma once
// What one delivery attempt means for the outbox: delivered, retry later, or dead letter.
// Pure functions of the partner's reply, so the worker loop stays free of HTTP details.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "delivery/fhir_client.hpp"

namespace gw::delivery {

/// One transaction-response entry (ids and versions only, no PHI).
struct EntryResult {
  std::string status;  // as sent, e.g. "201 Created"
  std::string location;
  std::string etag;
  std::string last_modified;
};

struct AttemptOutcome {
  enum class Kind { Delivered, Retry, Dead };
  Kind kind = Kind::Dead;
  int http_status = 0;                                   // 0 when no response arrived
  std::vector<EntryResult> entries;                      // Delivered: one per request entry, in order
  std::optional<std::chrono::milliseconds> retry_after;  // Retry: from Retry-After, capped at kMaxRetryAfter
  std::string error_summary;  // short, no PHI: "HTTP 503 from partner", "partner p: connect: Connection refused (...)"
  // Dead (and Retry when the partner sent one): the partner's OperationOutcome verbatim when the
  // body is one, else a synthesized OperationOutcome describing the failure.
  std::string operation_outcome_json;
  // Retry: no request went out (the partner's circuit breaker is open, or the gateway is stopping),
  // so the attempt does not count against the item's retries.
  bool not_sent = false;
};

std::string_view attemptKindName(AttemptOutcome::Kind kind);

/// A partner asking for a longer pause than this is treated as asking for this long, so one
/// misconfigured header cannot park a queue for years.
inline constexpr std::chrono::milliseconds kMaxRetryAfter = std::chrono::hours(24);

/// Classifies one attempt.
/// Delivered: 2xx with a transaction-response Bundle whose entries' response.status are all 2xx.
/// Retry: transport failures (Unavailable, Timeout), 408, 429, 5xx.
/// Dead: other 4xx, 3xx (redirects are not followed), a 2xx whose body is not a
///   transaction-response or has a non-2xx entry, and client-side errors (e.g. PayloadTooLarge).
AttemptOutcome classify(const Result<HttpResult>& result);
/// Same, with the current time given (an HTTP-date Retry-After is relative to it) and, when
/// known, the number of request entries posted: a 2xx answering another number is Dead.
AttemptOutcome classify(const Result<HttpResult>& result, SystemTime now,
                        std::optional<std::size_t> expected_entries = std::nullopt);

/// Parses a Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate, RFC 850 or asctime).
/// A date in the past gives 0; values above kMaxRetryAfter are capped; garbage gives nullopt.
std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view value, SystemTime now);

}  // namespace gw::delivery

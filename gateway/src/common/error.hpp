#pragma once
// Expected failures (bad input, partner down, storage busy) travel as gw::Result<T>;
// exceptions are reserved for start-up. Every Error says what was wrong, where, and what to do.
#include <boost/outcome.hpp>

#include <string>
#include <string_view>

namespace gw {

enum class ErrorCode {
  BadRequest,       // the request itself is wrong: missing parameter, unsupported media type (400)
  InvalidInput,     // the caller's data cannot be accepted (422)
  MalformedJson,    // not parseable (400)
  Unauthenticated,  // no or unknown credentials (401)
  Forbidden,        // known caller, wrong role or clinic (403)
  NotFound,         // 404
  PayloadTooLarge,  // 413
  Unavailable,      // a dependency is down or busy; retry later (503)
  Timeout,          // an operation ran out of time (504 / retry)
  Storage,          // the database failed (500)
  Config,           // configuration is invalid (start-up)
  Internal,         // a bug: state that should not happen (500)
};

std::string_view errorCodeName(ErrorCode code);
/// HTTP status a client sees for this error.
int httpStatusFor(ErrorCode code);
/// FHIR OperationOutcome issue.code (http://hl7.org/fhir/issue-type) for this error.
std::string_view fhirIssueTypeFor(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;  // what was wrong, never PHI values
  std::string where;    // field path, file:line:column, or FHIR path; empty if not applicable
  std::string hint;     // what to do about it; empty if obvious

  /// "where: message (hint)" for logs and CLI output.
  std::string describe() const;
};

inline Error makeError(ErrorCode code, std::string message, std::string where = {}, std::string hint = {}) {
  return Error{code, std::move(message), std::move(where), std::move(hint)};
}

template <class T>
using Result = boost::outcome_v2::result<T, Error, boost::outcome_v2::policy::terminate>;
using Status = Result<void>;

inline auto ok() { return boost::outcome_v2::success(); }

}  // namespace gw

#define GW_TRY BOOST_OUTCOME_TRY

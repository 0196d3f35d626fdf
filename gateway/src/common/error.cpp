#include "common/error.hpp"

namespace gw {

std::string_view errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::BadRequest: return "bad-request";
    case ErrorCode::InvalidInput: return "invalid-input";
    case ErrorCode::MalformedJson: return "malformed-json";
    case ErrorCode::Unauthenticated: return "unauthenticated";
    case ErrorCode::Forbidden: return "forbidden";
    case ErrorCode::NotFound: return "not-found";
    case ErrorCode::PayloadTooLarge: return "payload-too-large";
    case ErrorCode::Unavailable: return "unavailable";
    case ErrorCode::Timeout: return "timeout";
    case ErrorCode::Storage: return "storage";
    case ErrorCode::Config: return "config";
    case ErrorCode::Internal: return "internal";
  }
  return "internal";
}

int httpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::BadRequest: return 400;
    case ErrorCode::InvalidInput: return 422;
    case ErrorCode::MalformedJson: return 400;
    case ErrorCode::Unauthenticated: return 401;
    case ErrorCode::Forbidden: return 403;
    case ErrorCode::NotFound: return 404;
    case ErrorCode::PayloadTooLarge: return 413;
    case ErrorCode::Unavailable: return 503;
    case ErrorCode::Timeout: return 504;
    case ErrorCode::Storage:
    case ErrorCode::Config:
    case ErrorCode::Internal: return 500;
  }
  return 500;
}

std::string_view fhirIssueTypeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::BadRequest: return "invalid";
    case ErrorCode::InvalidInput: return "invalid";
    case ErrorCode::MalformedJson: return "structure";
    case ErrorCode::Unauthenticated: return "login";
    case ErrorCode::Forbidden: return "forbidden";
    case ErrorCode::NotFound: return "not-found";
    case ErrorCode::PayloadTooLarge: return "too-costly";
    case ErrorCode::Unavailable: return "transient";
    case ErrorCode::Timeout: return "timeout";
    case ErrorCode::Storage:
    case ErrorCode::Config:
    case ErrorCode::Internal: return "exception";
  }
  return "exception";
}

std::string Error::describe() const {
  std::string out;
  if (!where.empty()) {
    out += where;
    out += ": ";
  }
  out += message;
  if (!hint.empty()) {
    out += " (";
    out += hint;
    out += ")";
  }
  return out;
}

}  // namespace gw

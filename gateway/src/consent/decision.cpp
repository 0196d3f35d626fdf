#include "consent/decision.hpp"

namespace gw::consent {

std::string_view outcomeName(Outcome o) {
  switch (o) {
    case Outcome::Permit: return "permit";
    case Outcome::Redact: return "redact";
    case Outcome::Deny: return "deny";
  }
  return "deny";
}

std::optional<Outcome> parseOutcome(std::string_view name) {
  for (const Outcome o : {Outcome::Permit, Outcome::Redact, Outcome::Deny}) {
    if (outcomeName(o) == name) return o;
  }
  return std::nullopt;
}

std::string_view reasonName(Reason r) {
  switch (r) {
    case Reason::None: return "none";
    case Reason::NoConsent: return "no-consent";
    case Reason::Expired: return "expired";
    case Reason::NotYetValid: return "not-yet-valid";
    case Reason::Revoked: return "revoked";
    case Reason::PurposeNotCovered: return "purpose-not-covered";
    case Reason::ClassNotCovered: return "class-not-covered";
    case Reason::Unclassified: return "unclassified";
    case Reason::InvalidRequest: return "invalid-request";
    case Reason::InternalError: return "internal-error";
    case Reason::BreakGlass: return "break-glass";
  }
  return "internal-error";
}

std::string reasonText(const Decision& d) {
  std::string out(reasonName(d.reason));
  if (d.reason == Reason::ClassNotCovered && !d.missing.empty()) {
    out += ':';  // appended in two steps: `":" + string` trips GCC 12's -Wrestrict false positive at -O3
    out += privacy::classSetName(d.missing);
  }
  return out;
}

std::string describe(const Decision& d) {
  if (d.outcome == Outcome::Permit) return "permit";
  std::string out(outcomeName(d.outcome));
  out += ':';
  out += reasonText(d);
  return out;
}

}  // namespace gw::consent

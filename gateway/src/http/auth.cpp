#include "http/auth.hpp"

#include <algorithm>

#include "common/ids.hpp"
#include "common/log.hpp"

namespace gw::http {
namespace {

std::string toLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// RFC 6750 b64token: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/", then "=" padding.
bool isBearerToken(std::string_view token) {
  if (token.empty()) return false;
  std::size_t i = 0;
  for (; i < token.size(); ++i) {
    const char c = token[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                    c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) break;
  }
  if (i == 0) return false;
  for (; i < token.size(); ++i) {
    if (token[i] != '=') return false;
  }
  return true;
}

Error unauthenticated(const Request& request, std::string_view reason, std::string message, std::string hint) {
  GW_LOG(Warn, Auth, "auth_failed").kv("reason", reason).kv("request_id", request.request_id).kv("remote", request.remote);
  return makeError(ErrorCode::Unauthenticated, std::move(message), "header Authorization", std::move(hint));
}

// "sha256:AB:CD:..." -> "sha256:abcd...", so a fingerprint matches however it was copied.
std::string normalizeBinding(std::string_view binding) {
  constexpr std::string_view kSha256 = "sha256:";
  if (binding.substr(0, kSha256.size()) != kSha256) return std::string(binding);
  std::string out(kSha256);
  for (char c : binding.substr(kSha256.size())) {
    if (c != ':') out.push_back(c);
  }
  return toLower(out);
}

bool certificateIsBound(const TokenEntry& entry, const ClientIdentity& client) {
  if (!client.verified) return false;  // an unverified certificate proves nothing
  return std::any_of(entry.client_certs.begin(), entry.client_certs.end(), [&](const std::string& binding) {
    return (!client.fingerprint_sha256.empty() && binding == "sha256:" + client.fingerprint_sha256) ||
           (!client.subject.empty() && binding == "subject:" + client.subject);
  });
}

}  // namespace

std::string hashToken(std::string_view token) { return ids::sha256Hex(token); }

bool Principal::has(Role role) const { return std::find(roles.begin(), roles.end(), role) != roles.end(); }

bool Principal::mayActForClinic(std::string_view clinic) const {
  if (clinic.empty()) return false;
  return std::any_of(clinics.begin(), clinics.end(), [&](const std::string& c) { return c == "*" || c == clinic; });
}

Authenticator::Authenticator(std::vector<TokenEntry> entries) : entries_(std::move(entries)) {
  for (TokenEntry& entry : entries_) {
    entry.sha256_hex = toLower(entry.sha256_hex);
    for (std::string& binding : entry.client_certs) binding = normalizeBinding(binding);
  }
}

Result<Principal> Authenticator::authenticate(const Request& request) const {
  const std::string_view header = request.header("Authorization");
  if (header.empty()) {
    return unauthenticated(request, "missing", "no bearer token", "send the header Authorization: Bearer <token>");
  }
  // The scheme is case-insensitive (RFC 7235); exactly one space before the token.
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() || toLower(header.substr(0, kScheme.size())) != kScheme) {
    return unauthenticated(request, "malformed", "the Authorization header is not a bearer token",
                           "send the header Authorization: Bearer <token>");
  }
  const std::string_view token = header.substr(kScheme.size());
  if (!isBearerToken(token)) {
    return unauthenticated(request, "malformed", "the bearer token has characters a token cannot have",
                           "send the token exactly as issued, without quotes or spaces");
  }

  const std::string digest = hashToken(token);
  const TokenEntry* found = nullptr;
  for (const TokenEntry& entry : entries_) {
    // No early exit: every entry costs the same, whether or not an earlier one matched.
    const bool equal = ids::constantTimeEquals(digest, entry.sha256_hex);
    if (equal && found == nullptr) found = &entry;
  }
  if (found == nullptr) {
    return unauthenticated(request, "unknown_token", "unknown or revoked token",
                           "check the token; ask the gateway administrator for a new one if it was rotated");
  }
  if (!found->client_certs.empty() && !certificateIsBound(*found, request.client)) {
    // A stolen token alone is not enough: it works only over a connection holding the key of one
    // of its certificates. The token id and the certificate's fingerprint are not secrets.
    const bool presented = request.client.verified && !request.client.fingerprint_sha256.empty();
    GW_LOG(Warn, Auth, "auth_failed")
        .kv("reason", presented ? "certificate_not_bound" : "no_client_certificate")
        .kv("token", found->id)
        .kv("client_sha256", presented ? std::string_view(request.client.fingerprint_sha256) : std::string_view("-"))
        .kv("request_id", request.request_id)
        .kv("remote", request.remote);
    return makeError(ErrorCode::Unauthenticated,
                     presented ? "this token is bound to client certificates, and the connection's certificate is not "
                                 "one of them"
                               : "this token is bound to client certificates, and the connection presented none",
                     "client certificate",
                     "connect with the client certificate issued together with this token, or ask the gateway "
                     "administrator to list this certificate in the token's client_certs");
  }
  return Principal{found->id, found->roles, found->clinics};
}

Status Authenticator::require(const Principal& principal, Role role) const {
  if (principal.has(role)) return ok();
  GW_LOG(Warn, Auth, "forbidden").kv("token", principal.token_id).kv("missing_role", roleName(role));
  return makeError(ErrorCode::Forbidden, "this token does not have the " + std::string(roleName(role)) + " role",
                   "header Authorization", "use a token issued for this role");
}

Status Authenticator::requireClinic(const Principal& principal, std::string_view clinic) const {
  if (principal.mayActForClinic(clinic)) return ok();
  // The clinic id is configuration, not PHI, so it can be named.
  GW_LOG(Warn, Auth, "forbidden").kv("token", principal.token_id).kv("clinic", clinic);
  return makeError(ErrorCode::Forbidden, "this token may not post records for clinic '" + std::string(clinic) + "'",
                   "clinic", "use the token issued to that clinic, or ask the administrator to bind this token to it");
}

}  // namespace gw::http

#pragma once
// Bearer-token authentication. Tokens are configured as SHA-256 hex digests only, so a leaked
// configuration file does not leak credentials; `hashToken` makes the digest for the CLI.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/roles.hpp"
#include "http/request.hpp"

namespace gw::http {

using gw::parseRole;
using gw::Role;
using gw::roleName;

/// Lowercase hex SHA-256 of the token: the value that goes into the configuration.
std::string hashToken(std::string_view token);

struct TokenEntry {
  std::string id;          // internal id, safe to log
  std::string sha256_hex;  // hashToken(token), 64 hex digits (any case)
  std::vector<Role> roles;
  std::vector<std::string> clinics;  // clinics an ingest token may post for; "*" = any
  /// Client certificates the token may be used with (RFC 8705 certificate-bound tokens):
  /// "sha256:<hex fingerprint>" (colons and any case accepted) or "subject:<RFC 2253 subject>",
  /// as ClientIdentity::subject spells it. Empty: not bound, any (or no) certificate will do.
  std::vector<std::string> client_certs;
};

struct Principal {
  std::string token_id;
  std::vector<Role> roles;
  std::vector<std::string> clinics;

  /// Roles are not hierarchical: Admin does not imply the others (least privilege, so an
  /// admin token cannot read Part 2 disclosures unless it is also given Compliance).
  bool has(Role role) const;
  bool mayActForClinic(std::string_view clinic) const;
};

class Authenticator {
 public:
  explicit Authenticator(std::vector<TokenEntry> entries);

  /// Reads "Authorization: Bearer <token>". Missing, malformed or unknown -> Unauthenticated
  /// (401, errorResponse adds WWW-Authenticate: Bearer). The token's SHA-256 is compared in
  /// constant time against every entry, so timing does not tell which prefix matched. A token
  /// bound to client certificates presented over a connection without a verified certificate
  /// from its list -> Unauthenticated too (RFC 8705 section 3: invalid_token, 401).
  Result<Principal> authenticate(const Request& request) const;

  /// Forbidden (403) unless the principal has `role`.
  Status require(const Principal& principal, Role role) const;
  /// Forbidden (403) unless the principal may act for `clinic`.
  Status requireClinic(const Principal& principal, std::string_view clinic) const;

  std::size_t size() const { return entries_.size(); }

 private:
  std::vector<TokenEntry> entries_;
};

}  // namespace gw::http

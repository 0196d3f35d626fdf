#pragma once
// Deterministic identifiers and digests. A resend of the same record maps to the same ids.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace gw::ids {

/// Namespace UUID under which all gateway resource ids are derived (fixed forever: changing it
/// would make every partner see new resources).
inline constexpr std::string_view kGatewayNamespace = "3f8f0b52-6c1e-5c6a-9a55-0c1f6a7d2b10";

/// RFC 4122 version-5 UUID (SHA-1) of `name` in `namespace_uuid`, lowercase canonical text.
std::string uuidV5(std::string_view namespace_uuid, std::string_view name);
/// uuidV5 over "clinic|record type|source id" in the gateway namespace.
std::string resourceId(std::string_view clinic, std::string_view type, std::string_view source_id);

/// Pseudonym of a clinic record for logs and status answers: HMAC-SHA256 under a secret of the
/// deployment (record ids may embed MRNs, and a plain hash of a small MRN space is reversible).
std::string recordKey(std::string_view secret, std::string_view clinic, std::string_view record_id);

/// Lowercase hex SHA-256 of the bytes.
std::string sha256Hex(std::string_view data);
std::array<std::uint8_t, 32> sha256(std::string_view data);

/// Constant-time comparison for secrets and digests.
bool constantTimeEquals(std::string_view a, std::string_view b);

/// `bytes` random bytes from the OpenSSL DRBG, hex encoded.
std::string randomHex(std::size_t bytes);

}  // namespace gw::ids

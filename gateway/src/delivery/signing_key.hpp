#pragma once
// The gateway's asymmetric keys for SMART Backend Services (RFC 7523 client assertions): a
// private key that signs JWTs with RS384 or ES384, and its public half as a JWK, which the
// gateway publishes in its JWKS (GET /.well-known/jwks.json, `fhir-gateway keys jwks`) so a
// hospital can register the gateway by URL. OpenSSL EVP does the signing (no JWT library: two
// algorithms and one compact serialization are a few dozen lines, and libjwt would add a
// dependency without removing the key handling done here).
#include <openssl/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace gw::delivery {

/// JWS algorithms the gateway signs with; SMART requires clients to support both.
enum class JwsAlg {
  RS384,  // RSASSA-PKCS1-v1_5 with SHA-384, RSA key of 2048 bits or more
  ES384,  // ECDSA on P-384 with SHA-384, signature r || s (48 bytes each), not DER
};
std::string_view jwsAlgName(JwsAlg alg);
std::optional<JwsAlg> parseJwsAlg(std::string_view name);

/// Base64url without padding (RFC 7515 §2).
std::string base64url(std::string_view bytes);

class SigningKey {
 public:
  /// Reads a PEM private key. The file holds a secret: it must be private to the gateway's user
  /// (mode 0600, as every key file). Refuses a key that does not fit `alg` (RS384: RSA of 2048
  /// bits or more; ES384: EC on P-384). `setting` names the config key in errors.
  static Result<SigningKey> load(const std::filesystem::path& file, JwsAlg alg, std::string kid, std::string_view setting);
  /// A fresh key pair: RSA 3072 for RS384, P-384 for ES384. kid: the RFC 7638 thumbprint.
  static Result<SigningKey> generate(JwsAlg alg);

  JwsAlg alg() const { return alg_; }
  const std::string& kid() const { return kid_; }
  /// The private key as unencrypted PKCS#8 PEM (for `keys new-signing-key`, written 0600).
  Result<std::string> privatePem() const;
  /// The public key as a JWK object: kty, kid, alg, use "sig", and n/e (RSA) or crv/x/y (EC).
  std::string publicJwk() const;
  /// RFC 7638 JWK thumbprint (SHA-256, base64url): a kid derived from the key itself.
  std::string thumbprint() const;
  /// JWS compact serialization of `claims_json` with header {"alg","kid","typ":"JWT"}.
  Result<std::string> signJwt(std::string_view claims_json) const;
  /// The OpenSSL key (tests verify signatures with it).
  EVP_PKEY* native() const { return key_.get(); }

 private:
  SigningKey(std::shared_ptr<EVP_PKEY> key, JwsAlg alg, std::string kid)
      : key_(std::move(key)), alg_(alg), kid_(std::move(kid)) {}
  std::shared_ptr<EVP_PKEY> key_;
  JwsAlg alg_;
  std::string kid_;
};

/// {"keys":[...]} of the keys' public JWKs, in the given order (no private parameter ever).
std::string jwksJson(const std::vector<SigningKey>& keys);

/// An RFC 7523 client assertion: iss = sub = client_id, aud = the token URL, a random unique
/// jti, iat = now, exp = now + `lifetime` (SMART: at most five minutes).
Result<std::string> clientAssertion(const SigningKey& key, std::string_view client_id, std::string_view token_url,
                                    SystemTime now, std::chrono::seconds lifetime = std::chrono::seconds(240));

}  // namespace gw::delivery

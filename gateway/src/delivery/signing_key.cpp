#include "delivery/signing_key.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>

#include "common/crypto.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"

namespace gw::delivery {
namespace {

constexpr std::size_t kP384Bytes = 48;  // one coordinate, and one of r and s

std::string openSslReason() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* key) { return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free); }

// A BIGNUM key parameter as unsigned big-endian bytes, left-padded to `width` (0: minimal).
std::string bnParam(const EVP_PKEY* key, const char* name, std::size_t width = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return {};
  const int size = BN_num_bytes(bn);
  std::string out(std::max<std::size_t>(width, static_cast<std::size_t>(size)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

bool isP384(const EVP_PKEY* key) {
  char group[64] = {0};
  std::size_t length = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) != 1) return false;
  const std::string_view name(group, length);
  return name == "secp384r1" || name == "P-384";
}

Status checkFits(const EVP_PKEY* key, JwsAlg alg, const std::string& where, std::string_view setting) {
  const std::string hint = "make a key with: fhir-gateway keys new-signing-key --alg " + std::string(jwsAlgName(alg)) +
                           " --out FILE, or change " + std::string(setting) + "'s alg";
  if (alg == JwsAlg::RS384) {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
      return makeError(ErrorCode::Config, "the key is not an RSA key, so it cannot sign RS384", where, hint);
    }
    if (EVP_PKEY_get_bits(key) < 2048) {
      return makeError(ErrorCode::Config,
                       "the RSA key has " + std::to_string(EVP_PKEY_get_bits(key)) +
                           " bits; RS384 needs at least 2048 (SMART Backend Services)",
                       where, hint);
    }
  } else {
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || !isP384(key)) {
      return makeError(ErrorCode::Config, "the key is not an EC key on curve P-384, so it cannot sign ES384", where, hint);
    }
  }
  return ok();
}

// The JWK members that define the key, in lexicographic order (RFC 7638 §3.2), as written
// into both the thumbprint input and the published JWK.
struct JwkMembers {
  std::vector<std::pair<std::string, std::string>> members;
};

JwkMembers requiredMembers(const EVP_PKEY* key, JwsAlg alg) {
  JwkMembers m;
  if (alg == JwsAlg::RS384) {
    m.members = {{"e", base64url(bnParam(key, OSSL_PKEY_PARAM_RSA_E))},
                 {"kty", "RSA"},
                 {"n", base64url(bnParam(key, OSSL_PKEY_PARAM_RSA_N))}};
  } else {
    m.members = {{"crv", "P-384"},
                 {"kty", "EC"},
                 {"x", base64url(bnParam(key, OSSL_PKEY_PARAM_EC_PUB_X, kP384Bytes))},
                 {"y", base64url(bnParam(key, OSSL_PKEY_PARAM_EC_PUB_Y, kP384Bytes))}};
  }
  return m;
}

template <class Writer>
void writeMembers(Writer& w, const JwkMembers& m) {
  for (const auto& [name, value] : m.members) {
    json::writeString(w, name);
    json::writeString(w, value);
  }
}

// ECDSA signatures come from OpenSSL as DER SEQUENCE { r, s }; JWS wants r || s (RFC 7518 §3.4).
Result<std::string> derToJose(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (sig == nullptr) return makeError(ErrorCode::Internal, "cannot decode the ECDSA signature: " + openSslReason());
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig, &r, &s);
  std::string out(2 * kP384Bytes, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  const bool fits = BN_bn2binpad(r, bytes, kP384Bytes) == static_cast<int>(kP384Bytes) &&
                    BN_bn2binpad(s, bytes + kP384Bytes, kP384Bytes) == static_cast<int>(kP384Bytes);
  ECDSA_SIG_free(sig);
  if (!fits) return makeError(ErrorCode::Internal, "the ECDSA signature does not fit P-384");
  return out;
}

}  // namespace

std::string_view jwsAlgName(JwsAlg alg) { return alg == JwsAlg::RS384 ? "RS384" : "ES384"; }

std::optional<JwsAlg> parseJwsAlg(std::string_view name) {
  if (name == "RS384") return JwsAlg::RS384;
  if (name == "ES384") return JwsAlg::ES384;
  return std::nullopt;
}

std::string base64url(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  return out;
}

Result<SigningKey> SigningKey::load(const std::filesystem::path& file, JwsAlg alg, std::string kid,
                                    std::string_view setting) {
  GW_TRY(crypto::checkPrivateFile(file, "the signing key file", setting));
  std::ifstream in(file, std::ios::binary);
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  // An empty passphrase callback: an encrypted key fails instead of prompting on a terminal.
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(
      bio, nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
  BIO_free(bio);
  crypto::wipe(pem);
  if (raw == nullptr) {
    ERR_clear_error();
    return makeError(ErrorCode::Config, "the signing key file holds no readable PEM private key", file.string(),
                     "write an unencrypted PEM private key there, e.g. with fhir-gateway keys new-signing-key");
  }
  auto key = own(raw);
  GW_TRY(checkFits(key.get(), alg, file.string(), setting));
  return SigningKey(std::move(key), alg, std::move(kid));
}

Result<SigningKey> SigningKey::generate(JwsAlg alg) {
  EVP_PKEY* raw = alg == JwsAlg::RS384 ? EVP_RSA_gen(3072) : EVP_EC_gen("P-384");
  if (raw == nullptr) return makeError(ErrorCode::Internal, "cannot generate a key pair: " + openSslReason());
  SigningKey key(own(raw), alg, "");
  key.kid_ = key.thumbprint();
  return key;
}

Result<std::string> SigningKey::privatePem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PrivateKey(bio, key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    return makeError(ErrorCode::Internal, "cannot write the private key as PEM: " + openSslReason());
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return pem;
}

std::string SigningKey::publicJwk() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  writeMembers(w, requiredMembers(key_.get(), alg_));
  w.Key("kid");
  json::writeString(w, kid_);
  w.Key("alg");
  json::writeString(w, jwsAlgName(alg_));
  w.Key("use");
  w.String("sig");
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::string SigningKey::thumbprint() const {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  writeMembers(w, requiredMembers(key_.get(), alg_));
  w.EndObject();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(buffer.GetString(), buffer.GetSize(), digest, &length, EVP_sha256(), nullptr);
  return base64url(std::string_view(reinterpret_cast<const char*>(digest), length));
}

Result<std::string> SigningKey::signJwt(std::string_view claims_json) const {
  rapidjson::StringBuffer header;
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(header);
    w.StartObject();
    w.Key("alg");
    json::writeString(w, jwsAlgName(alg_));
    w.Key("kid");
    json::writeString(w, kid_);
    w.Key("typ");
    w.String("JWT");
    w.EndObject();
  }
  const std::string signing_input = base64url(std::string_view(header.GetString(), header.GetSize())) + "." +
                                    base64url(claims_json);

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string signature;
  std::size_t length = 0;
  bool signed_ok = ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, EVP_sha384(), nullptr, key_.get()) == 1 &&
                   EVP_DigestSign(ctx, nullptr, &length, reinterpret_cast<const unsigned char*>(signing_input.data()),
                                  signing_input.size()) == 1;
  if (signed_ok) {
    signature.resize(length);
    signed_ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &length,
                               reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) == 1;
    signature.resize(length);
  }
  EVP_MD_CTX_free(ctx);
  if (!signed_ok) return makeError(ErrorCode::Internal, "cannot sign the JWT: " + openSslReason(), kid_);
  if (alg_ == JwsAlg::ES384) {
    GW_TRY(signature, derToJose(signature));
  }
  return signing_input + "." + base64url(signature);
}

std::string jwksJson(const std::vector<SigningKey>& keys) {
  std::string out = R"({"keys":[)";
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i > 0) out += ',';
    out += keys[i].publicJwk();
  }
  return out + "]}";
}

Result<std::string> clientAssertion(const SigningKey& key, std::string_view client_id, std::string_view token_url,
                                    SystemTime now, std::chrono::seconds lifetime) {
  const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  rapidjson::StringBuffer claims;
  rapidjson::Writer<rapidjson::StringBuffer> w(claims);
  w.StartObject();
  w.Key("iss");
  json::writeString(w, client_id);
  w.Key("sub");
  json::writeString(w, client_id);
  w.Key("aud");
  json::writeString(w, token_url);
  w.Key("jti");
  json::writeString(w, ids::randomHex(16));  // 128 random bits: never repeats within a lifetime
  w.Key("iat");
  w.Int64(iat);
  w.Key("exp");
  w.Int64(iat + lifetime.count());
  w.EndObject();
  return key.signJwt(std::string_view(claims.GetString(), claims.GetSize()));
}

}  // namespace gw::delivery

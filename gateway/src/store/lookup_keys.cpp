#include "store/lookup_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <stdexcept>

#include "common/ids.hpp"
#include "store/keyring.hpp"

namespace gw::store {

// An HMAC-SHA256 context keyed once; each MAC works on a copy of it. The same MAC as
// crypto::hmacSha256 (lookup_keys_test.cpp checks it).
class HmacSha256 {
 public:
  explicit HmacSha256(const crypto::SecretKey& key) {
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    keyed_ = mac == nullptr ? nullptr : EVP_MAC_CTX_new(mac);
    if (keyed_ == nullptr || EVP_MAC_init(keyed_, key.data(), key.size(), params) != 1) {
      EVP_MAC_CTX_free(keyed_);
      throw std::runtime_error("OpenSSL HMAC-SHA256 is not available");
    }
  }
  ~HmacSha256() { EVP_MAC_CTX_free(keyed_); }
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  std::array<unsigned char, 32> mac(std::string_view message) const {
    std::array<unsigned char, 32> out{};
    std::size_t len = 0;
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(keyed_);
    const bool done = ctx != nullptr &&
                      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1 &&
                      EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size();
    EVP_MAC_CTX_free(ctx);
    if (!done) throw std::runtime_error("OpenSSL HMAC-SHA256 failed");
    return out;
  }

 private:
  EVP_MAC_CTX* keyed_ = nullptr;  // holds the key schedule; freed (and cleansed by OpenSSL) with it
};

LookupKeys::LookupKeys(const crypto::SecretKey& secret) : hmac_(std::make_shared<const HmacSha256>(secret)) {}

// Changing a message changes every stored key of its kind: never change one, add a kind.
std::string LookupKeys::key(std::string_view kind, std::initializer_list<std::string_view> parts) const {
  if (!hmac_) throw std::logic_error("lookup keys were asked for without the lookup secret");
  std::string message = payloadContext({"gw-lookup-v1", kind});
  for (auto p : parts) message += payloadContext({p});
  const auto mac = hmac_->mac(message);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * kLookupKeyBytes, '0');
  for (std::size_t i = 0; i < kLookupKeyBytes; ++i) {
    out[2 * i] = kHex[mac[i] >> 4];
    out[2 * i + 1] = kHex[mac[i] & 0x0f];
  }
  return out;
}

std::string LookupKeys::patient(std::string_view clinic, std::string_view mrn) const {
  return patientOfResource(ids::resourceId(clinic, "Patient", mrn));
}

std::string LookupKeys::patientOfResource(std::string_view patient_resource_id) const {
  return key("patient", {patient_resource_id});
}

std::string LookupKeys::record(std::string_view clinic, std::string_view record_id) const {
  return key("record", {clinic, record_id});
}

std::string LookupKeys::resource(std::string_view resource_type, std::string_view resource_id) const {
  return key("resource", {resource_type, resource_id});
}

std::string LookupKeys::consentReference(std::string_view reference) const { return key("consent", {reference}); }

std::string LookupKeys::consent(std::string_view clinic, std::string_view consent_id) const {
  std::string reference;
  reference.reserve(clinic.size() + 1 + consent_id.size());
  reference.append(clinic).append("/").append(consent_id);
  return consentReference(reference);
}

}  // namespace gw::store

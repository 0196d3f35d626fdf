#include "store/lookup_keys.hpp"

#include <stdexcept>

#include "common/ids.hpp"
#include "store/keyring.hpp"

namespace gw::store {

LookupKeys::LookupKeys(const crypto::SecretKey& secret) : hmac_(std::make_shared<const crypto::KeyedHmacSha256>(secret)) {}

// Changing a message changes every stored key of its kind: never change one, add a kind.
std::string LookupKeys::key(std::string_view kind, std::initializer_list<std::string_view> parts) const {
  if (!hmac_) throw std::logic_error("lookup keys were asked for without the lookup secret");
  std::string message = payloadContext({"gw-lookup-v1", kind});
  for (auto p : parts) message += payloadContext({p});
  return hmac_->macHex(message, kLookupKeyBytes);
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

#include "store/store_payloads.hpp"

#include <utility>

namespace gw::store {
namespace {

// The row identities payloads are bound to (keyring.hpp: the AAD). Changing one makes every
// stored payload of that column unreadable: never change them, add a new envelope version.
std::string recordContext(std::string_view clinic, std::string_view record_id, int version) {
  return payloadContext({"record_versions.payload", clinic, record_id, std::to_string(version)});
}
std::string resourceContext(std::string_view column, std::string_view type, std::string_view id) {
  return payloadContext({column, type, id});
}
std::string bundleContext(std::string_view partner, std::string_view clinic, std::string_view record_id, int version) {
  return payloadContext({"outbox.bundle", partner, clinic, record_id, std::to_string(version)});
}
std::string outcomeContext(std::int64_t item_id) { return payloadContext({"outbox.outcome", std::to_string(item_id)}); }

// A payload that does not open names the class (from the keyring) and the row (here).
Result<std::string> named(Result<std::string> opened, std::string where) {
  if (opened) return opened;
  Error e = opened.error();
  e.where = std::move(where);
  return e;
}

}  // namespace

Result<std::string> StorePayloads::sealRecord(privacy::DataClass c, std::string_view plain, std::string_view clinic,
                                              std::string_view record_id, int version) const {
  return keyring_.seal(c, plain, recordContext(clinic, record_id, version));
}

Result<std::string> StorePayloads::sealIdentifier(privacy::DataClass c, std::string_view plain, std::string_view type,
                                                  std::string_view id) const {
  return keyring_.seal(c, plain, resourceContext("resources.identifier_value", type, id));
}

Result<std::string> StorePayloads::sealBody(privacy::DataClass c, std::string_view plain, std::string_view type,
                                            std::string_view id) const {
  return keyring_.seal(c, plain, resourceContext("resources.body", type, id));
}

Result<std::string> StorePayloads::sealBundle(privacy::DataClass c, std::string_view plain, std::string_view partner,
                                              std::string_view clinic, std::string_view record_id, int version) const {
  return keyring_.seal(c, plain, bundleContext(partner, clinic, record_id, version));
}

Result<std::string> StorePayloads::sealOutcome(privacy::ClassSet classes, std::string_view plain,
                                               std::int64_t item_id) const {
  return keyring_.seal(classes, plain, outcomeContext(item_id));
}

Result<std::string> StorePayloads::openRecord(std::string_view sealed, std::string_view clinic, std::string_view record_id,
                                              int version) const {
  return named(keyring_.open(sealed, recordContext(clinic, record_id, version)),
               "record_versions version " + std::to_string(version) + " payload");
}

Result<std::string> StorePayloads::openIdentifier(std::string_view sealed, std::string_view type,
                                                  std::string_view id) const {
  return named(keyring_.open(sealed, resourceContext("resources.identifier_value", type, id)),
               "resources " + std::string(type) + "/" + std::string(id) + " identifier");
}

Result<std::string> StorePayloads::openBody(std::string_view sealed, std::string_view type, std::string_view id) const {
  return named(keyring_.open(sealed, resourceContext("resources.body", type, id)),
               "resources " + std::string(type) + "/" + std::string(id) + " body");
}

Result<std::string> StorePayloads::openBundle(std::string_view sealed, std::string_view partner, std::string_view clinic,
                                              std::string_view record_id, int version, std::int64_t item_id) const {
  return named(keyring_.open(sealed, bundleContext(partner, clinic, record_id, version)),
               "outbox item " + std::to_string(item_id) + " bundle");
}

Result<std::string> StorePayloads::openOutcome(std::string_view sealed, std::int64_t item_id) const {
  return named(keyring_.open(sealed, outcomeContext(item_id)), "outbox item " + std::to_string(item_id) + " outcome");
}

}  // namespace gw::store

#include "store/store_payloads.hpp"

#include <array>
#include <utility>

namespace gw::store {
namespace {

// The row identities payloads are bound to (keyring.hpp: the AAD). Changing one makes every
// stored payload of that column unreadable: never change them without a conversion that
// re-seals every row (as schema 5 did when rows came to be named by lookup keys).
std::string recordContext(std::string_view clinic, std::string_view record_key, int version) {
  return payloadContext({"record_versions.payload", clinic, record_key, std::to_string(version)});
}
std::string resourceContext(std::string_view column, std::string_view type, std::string_view resource_key) {
  return payloadContext({column, type, resource_key});
}
std::string itemContext(std::string_view column, std::string_view partner, std::string_view clinic,
                        std::string_view record_key, int version) {
  return payloadContext({column, partner, clinic, record_key, std::to_string(version)});
}
std::string outcomeContext(std::int64_t item_id) { return payloadContext({"outbox.outcome", std::to_string(item_id)}); }
std::string consentContext(std::string_view column, std::string_view clinic, std::string_view consent_key,
                           std::int64_t version) {
  return payloadContext({column, clinic, consent_key, std::to_string(version)});
}
std::string secretContext(std::string_view name) { return payloadContext({"deployment_secrets.value", name}); }

std::string_view textColumnName(SealedColumn c) {
  switch (c) {
    case SealedColumn::BreakGlassRecipient: return "break_glass.recipient";
    case SealedColumn::BreakGlassAuthorisedBy: return "break_glass.authorised_by";
    case SealedColumn::BreakGlassNature: return "break_glass.nature";
    case SealedColumn::AccountingRequestNote: return "accounting_requests.note";
    default: return "unknown";
  }
}
std::string textContext(SealedColumn c, std::string_view row_id) { return payloadContext({textColumnName(c), row_id}); }

// A payload that does not open names the class (from the keyring) and the row (here).
Result<std::string> named(Result<std::string> opened, std::string where) {
  if (opened) return opened;
  Error e = opened.error();
  e.where = std::move(where);
  return e;
}

std::string resourceRow(std::string_view type, std::string_view resource_key, std::string_view column) {
  return "resources " + std::string(type) + " key " + std::string(resource_key) + " " + std::string(column);
}

std::string consentRow(std::string_view clinic, std::string_view consent_key, std::int64_t version) {
  return "consents " + std::string(clinic) + " key " + std::string(consent_key) + " version " + std::to_string(version);
}

// The context each sealed column's envelope was made with, from the cell's row identity.
std::string cellContext(const SealedCell& c) {
  switch (c.column) {
    case SealedColumn::RecordPayload: return recordContext(c.clinic, c.record_key, static_cast<int>(c.version));
    case SealedColumn::ResourceId: return resourceContext("resources.resource_id", c.resource_type, c.resource_key);
    case SealedColumn::ResourceIdentifier:
      return resourceContext("resources.identifier_value", c.resource_type, c.resource_key);
    case SealedColumn::ResourceBody: return resourceContext("resources.body", c.resource_type, c.resource_key);
    case SealedColumn::OutboxBundle:
      return itemContext("outbox.bundle", c.partner_id, c.clinic, c.record_key, static_cast<int>(c.version));
    case SealedColumn::OutboxDisclosure:
      return itemContext("outbox.disclosure", c.partner_id, c.clinic, c.record_key, static_cast<int>(c.version));
    case SealedColumn::OutboxOutcome: return outcomeContext(c.row);
    case SealedColumn::ConsentId: return consentContext("consents.consent_id", c.clinic, c.consent_key, c.version);
    case SealedColumn::ConsentResourceId: return consentContext("consents.resource_id", c.clinic, c.consent_key, c.version);
    case SealedColumn::SecretValue: return secretContext(c.name);
    case SealedColumn::BreakGlassRecipient:
    case SealedColumn::BreakGlassAuthorisedBy:
    case SealedColumn::BreakGlassNature:
    case SealedColumn::AccountingRequestNote: return textContext(c.column, c.name);
  }
  return {};
}

// A cell named without its clear ids: table, column, the row's position (no PHI).
std::string cellRow(const SealedCell& c) {
  static constexpr std::array<std::string_view, 10> kColumns = {
      "record_versions.payload", "resources.resource_id", "resources.identifier_value",
      "resources.body",          "outbox.bundle",         "outbox.disclosure",
      "outbox.outcome",          "consents.consent_id",   "consents.resource_id",
      "deployment_secrets.value"};
  if (isTextSealedColumn(c.column)) return std::string(textColumnName(c.column)) + " row " + c.name;
  return std::string(kColumns[static_cast<std::size_t>(c.column)]) + " row " + std::to_string(c.row);
}

}  // namespace

Result<std::optional<std::string>> StorePayloads::resealUnderNewest(const SealedCell& cell, privacy::DataClass c) const {
  if (isTextSealedColumn(cell.column)) {
    // Text form: open it (plain text from before sealing opens as itself), seal it anew when
    // it is plain or under an older version of `c`.
    const std::string_view stored = cell.sealed;
    if (stored.starts_with(kSealedTextPrefix)) {
      const auto envelope = crypto::base64Decode(stored.substr(kSealedTextPrefix.size()));
      const auto view = envelope ? parseEnvelope(*envelope) : std::nullopt;
      if (!view || view->data_class != c || view->key_version == keyring_.currentVersion(c)) {
        return std::optional<std::string>();
      }
    } else if (privacy::storageClass(privacy::ClassSet()) != c) {
      return std::optional<std::string>();
    }
    GW_TRY(auto plain, openText(cell.column, stored, cell.name));
    auto sealed = sealText(cell.column, plain, cell.name);
    crypto::wipe(plain);
    if (!sealed) return sealed.error();
    return std::optional<std::string>(std::move(sealed).value());
  }
  const auto view = parseEnvelope(cell.sealed);
  if (!view || view->data_class != c || view->key_version == keyring_.currentVersion(c)) {
    return std::optional<std::string>();
  }
  const std::string context = cellContext(cell);
  GW_TRY(auto plain, named(keyring_.open(cell.sealed, context), cellRow(cell)));
  std::string out;
  out.reserve(cell.sealed.size());
  auto sealed = keyring_.sealAppend(c, plain, context, out);
  crypto::wipe(plain);
  if (!sealed) return sealed.error();
  return std::optional<std::string>(std::move(out));
}

Result<std::string> StorePayloads::sealRecord(privacy::DataClass c, std::string_view plain, std::string_view clinic,
                                              std::string_view record_key, int version) const {
  return keyring_.seal(c, plain, recordContext(clinic, record_key, version));
}

Result<std::string> StorePayloads::sealResourceId(privacy::DataClass c, std::string_view plain, std::string_view type,
                                                  std::string_view resource_key) const {
  return keyring_.seal(c, plain, resourceContext("resources.resource_id", type, resource_key));
}

Result<std::string> StorePayloads::sealIdentifier(privacy::DataClass c, std::string_view plain, std::string_view type,
                                                  std::string_view resource_key) const {
  return keyring_.seal(c, plain, resourceContext("resources.identifier_value", type, resource_key));
}

Result<std::string> StorePayloads::sealBody(privacy::DataClass c, std::string_view plain, std::string_view type,
                                            std::string_view resource_key) const {
  return keyring_.seal(c, plain, resourceContext("resources.body", type, resource_key));
}

Result<std::string> StorePayloads::sealBundle(privacy::DataClass c, std::string_view plain, std::string_view partner,
                                              std::string_view clinic, std::string_view record_key, int version) const {
  return keyring_.seal(c, plain, itemContext("outbox.bundle", partner, clinic, record_key, version));
}

Result<std::string> StorePayloads::sealDisclosure(privacy::DataClass c, std::string_view plain, std::string_view partner,
                                                  std::string_view clinic, std::string_view record_key, int version) const {
  return keyring_.seal(c, plain, itemContext("outbox.disclosure", partner, clinic, record_key, version));
}

Result<std::string> StorePayloads::sealOutcome(privacy::ClassSet classes, std::string_view plain,
                                               std::int64_t item_id) const {
  return keyring_.seal(classes, plain, outcomeContext(item_id));
}

Result<std::string> StorePayloads::sealConsentId(std::string_view plain, std::string_view clinic,
                                                 std::string_view consent_key, std::int64_t version) const {
  return keyring_.seal(privacy::ClassSet(), plain, consentContext("consents.consent_id", clinic, consent_key, version));
}

Result<std::string> StorePayloads::sealConsentResourceId(std::string_view plain, std::string_view clinic,
                                                         std::string_view consent_key, std::int64_t version) const {
  return keyring_.seal(privacy::ClassSet(), plain, consentContext("consents.resource_id", clinic, consent_key, version));
}

Result<std::string> StorePayloads::sealSecret(std::string_view plain, std::string_view name) const {
  return keyring_.seal(privacy::ClassSet(), plain, secretContext(name));
}

Result<std::string> StorePayloads::sealText(SealedColumn column, std::string_view plain, std::string_view row_id) const {
  if (plain.empty()) return std::string();
  GW_TRY(auto sealed, keyring_.seal(privacy::ClassSet(), plain, textContext(column, row_id)));
  return std::string(kSealedTextPrefix) + crypto::base64Encode(sealed);
}

Result<std::string> StorePayloads::openText(SealedColumn column, std::string_view stored, std::string_view row_id) const {
  if (!stored.starts_with(kSealedTextPrefix)) return std::string(stored);
  const std::string where = std::string(textColumnName(column)) + " row " + std::string(row_id);
  const auto envelope = crypto::base64Decode(stored.substr(kSealedTextPrefix.size()));
  if (!envelope) {
    return makeError(ErrorCode::Storage, "a sealed text value is not base64", where,
                     "the row was changed outside the gateway: restore it from a backup");
  }
  return named(keyring_.open(*envelope, textContext(column, row_id)), where);
}

Result<std::string> StorePayloads::openRecord(std::string_view sealed, std::string_view clinic, std::string_view record_key,
                                              int version) const {
  return named(keyring_.open(sealed, recordContext(clinic, record_key, version)),
               "record_versions key " + std::string(record_key) + " version " + std::to_string(version) + " payload");
}

Result<std::string> StorePayloads::openResourceId(std::string_view sealed, std::string_view type,
                                                  std::string_view resource_key) const {
  return named(keyring_.open(sealed, resourceContext("resources.resource_id", type, resource_key)),
               resourceRow(type, resource_key, "id"));
}

Result<std::string> StorePayloads::openIdentifier(std::string_view sealed, std::string_view type,
                                                  std::string_view resource_key) const {
  return named(keyring_.open(sealed, resourceContext("resources.identifier_value", type, resource_key)),
               resourceRow(type, resource_key, "identifier"));
}

Result<std::string> StorePayloads::openBody(std::string_view sealed, std::string_view type,
                                            std::string_view resource_key) const {
  return named(keyring_.open(sealed, resourceContext("resources.body", type, resource_key)),
               resourceRow(type, resource_key, "body"));
}

Result<std::string> StorePayloads::openBundle(std::string_view sealed, std::string_view partner, std::string_view clinic,
                                              std::string_view record_key, int version, std::int64_t item_id) const {
  return named(keyring_.open(sealed, itemContext("outbox.bundle", partner, clinic, record_key, version)),
               "outbox item " + std::to_string(item_id) + " bundle");
}

Result<std::string> StorePayloads::openDisclosure(std::string_view sealed, std::string_view partner, std::string_view clinic,
                                                  std::string_view record_key, int version, std::int64_t item_id) const {
  return named(keyring_.open(sealed, itemContext("outbox.disclosure", partner, clinic, record_key, version)),
               "outbox item " + std::to_string(item_id) + " disclosure");
}

Result<std::string> StorePayloads::openOutcome(std::string_view sealed, std::int64_t item_id) const {
  return named(keyring_.open(sealed, outcomeContext(item_id)), "outbox item " + std::to_string(item_id) + " outcome");
}

Result<std::string> StorePayloads::openConsentId(std::string_view sealed, std::string_view clinic,
                                                 std::string_view consent_key, std::int64_t version) const {
  return named(keyring_.open(sealed, consentContext("consents.consent_id", clinic, consent_key, version)),
               consentRow(clinic, consent_key, version) + " consent_id");
}

Result<std::string> StorePayloads::openConsentResourceId(std::string_view sealed, std::string_view clinic,
                                                         std::string_view consent_key, std::int64_t version) const {
  return named(keyring_.open(sealed, consentContext("consents.resource_id", clinic, consent_key, version)),
               consentRow(clinic, consent_key, version) + " resource_id");
}

Result<std::string> StorePayloads::openSecret(std::string_view sealed, std::string_view name) const {
  return named(keyring_.open(sealed, secretContext(name)), "deployment_secrets " + std::string(name));
}

Result<std::string> StorePayloads::openLegacyRecord(std::string_view sealed, std::string_view clinic,
                                                    std::string_view record_id, int version) const {
  return named(keyring_.open(sealed, recordContext(clinic, record_id, version)),
               "record_versions version " + std::to_string(version) + " payload (schema 4)");
}

Result<std::string> StorePayloads::openLegacyIdentifier(std::string_view sealed, std::string_view type,
                                                        std::string_view id) const {
  return named(keyring_.open(sealed, resourceContext("resources.identifier_value", type, id)),
               "resources " + std::string(type) + " identifier (schema 4)");
}

Result<std::string> StorePayloads::openLegacyBody(std::string_view sealed, std::string_view type,
                                                  std::string_view id) const {
  return named(keyring_.open(sealed, resourceContext("resources.body", type, id)),
               "resources " + std::string(type) + " body (schema 4)");
}

Result<std::string> StorePayloads::openLegacyBundle(std::string_view sealed, std::string_view partner,
                                                    std::string_view clinic, std::string_view record_id, int version,
                                                    std::int64_t item_id) const {
  return named(keyring_.open(sealed, itemContext("outbox.bundle", partner, clinic, record_id, version)),
               "outbox item " + std::to_string(item_id) + " bundle (schema 4)");
}

}  // namespace gw::store

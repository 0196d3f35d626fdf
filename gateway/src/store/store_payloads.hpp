#pragma once
// Payload encryption as the store's rows use it: which row identity (the AAD context) each
// payload column is bound to, and which row an unreadable payload came from. Backend-neutral:
// a backend stores the sealed bytes and never sees these contexts. Rows are named by their
// lookup keys (store/lookup_keys.hpp), never by clear ids.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "privacy/data_class.hpp"
#include "store/keyring.hpp"
#include "store/store_backend.hpp"

namespace gw::store {

/// The start of a sealed value in a TEXT column (StorePayloads::sealText).
inline constexpr std::string_view kSealedTextPrefix = "sealed:";

class StorePayloads {
 public:
  explicit StorePayloads(Keyring keyring) : keyring_(std::move(keyring)) {}

  const Keyring& keyring() const { return keyring_; }

  // Seal under the key of the storage class `c`.
  Result<std::string> sealRecord(privacy::DataClass c, std::string_view plain, std::string_view clinic,
                                 std::string_view record_key, int version) const;
  Result<std::string> sealResourceId(privacy::DataClass c, std::string_view plain, std::string_view type,
                                     std::string_view resource_key) const;
  Result<std::string> sealIdentifier(privacy::DataClass c, std::string_view plain, std::string_view type,
                                     std::string_view resource_key) const;
  Result<std::string> sealBody(privacy::DataClass c, std::string_view plain, std::string_view type,
                               std::string_view resource_key) const;
  Result<std::string> sealBundle(privacy::DataClass c, std::string_view plain, std::string_view partner,
                                 std::string_view clinic, std::string_view record_key, int version) const;
  Result<std::string> sealDisclosure(privacy::DataClass c, std::string_view plain, std::string_view partner,
                                     std::string_view clinic, std::string_view record_key, int version) const;
  Result<std::string> sealOutcome(privacy::ClassSet classes, std::string_view plain, std::int64_t item_id) const;
  // Consent ids and deployment secrets are unclassified: sealed as sud.
  Result<std::string> sealConsentId(std::string_view plain, std::string_view clinic, std::string_view consent_key,
                                    std::int64_t version) const;
  Result<std::string> sealConsentResourceId(std::string_view plain, std::string_view clinic, std::string_view consent_key,
                                            std::int64_t version) const;
  Result<std::string> sealSecret(std::string_view plain, std::string_view name) const;
  /// The console's free text (break-glass record, accounting request notes; names of staff and
  /// the nature of an emergency), sealed as sud for the row `row_id`, in text form for a TEXT
  /// column: kSealedTextPrefix + base64 of the envelope. Empty text stays empty.
  Result<std::string> sealText(SealedColumn column, std::string_view plain, std::string_view row_id) const;

  // Open what the matching seal made; an error's `where` names the row.
  Result<std::string> openRecord(std::string_view sealed, std::string_view clinic, std::string_view record_key,
                                 int version) const;
  Result<std::string> openResourceId(std::string_view sealed, std::string_view type, std::string_view resource_key) const;
  Result<std::string> openIdentifier(std::string_view sealed, std::string_view type, std::string_view resource_key) const;
  Result<std::string> openBody(std::string_view sealed, std::string_view type, std::string_view resource_key) const;
  Result<std::string> openBundle(std::string_view sealed, std::string_view partner, std::string_view clinic,
                                 std::string_view record_key, int version, std::int64_t item_id) const;
  Result<std::string> openDisclosure(std::string_view sealed, std::string_view partner, std::string_view clinic,
                                     std::string_view record_key, int version, std::int64_t item_id) const;
  Result<std::string> openOutcome(std::string_view sealed, std::int64_t item_id) const;
  Result<std::string> openConsentId(std::string_view sealed, std::string_view clinic, std::string_view consent_key,
                                    std::int64_t version) const;
  Result<std::string> openConsentResourceId(std::string_view sealed, std::string_view clinic, std::string_view consent_key,
                                            std::int64_t version) const;
  Result<std::string> openSecret(std::string_view sealed, std::string_view name) const;
  /// What sealText made. Text without the prefix was written before these columns were sealed
  /// (schema 8 as first released) and is returned as it is; data key rotation seals it.
  Result<std::string> openText(SealedColumn column, std::string_view stored, std::string_view row_id) const;

  /// Data key rotation: the cell's plaintext sealed again, for the same row identity, under the
  /// newest loaded version of class `c`. nullopt when the cell is not of class `c`, is sealed
  /// under that version already, or is no envelope. An envelope that does not open is an error
  /// naming the row.
  Result<std::optional<std::string>> resealUnderNewest(const SealedCell& cell, privacy::DataClass c) const;

  // Schema 4 bound payloads to the clear ids: only the conversion to lookup keys opens those.
  Result<std::string> openLegacyRecord(std::string_view sealed, std::string_view clinic, std::string_view record_id,
                                       int version) const;
  Result<std::string> openLegacyIdentifier(std::string_view sealed, std::string_view type, std::string_view id) const;
  Result<std::string> openLegacyBody(std::string_view sealed, std::string_view type, std::string_view id) const;
  Result<std::string> openLegacyBundle(std::string_view sealed, std::string_view partner, std::string_view clinic,
                                       std::string_view record_id, int version, std::int64_t item_id) const;

 private:
  Keyring keyring_;  // thread-safe: versions are added under its own lock, sealed and opened from a snapshot
};

}  // namespace gw::store

#pragma once
// Lookup keys: what the database holds instead of clear identifiers (docs/privacy.md §9). Each is
// an HMAC-SHA256 under the database's lookup secret (Keyring::hashKey(HashKeyPurpose::Lookup),
// wrapped by the master key), truncated to 128 bits, over a domain-separated, length-prefixed
// message ("gw-lookup-v1", kind, parts), so a patient key never equals a record key and no two
// part lists give the same bytes. Whoever holds the database file but not the master key cannot
// recompute one from a guessed MRN or record id.
//
// Who computes which:
//   patient   the caller (ingest, compliance routes): patient_key is a lookup key everywhere in
//             the process (the registry, the outbox, the decision log); the FHIR Patient id
//             (ids::resourceId(clinic, "Patient", mrn)) stays inside the payloads.
//   record, resource, consent   the store, at its API boundary: callers pass the clear ids
//             they have (from a request or a payload) and never see these keys, except as the
//             opaque references the decision log and the consents answer show.
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "common/crypto.hpp"

namespace gw::store {

class LookupKeys {
 public:
  /// Keys under `secret` (32 bytes). A default-made LookupKeys has no secret: every call throws.
  /// Copies share the keyed state, which is never changed after construction (any thread may
  /// compute keys at once).
  LookupKeys() = default;
  explicit LookupKeys(const crypto::SecretKey& secret);

  /// The patient_key of clinic + MRN: what a compliance officer's ?clinic&mrn looks up.
  std::string patient(std::string_view clinic, std::string_view mrn) const;
  /// The same key from the patient's FHIR id, ids::resourceId(clinic, "Patient", mrn) (which
  /// databases of schema 4 stored as patient_key: their rows convert exactly).
  std::string patientOfResource(std::string_view patient_resource_id) const;
  /// A clinic's record: records, record_versions, resources and outbox rows.
  std::string record(std::string_view clinic, std::string_view record_id) const;
  /// A FHIR resource by type and id: resources rows and decision-log rows.
  std::string resource(std::string_view resource_type, std::string_view resource_id) const;
  /// A consent by its reference "<clinic>/<consent id>" (the form decisions and the decision log
  /// carry): consents rows and decision-log rows.
  std::string consentReference(std::string_view reference) const;
  std::string consent(std::string_view clinic, std::string_view consent_id) const;

  bool empty() const { return !hmac_; }

 private:
  std::string key(std::string_view kind, std::initializer_list<std::string_view> parts) const;
  // Keyed once: ingest computes several keys per record inside its commit.
  std::shared_ptr<const crypto::KeyedHmacSha256> hmac_;
};

/// Bytes of each lookup key (hex: twice as many characters). 128 bits: no two of a database's
/// identifiers collide, and the index stays small.
inline constexpr std::size_t kLookupKeyBytes = 16;

}  // namespace gw::store

#pragma once
// The one-time conversion of rows written before lookup keys (schema 4 and older), as rules
// over values: a backend reads its old rows, asks this for the new keys and envelopes, and
// writes them back (StoreBackend::convertLegacyIdentifiers). Old envelopes were bound to the clear
// ids; they are opened with those and sealed again, under the same class, bound to the keys.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "store/lookup_keys.hpp"
#include "store/store_payloads.hpp"

namespace gw::store {

/// A resources row as schema 4 held it.
struct LegacyResourceRow {
  std::string resource_type;
  std::string resource_id;  // clear
  std::string clinic;
  std::string record_id;  // clear
  std::string identifier_value_sealed;
  std::string body_sealed;
  std::string data_class;
};

struct ConvertedResource {
  std::string resource_key;
  std::string record_key;
  std::string resource_id_sealed;
  std::string identifier_value_sealed;
  std::string body_sealed;
};

/// An outbox row as schema 4 held it.
struct LegacyOutboxRow {
  std::int64_t id = 0;
  std::string partner_id;
  std::string clinic;
  std::string record_id;  // clear
  int record_version = 0;
  std::string patient_key;  // the Patient's FHIR id
  std::string bundle_sealed;
  std::string disclosure;  // clear JSON (its "patient" the Patient's FHIR id)
  std::string data_class;
};

struct ConvertedOutboxRow {
  std::string record_key;
  std::string patient_key;
  std::string bundle_sealed;
  std::string disclosure_sealed;
};

/// A consents row as schema 4 held it (ids clear).
struct LegacyConsentRow {
  std::string clinic;
  std::string consent_id;
  std::int64_t version = 0;
  std::string patient_key;  // the Patient's FHIR id
  std::string resource_id;
};

struct ConvertedConsentRow {
  std::string consent_key;
  std::string patient_key;
  std::string consent_id_sealed;
  std::string resource_id_sealed;
};

class LegacyIdentifiers {
 public:
  LegacyIdentifiers(const StorePayloads& payloads, const LookupKeys& keys) : payloads_(payloads), keys_(keys) {}

  std::string recordKey(std::string_view clinic, std::string_view record_id) const;
  /// The lookup key of a patient_key stored as the Patient's FHIR id ("" stays "").
  std::string patientKey(std::string_view patient_resource_id) const;
  /// A record_versions payload re-sealed for its record key. `data_class` is the row's (used only
  /// for a payload written before encryption at rest, which is sealed now).
  Result<std::string> recordPayload(std::string_view sealed, std::string_view clinic, std::string_view record_id,
                                    int version, std::string_view data_class) const;
  Result<ConvertedResource> resource(const LegacyResourceRow& row) const;
  Result<ConvertedOutboxRow> outboxItem(const LegacyOutboxRow& row) const;
  Result<ConvertedConsentRow> consent(const LegacyConsentRow& row) const;
  /// A deployment secret stored in clear, sealed.
  Result<std::string> secret(std::string_view name, std::string_view value) const;

 private:
  const StorePayloads& payloads_;
  const LookupKeys& keys_;
};

}  // namespace gw::store

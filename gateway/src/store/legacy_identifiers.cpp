#include "store/legacy_identifiers.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/json.hpp"

namespace gw::store {
namespace {

// The class an old envelope was sealed under; a payload from before encryption at rest (no
// envelope) takes its row's class, unclassified (sud) when that is unknown.
privacy::DataClass classOf(std::string_view sealed, std::string_view row_class) {
  if (const auto view = parseEnvelope(sealed)) return view->data_class;
  const auto c = privacy::parseClass(row_class);
  return c ? *c : privacy::storageClass(privacy::ClassSet());
}

// Opens an old envelope; a value that is no envelope is taken as the clear payload it was.
template <class Open>
Result<std::string> openOld(std::string_view sealed, Open&& open) {
  if (!parseEnvelope(sealed)) return std::string(sealed);
  return open();
}

}  // namespace

std::string LegacyIdentifiers::recordKey(std::string_view clinic, std::string_view record_id) const {
  return keys_.record(clinic, record_id);
}

std::string LegacyIdentifiers::patientKey(std::string_view patient_resource_id) const {
  return patient_resource_id.empty() ? std::string() : keys_.patientOfResource(patient_resource_id);
}

Result<std::string> LegacyIdentifiers::recordPayload(std::string_view sealed, std::string_view clinic,
                                                     std::string_view record_id, int version,
                                                     std::string_view data_class) const {
  GW_TRY(auto plain, openOld(sealed, [&] { return payloads_.openLegacyRecord(sealed, clinic, record_id, version); }));
  auto resealed = payloads_.sealRecord(classOf(sealed, data_class), plain, clinic, recordKey(clinic, record_id), version);
  crypto::wipe(plain);
  return resealed;
}

Result<ConvertedResource> LegacyIdentifiers::resource(const LegacyResourceRow& row) const {
  ConvertedResource out;
  out.resource_key = keys_.resource(row.resource_type, row.resource_id);
  out.record_key = recordKey(row.clinic, row.record_id);
  const privacy::DataClass c = classOf(row.body_sealed, row.data_class);
  GW_TRY(out.resource_id_sealed, payloads_.sealResourceId(c, row.resource_id, row.resource_type, out.resource_key));
  GW_TRY(auto value, openOld(row.identifier_value_sealed, [&] {
           return payloads_.openLegacyIdentifier(row.identifier_value_sealed, row.resource_type, row.resource_id);
         }));
  GW_TRY(out.identifier_value_sealed, payloads_.sealIdentifier(classOf(row.identifier_value_sealed, row.data_class), value,
                                                               row.resource_type, out.resource_key));
  crypto::wipe(value);
  GW_TRY(auto body, openOld(row.body_sealed,
                            [&] { return payloads_.openLegacyBody(row.body_sealed, row.resource_type, row.resource_id); }));
  GW_TRY(out.body_sealed, payloads_.sealBody(c, body, row.resource_type, out.resource_key));
  crypto::wipe(body);
  return out;
}

Result<ConvertedOutboxRow> LegacyIdentifiers::outboxItem(const LegacyOutboxRow& row) const {
  ConvertedOutboxRow out;
  out.record_key = recordKey(row.clinic, row.record_id);
  out.patient_key = patientKey(row.patient_key);
  const privacy::DataClass c = classOf(row.bundle_sealed, row.data_class);
  GW_TRY(auto bundle, openOld(row.bundle_sealed, [&] {
           return payloads_.openLegacyBundle(row.bundle_sealed, row.partner_id, row.clinic, row.record_id,
                                             row.record_version, row.id);
         }));
  GW_TRY(out.bundle_sealed, payloads_.sealBundle(c, bundle, row.partner_id, row.clinic, out.record_key, row.record_version));
  crypto::wipe(bundle);
  // The disclosure names its patient (re-checked against the registry before each send): by the
  // same key the registry now holds.
  std::string disclosure = row.disclosure;
  rapidjson::Document doc;
  if (!disclosure.empty() && json::parse(disclosure, doc) && doc.IsObject() && doc.HasMember("patient") &&
      doc["patient"].IsString()) {
    const std::string key = patientKey(std::string_view(doc["patient"].GetString(), doc["patient"].GetStringLength()));
    doc["patient"].SetString(key.data(), static_cast<rapidjson::SizeType>(key.size()), doc.GetAllocator());
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    doc.Accept(w);
    disclosure.assign(buffer.GetString(), buffer.GetSize());
  }
  GW_TRY(out.disclosure_sealed,
         payloads_.sealDisclosure(c, disclosure, row.partner_id, row.clinic, out.record_key, row.record_version));
  return out;
}

Result<ConvertedConsentRow> LegacyIdentifiers::consent(const LegacyConsentRow& row) const {
  ConvertedConsentRow out;
  out.consent_key = keys_.consent(row.clinic, row.consent_id);
  out.patient_key = patientKey(row.patient_key);
  GW_TRY(out.consent_id_sealed, payloads_.sealConsentId(row.consent_id, row.clinic, out.consent_key, row.version));
  GW_TRY(out.resource_id_sealed, payloads_.sealConsentResourceId(row.resource_id, row.clinic, out.consent_key, row.version));
  return out;
}

Result<std::string> LegacyIdentifiers::secret(std::string_view name, std::string_view value) const {
  if (parseEnvelope(value)) return std::string(value);  // sealed already
  return payloads_.sealSecret(value, name);
}

}  // namespace gw::store

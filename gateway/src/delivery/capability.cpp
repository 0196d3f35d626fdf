#include "delivery/capability.hpp"

#include <rapidjson/document.h>

#include "common/json.hpp"

namespace gw::delivery {

namespace {

constexpr std::string_view kOauthUris = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

Error invalid(std::string message, std::string where) {
  return makeError(ErrorCode::InvalidInput, "partner CapabilityStatement: " + std::move(message), std::move(where),
                   "check the partner's GET [base]/metadata, or set partners[].write_mode to skip discovery");
}

// A string member, or "" when absent; an error when present but not a string.
Result<std::string> optionalString(const rapidjson::Value& object, std::string_view key, const std::string& where) {
  const auto* v = json::find(object, key);
  if (v == nullptr) return std::string();
  if (!v->IsString()) return invalid("'" + std::string(key) + "' must be a string", where + "." + std::string(key));
  return std::string(json::view(*v));
}

// An array member, or nullptr when absent; an error when present but not an array.
Result<const rapidjson::Value*> optionalArray(const rapidjson::Value& object, std::string_view key,
                                              const std::string& where) {
  const auto* v = json::find(object, key);
  if (v == nullptr) return static_cast<const rapidjson::Value*>(nullptr);
  if (!v->IsArray()) return invalid("'" + std::string(key) + "' must be an array", where + "." + std::string(key));
  return v;
}

Result<bool> optionalBool(const rapidjson::Value& object, std::string_view key, const std::string& where) {
  const auto* v = json::find(object, key);
  if (v == nullptr) return false;
  if (!v->IsBool()) return invalid("'" + std::string(key) + "' must be true or false", where + "." + std::string(key));
  return v->GetBool();
}

// The codes of an interaction array ([{"code": "create"}, ...]).
Result<std::set<std::string>> interactionCodes(const rapidjson::Value& object, const std::string& where) {
  std::set<std::string> codes;
  GW_TRY(const auto* list, optionalArray(object, "interaction", where));
  if (list == nullptr) return codes;
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    const std::string at = where + ".interaction[" + std::to_string(i) + "]";
    const auto& entry = (*list)[i];
    if (!entry.IsObject()) return invalid("an interaction must be an object", at);
    GW_TRY(auto code, optionalString(entry, "code", at));
    if (code.empty()) return invalid("an interaction needs a code", at + ".code");
    codes.insert(std::move(code));
  }
  return codes;
}

Status readSmartEndpoints(const rapidjson::Value& rest, const std::string& where, PartnerCapability& out) {
  const auto* security = json::find(rest, "security");
  if (security == nullptr) return ok();
  if (!security->IsObject()) return invalid("'security' must be an object", where + ".security");
  GW_TRY(const auto* extensions, optionalArray(*security, "extension", where + ".security"));
  if (extensions == nullptr) return ok();
  for (rapidjson::SizeType i = 0; i < extensions->Size(); ++i) {
    const std::string at = where + ".security.extension[" + std::to_string(i) + "]";
    const auto& ext = (*extensions)[i];
    if (!ext.IsObject()) return invalid("an extension must be an object", at);
    GW_TRY(auto url, optionalString(ext, "url", at));
    if (url != kOauthUris) continue;
    GW_TRY(const auto* inner, optionalArray(ext, "extension", at));
    if (inner == nullptr) continue;
    for (rapidjson::SizeType j = 0; j < inner->Size(); ++j) {
      const std::string in_at = at + ".extension[" + std::to_string(j) + "]";
      const auto& e = (*inner)[j];
      if (!e.IsObject()) return invalid("an extension must be an object", in_at);
      GW_TRY(auto name, optionalString(e, "url", in_at));
      GW_TRY(auto value, optionalString(e, "valueUri", in_at));
      if (name == "token") out.token_url = value;
      if (name == "authorize") out.authorize_url = value;
    }
  }
  return ok();
}

}  // namespace

Result<PartnerCapability> parseCapabilityStatement(std::string_view text) {
  if (text.size() > kMaxCapabilityStatement) {
    return invalid("larger than " + std::to_string(kMaxCapabilityStatement) + " bytes", "$");
  }
  rapidjson::Document doc;
  GW_TRY(json::parseStrict(text, doc));
  if (!doc.IsObject()) return invalid("expected a JSON object", "$");
  if (json::getString(doc, "resourceType") != "CapabilityStatement") {
    return invalid("resourceType is not CapabilityStatement", "$.resourceType");
  }
  PartnerCapability cap;
  GW_TRY(auto fhir_version, optionalString(doc, "fhirVersion", "$"));
  cap.fhir_version = std::move(fhir_version);
  if (cap.fhir_version.empty()) return invalid("no fhirVersion", "$.fhirVersion");
  if (cap.fhir_version.rfind("4.0.", 0) != 0 && cap.fhir_version != "4.0") {
    return invalid("FHIR version " + cap.fhir_version + " is not R4 (4.0.x), the only version the gateway writes",
                   "$.fhirVersion");
  }
  GW_TRY(const auto* rests, optionalArray(doc, "rest", "$"));
  bool server_seen = false;
  for (rapidjson::SizeType i = 0; rests != nullptr && i < rests->Size(); ++i) {
    const std::string where = "$.rest[" + std::to_string(i) + "]";
    const auto& rest = (*rests)[i];
    if (!rest.IsObject()) return invalid("a rest entry must be an object", where);
    GW_TRY(auto mode, optionalString(rest, "mode", where));
    if (mode != "server") continue;  // "client" describes what the partner calls, not what it serves
    server_seen = true;
    GW_TRY(auto system_interactions, interactionCodes(rest, where));
    cap.transaction = cap.transaction || system_interactions.count("transaction") > 0;
    cap.batch = cap.batch || system_interactions.count("batch") > 0;
    GW_TRY(readSmartEndpoints(rest, where, cap));
    GW_TRY(const auto* resources, optionalArray(rest, "resource", where));
    for (rapidjson::SizeType j = 0; resources != nullptr && j < resources->Size(); ++j) {
      const std::string at = where + ".resource[" + std::to_string(j) + "]";
      const auto& r = (*resources)[j];
      if (!r.IsObject()) return invalid("a resource entry must be an object", at);
      GW_TRY(auto type, optionalString(r, "type", at));
      if (type.empty()) return invalid("a resource entry needs a type", at + ".type");
      ResourceCapability rc;
      GW_TRY(auto interactions, interactionCodes(r, at));
      GW_TRY(const bool conditional_create, optionalBool(r, "conditionalCreate", at));
      GW_TRY(const bool conditional_update, optionalBool(r, "conditionalUpdate", at));
      rc.interactions = std::move(interactions);
      rc.conditional_create = conditional_create;
      rc.conditional_update = conditional_update;
      GW_TRY(auto conditional_delete, optionalString(r, "conditionalDelete", at));
      rc.conditional_delete = conditional_delete == "single" || conditional_delete == "multiple";
      auto& merged = cap.resources[type];
      merged.interactions.insert(rc.interactions.begin(), rc.interactions.end());
      merged.conditional_create = merged.conditional_create || rc.conditional_create;
      merged.conditional_update = merged.conditional_update || rc.conditional_update;
      merged.conditional_delete = merged.conditional_delete || rc.conditional_delete;
    }
  }
  if (!server_seen) return invalid("no rest entry with mode \"server\"", "$.rest");
  return cap;
}

std::string_view writeModeName(WriteMode mode) {
  switch (mode) {
    case WriteMode::Transaction: return "transaction";
    case WriteMode::Batch: return "batch";
    case WriteMode::PerResource: return "per-resource";
  }
  return "transaction";
}

std::optional<WriteMode> parseWriteMode(std::string_view name) {
  if (name == "transaction") return WriteMode::Transaction;
  if (name == "batch") return WriteMode::Batch;
  if (name == "per-resource") return WriteMode::PerResource;
  return std::nullopt;
}

WriteModeChoice chooseWriteMode(std::string_view configured, const std::optional<PartnerCapability>& capability) {
  if (auto forced = parseWriteMode(configured)) {
    return {*forced, false, std::string(writeModeName(*forced)) + ": set by write_mode"};
  }
  if (!capability) return {WriteMode::Transaction, false, "transaction: no CapabilityStatement read yet"};
  if (capability->transaction) return {WriteMode::Transaction, true, "transaction: the partner supports it"};
  if (capability->batch) return {WriteMode::Batch, true, "batch: the partner supports batch but not transaction"};
  return {WriteMode::PerResource, true, "per-resource: the partner supports neither transaction nor batch"};
}

std::optional<std::string> unsupportedWrite(const std::optional<PartnerCapability>& capability, const RequiredWrite& write) {
  if (!capability) return std::nullopt;
  const auto it = capability->resources.find(write.resource_type);
  if (it == capability->resources.end()) {
    return "partner does not accept " + write.resource_type + " (not in its CapabilityStatement)";
  }
  const auto& r = it->second;
  switch (write.method) {
    case RequiredWrite::Method::ConditionalCreate:
      if (r.interactions.count("create") == 0) return "partner does not allow create of " + write.resource_type;
      if (!r.conditional_create) return "partner does not allow conditional create of " + write.resource_type;
      break;
    case RequiredWrite::Method::ConditionalUpdate:
      if (r.interactions.count("update") == 0) return "partner does not allow update of " + write.resource_type;
      if (!r.conditional_update) return "partner does not allow conditional update of " + write.resource_type;
      break;
    case RequiredWrite::Method::ConditionalDelete:
      if (r.interactions.count("delete") == 0) return "partner does not allow delete of " + write.resource_type;
      if (!r.conditional_delete) return "partner does not allow conditional delete of " + write.resource_type;
      break;
  }
  return std::nullopt;
}

}  // namespace gw::delivery

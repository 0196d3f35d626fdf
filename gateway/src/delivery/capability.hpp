#pragma once
// What a partner's FHIR server says it can do (its CapabilityStatement, GET {base}/metadata) and
// the write mode the gateway picks from it (docs/architecture.md §5.6). Pure functions: the
// worker fetches, these parse and decide.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::delivery {

/// The largest CapabilityStatement accepted (real servers send a few hundred KB).
inline constexpr std::size_t kMaxCapabilityStatement = 8 * 1024 * 1024;

struct ResourceCapability {
  std::set<std::string> interactions;  // rest.resource[].interaction[].code, e.g. "create", "update"
  bool conditional_create = false;
  bool conditional_update = false;
  bool conditional_delete = false;  // conditionalDelete "single" or "multiple"
};

struct PartnerCapability {
  std::string fhir_version;                             // e.g. "4.0.1"
  std::map<std::string, ResourceCapability> resources;  // by type, rest mode "server"
  bool transaction = false;                             // rest.interaction "transaction"
  bool batch = false;                                   // rest.interaction "batch"
  // SMART endpoints from rest.security.extension (http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris)
  std::string token_url;
  std::string authorize_url;
};

/// Parses a CapabilityStatement (strict JSON, json::parseStrict). Errors (ErrorCode::InvalidInput
/// or MalformedJson) name the JSON path that is wrong: not a CapabilityStatement, no fhirVersion,
/// a FHIR version other than 4.0.x, no rest entry in server mode.
Result<PartnerCapability> parseCapabilityStatement(std::string_view json);

enum class WriteMode { Transaction, Batch, PerResource };
std::string_view writeModeName(WriteMode mode);
/// "transaction" | "batch" | "per-resource" (the config's names; "auto" is not a mode).
std::optional<WriteMode> parseWriteMode(std::string_view name);

/// How the gateway writes one request entry: the resource type and method the entry uses.
struct RequiredWrite {
  std::string resource_type;
  enum class Method { ConditionalCreate, ConditionalUpdate, ConditionalDelete } method = Method::ConditionalUpdate;
  bool operator<(const RequiredWrite& o) const {
    return resource_type != o.resource_type ? resource_type < o.resource_type : method < o.method;
  }
};

struct WriteModeChoice {
  WriteMode mode = WriteMode::Transaction;
  bool discovered = false;  // false: forced by the config's write_mode
  std::string why;          // one line for logs and readyz, e.g. "transaction: the partner supports it"
};

/// The mode for a partner: `configured` ("auto" or a mode) overrides the statement; with "auto"
/// and no statement (not read yet, or unreadable) the gateway keeps transaction Bundles, the mode
/// every FHIR R4 server that takes conditional writes is most likely to have.
WriteModeChoice chooseWriteMode(std::string_view configured, const std::optional<PartnerCapability>& capability);

/// Why the partner cannot take `write`, or nullopt when it can (or nothing is known about it).
/// The reason names the resource type and the missing interaction, e.g. "partner does not accept
/// Observation (not in its CapabilityStatement)".
std::optional<std::string> unsupportedWrite(const std::optional<PartnerCapability>& capability, const RequiredWrite& write);

}  // namespace gw::delivery

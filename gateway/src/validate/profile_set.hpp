#pragma once
// FHIR profile validation of every resource the gateway emits. fhir-profiles/ (R4 base element
// definitions, the project's StructureDefinitions, ValueSets, CodeSystems) is read and compiled
// once at start-up into flat element tables; validate() then walks a resource once, with no
// allocation unless it finds a problem. Diagnostics never quote instance values (they may be PHI):
// they name the element (expression) and what the profile expects.
#include <rapidjson/document.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::validate {

enum class Severity : std::uint8_t { Error, Warning };

std::string_view severityName(Severity severity);

struct ValidationIssue {
  Severity severity = Severity::Error;
  std::string code;  // http://hl7.org/fhir/issue-type: required, value, invalid, structure, code-invalid, invariant, ...
  std::string diagnostics;  // plain words: what is wrong and what the profile expects (no instance values)
  std::string expression;   // FHIRPath-like location, e.g. "MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit"
};

struct ValidationResult {
  std::vector<ValidationIssue> issues;
  std::string profile;  // canonical URL the resource was checked against (empty: R4 base rules only)

  /// True when no issue has severity Error (warnings do not block delivery).
  bool valid() const;
  std::size_t errorCount() const;
  /// OperationOutcome with one issue per problem (an "informational" all-ok issue when there is none).
  rapidjson::Document operationOutcome() const;
  std::string operationOutcomeJson() const;
};

class ProfileSet {
 public:
  /// Loads `dir` (fhir-profiles/): base/r4-core-elements.json, CodeSystem/, ValueSet/ and
  /// StructureDefinition/ (*.json). Any problem in those files fails the load with
  /// ErrorCode::Config and "file:line:column".
  static Result<ProfileSet> loadDirectory(const std::filesystem::path& dir);

  /// Checks `resource` against the first profile in meta.profile that this set knows (a US Core
  /// URL selects the project profile derived from it), or against the R4 base rules for its
  /// resourceType when it names none. Thread-safe: the set is immutable after loading.
  ValidationResult validate(const rapidjson::Value& resource) const;
  /// Checks `resource` against `profile_url` (a project profile, or a US Core URL one is based
  /// on) whatever its meta.profile says; for callers that know which profile a mapper targets.
  /// An unknown URL, or one for another resource type, is an error issue.
  ValidationResult validateAgainst(const rapidjson::Value& resource, std::string_view profile_url) const;

  /// Canonical URLs of the loaded resource profiles (not extensions), sorted.
  std::vector<std::string> profileUrls() const;
  /// True when `url` names a loaded profile (directly or as the US Core profile it is based on).
  bool knowsProfile(std::string_view url) const;
  /// Keys of the FHIR invariants (error-severity FHIRPath constraints) the validator has a check
  /// for, sorted. Which of them apply where is decided by the constraints in fhir-profiles/.
  static std::vector<std::string_view> supportedInvariants();

  struct Impl;

 private:
  explicit ProfileSet(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace gw::validate

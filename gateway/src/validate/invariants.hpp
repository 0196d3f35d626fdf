#pragma once
// FHIR invariants (ElementDefinition.constraint, FHIRPath) as named C++ checks. This is not a
// FHIRPath engine: each constraint key the gateway meets in fhir-profiles/ has a hand-written
// check here, registered with the exact FHIRPath expression it implements. The loader attaches a
// check wherever a StructureDefinition lists the constraint, so the profiles decide which
// invariant applies where; a constraint of severity "error" without a check (and not in the
// documented skip list) fails the load, and so does one whose expression differs from the
// registered one (the rule changed: the check must be reviewed).
#include <rapidjson/document.h>

#include <string>
#include <string_view>
#include <vector>

namespace gw::validate {

/// What a check may look at besides its focus: FHIRPath's %resource and %rootResource.
struct InvariantContext {
  const rapidjson::Value* resource = nullptr;       // the resource the focus is in (may be a contained one)
  const rapidjson::Value* root_resource = nullptr;  // the outermost resource being validated
  // One result a check may keep for the next check on the same value during this validation
  // (txt-1 and txt-2 share one scan of the narrative).
  mutable const void* scratch_key = nullptr;
  mutable unsigned scratch_value = 0;
};

/// True when `focus` (the JSON value of the element the constraint is on) satisfies the rule.
/// Checks never throw and treat values of the wrong JSON type as "not present": the structural
/// walk reports those.
using InvariantCheck = bool (*)(const rapidjson::Value& focus, const InvariantContext& context);

/// One compiled constraint, shared by every element that lists it (owned by ProfileSet::Impl).
struct Invariant {
  std::string key;          // "per-1"
  std::string expression;   // the FHIRPath, as in the StructureDefinition
  std::string diagnostics;  // "Constraint per-1 not met: <human>" (no instance values)
  InvariantCheck check = nullptr;
};

struct InvariantDefinition {
  std::string_view key;
  std::string_view expression;  // the FHIRPath the check implements (compared whitespace-insensitively)
  InvariantCheck check;
};

/// The registered check for `key`, or nullptr.
const InvariantDefinition* findInvariant(std::string_view key);
/// Why `key` is deliberately not checked (empty: it is not in the skip list).
std::string_view skippedInvariantReason(std::string_view key);
/// True when the two FHIRPath texts are equal ignoring whitespace outside string literals.
bool sameExpression(std::string_view a, std::string_view b);
/// Every registered key, sorted (for tests and documentation).
std::vector<std::string_view> invariantKeys();

}  // namespace gw::validate

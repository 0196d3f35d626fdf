#pragma once
// Segmented disclosure of a treatment plan (docs/privacy.md §5.3, §6): when a consent
// covers only some of a CarePlan's activities, the plan is sent without the others. What is
// removed must not leak through what stays: the narrative is regenerated from the kept
// activities (the free-text goals, which cannot be classified, are left out), and the labels are
// recomputed from what is left, plus REDACTED.
#include <rapidjson/document.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "privacy/classifier.hpp"

namespace gw::privacy {

inline constexpr std::string_view kTreatmentPlanActivitySystem =
    "https://fhir-gateway.dev/fhir/CodeSystem/treatment-plan-activity";

struct CarePlanRedaction {
  /// Activity codes of the removed activities, in plan order ("moud", "psychiatric_care"): the
  /// treatment-plan-activity code, else the first Coding's code, else "uncoded". Never free text,
  /// so it can go to the audit log.
  std::vector<std::string> removed_kinds;
  /// Union of the classes of the removed activities.
  ClassSet removed_classes;
  /// The plan as it now stands; its labels say this (plus REDACTED when something was removed).
  Classification after;

  bool redacted() const { return !removed_kinds.empty(); }
};

/// Removes the activities whose classes `covered` does not cover (classified as
/// Classifier::classifyCarePlanActivities does). When nothing is removed the plan is untouched.
/// Otherwise: activity keeps only the covered ones (dropped when none is left), text is
/// regenerated, and meta.security is rewritten for the plan as redacted, with REDACTED.
Result<CarePlanRedaction> redactCarePlan(rapidjson::Document& careplan, ClassSet covered, const Classifier& classifier,
                                         bool part2_program);

/// The same for activities chosen by index (ascending, e.g. consent::Decision::removed_activities).
/// An index out of range, or not ascending, is an error and leaves the plan untouched; so is a
/// plan with more than one "activity" member (a repeated JSON name), which cannot be trimmed safely.
Result<CarePlanRedaction> removeCarePlanActivities(rapidjson::Document& careplan, std::span<const std::uint32_t> indexes,
                                                   const Classifier& classifier, bool part2_program);

}  // namespace gw::privacy

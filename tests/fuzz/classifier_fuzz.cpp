// Fuzzes sensitivity classification, security labelling and CarePlan redaction on any JSON: a
// mapped resource is built from what a clinic sent, so none of them may assume its shape.
// Input: one flags byte, then the resource JSON. Flags bit 0: the record came from a 42 CFR
// Part 2 program; bits 1-3: the classes the consent covers (general 1, sud 2, mh 4) for the
// redaction. In ASCII: '0' none, '2' general, '6' general+sud, '>' all; odd digits add Part 2.
#include <cstdint>
#include <string_view>

#include "common/json.hpp"
#include "privacy/classifier.hpp"
#include "privacy/labels.hpp"
#include "privacy/redaction.hpp"

namespace {

using gw::privacy::ClassSet;

const gw::privacy::Classifier& classifier() {
  static const gw::privacy::Classifier instance = [] {
    auto loaded = gw::privacy::Classifier::load(
        gw::privacy::ValueSetFiles::inProfilesDir(std::string(GW_REPO_DIR) + "/fhir-profiles"));
    if (!loaded) __builtin_trap();  // the shipped value sets must load
    return std::move(loaded).value();
  }();
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool part2 = (data[0] & 1) != 0;
  const ClassSet covered(static_cast<std::uint8_t>((data[0] >> 1) & 7));
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto& c = classifier();

  rapidjson::Document resource;
  if (!gw::json::parse(text, resource)) return 0;
  rapidjson::Document careplan;
  careplan.CopyFrom(resource, careplan.GetAllocator());

  const auto classification = c.classify(resource, part2);
  if (classification.classes.empty() || (part2 && !classification.classes.has(gw::privacy::DataClass::Sud))) {
    __builtin_trap();
  }
  (void)c.classifyCarePlanOwn(resource, part2);
  if (gw::privacy::applyLabels(resource, classification)) {
    // Labelling never changes what a resource is, and twice is the same as once.
    if (!(c.classify(resource, part2) == classification)) __builtin_trap();
    const auto labels = gw::privacy::readLabels(resource);
    if (!gw::privacy::applyLabels(resource, classification) || !(gw::privacy::readLabels(resource) == labels)) {
      __builtin_trap();
    }
    (void)gw::privacy::attachPart2Notice(resource);
  }

  auto redaction = gw::privacy::redactCarePlan(careplan, covered, c, part2);
  if (redaction && redaction.value().redacted()) {
    // What stays must be covered by the consent: nothing uncovered may leak through.
    for (const auto& kept : c.classifyCarePlanActivities(careplan, part2)) {
      if (!covered.covers(kept)) __builtin_trap();
    }
    if (!gw::privacy::readLabels(careplan).has(gw::privacy::Label::Redacted)) __builtin_trap();
  }
  return 0;
}

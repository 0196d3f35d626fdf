#include "privacy/redaction.hpp"

#include <array>
#include <string_view>

#include "common/json.hpp"
#include "common/xhtml.hpp"
#include "privacy/labels.hpp"

namespace gw::privacy {
namespace {

using Allocator = rapidjson::Document::AllocatorType;

const rapidjson::Value* codingsOf(const rapidjson::Value& activity) {
  const auto* detail = activity.IsObject() ? json::find(activity, "detail") : nullptr;
  const auto* code = detail != nullptr && detail->IsObject() ? json::find(*detail, "code") : nullptr;
  const auto* codings = code != nullptr && code->IsObject() ? json::find(*code, "coding") : nullptr;
  return codings != nullptr && codings->IsArray() && !codings->Empty() ? codings : nullptr;
}

/// The coding that names the activity kind: the treatment-plan-activity one, else the first.
const rapidjson::Value* kindCoding(const rapidjson::Value& activity) {
  const auto* codings = codingsOf(activity);
  if (codings == nullptr) return nullptr;
  for (const auto& c : codings->GetArray()) {
    if (c.IsObject() && json::getString(c, "system") == kTreatmentPlanActivitySystem) return &c;
  }
  return &(*codings)[0];
}

std::string kindOf(const rapidjson::Value& activity) {
  const auto* c = kindCoding(activity);
  const auto code = c != nullptr && c->IsObject() ? json::getString(*c, "code") : std::string_view{};
  return code.empty() ? std::string("uncoded") : std::string(code);
}

/// The kept activity as the treatment_plan mapper lists it: "Display (status): description".
xhtml::NarrativeItem activityItem(const rapidjson::Value& activity) {
  std::string_view display;
  if (const auto* c = kindCoding(activity); c != nullptr && c->IsObject()) {
    display = json::getString(*c, "display");
    if (display.empty()) display = json::getString(*c, "code");
  }
  const auto* detail = activity.IsObject() ? json::find(activity, "detail") : nullptr;
  const bool has_detail = detail != nullptr && detail->IsObject();
  if (display.empty() && has_detail) {
    if (const auto* code = json::find(*detail, "code"); code != nullptr && code->IsObject()) {
      display = json::getString(*code, "text");
    }
  }
  if (display.empty()) display = "Activity";
  return {display, has_detail ? json::getString(*detail, "status") : std::string_view{},
          has_detail ? json::getString(*detail, "description") : std::string_view{}};
}

/// The narrative of the redacted plan, in the list form of common/xhtml.hpp the mapper's
/// $narrative writes. The goals exist only as free text in the original narrative and cannot
/// be classified, so they are withheld rather than risk disclosing an uncovered class through them.
std::string narrative(const rapidjson::Value* kept_activities) {
  std::array<xhtml::NarrativeSection, 2> sections{
      xhtml::NarrativeSection{"Goals", {}, "not included in this disclosure."},
      xhtml::NarrativeSection{"Activities", {}, "none included in this disclosure."}};
  if (kept_activities != nullptr) {
    for (const auto& a : kept_activities->GetArray()) sections[1].items.push_back(activityItem(a));
  }
  return xhtml::listNarrative("Treatment plan", sections);
}

void setNarrative(rapidjson::Value& careplan, const std::string& div, Allocator& a) {
  rapidjson::Value text(rapidjson::kObjectType);
  text.AddMember("status", "generated", a);
  text.AddMember("div", json::str(div, a), a);
  if (auto it = careplan.FindMember("text"); it != careplan.MemberEnd()) {
    it->value = text;  // moves, keeping text where it was
  } else {
    careplan.AddMember("text", text, a);
  }
}

}  // namespace

Result<CarePlanRedaction> removeCarePlanActivities(rapidjson::Document& careplan, std::span<const std::uint32_t> indexes,
                                                   const Classifier& classifier, bool part2_program) {
  if (!careplan.IsObject() || json::getString(careplan, "resourceType") != "CarePlan") {
    return makeError(ErrorCode::Internal, "activity redaction applies to CarePlan resources only", "resourceType",
                     "redact only resources the consent decision marked for redaction");
  }
  // JSON objects may repeat a name and RapidJSON keeps every copy: only the first "activity" is
  // classified per activity and trimmed here, so a second one would go out unredacted.
  const rapidjson::Value& plan = careplan;
  std::size_t activity_members = 0;
  for (const auto& m : plan.GetObject()) {
    if (json::view(m.name) == "activity") ++activity_members;
  }
  if (activity_members > 1) {
    return makeError(ErrorCode::Internal, "the CarePlan has " + std::to_string(activity_members) + " 'activity' members",
                     "CarePlan.activity", "fix the mapper template so that it writes CarePlan.activity once");
  }
  auto* activities = careplan.HasMember("activity") ? &careplan["activity"] : nullptr;
  const rapidjson::SizeType count = activities != nullptr && activities->IsArray() ? activities->Size() : 0;
  for (std::size_t i = 0; i < indexes.size(); ++i) {
    if (indexes[i] >= count || (i > 0 && indexes[i] <= indexes[i - 1])) {
      return makeError(ErrorCode::Internal, "activity indexes to remove must be ascending and inside CarePlan.activity",
                       "CarePlan.activity[" + std::to_string(indexes[i]) + "]",
                       "pass the decision's removed_activities for this same CarePlan");
    }
  }
  CarePlanRedaction out;
  if (indexes.empty()) {
    out.after = classifier.classify(careplan, part2_program);
    return out;
  }
  const auto classes = classifier.classifyCarePlanActivities(careplan, part2_program);
  auto& a = careplan.GetAllocator();
  rapidjson::Value kept(rapidjson::kArrayType);
  std::size_t next = 0;
  for (rapidjson::SizeType i = 0; i < count; ++i) {
    auto& activity = (*activities)[i];
    if (next < indexes.size() && indexes[next] == i) {
      ++next;
      out.removed_kinds.push_back(kindOf(activity));
      out.removed_classes.add(classes[i]);
      continue;
    }
    kept.PushBack(activity, a);  // moves
  }
  if (kept.Empty()) {
    careplan.EraseMember("activity");
  } else {
    activities->Swap(kept);
  }
  const auto* remaining = careplan.HasMember("activity") ? &careplan["activity"] : nullptr;
  setNarrative(careplan, narrative(remaining), a);
  out.after = classifier.classify(careplan, part2_program);
  GW_TRY(writeLabels(careplan, labelsFor(out.after).add(Label::Redacted)));
  return out;
}

Result<CarePlanRedaction> redactCarePlan(rapidjson::Document& careplan, ClassSet covered, const Classifier& classifier,
                                         bool part2_program) {
  const auto classes = classifier.classifyCarePlanActivities(careplan, part2_program);
  std::vector<std::uint32_t> remove;
  for (std::size_t i = 0; i < classes.size(); ++i) {
    if (!covered.covers(classes[i])) remove.push_back(static_cast<std::uint32_t>(i));
  }
  return removeCarePlanActivities(careplan, remove, classifier, part2_program);
}

}  // namespace gw::privacy

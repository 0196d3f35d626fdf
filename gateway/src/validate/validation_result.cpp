#include <algorithm>

#include "common/json.hpp"
#include "validate/profile_set.hpp"

namespace gw::validate {

std::string_view severityName(Severity severity) { return severity == Severity::Error ? "error" : "warning"; }

bool ValidationResult::valid() const { return errorCount() == 0; }

std::size_t ValidationResult::errorCount() const {
  return static_cast<std::size_t>(
      std::count_if(issues.begin(), issues.end(), [](const ValidationIssue& i) { return i.severity == Severity::Error; }));
}

rapidjson::Document ValidationResult::operationOutcome() const {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("resourceType", "OperationOutcome", a);
  rapidjson::Value list(rapidjson::kArrayType);
  auto add = [&](std::string_view severity, std::string_view code, std::string_view diagnostics,
                 std::string_view expression) {
    rapidjson::Value issue(rapidjson::kObjectType);
    issue.AddMember("severity", json::str(severity, a), a);
    issue.AddMember("code", json::str(code, a), a);
    issue.AddMember("diagnostics", json::str(diagnostics, a), a);
    if (!expression.empty()) {
      rapidjson::Value expressions(rapidjson::kArrayType);
      expressions.PushBack(json::str(expression, a), a);
      issue.AddMember("expression", expressions, a);
    }
    list.PushBack(issue, a);
  };
  for (const auto& i : issues) add(severityName(i.severity), i.code, i.diagnostics, i.expression);
  if (issues.empty()) {
    add("information", "informational",
        profile.empty() ? "valid against the FHIR R4 base rules" : "valid against profile " + profile, {});
  }
  doc.AddMember("issue", list, a);
  return doc;
}

std::string ValidationResult::operationOutcomeJson() const { return json::toString(operationOutcome()); }

}  // namespace gw::validate

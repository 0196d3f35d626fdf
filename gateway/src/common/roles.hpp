#pragma once
// The roles a gateway token can hold: one list, read by the configuration check and by the
// authorization filter. Roles are not hierarchical (least privilege): admin does not imply
// compliance, so an admin token cannot read Part 2 disclosures unless it is also given that role.
#include <array>
#include <optional>
#include <string_view>

namespace gw {

// Operator: lists the outbox, replays dead items, pauses and resumes partners (docs/operations.md),
// for the clinics its token covers. Metrics: GET /metrics only (counts and states, no clinic's data).
enum class Role { Ingest, Engineer, Compliance, Admin, Operator, Metrics };

inline constexpr std::array<std::pair<Role, std::string_view>, 6> kRoleNames = {{
    {Role::Ingest, "ingest"},
    {Role::Engineer, "engineer"},
    {Role::Compliance, "compliance"},
    {Role::Admin, "admin"},
    {Role::Operator, "operator"},
    {Role::Metrics, "metrics"},  // GET /metrics only: counts and states, no clinic's data
}};

/// "ingest" | "engineer" | "compliance" | "admin" | "operator" | "metrics".
constexpr std::optional<Role> parseRole(std::string_view text) {
  for (const auto& [role, name] : kRoleNames) {
    if (name == text) return role;
  }
  return std::nullopt;
}

constexpr std::string_view roleName(Role role) {
  for (const auto& [r, name] : kRoleNames) {
    if (r == role) return name;
  }
  return "unknown";
}

/// "ingest, engineer, compliance, admin, operator, metrics" (for error messages).
constexpr std::string_view kRoleList = "ingest, engineer, compliance, admin, operator, metrics";

}  // namespace gw

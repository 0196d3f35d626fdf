#include "app/audit_tools.hpp"

#include "app/keys.hpp"
#include "audit/audit_query.hpp"
#include "common/log.hpp"

namespace gw::app {

Result<store::VerifyReport> verifyAuditLog(const config::GatewayConfig& config,
                                           const std::optional<store::ChainAnchor>& anchor) {
  GW_TRY(auto store, openConfiguredStore(config, 2));
  GW_TRY(auto report, store->verifyAudit(anchor));
  const auto now_ms = toUnixMillis(std::chrono::system_clock::now());
  // Logged after the check, so the report's head is the chain as it was found.
  if (auto logged = store->appendAudit({audit::auditVerifyEntry(report, "cli", now_ms)}); !logged) {
    GW_LOG(Warn, Audit, "audit_verify_not_logged").kv("error", logged.error().describe());
  }
  return report;
}

}  // namespace gw::app

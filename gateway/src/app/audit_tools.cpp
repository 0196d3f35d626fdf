#include "app/audit_tools.hpp"

#include "app/keys.hpp"
#include "audit/anchor_file.hpp"
#include "audit/audit_query.hpp"
#include "common/log.hpp"
#include "store/audit_chain.hpp"
#include "store/sqlite_store.hpp"

namespace gw::app {

Result<store::VerifyReport> verifyAuditLog(const config::GatewayConfig& config, const AuditVerifyOptions& options) {
  const audit::AnchorSource source{options.anchor,
                                   options.anchor_file.empty() ? config.audit.anchor.file : options.anchor_file,
                                   !options.anchor_file.empty()};
  if (options.read_only || !options.database.empty()) {
    GW_TRY(auto master, config::loadMasterKey(config.privacy));
    GW_TRY(auto backend, openConfiguredBackend(config, true, options.database));
    GW_TRY(auto log, store::ReadOnlyAuditLog::open(std::move(backend), master));
    return audit::verifyWithAnchors([&log](const auto& anchor) { return log.verify(anchor); }, log.anchorSealer(), source);
  }
  GW_TRY(auto store, openConfiguredStore(config, 2));
  GW_TRY(auto report, audit::verifyWithAnchors([&store](const auto& anchor) { return store->verifyAudit(anchor); },
                                               store->anchorSealer(), source));
  const auto now_ms = toUnixMillis(std::chrono::system_clock::now());
  // Logged after the check, so the report's head is the chain as it was found.
  if (auto logged = store->appendAudit({audit::auditVerifyEntry(report, "cli", now_ms)}); !logged) {
    GW_LOG(Warn, Audit, "audit_verify_not_logged").kv("error", logged.error().describe());
  }
  return report;
}

}  // namespace gw::app

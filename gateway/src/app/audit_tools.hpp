#pragma once
// `fhir-gateway audit verify`: the decision and disclosure log's hash chain checked offline,
// straight from the configured database (the gateway may be running or stopped).
#include <optional>

#include "config/gateway_config.hpp"
#include "store/audit_log.hpp"

namespace gw::app {

/// Recomputes the chain (optionally against an anchor kept from an earlier report) and records
/// the check itself in the log, as GET /v1/audit/verify does.
Result<store::VerifyReport> verifyAuditLog(const config::GatewayConfig& config,
                                           const std::optional<store::ChainAnchor>& anchor);

}  // namespace gw::app

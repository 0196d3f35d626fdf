#pragma once
// The gateway's HTTPS API: every route with its access declaration (roles, clinic scope, where it
// runs). The table is the documentation of who may call what; route_table.hpp enforces it.
#include "app/route_table.hpp"
#include "app/runtime.hpp"

namespace gw::app {

/// Adds every route of the gateway to `table`; the handlers use `runtime`, which must outlive
/// the router made from the table.
Status addGatewayRoutes(RouteTable& table, Runtime& runtime);

/// GET /readyz: 200 when the database can commit (with each partner's health, counts and times,
/// no PHI), else 503 with the reason. Served on the main listener and on the loopback listener
/// (server.metrics_listen), where `fhir-gateway health` asks it.
http::Response readinessResponse(Runtime& runtime);

}  // namespace gw::app

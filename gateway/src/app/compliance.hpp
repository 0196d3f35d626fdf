#pragma once
// The compliance console's API (docs/console-api.md): the patient view, the accounting of
// disclosures and its requests, the partner and period view, and break-glass (42 CFR 2.51).
// Route handlers registered in app/routes.cpp; admit() has checked the role and the clinic of
// ?clinic= before any of them runs, whichever way the caller authenticated.
#include "app/runtime.hpp"
#include "http/auth.hpp"
#include "http/request.hpp"

namespace gw::app {

void compliancePatient(Runtime& runtime, http::Request& req, const http::Principal& caller, http::Respond respond);
void complianceAccounting(Runtime& runtime, http::Request& req, const http::Principal& caller, http::Respond respond);
void createAccountingRequest(Runtime& runtime, http::Request& req, const http::Principal& caller, http::Respond respond);
void listAccountingRequests(Runtime& runtime, http::Request& req, const http::Principal& caller, http::Respond respond);
void deliverAccountingRequest(Runtime& runtime, http::Request& req, const http::Principal& caller, http::Respond respond);
void compliancePartner(Runtime& runtime, http::Request& req, const http::Principal& caller, http::Respond respond);
void openBreakGlass(Runtime& runtime, http::Request& req, const http::Principal& caller, http::Respond respond);
void listBreakGlass(Runtime& runtime, http::Request& req, const http::Principal& caller, http::Respond respond);
void endBreakGlass(Runtime& runtime, http::Request& req, const http::Principal& caller, http::Respond respond);

/// The first instant of the day `years` calendar years before `now`'s UTC day (Feb 29 -> Feb 28):
/// where an accounting over `years` years starts.
std::int64_t accountingStartMillis(std::int64_t now_ms, int years);
/// YYYY-MM-DD plus `days`.
std::string addDays(std::string_view date, int days);

}  // namespace gw::app

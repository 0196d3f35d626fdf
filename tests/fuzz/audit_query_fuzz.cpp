// Fuzzes the audit API's query parameters as a client sends them: the input is the query string
// of GET /v1/audit/decisions and GET /v1/audit/verify, split and percent-decoded by the HTTP
// module's own parser, then read by parseAuditQuery / parseVerifyParams. The raw input also goes
// to parseChainAnchor (the CLI's --anchor) and parseRfc3339Millis.
#include <cstdint>
#include <string>
#include <string_view>

#include "audit/audit_query.hpp"
#include "common/ids.hpp"
#include "consent/consent_version.hpp"
#include "http/request.hpp"
#include "store/audit_log.hpp"

namespace {

// The two RFC 3339 readers must agree: a time a clinic record carries (consent module) has to
// mean the same instant as in an audit filter. The audit one is the more lenient (query-string
// '+' read as space, any number of fraction digits), so whatever the consent one accepts it must
// accept with the same value.
void checkTimesAgree(std::string_view text) {
  const auto audit_ms = gw::audit::parseRfc3339Millis(text);
  const auto consent_ms = gw::consent::parseRfc3339Millis(text);
  if (consent_ms && (!audit_ms || audit_ms.value() != *consent_ms)) __builtin_trap();
}

void decisions(const gw::http::Request& req) {
  // Mirrors the GET /v1/audit/decisions handler (app/gateway.cpp): ?clinic=ID&mrn=MRN names the
  // patient, whose internal key replaces mrn before the filters are read.
  auto params = req.query;
  if (params.count("mrn") != 0) {
    const auto clinic = req.queryParam("clinic");
    const auto mrn = req.queryParam("mrn");
    if (!clinic || clinic->empty() || !mrn || mrn->empty()) return;
    params.erase("mrn");
    params.emplace("patient_key", gw::ids::resourceId(*clinic, "Patient", *mrn));
  }
  for (const char* name : {"from", "to"}) {
    if (const auto it = params.find(name); it != params.end()) checkTimesAgree(it->second);
  }
  auto request = gw::audit::parseAuditQuery(params);
  if (!request) {
    if (request.error().hint.empty()) __builtin_trap();  // every user-facing error says what to do
    return;
  }
  const auto& q = request.value().query;
  if (q.limit < 1 || q.limit > gw::store::kMaxAuditPageSize || q.after_seq < 0) __builtin_trap();
  if (q.from_ms && q.to_ms && *q.to_ms <= *q.from_ms) __builtin_trap();
  // The handler appends this entry after answering; an accepted query must always be loggable,
  // or reads of the audit log would go unrecorded.
  const auto entry = gw::audit::auditReadEntry(request.value(), "tok-fuzz", 1'800'000'000'000, 7);
  if (!gw::store::validateAuditEntry(entry)) __builtin_trap();
}

void verify(const gw::http::Request& req) {
  auto anchor = gw::audit::parseVerifyParams(req.query);
  if (anchor && anchor.value() && (anchor.value()->seq < 0 || anchor.value()->hash.size() != 64)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  gw::http::Request req;
  if (gw::http::parseTarget("/v1/audit/decisions?" + std::string(input), req)) decisions(req);
  req = {};
  if (gw::http::parseTarget("/v1/audit/verify?" + std::string(input), req)) verify(req);

  (void)gw::audit::parseChainAnchor(input);
  checkTimesAgree(input);
  if (auto decoded = gw::http::percentDecode(input, true)) checkTimesAgree(*decoded);
  return 0;
}

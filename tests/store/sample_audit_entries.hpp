#pragma once
// One sample decision-log entry per resource number, shared by the audit tests with and without a
// store: every field filled, so canonical bytes and chains cover them all.
#include <string>

#include "store/audit_log.hpp"

namespace gw::store::test {

/// A decision about resource `i` (kind decision, outcome `outcome`, i seconds after 2027-01-15).
inline AuditEntry sampleDecision(int i, AuditOutcome outcome = AuditOutcome::Deny) {
  return AuditEntryBuilder(AuditKind::Decision, outcome, "gateway", 1'800'000'000'000 + i * 1000LL)
      .clinic("c1")
      .patient("pat-" + std::to_string(i % 3))
      .partner("p1", "TREAT")
      .resource("MedicationRequest", "res-" + std::to_string(i), privacy::DataClass::Sud)
      .labels("R,SUD,42CFRPart2")
      .consent("consent-1", 2)
      .reason("class-not-covered:sud")
      .policy("2026.1")
      .detail(R"({"outbox_id":12})")
      .build();
}

}  // namespace gw::store::test

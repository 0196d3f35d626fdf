// Records by type and reason class, decisions by reason (GET /metrics labels).
#include <gtest/gtest.h>

#include "ingest/ingest_stats.hpp"

namespace gw::ingest {
namespace {

TEST(IngestBreakdown, DecisionsCountByOutcomeAndTheReasonsName) {
  IngestBreakdown b;
  b.addDecision(consent::Outcome::Deny, "class-not-covered:mh");
  b.addDecision(consent::Outcome::Deny, "class-not-covered:general,sud");
  b.addDecision(consent::Outcome::Deny, "no-consent");
  b.addDecision(consent::Outcome::Permit, "none");
  b.addDecision(consent::Outcome::Deny, "something new");  // unknown text: counted, as internal-error
  EXPECT_EQ(b.decisions(consent::Outcome::Deny, consent::Reason::ClassNotCovered), 2u);
  EXPECT_EQ(b.decisions(consent::Outcome::Deny, consent::Reason::NoConsent), 1u);
  EXPECT_EQ(b.decisions(consent::Outcome::Permit, consent::Reason::None), 1u);
  EXPECT_EQ(b.decisions(consent::Outcome::Deny, consent::Reason::InternalError), 1u);
  EXPECT_EQ(b.decisions(consent::Outcome::Redact, consent::Reason::None), 0u);
}

TEST(IngestBreakdown, RecordCountsAddUpAcrossRequests) {
  IngestBreakdown b;
  b.addRecords({{{"patient", "accepted", "mapped"}, 2}, {{"other", "rejected", "schema"}, 1}});
  b.addRecords({{{"patient", "accepted", "mapped"}, 3}});
  const auto counts = b.records();
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts.at({"patient", "accepted", "mapped"}), 5u);
  EXPECT_EQ(counts.at({"other", "rejected", "schema"}), 1u);
}

}  // namespace
}  // namespace gw::ingest

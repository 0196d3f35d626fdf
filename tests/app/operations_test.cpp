// Operations without a running gateway: the outbox query's parameters and clinic scope, why a
// record went or not per partner (clinic-safe words), error classes, the progress bar's text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "app/health.hpp"
#include "app/operations.hpp"
#include "app/progress.hpp"

namespace gw::app {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const SystemTime kNow = fromUnixMillis(1'800'000'000'000);

TEST(OutboxQueryTest, ReadsEveryFilterAndRefusesWhatItDoesNotKnow) {
  auto q = parseOutboxQuery(
      {{"partner", "st-mary"}, {"state", "dead"}, {"older_than", "2h"}, {"limit", "50"}, {"after", "7"}}, {"*"}, kNow);
  ASSERT_TRUE(q) << q.error().describe();
  EXPECT_EQ(q.value().partner_id, "st-mary");
  EXPECT_EQ(q.value().state, store::OutboxState::Dead);
  EXPECT_EQ(q.value().created_before_ms, toUnixMillis(kNow) - 7'200'000);
  EXPECT_EQ(q.value().limit, 50);
  EXPECT_EQ(q.value().after_id, 7);
  EXPECT_TRUE(q.value().clinics.empty()) << "a token for every clinic reads every clinic";

  EXPECT_FALSE(parseOutboxQuery({{"state", "stuck"}}, {"*"}, kNow));
  EXPECT_FALSE(parseOutboxQuery({{"limit", "0"}}, {"*"}, kNow));
  EXPECT_FALSE(parseOutboxQuery({{"older_than", "soon"}}, {"*"}, kNow));
  auto unknown = parseOutboxQuery({{"patient", "x"}}, {"*"}, kNow);
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().hint, HasSubstr("older_than"));
}

TEST(OutboxQueryTest, AClinicOperatorSeesOnlyItsClinics) {
  auto mine = parseOutboxQuery({}, {"c1"}, kNow);
  ASSERT_TRUE(mine);
  EXPECT_EQ(mine.value().clinics, std::vector<std::string>{"c1"});
  auto named = parseOutboxQuery({{"clinic", "c1"}}, {"c1", "c3"}, kNow);
  ASSERT_TRUE(named);
  EXPECT_EQ(named.value().clinics, std::vector<std::string>{"c1"});
  auto other = parseOutboxQuery({{"clinic", "c2"}}, {"c1"}, kNow);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, ErrorCode::Forbidden);
}

store::RecordStatus mappedRecord() {
  store::RecordStatus st;
  st.clinic = "c1";
  st.record_id = "c1:rx:1";
  st.version = 2;
  st.state = store::RecordState::Mapped;
  return st;
}

store::OutboxItem itemFor(std::string partner, store::OutboxState state, int version = 2) {
  store::OutboxItem i;
  i.id = 10;
  i.partner_id = std::move(partner);
  i.state = state;
  i.record_version = version;
  return i;
}

store::ResourceDecision deny(std::string partner, std::string reason) {
  store::ResourceDecision d;
  d.partner_id = std::move(partner);
  d.outcome = store::AuditOutcome::Deny;
  d.reason = std::move(reason);
  return d;
}

TEST(ExplainDeliveriesTest, SaysPerPartnerWhyNothingWasSentWithoutTheConsentsContent) {
  auto st = mappedRecord();
  st.deliveries = {itemFor("a", store::OutboxState::Delivered), itemFor("b", store::OutboxState::Queued),
                   itemFor("c", store::OutboxState::Delivered, 1)};
  const std::vector<store::ResourceDecision> decisions = {deny("c", "no-consent"), deny("d", "class-not-covered:sud,mh"),
                                                          deny("e", "revoked")};
  const std::vector<store::PartnerPause> pauses = {{"b", 0, "op", "maintenance"}};
  const auto why = explainDeliveries(st, decisions, {"a", "b", "c", "d", "e"}, pauses);
  ASSERT_EQ(why.size(), 5u);
  EXPECT_EQ(why[0].status, "delivered");
  EXPECT_EQ(why[0].why, "");
  EXPECT_EQ(why[1].status, "held");
  EXPECT_EQ(why[1].why, "held: partner paused");
  EXPECT_EQ(why[2].why, "held: no consent on file for this partner") << "its delivered item is of an older version";
  EXPECT_EQ(why[3].why, "held: the consent does not cover this kind of data");
  EXPECT_THAT(why[3].why, Not(HasSubstr("sud"))) << "the classes the consent leaves out are its content";
  EXPECT_EQ(why[4].why, "held: the patient's consent for this partner is not in force");
  EXPECT_THAT(why[4].why, Not(HasSubstr("revoked")));
}

TEST(ExplainDeliveriesTest, CoversFailuresCancellationsAndRecordsThatDidNotMap) {
  auto st = mappedRecord();
  auto retrying = itemFor("a", store::OutboxState::Retrying);
  retrying.last_error = "HTTP 503 from partner";
  st.deliveries = {retrying, itemFor("b", store::OutboxState::Dead), itemFor("c", store::OutboxState::Cancelled)};
  auto why = explainDeliveries(st, {}, {"a", "b", "c"}, {});
  EXPECT_EQ(why[0].status, "retrying");
  EXPECT_THAT(why[0].why, HasSubstr("http-5xx"));
  EXPECT_EQ(why[1].status, "failed");
  EXPECT_THAT(why[1].why, HasSubstr("replay"));
  EXPECT_EQ(why[2].why, "held: no longer permitted by the patient's consent for this partner");

  st.state = store::RecordState::Invalid;
  why = explainDeliveries(st, {}, {"a"}, {});
  EXPECT_EQ(why[0].status, "held");
  EXPECT_THAT(why[0].why, HasSubstr("held: the record is invalid"));
}

TEST(HealthTest, ErrorClassesOfDeliveryErrors) {
  EXPECT_EQ(errorClass("HTTP 503 from partner"), "http-5xx");
  EXPECT_EQ(errorClass("HTTP 400 from partner (issue: invalid)"), "http-4xx");
  EXPECT_EQ(errorClass("HTTP 429 from partner"), "http-429");
  EXPECT_EQ(errorClass("cannot connect to 127.0.0.1:9: Connection refused"), "connection");
  EXPECT_EQ(errorClass("request timed out after 10000 ms"), "timeout");
  EXPECT_EQ(errorClass("TLS handshake failed: certificate verify failed"), "tls");
  EXPECT_EQ(errorClass(""), "");
}

TEST(HealthTest, APartnerIsFailingFromItsFirstFailureUntilItsNextDelivery) {
  PartnerHealthTracker tracker;
  tracker.observe("p", {0, 0, 0}, kNow);
  EXPECT_EQ(tracker.failingSince("p"), SystemTime{});
  tracker.observe("p", {0, 1, 0}, kNow + std::chrono::seconds(1));
  tracker.observe("p", {0, 3, 0}, kNow + std::chrono::seconds(5));
  EXPECT_EQ(tracker.failingSince("p"), kNow + std::chrono::seconds(1)) << "since the first failure";
  tracker.observe("p", {1, 3, 0}, kNow + std::chrono::seconds(9));
  EXPECT_EQ(tracker.failingSince("p"), SystemTime{});
}

TEST(ProgressBarTest, ShowsCountRateAndEta) {
  const auto bar = ProgressBar::render("records", 250, 1000, 5.0, true);
  EXPECT_THAT(bar, HasSubstr("[#######"));
  EXPECT_THAT(bar, HasSubstr("250/1000 records 25%"));
  EXPECT_THAT(bar, HasSubstr("50.0/s"));
  EXPECT_THAT(bar, HasSubstr("ETA 15s"));
  const auto line = ProgressBar::render("rows", 1000, 1000, 20.0, false);
  EXPECT_THAT(line, Not(HasSubstr("[")));
  EXPECT_THAT(line, HasSubstr("1000/1000 rows 100%"));
  EXPECT_THAT(line, HasSubstr("in 20s"));
}

TEST(ProgressBarTest, PlainLinesWhenNotATerminal) {
  char* text = nullptr;
  std::size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  {
    ProgressBar bar("rows", out, 0, std::chrono::milliseconds(0));
    bar.update(1, 3);
    bar.update(3, 3);
  }
  std::fclose(out);
  const std::string written(text, size);
  std::free(text);
  EXPECT_THAT(written, HasSubstr("progress: 1/3 rows 33%"));
  EXPECT_THAT(written, HasSubstr("progress: 3/3 rows 100%"));
  EXPECT_THAT(written, Not(HasSubstr("\r"))) << "no redraws in a log file";
}

TEST(ProgressBarTest, OneRedrawnBarOnATerminal) {
  char* text = nullptr;
  std::size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  {
    ProgressBar bar("records", out, 1);
    bar.update(0, 10);
    bar.update(10, 10);
  }
  std::fclose(out);
  const std::string written(text, size);
  std::free(text);
  EXPECT_THAT(written, HasSubstr("\r\033[K[..."));
  EXPECT_THAT(written, HasSubstr("\r\033[K[##############################] 10/10 records 100%"));
  EXPECT_EQ(written.back(), '\n') << "the shell prompt starts on a line of its own";
  EXPECT_THAT(written, Not(HasSubstr("progress:")));
}

}  // namespace
}  // namespace gw::app

#include "delivery/attempt_outcome.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "common/json.hpp"

namespace gw::delivery {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using Kind = AttemptOutcome::Kind;

// 2026-03-01T12:00:00Z, a Sunday.
const SystemTime kNow = std::chrono::system_clock::from_time_t(1772366400);

Result<HttpResult> response(int status, std::string body, std::map<std::string, std::string> headers = {}) {
  return HttpResult{status, std::move(body), std::move(headers)};
}

rapidjson::Document parsed(const std::string& text) {
  rapidjson::Document doc;
  EXPECT_TRUE(json::parse(text, doc)) << text;
  return doc;
}

TEST(Classify, DeliveredKeepsEveryEntryInOrder) {
  const auto outcome = classify(response(200, R"({"resourceType":"Bundle","type":"transaction-response","entry":[
      {"response":{"status":"201 Created","location":"Patient/a/_history/1","etag":"W/\"1\"","lastModified":"2026-01-01T00:00:00Z"}},
      {"response":{"status":"200"}}]})"));
  EXPECT_EQ(outcome.kind, Kind::Delivered);
  EXPECT_EQ(outcome.http_status, 200);
  ASSERT_EQ(outcome.entries.size(), 2u);
  EXPECT_EQ(outcome.entries[0].status, "201 Created");
  EXPECT_EQ(outcome.entries[0].location, "Patient/a/_history/1");
  EXPECT_EQ(outcome.entries[1].status, "200");
  EXPECT_TRUE(outcome.error_summary.empty());
}

TEST(Classify, SuccessWithUnparseableBodyIsDeadAndSaysTheTransactionMayHaveCommitted) {
  const auto outcome = classify(response(200, "<html>ok</html>"));
  EXPECT_EQ(outcome.kind, Kind::Dead);
  EXPECT_THAT(outcome.error_summary, HasSubstr("not JSON"));
  const auto oo = parsed(outcome.operation_outcome_json);
  EXPECT_EQ(json::getString(oo, "resourceType"), "OperationOutcome");
  EXPECT_EQ(json::getString(oo["issue"][0], "code"), "structure");
  EXPECT_THAT(std::string(json::getString(oo["issue"][0], "diagnostics")), HasSubstr("may have committed"));
}

// Partner answers are outside input, read as strictly as clinic records (issue 9, defect 6).
TEST(Classify, ASuccessWithAKeyTwiceIsDeadNotReadByItsFirstKey) {
  const auto outcome = classify(response(200, R"({"resourceType":"Bundle","type":"transaction-response",
      "type":"batch-response","entry":[]})"));
  EXPECT_EQ(outcome.kind, Kind::Dead);
  EXPECT_THAT(outcome.operation_outcome_json, HasSubstr("$.type"));
}

TEST(Classify, APartnerOutcomeThatIsNotUtf8IsNotKeptVerbatim) {
  const std::string oo =
      "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":\"invalid\","
      "\"diagnostics\":\"bad \xc0\xaf\"}]}";
  const auto outcome = classify(response(422, oo));
  EXPECT_EQ(outcome.kind, Kind::Dead);
  rapidjson::Document kept;
  EXPECT_TRUE(json::parseStrict(outcome.operation_outcome_json, kept)) << "what is stored and shown is valid UTF-8";
  EXPECT_THAT(outcome.operation_outcome_json, HasSubstr("without an OperationOutcome"));
}

TEST(Classify, SuccessThatIsNotATransactionResponseIsDead) {
  EXPECT_EQ(classify(response(201, R"({"resourceType":"Patient","id":"x"})")).kind, Kind::Dead);
  EXPECT_EQ(classify(response(200, R"({"resourceType":"Bundle","type":"searchset"})")).kind, Kind::Dead);
  EXPECT_EQ(classify(response(204, "")).kind, Kind::Dead);
}

TEST(Classify, FailingEntryIsDeadAndKeepsThePartnersIssues) {
  const auto outcome = classify(response(200, R"({"resourceType":"Bundle","type":"transaction-response","entry":[
      {"response":{"status":"201 Created"}},
      {"response":{"status":"412 Precondition Failed","outcome":{"resourceType":"OperationOutcome",
        "issue":[{"severity":"error","code":"multiple-matches","diagnostics":"2 matches"}]}}},
      {"response":{}}]})"));
  EXPECT_EQ(outcome.kind, Kind::Dead);
  EXPECT_EQ(outcome.error_summary, "HTTP 200 from partner: 2 of 3 entries failed (first: entry[1] has status 412)");
  const auto oo = parsed(outcome.operation_outcome_json);
  ASSERT_EQ(oo["issue"].Size(), 2u);
  EXPECT_THAT(std::string(json::getString(oo["issue"][0], "diagnostics")), HasSubstr("entry[2] has no valid"));
  EXPECT_EQ(json::getString(oo["issue"][1], "code"), "multiple-matches");
}

TEST(Classify, RedirectIsDead) {
  const auto outcome = classify(response(302, "", {{"location", "https://elsewhere/"}}));
  EXPECT_EQ(outcome.kind, Kind::Dead);
  EXPECT_EQ(outcome.error_summary, "HTTP 302 from partner: redirects are not followed");
  const auto oo = parsed(outcome.operation_outcome_json);
  EXPECT_THAT(std::string(json::getString(oo["issue"][0], "diagnostics")), HasSubstr("302"));
}

TEST(Classify, RetryableStatuses) {
  for (int status : {408, 429, 500, 502, 503, 504}) {
    const auto outcome = classify(response(status, ""));
    EXPECT_EQ(outcome.kind, Kind::Retry) << status;
    EXPECT_EQ(outcome.http_status, status);
    EXPECT_TRUE(outcome.operation_outcome_json.empty()) << status;
  }
}

TEST(Classify, RetryKeepsThePartnersOutcome) {
  const std::string oo = R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient"}]})";
  const auto outcome = classify(response(500, oo));
  EXPECT_EQ(outcome.kind, Kind::Retry);
  EXPECT_EQ(outcome.operation_outcome_json, oo);
  EXPECT_EQ(outcome.error_summary, "HTTP 500 from partner (issue: transient)");
}

TEST(Classify, OtherClientErrorsAreDead) {
  for (int status : {400, 401, 403, 404, 409, 412, 422}) {
    const auto outcome = classify(response(status, "not json"));
    EXPECT_EQ(outcome.kind, Kind::Dead) << status;
    const auto oo = parsed(outcome.operation_outcome_json);
    EXPECT_EQ(json::getString(oo, "resourceType"), "OperationOutcome");
    EXPECT_THAT(std::string(json::getString(oo["issue"][0], "diagnostics")), HasSubstr(std::to_string(status)));
  }
}

TEST(Classify, SummaryNeverCarriesDiagnostics) {
  // Partners echo submitted values in diagnostics; the summary goes to logs and must not.
  const auto outcome = classify(response(
      422,
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"Patient Jane Roe MRN 4711 exists"}]})"));
  EXPECT_EQ(outcome.error_summary, "HTTP 422 from partner (issue: business-rule)");
  EXPECT_THAT(outcome.error_summary, Not(HasSubstr("Jane")));
}

TEST(Classify, TransportErrors) {
  const auto timeout = classify(Result<HttpResult>(makeError(ErrorCode::Timeout, "partner p: read: timed out")));
  EXPECT_EQ(timeout.kind, Kind::Retry);
  EXPECT_EQ(timeout.http_status, 0);
  EXPECT_EQ(timeout.error_summary, "partner p: read: timed out");

  const auto down = classify(Result<HttpResult>(makeError(ErrorCode::Unavailable, "partner p: connect: refused")));
  EXPECT_EQ(down.kind, Kind::Retry);

  const auto huge = classify(Result<HttpResult>(makeError(ErrorCode::PayloadTooLarge, "partner p: read: too big")));
  EXPECT_EQ(huge.kind, Kind::Dead);
  const auto oo = parsed(huge.operation_outcome_json);
  EXPECT_EQ(json::getString(oo["issue"][0], "code"), "too-costly");
}

TEST(Classify, RetryAfterOnThrottleAndUnavailable) {
  EXPECT_EQ(classify(response(429, "", {{"retry-after", "7"}}), kNow).retry_after, 7s);
  EXPECT_EQ(classify(response(503, "", {{"retry-after", "Sun, 01 Mar 2026 12:02:00 GMT"}}), kNow).retry_after, 120s);
  EXPECT_FALSE(classify(response(503, "", {{"retry-after", "soon"}}), kNow).retry_after);
}

TEST(ParseRetryAfter, DeltaSeconds) {
  EXPECT_EQ(parseRetryAfter("0", kNow), 0ms);
  EXPECT_EQ(parseRetryAfter(" 120 ", kNow), 120s);
  EXPECT_EQ(parseRetryAfter("99999999999999999999", kNow), kMaxRetryAfter);
  EXPECT_EQ(parseRetryAfter("604800", kNow), kMaxRetryAfter);
}

TEST(ParseRetryAfter, HttpDates) {
  EXPECT_EQ(parseRetryAfter("Sun, 01 Mar 2026 12:00:30 GMT", kNow), 30s);
  EXPECT_EQ(parseRetryAfter("Sunday, 01-Mar-26 12:01:00 GMT", kNow), 60s);  // RFC 850
  EXPECT_EQ(parseRetryAfter("Sun Mar  1 12:00:05 2026", kNow), 5s);         // asctime
  EXPECT_EQ(parseRetryAfter("Sun, 01 Mar 2026 11:00:00 GMT", kNow), 0ms);   // past
  EXPECT_EQ(parseRetryAfter("Sun, 01 Mar 2099 11:00:00 GMT", kNow), kMaxRetryAfter);
}

TEST(ParseRetryAfter, Garbage) {
  EXPECT_FALSE(parseRetryAfter("", kNow));
  EXPECT_FALSE(parseRetryAfter("-5", kNow));
  EXPECT_FALSE(parseRetryAfter("1.5", kNow));
  EXPECT_FALSE(parseRetryAfter("Sun, 01 Mar 2026 12:00:30 GMT trailing", kNow));
}

}  // namespace
}  // namespace gw::delivery

#include "http/request.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace gw::http {
namespace {

TEST(ParseTarget, SplitsPathAndDecodesQuery) {
  Request r;
  ASSERT_TRUE(parseTarget("/v1/records/c1%3Apt%3AA1?since=2024-01-01T00%3A00%3A00Z&tag=a+b&tag=c&flag", r));
  EXPECT_EQ(r.path, "/v1/records/c1:pt:A1");
  EXPECT_EQ(r.target, "/v1/records/c1%3Apt%3AA1?since=2024-01-01T00%3A00%3A00Z&tag=a+b&tag=c&flag");
  EXPECT_EQ(r.queryParam("since"), "2024-01-01T00:00:00Z");
  EXPECT_EQ(r.query.count("tag"), 2u);
  EXPECT_EQ(r.queryParam("tag"), "a b");  // first of the repeated names, '+' is a space in queries
  EXPECT_EQ(r.queryParam("flag"), "");
  EXPECT_EQ(r.queryParam("missing"), std::nullopt);
}

TEST(ParseTarget, PlusIsLiteralInPath) {
  Request r;
  ASSERT_TRUE(parseTarget("/a+b", r));
  EXPECT_EQ(r.path, "/a+b");
}

TEST(ParseTarget, RejectsBadTargets) {
  Request r;
  for (const char* target : {"", "v1/records", "http://example.org/v1", "*", "/bad%zz", "/bad%4", "/nul%00x", "/ok?x=%g1"}) {
    auto status = parseTarget(target, r);
    ASSERT_FALSE(status) << target;
    EXPECT_EQ(status.error().code, ErrorCode::InvalidInput) << target;
    // The target is not echoed back: queries may hold identifiers.
    if (*target != '\0') {
      EXPECT_EQ(status.error().message.find(target), std::string::npos) << target;
    }
  }
}

TEST(PercentDecode, DecodesAndRejectsTruncatedEscapes) {
  EXPECT_EQ(percentDecode("a%2Fb%2fc"), "a/b/c");
  EXPECT_EQ(percentDecode("a+b", true), "a b");
  EXPECT_EQ(percentDecode("a+b", false), "a+b");
  EXPECT_EQ(percentDecode("%"), std::nullopt);
  EXPECT_EQ(percentDecode("%4"), std::nullopt);
  EXPECT_EQ(percentDecode("ab%"), std::nullopt);
}

TEST(RequestHeader, IsCaseInsensitiveAndEmptyWhenAbsent) {
  Request r;
  r.headers = {{"Content-Type", "application/json"}, {"X-Thing", "1"}, {"x-thing", "2"}};
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("X-THING"), "1");
  EXPECT_EQ(r.header("Authorization"), "");
}

TEST(ErrorResponse, IsAnOperationOutcomeWithStatusFromCode) {
  Response r = errorResponse(
      makeError(ErrorCode::InvalidInput, "birth_date is not a date", "records[3].birth_date", "use YYYY-MM-DD"));
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.content_type, "application/fhir+json");
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  ASSERT_FALSE(doc.HasParseError()) << r.body;
  EXPECT_STREQ(doc["resourceType"].GetString(), "OperationOutcome");
  const auto& issue = doc["issue"][0];
  EXPECT_STREQ(issue["severity"].GetString(), "error");
  EXPECT_STREQ(issue["code"].GetString(), "invalid");
  EXPECT_STREQ(issue["diagnostics"].GetString(), "birth_date is not a date (use YYYY-MM-DD)");
  ASSERT_EQ(issue["expression"].Size(), 1u);
  EXPECT_STREQ(issue["expression"][0].GetString(), "records[3].birth_date");
}

TEST(ErrorResponse, OmitsExpressionWithoutWhereAndEscapesText) {
  Response r = errorResponse(makeError(ErrorCode::Unavailable, "store \"busy\"\n"));
  EXPECT_EQ(r.status, 503);
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  ASSERT_FALSE(doc.HasParseError()) << r.body;
  EXPECT_FALSE(doc["issue"][0].HasMember("expression"));
  EXPECT_STREQ(doc["issue"][0]["code"].GetString(), "transient");
  EXPECT_STREQ(doc["issue"][0]["diagnostics"].GetString(), "store \"busy\"\n");
}

TEST(ErrorResponse, UnauthenticatedAsksForBearer) {
  Response r = errorResponse(makeError(ErrorCode::Unauthenticated, "no token"));
  EXPECT_EQ(r.status, 401);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(r.headers[0].second.rfind("Bearer", 0), 0u);
  EXPECT_TRUE(errorResponse(makeError(ErrorCode::Forbidden, "no")).headers.empty());
}

TEST(ErrorResponse, ExplicitStatusOverridesTheCodeMapping) {
  EXPECT_EQ(errorResponse(makeError(ErrorCode::InvalidInput, "bad"), 400).status, 400);
}

}  // namespace
}  // namespace gw::http

#include "http/router.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <stdexcept>

namespace gw::http {
namespace {

// Dispatches synchronously and returns what the handler (or the router) answered.
Response call(const Router& router, std::string method, std::string target, Request* seen = nullptr) {
  Request request;
  request.method = std::move(method);
  EXPECT_TRUE(parseTarget(target, request));
  std::optional<Response> out;
  router.dispatch(request, [&](Response r) { out = std::move(r); });
  if (seen != nullptr) *seen = request;
  EXPECT_TRUE(out.has_value());
  return out.value_or(Response{});
}

Handler answer(int status, std::string body) {
  return [status, body](Request&, Respond respond) { respond(jsonResponse(status, body)); };
}

std::string issueCode(const Response& r) {
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  if (doc.HasParseError() || !doc.HasMember("issue")) return "<not an OperationOutcome>";
  return doc["issue"][0]["code"].GetString();
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    router_.add("POST", "/v1/records", answer(202, "post-records"));
    router_.add("GET", "/v1/records/{record_id}", answer(200, "get-record"));
    router_.add("DELETE", "/v1/records/{record_id}", answer(204, ""));
    router_.add("GET", "/v1/partners/{partner}/items/{item}", answer(200, "item"));
    router_.add("GET", "/", answer(200, "root"));
  }
  Router router_;
};

TEST_F(RouterTest, MatchesLiteralRoute) {
  Request seen;
  Response r = call(router_, "POST", "/v1/records?x=1", &seen);
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, "post-records");
  EXPECT_EQ(seen.route, "/v1/records");
}

TEST_F(RouterTest, CapturesDecodedPathParameters) {
  Request seen;
  Response r = call(router_, "GET", "/v1/partners/p%201/items/a%2Fb", &seen);
  EXPECT_EQ(r.body, "item");
  EXPECT_EQ(seen.pathParam("partner"), "p 1");
  // An encoded slash stays inside its segment.
  EXPECT_EQ(seen.pathParam("item"), "a/b");
  EXPECT_EQ(seen.route, "/v1/partners/{partner}/items/{item}");
}

TEST_F(RouterTest, PicksRouteByMethod) {
  EXPECT_EQ(call(router_, "GET", "/v1/records/c1:pt:1").body, "get-record");
  EXPECT_EQ(call(router_, "DELETE", "/v1/records/c1:pt:1").status, 204);
  EXPECT_EQ(call(router_, "GET", "/").body, "root");
}

TEST_F(RouterTest, UnknownPathIs404OperationOutcome) {
  for (const char* target : {"/v2/records", "/v1/records/a/b", "/v1/records/", "/v1/record", "/v1//records"}) {
    Request seen;
    Response r = call(router_, "GET", target, &seen);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(issueCode(r), "not-found") << target;
    EXPECT_TRUE(seen.route.empty()) << target;
  }
}

TEST_F(RouterTest, EmptyParameterDoesNotMatch) { EXPECT_EQ(call(router_, "GET", "/v1/partners//items/x").status, 404); }

TEST_F(RouterTest, KnownPathWrongMethodIs405WithAllow) {
  Response r = call(router_, "PUT", "/v1/records/abc");
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Allow");
  EXPECT_EQ(r.headers[0].second, "DELETE, GET");
  EXPECT_EQ(issueCode(r), "invalid");
  EXPECT_EQ(call(router_, "GET", "/v1/records").headers.at(0).second, "POST");
}

TEST_F(RouterTest, LiteralSegmentsCompareDecoded) { EXPECT_EQ(call(router_, "POST", "/v1/re%63ords").status, 202); }

TEST(RouterAdd, RejectsMalformedPatternsAndDuplicates) {
  Router router;
  auto h = answer(200, "");
  EXPECT_THROW(router.add("GET", "v1/x", h), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/v1/x{id}", h), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/v1/{}", h), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/v1/{a}/{a}", h), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/v1/x", nullptr), std::invalid_argument);
  router.add("GET", "/v1/{a}", h);
  EXPECT_THROW(router.add("GET", "/v1/{a}", h), std::invalid_argument);
  EXPECT_NO_THROW(router.add("POST", "/v1/{a}", h));
}

TEST(RouterDispatch, HandlerMayKeepRespondAndAnswerLater) {
  Router router;
  Respond kept;
  router.add("GET", "/later", [&](Request&, Respond respond) { kept = std::move(respond); });
  Request request;
  request.method = "GET";
  ASSERT_TRUE(parseTarget("/later", request));
  std::optional<Response> out;
  router.dispatch(request, [&](Response r) { out = std::move(r); });
  EXPECT_FALSE(out.has_value());
  ASSERT_TRUE(kept);
  kept(jsonResponse(201, "{}"));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->status, 201);
}

// The header phase: the server runs it before reading a body, so what it refuses costs no body.
TEST(RouterAdmitHeaders, AnswersUnroutedRequestsAndRunsTheRoutesCheck) {
  Router router;
  std::string checked_route;
  auto check = [&](Request& request) -> std::optional<Response> {
    checked_route = request.route + " " + std::string(request.pathParam("record_id"));
    if (request.header("Authorization").empty()) return jsonResponse(401, "refused");
    return std::nullopt;
  };
  router.add("POST", "/v1/records/{record_id}", check, answer(202, "posted"));
  router.add("GET", "/open", answer(200, "open"));
  auto headers = [](std::string method, std::string target, bool authorized) {
    Request request;
    request.method = std::move(method);
    EXPECT_TRUE(parseTarget(target, request));
    if (authorized) request.headers.emplace_back("Authorization", "Bearer x");
    return request;
  };
  auto refused = headers("POST", "/v1/records/r%201", false);
  auto refusal = router.admitHeaders(refused);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_EQ(refusal->body, "refused");
  EXPECT_EQ(checked_route, "/v1/records/{record_id} r 1");
  auto admitted = headers("POST", "/v1/records/r1", true);
  EXPECT_FALSE(router.admitHeaders(admitted).has_value());
  auto unchecked = headers("GET", "/open", false);
  EXPECT_FALSE(router.admitHeaders(unchecked).has_value());
  auto missing = headers("GET", "/nothing", true);
  EXPECT_EQ(router.admitHeaders(missing).value_or(Response{}).status, 404);
  auto wrong_method = headers("GET", "/v1/records/r1", true);
  auto not_allowed = router.admitHeaders(wrong_method);
  ASSERT_TRUE(not_allowed.has_value());
  EXPECT_EQ(not_allowed->status, 405);
  EXPECT_EQ(not_allowed->headers.at(0).second, "POST");
}

}  // namespace
}  // namespace gw::http

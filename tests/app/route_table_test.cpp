#include "app/route_table.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "app/routes.hpp"
#include "http/server_fixture.hpp"

namespace gw::app {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string kToken = "route-table-test-token";

http::Authenticator authenticatorFor(std::vector<Role> roles, std::vector<std::string> clinics) {
  return http::Authenticator({{"t1", http::hashToken(kToken), std::move(roles), std::move(clinics)}});
}

http::Request requestWith(std::string_view query_clinic) {
  http::Request r;
  r.method = "GET";
  r.route = "/test";
  r.headers.emplace_back("Authorization", "Bearer " + kToken);
  if (!query_clinic.empty()) r.query.emplace("clinic", std::string(query_clinic));
  return r;
}

void noop(http::Request&, const http::Principal&, http::Respond) {}

TEST(RouteTable, ARouteWithoutRolesCannotBeRegistered) {
  RouteTable table;
  auto added = table.add({"GET", "/v1/secret", {{}, ClinicScope::None}, Execution::IoThread, noop});
  ASSERT_FALSE(added);
  EXPECT_EQ(added.error().code, ErrorCode::Config);
  EXPECT_THAT(added.error().message, HasSubstr("GET /v1/secret declares no roles"));
  EXPECT_TRUE(table.routes().empty());
  EXPECT_TRUE(table.add({"GET", "/healthz", Access::publicRoute(), Execution::IoThread, noop}));
  EXPECT_TRUE(table.add({"GET", "/v1/ok", {{Role::Admin}, ClinicScope::None}, Execution::IoThread, noop}));
}

TEST(RouteTable, EveryGatewayRouteDeclaresRolesOnlyHealthProbesAndTheJwksArePublic) {
  config::GatewayConfig config;
  SystemClock clock;
  Runtime runtime(config, clock);  // not opened: the table only binds the handlers to it
  RouteTable table;
  ASSERT_TRUE(addGatewayRoutes(table, runtime));
  ASSERT_GE(table.routes().size(), 9u);
  for (const auto& route : table.routes()) {
    if (route.access.public_route) {
      // The JWKS holds public keys only, for hospitals that register the gateway by URL.
      EXPECT_TRUE(route.pattern == "/healthz" || route.pattern == "/readyz" || route.pattern == "/.well-known/jwks.json")
          << route.pattern;
    } else {
      EXPECT_FALSE(route.access.roles.empty()) << route.pattern;
    }
  }
}

// The rule, written out apart from admit(): the token needs one of the route's roles; a route
// about one clinic's data needs a token for that clinic, or for every clinic when none is named.
int expectedStatus(const Access& access, Role role, const std::vector<std::string>& clinics, std::string_view query_clinic) {
  if (access.public_route) return 200;
  if (std::find(access.roles.begin(), access.roles.end(), role) == access.roles.end()) return 403;
  if (access.scope == ClinicScope::None || access.scope == ClinicScope::RecordClinics) return 200;
  const bool all = std::find(clinics.begin(), clinics.end(), "*") != clinics.end();
  if (query_clinic.empty() && access.scope == ClinicScope::QueryClinic) return 400;
  if (query_clinic.empty()) return all ? 200 : 403;
  const bool listed = std::find(clinics.begin(), clinics.end(), std::string(query_clinic)) != clinics.end();
  return all || listed ? 200 : 403;
}

// Generated from the gateway's own table, so a new route is covered as soon as it is added.
TEST(RouteTable, EveryRouteRoleAndClinicCombinationIsAdmittedByTheRule) {
  config::GatewayConfig config;
  SystemClock clock;
  Runtime runtime(config, clock);
  RouteTable table;
  ASSERT_TRUE(addGatewayRoutes(table, runtime));
  const std::vector<std::vector<std::string>> token_clinics = {{"c1"}, {"*"}, {}, {"c1", "c2"}};
  int combinations = 0;
  for (const auto& route : table.routes()) {
    for (const auto& [role, name] : kRoleNames) {
      for (const auto& clinics : token_clinics) {
        for (std::string_view query : {"c1", "c2", ""}) {
          const auto auth = authenticatorFor({role}, clinics);
          auto request = requestWith(query);
          auto admitted = admit(auth, route.access, request);
          const int status = admitted ? 200 : httpStatusFor(admitted.error().code);
          EXPECT_EQ(status, expectedStatus(route.access, role, clinics, query))
              << route.method << " " << route.pattern << " role " << name << " clinics " << clinics.size()
              << " ?clinic=" << query;
          ++combinations;
        }
      }
    }
  }
  EXPECT_GE(combinations, 9 * 4 * 4 * 3);
}

TEST(RouteTable, NoTokenIs401EvenForAnAllowedRole) {
  const auto auth = authenticatorFor({Role::Compliance}, {"*"});
  http::Request request;
  request.route = "/test";
  auto admitted = admit(auth, {{Role::Compliance}, ClinicScope::None}, request);
  ASSERT_FALSE(admitted);
  EXPECT_EQ(admitted.error().code, ErrorCode::Unauthenticated);
}

// Handlers that touch the database run on the blocking pool: when it is full the client gets
// 503 with Retry-After at once, and routes on the I/O threads keep answering.
TEST(RouteTable, AFullBlockingPoolAnswers503WithRetryAfterAndIoRoutesKeepAnswering) {
  const auto auth = authenticatorFor({Role::Admin}, {"*"});
  WorkPool pool("blocking", 1, 1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> started{0};
  RouteTable table;
  ASSERT_TRUE(table.add({"GET",
                         "/slow",
                         {{Role::Admin}, ClinicScope::None},
                         Execution::Blocking,
                         [&](http::Request&, const http::Principal&, http::Respond respond) {
                           ++started;
                           released.wait();  // a read stuck behind a long fsync
                           respond(http::jsonResponse(200, R"({"slow":true})"));
                         }}));
  ASSERT_TRUE(table.add({"GET",
                         "/fast",
                         {{Role::Admin}, ClinicScope::None},
                         Execution::IoThread,
                         [](http::Request&, const http::Principal&, http::Respond respond) {
                           respond(http::jsonResponse(200, R"({"fast":true})"));
                         }}));
  auto server = http::testing::startServer(http::testing::serverOptions(), table.router(auth, pool, 2));
  ASSERT_TRUE(server);
  const auto port = server->port();
  const std::vector<std::pair<std::string, std::string>> headers = {{"Authorization", "Bearer " + kToken}};
  const auto options = http::testing::clientOptions();

  // One request runs, one waits in the queue.
  auto first = std::async(std::launch::async, [&] { return test::tlsRequest(port, options, "GET", "/slow", {}, headers); });
  while (started.load() == 0) std::this_thread::sleep_for(1ms);
  auto second = std::async(std::launch::async, [&] { return test::tlsRequest(port, options, "GET", "/slow", {}, headers); });
  while (pool.stats().jobs_queued.value() == 0) std::this_thread::sleep_for(1ms);

  const auto busy = test::tlsRequest(port, options, "GET", "/slow", {}, headers);
  EXPECT_EQ(busy.status, 503) << busy.body;
  EXPECT_EQ(busy.header("Retry-After"), "2");
  EXPECT_THAT(busy.body, HasSubstr("busy"));
  const auto fast = test::tlsRequest(port, options, "GET", "/fast", {}, headers);
  EXPECT_EQ(fast.status, 200) << "the I/O threads are free while the pool is full";

  release.set_value();
  EXPECT_EQ(first.get().status, 200);
  EXPECT_EQ(second.get().status, 200) << "a queued request is answered once a thread is free";
  EXPECT_EQ(pool.stats().jobs_refused.value(), 1u);
  server->stop();
}

// Issue 9, defect 4: a refused request is answered on its headers, before its body is read. The
// client announces a 10 MB body and waits for the answer before sending one byte of it, so the
// answer can only come from the headers; the connection closes after it (the body is unread).
TEST(RouteTable, ARefusedRequestIsAnsweredOnItsHeadersBeforeTheBodyIsSent) {
  const auto auth = authenticatorFor({Role::Engineer}, {"c1"});
  WorkPool pool("blocking", 1, 4);
  std::atomic<int> handled{0};
  RouteTable table;
  ASSERT_TRUE(table.add({"POST",
                         "/v1/upload",
                         {{Role::Ingest}, ClinicScope::RecordClinics},
                         Execution::Blocking,
                         [&](http::Request&, const http::Principal&, http::Respond respond) {
                           ++handled;
                           respond(http::jsonResponse(202, "{}"));
                         }}));
  auto options = http::testing::serverOptions();
  options.max_body_bytes = 16 * 1024 * 1024;
  auto server = http::testing::startServer(options, table.router(auth, pool));
  ASSERT_TRUE(server);
  auto client_options = http::testing::clientOptions();
  client_options.timeout = 3000ms;
  const std::vector<std::pair<std::string, int>> cases = {{"", 401},
                                                          {"Authorization: Bearer wrong\r\n", 401},
                                                          {"Authorization: Bearer " + kToken + "\r\n", 403}};
  for (const auto& [authorization, status] : cases) {
    test::TlsTestClient client(client_options);
    ASSERT_FALSE(client.connect(server->port()));
    ASSERT_FALSE(client.writeRaw("POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
                                 authorization + "Content-Length: 10485760\r\n\r\n"));
    const auto started = std::chrono::steady_clock::now();
    auto r = client.readResponse();
    ASSERT_FALSE(r.error) << "no answer before the body: " << r.error.message();
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2000ms);
    EXPECT_FALSE(r.keep_alive) << "the body was not read, so the connection cannot carry another request";
    EXPECT_TRUE(client.waitForClose(7000ms));
  }
  // With "Expect: 100-continue" the refusal replaces the interim response.
  test::TlsTestClient client(client_options);
  ASSERT_FALSE(client.connect(server->port()));
  ASSERT_FALSE(
      client.writeRaw("POST /v1/upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10485760\r\n\r\n"));
  auto r = client.readResponse();
  ASSERT_FALSE(r.error) << r.error.message();
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(handled.load(), 0);
  server->stop();
}

// A request that passes on its headers is still checked by the same filter after its body.
TEST(RouteTable, AnAdmittedRequestWithABodyReachesItsHandler) {
  const auto auth = authenticatorFor({Role::Ingest}, {"c1"});
  WorkPool pool("blocking", 1, 4);
  RouteTable table;
  ASSERT_TRUE(table.add({"POST",
                         "/v1/upload",
                         {{Role::Ingest}, ClinicScope::RecordClinics},
                         Execution::Blocking,
                         [&](http::Request& request, const http::Principal& caller, http::Respond respond) {
                           respond(http::jsonResponse(202, "{\"bytes\":" + std::to_string(request.body.size()) +
                                                               ",\"token\":\"" + caller.token_id + "\"}"));
                         }}));
  auto server = http::testing::startServer(http::testing::serverOptions(), table.router(auth, pool));
  ASSERT_TRUE(server);
  test::TlsTestClient client(http::testing::clientOptions());
  ASSERT_FALSE(client.connect(server->port()));
  for (int i = 0; i < 2; ++i) {  // keep-alive survives an admitted request
    auto r = client.request("POST", "/v1/upload", std::string(100000, 'x'), {{"Authorization", "Bearer " + kToken}});
    ASSERT_FALSE(r.error) << r.error.message();
    EXPECT_EQ(r.status, 202);
    EXPECT_EQ(r.body, R"({"bytes":100000,"token":"t1"})");
    EXPECT_TRUE(r.keep_alive);
  }
  client.close();
  server->stop();
}

}  // namespace
}  // namespace gw::app

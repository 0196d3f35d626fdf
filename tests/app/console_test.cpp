#include "app/console.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "app/routes.hpp"
#include "app/runtime.hpp"
#include "support/scratch_dir.hpp"

namespace gw::app {
namespace {

using ::testing::HasSubstr;

TEST(ConsoleFiles, LoadsTheShippedConsole) {
  auto files = ConsoleFiles::load(std::string(GW_REPO_DIR) + "/console");
  ASSERT_TRUE(files) << files.error().describe();
  const ConsoleFile* index = files.value()->find("index.html");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  // No inline script or style: the Content-Security-Policy allows neither.
  EXPECT_THAT(index->body, ::testing::Not(HasSubstr("<script>")));
  EXPECT_THAT(index->body, ::testing::Not(HasSubstr("style=")));
  ASSERT_NE(files.value()->find("app.js"), nullptr);
  EXPECT_EQ(files.value()->find("app.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(files.value()->find("print.css"), nullptr);
  // The pages never parse data as HTML.
  for (const char* name : {"app.js", "dom.js", "api.js", "labels.js", "common.js", "page-login.js", "page-patient.js",
                           "page-accounting.js", "page-partner.js", "page-integrity.js", "page-breakglass.js"}) {
    const ConsoleFile* file = files.value()->find(name);
    ASSERT_NE(file, nullptr) << name;
    EXPECT_THAT(file->body, ::testing::Not(HasSubstr("innerHTML"))) << name;
    EXPECT_THAT(file->body, ::testing::Not(HasSubstr("insertAdjacentHTML"))) << name;
    EXPECT_THAT(file->body, ::testing::Not(HasSubstr("document.write"))) << name;
    EXPECT_THAT(file->body, ::testing::Not(HasSubstr("eval("))) << name;
  }
}

TEST(ConsoleFiles, OnlyKnownTypesAndAnIndexAreAccepted) {
  test::ScratchDir dir;
  auto missing = ConsoleFiles::load(dir.path() / "nope");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().describe(), HasSubstr("console.directory"));
  dir.write("app.js", "x");
  auto no_index = ConsoleFiles::load(dir.path());
  ASSERT_FALSE(no_index);
  EXPECT_THAT(no_index.error().message, HasSubstr("no index.html"));
  dir.write("index.html", "<!DOCTYPE html>");
  dir.write("gateway.json", "{\"secret\": 1}");
  dir.write(".hidden.js", "x");
  auto files = ConsoleFiles::load(dir.path());
  ASSERT_TRUE(files) << files.error().describe();
  EXPECT_EQ(files.value()->size(), 2u);
  EXPECT_EQ(files.value()->find("gateway.json"), nullptr) << "only page types are served";
  EXPECT_EQ(files.value()->find(".hidden.js"), nullptr);
}

// The console listener takes a bare token at sign-in and usually no client certificate, so only
// the compliance officer's routes may be reachable there: none that ingests, operates or engineers.
TEST(Console, OnlyComplianceAndAdminRoutesAreServedOnTheConsoleListener) {
  config::GatewayConfig config;
  SystemClock clock;
  Runtime runtime(config, clock);  // not opened: the table only binds the handlers to it
  RouteTable table;
  ASSERT_TRUE(addGatewayRoutes(table, runtime));
  std::vector<std::string> served;
  for (const auto& route : table.routes()) {
    if (!servedOnConsole(route)) continue;
    served.push_back(route.method + " " + route.pattern);
    EXPECT_FALSE(route.access.public_route) << route.pattern;
    for (Role role : route.access.roles) {
      EXPECT_TRUE(role == Role::Compliance || role == Role::Admin) << route.pattern << " admits " << roleName(role);
    }
  }
  EXPECT_THAT(served, ::testing::IsSupersetOf({"GET /v1/compliance/patient", "GET /v1/compliance/accounting",
                                               "POST /v1/compliance/break-glass", "GET /v1/audit/verify"}));
  EXPECT_THAT(served, ::testing::Not(::testing::Contains("POST /v1/records")));
}

TEST(Console, ResponseHeadersForbidInlineScriptFramingAndReferrers) {
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : consoleResponseHeaders()) headers[name] = value;
  const std::string csp = headers["Content-Security-Policy"];
  EXPECT_THAT(csp, HasSubstr("default-src 'self'"));
  EXPECT_THAT(csp, HasSubstr("frame-ancestors 'none'"));
  EXPECT_THAT(csp, HasSubstr("object-src 'none'"));
  EXPECT_THAT(csp, ::testing::Not(HasSubstr("unsafe")));
  EXPECT_EQ(headers["Referrer-Policy"], "no-referrer");
  EXPECT_EQ(headers["X-Frame-Options"], "DENY");
}

}  // namespace
}  // namespace gw::app

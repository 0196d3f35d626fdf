// Each instance reports what it runs (docs/architecture.md §5.3): the versions of its build,
// configuration and mapping set, recorded at start, after each reload (one that is refused keeps
// the old version and says why) and at stop; the list flags an instance that runs something else
// than the others; the metrics name the instance. Real parts: the runtime, its jobs thread and a
// real SQLite file (one instance: a reload has no one else to tell).
#include "app/instances.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/metrics.hpp"
#include "app/runtime.hpp"
#include "app/runtime_test_config.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_keys.hpp"
#include "support/test_pki.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const SystemTime kNow = fromUnixMillis(1'800'000'000'000);

store::InstanceRow row(std::string id, std::string mappers, std::int64_t seen_ms_ago = 1000) {
  const std::int64_t now = toUnixMillis(kNow);
  return {std::move(id), now - 60'000, now - seen_ms_ago, 0, "1.0.0", "sha256:cfg", std::move(mappers), now - 60'000, 0, ""};
}

TEST(DescribeInstancesTest, TheOddOneOutIsFlaggedAndStoppedOrStaleOnesAreNotCompared) {
  auto stopped = row("gw-old", "sha256:m0");
  stopped.stopped_at_ms = toUnixMillis(kNow) - 5000;
  auto refused = row("gw-c", "sha256:m1");
  refused.last_reload_at_ms = toUnixMillis(kNow) - 2000;
  refused.last_reload_error = "the mapper does not parse";
  const auto views = describeInstances(
      {row("gw-b", "sha256:m2"), row("gw-a", "sha256:m2"), refused, stopped, row("gw-hung", "sha256:m9", 60'000)}, kNow);
  ASSERT_EQ(views.size(), 5u);
  EXPECT_EQ(views[0].row.instance_id, "gw-a") << "by instance id";
  EXPECT_EQ(views[0].state, "running");
  EXPECT_TRUE(views[0].differs.empty());
  EXPECT_TRUE(views[1].differs.empty());
  EXPECT_EQ(views[2].row.instance_id, "gw-c");
  EXPECT_EQ(views[2].differs, (std::vector<std::string>{"mappers_version", "last_reload_failed"}));
  EXPECT_EQ(views[3].state, "stale") << "no heartbeat for a minute";
  EXPECT_TRUE(views[3].differs.empty()) << "only running instances are compared";
  EXPECT_EQ(views[4].state, "stopped");

  // Two running instances that disagree: which is right is not the list's to say; both are flagged.
  const auto tie = describeInstances({row("gw-a", "sha256:m1"), row("gw-b", "sha256:m2")}, kNow);
  EXPECT_EQ(tie[0].differs, std::vector<std::string>{"mappers_version"});
  EXPECT_EQ(tie[1].differs, std::vector<std::string>{"mappers_version"});

  rapidjson::Document doc;
  ASSERT_TRUE(json::parse(instancesJson(views, "gw-a"), doc));
  EXPECT_STREQ(doc["self"].GetString(), "gw-a");
  EXPECT_FALSE(doc["consistent"].GetBool());
  EXPECT_STREQ(doc["instances"][2]["last_reload"]["result"].GetString(), "failed");
  EXPECT_STREQ(doc["instances"][2]["last_reload"]["error"].GetString(), "the mapper does not parse");
  EXPECT_TRUE(doc["instances"][0]["last_reload"].IsNull());
  EXPECT_THAT(instancesText(views), HasSubstr("! gw-c  running"));
  EXPECT_THAT(instancesText(views), HasSubstr("  gw-a  running"));
}

// A folder of files and a configuration that point at it.
class VersionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-instances-" + ids::randomHex(6));
    fs::create_directories(dir_);
    fs::copy(fs::path(GW_REPO_DIR) / "mappers" / "clinic-v1", dir_ / "format", fs::copy_options::recursive);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string configText(const std::string& instance_id, int port, const std::string& format_dir) const {
    return test::runtimeTestConfig({.database = dir_ / "gateway.db",
                                    .format_dir = format_dir,
                                    .port = port,
                                    .top_level_keys = R"("instance_id": ")" + instance_id + R"(",)",
                                    .partner_keys = R"(, "retry": {"initial_ms": 60000, "max_ms": 60000})"});
  }

  config::GatewayConfig load(const std::string& text) const {
    auto loaded = config::loadText(text, dir_, "instances-test.json");
    EXPECT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors.front().describe());
    return loaded.config ? *loaded.config : config::GatewayConfig{};
  }

  void touchMapper(const std::string& text_to_append) const {
    std::ofstream(dir_ / "format" / "README.local", std::ios::app) << text_to_append;
  }

  fs::path dir_;
};

TEST_F(VersionsTest, ConfigVersionIgnoresWhatDiffersPerInstanceAndMappersVersionFollowsTheFiles) {
  const auto a = load(configText("gw-a", 8443, (dir_ / "format").string()));
  const auto b = load(configText("gw-b", 9443, (dir_ / "format").string()));
  EXPECT_EQ(configVersion(a), configVersion(b)) << "instance id and port are the instance's own";
  EXPECT_THAT(configVersion(a), ::testing::MatchesRegex("sha256:[0-9a-f]{16}"));
  auto other = configText("gw-a", 8443, (dir_ / "format").string());
  other.replace(other.find("America/New_York"), 16, "America/Chicago");
  EXPECT_NE(configVersion(load(other)), configVersion(a)) << "a setting that changes behaviour changes it";

  const auto before = mappingSetVersion(a.mapping);
  ASSERT_TRUE(before) << before.error().describe();
  EXPECT_EQ(mappingSetVersion(a.mapping).value(), before.value()) << "stable";
  touchMapper("a note\n");
  EXPECT_NE(mappingSetVersion(a.mapping).value(), before.value()) << "any file of the set, added or changed";
}

TEST_F(VersionsTest, TheRuntimeRecordsItsVersionsAtStartAfterEachReloadAndAtStop) {
  SystemClock clock;
  auto cfg = load(configText("gw-unit", 0, (dir_ / "format").string()));
  store::SqliteOptions options{(dir_ / "gateway.db").string(), true, 8, test::testMasterKey()};
  options.instance_id = "gw-unit";
  auto store = store::openSqliteStore(options);
  ASSERT_TRUE(store) << store.error().describe();
  auto runtime = std::make_unique<Runtime>(cfg, clock);
  ASSERT_TRUE(runtime->open(std::move(store).value()));
  runtime->start();
  EXPECT_EQ(runtime->instanceId(), "gw-unit");

  auto rows = runtime->store().instances();
  ASSERT_TRUE(rows) << rows.error().describe();
  ASSERT_EQ(rows.value().size(), 1u);
  const auto started = rows.value()[0];
  EXPECT_EQ(started.instance_id, "gw-unit");
  EXPECT_EQ(started.binary_version, std::string(binaryVersion()));
  EXPECT_EQ(started.config_version, configVersion(cfg));
  EXPECT_EQ(started.mappers_version, mappingSetVersion(cfg.mapping).value());
  EXPECT_EQ(started.stopped_at_ms, 0);
  EXPECT_EQ(started.last_reload_at_ms, 0);

  // The metrics name the instance on every series, and say what it runs.
  const std::string page = runtime->metrics()->scrape();
  EXPECT_THAT(page, HasSubstr("gw_instance_info{binary_version=\"" + std::string(binaryVersion()) + "\",config_version=\"" +
                              started.config_version + "\",instance_id=\"gw-unit\"," + "mappers_version=\"" +
                              started.mappers_version + "\"} 1"));
  EXPECT_THAT(page, HasSubstr("gw_reloads_total{instance_id=\"gw-unit\",result=\"ok\"} 0"));
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_THAT(line, HasSubstr("instance_id=\"gw-unit\"")) << "every series";
  }

  // A reload of changed files: the new version, recorded; SQLite has no other instance to tell.
  touchMapper("changed\n");
  auto reloaded = runtime->reloadEverywhere(runtime->reloadTicket());
  ASSERT_TRUE(reloaded) << reloaded.error().describe();
  EXPECT_EQ(reloaded.value().mappers_version, mappingSetVersion(cfg.mapping).value());
  EXPECT_NE(reloaded.value().mappers_version, started.mappers_version);
  EXPECT_EQ(reloaded.value().instance_id, "gw-unit");
  EXPECT_TRUE(reloaded.value().announced) << "announcing on SQLite succeeds: there is no one else";
  auto after = runtime->store().instances().value()[0];
  EXPECT_EQ(after.mappers_version, reloaded.value().mappers_version);
  EXPECT_GT(after.last_reload_at_ms, 0);
  EXPECT_TRUE(after.last_reload_error.empty());

  // A reload that is refused keeps the running set and its version, and says why.
  std::ofstream(dir_ / "format" / "mat_prescription.mapper.json", std::ios::trunc) << "{ not a mapper";
  auto refused = runtime->reload(runtime->reloadTicket());
  ASSERT_FALSE(refused);
  auto kept = runtime->store().instances().value()[0];
  EXPECT_EQ(kept.mappers_version, after.mappers_version);
  EXPECT_FALSE(kept.last_reload_error.empty());
  const auto views = describeInstances(runtime->store().instances().value(), clock.now());
  EXPECT_EQ(views[0].differs, std::vector<std::string>{"last_reload_failed"});

  runtime->stop();
  auto stopped = runtime->store().instances().value()[0];
  EXPECT_GT(stopped.stopped_at_ms, 0);
  EXPECT_EQ(describeInstances({stopped}, clock.now())[0].state, "stopped");
}

}  // namespace
}  // namespace gw::app

// Two real gateway processes on one PostgreSQL database (docs/architecture.md §5.3, issue 14
// point 2): a reload asked of one makes the other reload its own files, and both report the
// version they run; a reload the other refuses keeps its old version and shows in the instances
// list; each instance's id is in its log lines, in the log rows it writes and on its metrics.
// The database is the run's PostgreSQL cluster (support/postgres_cluster.hpp); no partner is
// needed (its address refuses connections: nothing here is about delivery).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "common/ids.hpp"
#include "gateway_fixture.hpp"
#include "support/postgres_cluster.hpp"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  return doc;
}

// instance id -> its mappers_version and last reload result ("ok", "failed", "" for none), as
// GET /v1/admin/instances answers through `gw`.
struct Reported {
  std::string mappers_version, last_reload, state;
};
std::map<std::string, Reported> reported(Gateway& gw) {
  std::map<std::string, Reported> out;
  const auto r = gw.request("GET", "/v1/admin/instances", "", "dev-admin");
  if (r.status != 200) return out;
  const auto doc = parse(r.body);
  for (const auto& i : doc["instances"].GetArray()) {
    out[i["instance_id"].GetString()] = {i["mappers_version"].GetString(),
                                         i["last_reload"].IsNull() ? "" : i["last_reload"]["result"].GetString(),
                                         i["state"].GetString()};
  }
  return out;
}

class InstancesE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = PostgresCluster::unavailableReason(); !why.empty()) GTEST_SKIP() << why;
    dir_ = fs::temp_directory_path() / ("gw-instances-e2e-" + ids::randomHex(6));
    fs::create_directories(dir_);
    dsn_ = PostgresCluster::shared()->createDatabase();
    const std::string& dsn = dsn_;
    const std::string master = ids::randomHex(32) + "\n";
    for (const std::string name : {"a", "b"}) {
      const auto work = dir_ / name;
      fs::create_directories(work);
      // One database, so one master key; each instance keeps its mapping files in a folder of its own.
      writePrivate(work / "master.key", master);
      writePrivate(work / "pg.dsn", dsn + "\n");
      fs::copy(fs::path(GW_REPO_DIR) / "mappers" / "clinic-v1", work / "format", fs::copy_options::recursive);
      GatewayOptions options;
      options.partner_url = "https://127.0.0.1:9/fhir/R4";
      // The partner is down for good: its items keep retrying rather than waiting behind an open
      // breaker for 30 s (ABreakGlassEndedWithoutAnAnnouncement... watches the next attempt).
      options.partner_keys = R"("circuit_breaker": {"failure_threshold": 1000},)";
      options.format_dir = (work / "format").string();
      options.top_level_keys = R"("instance_id": "gw-)" + name + R"(",)";
      options.storage_json = R"({"postgres": {"dsn_file": ")" + (work / "pg.dsn").string() + R"(", "sslmode": "disable"}})";
      (name == "a" ? a_ : b_) = std::make_unique<Gateway>(work.string(), options);
    }
    a_->start();
    b_->start();
  }

  void TearDown() override {
    if (HasFailure()) {
      if (a_) std::cerr << "--- gw-a log ---\n" << a_->log();
      if (b_) std::cerr << "--- gw-b log ---\n" << b_->log();
    }
    a_.reset();
    b_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  static void writePrivate(const fs::path& file, const std::string& text) {
    std::ofstream(file) << text;
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  }
  // A change to the mapping set that maps exactly as before (the golden cases still pass).
  void editMappers(const std::string& name, const std::string& note) {
    std::ofstream(dir_ / name / "format" / "NOTES.local", std::ios::app) << note << "\n";
  }

  // A break-glass for the patient and st-mary, opened through A for 30 minutes; returns once B
  // has had time to hear of it (its announcement takes milliseconds).
  void openBreakGlassThroughA(const std::string& mrn) {
    const auto opened = a_->request("POST", "/v1/compliance/break-glass?clinic=c1",
                                    R"({"clinic":"c1","mrn":")" + mrn +
                                        R"(","partner":"st-mary","recipient":"Dr. Rivera, ED",)"
                                        R"("authorised_by":"J. Chen","nature":"unresponsive","minutes":30})",
                                    "dev-compliance");
    ASSERT_EQ(opened.status, 201) << opened.body;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  // The record's status for st-mary as B reports it ("held", "queued", "retrying", ...).
  std::string partnerStatus(const std::string& record_id) {
    const auto status = parse(b_->status(record_id).body);
    if (!status.IsObject() || !status.HasMember("partners")) return std::string();
    return std::string(status["partners"][0]["status"].GetString());
  }

  fs::path dir_;
  std::string dsn_;
  std::unique_ptr<Gateway> a_, b_;
};

TEST_F(InstancesE2E, AReloadThroughOneInstanceReloadsTheOtherAndEachReportsItsVersionAndId) {
  // Both started on the same files: one version, consistent.
  std::map<std::string, Reported> start;
  ASSERT_TRUE(waitUntil([&] { return (start = reported(*b_)).size() == 2; }, std::chrono::seconds(10)));
  ASSERT_EQ(start["gw-a"].mappers_version, start["gw-b"].mappers_version);
  const std::string v0 = start["gw-a"].mappers_version;

  // Reload through A, with both folders changed alike: B reloads too, and both report the new version.
  editMappers("a", "release 2");
  editMappers("b", "release 2");
  const auto reload = a_->request("POST", "/v1/admin/reload", "", "dev-admin");
  ASSERT_EQ(reload.status, 200) << reload.body;
  const auto summary = parse(reload.body);
  EXPECT_STREQ(summary["instance_id"].GetString(), "gw-a");
  EXPECT_TRUE(summary["announced"].GetBool());
  const std::string v1 = summary["mappers_version"].GetString();
  EXPECT_NE(v1, v0);
  std::map<std::string, Reported> now;
  ASSERT_TRUE(waitUntil(
      [&] {
        now = reported(*a_);
        return now["gw-b"].mappers_version == v1;
      },
      std::chrono::seconds(15)))
      << "gw-b still reports " << now["gw-b"].mappers_version;
  EXPECT_EQ(now["gw-a"].mappers_version, v1);
  EXPECT_EQ(now["gw-b"].last_reload, "ok");
  EXPECT_THAT(b_->log(), HasSubstr("reload_requested_by_instance origin=gw-a"));
  auto consistent = parse(a_->request("GET", "/v1/admin/instances", "", "dev-admin").body);
  EXPECT_TRUE(consistent["consistent"].GetBool());

  // A reload B refuses (its mapper no longer parses): B keeps v1 and says so; the list flags it.
  editMappers("a", "release 3");
  std::ofstream(dir_ / "b" / "format" / "mat_prescription.mapper.json", std::ios::trunc) << "{ not a mapper";
  ASSERT_EQ(b_->request("POST", "/v1/admin/reload", "", "dev-engineer").status, 422);
  ASSERT_TRUE(waitUntil([&] { return reported(*b_)["gw-a"].mappers_version != v1; }, std::chrono::seconds(15)))
      << "gw-a did not reload on gw-b's request";
  now = reported(*b_);
  EXPECT_EQ(now["gw-b"].mappers_version, v1) << "the refused set is not put in place";
  EXPECT_EQ(now["gw-b"].last_reload, "failed");
  EXPECT_EQ(now["gw-a"].last_reload, "ok");
  auto flagged = parse(b_->request("GET", "/v1/admin/instances", "", "dev-admin").body);
  EXPECT_FALSE(flagged["consistent"].GetBool());
  for (const auto& i : flagged["instances"].GetArray()) {
    if (std::string(i["instance_id"].GetString()) == "gw-b") {
      EXPECT_GE(i["differs"].Size(), 1u);
    }
  }
  // The CLI reads the same list from the database, and exits 1 while an instance is flagged.
  ChildProcess cli({GW_GATEWAY_BIN, "instances", "--config", a_->configPath()}, (dir_ / "cli.out").string(),
                   (dir_ / "cli.err").string());
  EXPECT_EQ(cli.wait(std::chrono::seconds(20)), 1) << readFile(dir_ / "cli.err");
  EXPECT_THAT(readFile(dir_ / "cli.out"), HasSubstr("! gw-b  running"));

  // Each instance's id: in its log lines, the log rows it writes, and its metrics.
  ASSERT_EQ(a_->post(patientRecord("A1")).status, 202);
  ASSERT_EQ(b_->post(patientRecord("B1")).status, 202);
  const auto rows = parse(a_->request("GET", "/v1/audit/decisions?kind=decision", "", "dev-compliance").body);
  std::set<std::string> writers;
  for (const auto& e : rows["entries"].GetArray()) writers.insert(e["instance_id"].GetString());
  EXPECT_EQ(writers, (std::set<std::string>{"gw-a", "gw-b"}));
  const auto verify = parse(b_->request("GET", "/v1/audit/verify", "", "dev-compliance").body);
  EXPECT_TRUE(verify["ok"].GetBool()) << "one chain, rows of both instances";
  EXPECT_THAT(a_->log(), HasSubstr("INFO main started"));
  EXPECT_THAT(a_->log(), ::testing::ContainsRegex("INFO main started [^\n]* instance_id=gw-a\n"));
  EXPECT_THAT(b_->log(), ::testing::ContainsRegex("INFO main started [^\n]* instance_id=gw-b\n"));
  const auto metrics = b_->request("GET", "/metrics", "", "dev-metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, ::testing::ContainsRegex("gw_instance_info\\{[^}]*instance_id=\"gw-b\""));
  EXPECT_THAT(metrics.body, HasSubstr("gw_reloads_total{instance_id=\"gw-b\",result=\"failed\"} 1"));
}

// A break-glass opened through one instance governs the other's decisions at once (the grant is
// announced like a consent): a record that arrives at B after A opened it is decided under it.
TEST_F(InstancesE2E, ABreakGlassOpenedThroughOneInstanceDecidesOnTheOther) {
  ASSERT_EQ(b_->post(patientRecord("BG-1")).status, 202);
  ASSERT_EQ(b_->post(prescriptionRecord("8101", "BG-1")).status, 202);
  ASSERT_TRUE(waitUntil([&] { return partnerStatus("c1:rx:8101") == "held"; }, std::chrono::seconds(10)))
      << "no consent: held";

  ASSERT_NO_FATAL_FAILURE(openBreakGlassThroughA("BG-1"));
  ASSERT_EQ(b_->post(prescriptionRecord("8102", "BG-1")).status, 202);
  std::string status;
  EXPECT_TRUE(waitUntil(
      [&] {
        status = partnerStatus("c1:rx:8102");
        return status == "queued" || status == "retrying";
      },
      std::chrono::seconds(10)))
      << "B decided the new record without A's break-glass: " << status;
}

// The re-check before each send reads the patient's grants as stored, not only as announced: a
// break-glass ended where no announcement reaches B (here by SQL on the database, the widest
// version of "ended through A, announcement not yet arrived") stops B's next send of an item it
// queued under that grant. Without the read, B kept the item retrying under the ended grant.
TEST_F(InstancesE2E, ABreakGlassEndedWithoutAnAnnouncementStopsTheNextSendOnTheOther) {
  ASSERT_NO_FATAL_FAILURE(openBreakGlassThroughA("BG-2"));
  // The prescription alone: no item of the patient's goes before it (per-patient order).
  ASSERT_EQ(b_->post(prescriptionRecord("8201", "BG-2")).status, 202);
  std::string status;
  // The partner is down (port 9): B keeps retrying the item under the grant.
  ASSERT_TRUE(waitUntil(
      [&] {
        status = partnerStatus("c1:rx:8201");
        return status == "retrying";
      },
      std::chrono::seconds(15)))
      << "B did not queue and try the record under A's break-glass: " << status;

  PostgresCluster::shared()->exec(PostgresCluster::databaseOf(dsn_),
                                  "UPDATE break_glass SET ended_at = (extract(epoch from now()) * 1000)::bigint, "
                                  "ended_by = 'officer' WHERE ended_at = 0");
  std::string body;
  EXPECT_TRUE(waitUntil(
      [&] {
        body = b_->status("c1:rx:8201").body;
        return body.find(R"("state":"cancelled")") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << "B's next send did not see the ended grant: " << body;
  EXPECT_EQ(partnerStatus("c1:rx:8201"), "held") << "no consent and no grant: held, not retried";
}

}  // namespace
}  // namespace gw::test

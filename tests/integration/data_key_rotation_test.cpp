// `fhir-gateway keys rotate-data` next to a running gateway under ingest load: the CLI (a second
// process) re-encrypts every sud payload under a new key version while clinics keep posting;
// afterwards every payload opens, the old version is gone from data_keys, and a scan of the
// sealed columns finds no envelope under it. (The partner is unreachable: items stay queued, so
// the outbox holds Bundles and disclosures to re-seal; no Medplum needed.)
#include <Poco/Data/LOB.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "child_process.hpp"
#include "common/crypto.hpp"
#include "common/ids.hpp"
#include "gateway_fixture.hpp"
#include "store/keyring.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_files.hpp"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using namespace Poco::Data::Keywords;
using ::testing::HasSubstr;

std::string blobText(const Poco::Data::BLOB& b) {
  return b.size() == 0 ? std::string() : std::string(reinterpret_cast<const char*>(b.rawContent()), b.size());
}

std::string ndjson(int from, int n) {
  std::string body;
  for (int i = from; i < from + n; ++i) {
    std::string r = prescriptionRecord(std::to_string(100000 + i), "M" + std::to_string(i % 40));
    std::replace(r.begin(), r.end(), '\n', ' ');
    body += r + "\n";
  }
  return body;
}

class DataKeyRotation : public ::testing::Test {
 protected:
  void SetUp() override {
    Poco::Data::SQLite::Connector::registerConnector();
    dir_ = fs::temp_directory_path() / ("gw-rotate-data-" + ids::randomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (HasFailure() && gateway_) std::cerr << "---- gateway log ----\n" << gateway_->log();
    gateway_.reset();
    fs::remove_all(dir_);
  }

  // Every sealed value, as (header class byte, key version), read with plain SQLite.
  std::map<std::pair<int, std::uint32_t>, int> envelopeCensus() {
    Poco::Data::Session s("SQLite", (dir_ / "gateway.db").string());
    std::map<std::pair<int, std::uint32_t>, int> census;
    for (const char* sql :
         {"SELECT payload FROM record_versions", "SELECT resource_id FROM resources",
          "SELECT identifier_value FROM resources", "SELECT body FROM resources", "SELECT bundle FROM outbox",
          "SELECT disclosure FROM outbox", "SELECT outcome FROM outbox WHERE typeof(outcome)='blob'",
          "SELECT consent_id FROM consents", "SELECT resource_id FROM consents",
          "SELECT value FROM deployment_secrets WHERE typeof(value)='blob'"}) {
      std::vector<Poco::Data::BLOB> values;
      s << sql, into(values), now;
      for (const auto& v : values) {
        const auto view = store::parseEnvelope(blobText(v));
        if (!view) continue;
        ++census[{static_cast<int>(view->data_class), view->key_version}];
      }
    }
    return census;
  }

  fs::path dir_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(DataKeyRotation, RotatingTheSudKeyUnderIngestLoadLeavesEveryPayloadReadableAndNoneUnderTheOldVersion) {
  GatewayOptions options;
  options.partner_url = "https://127.0.0.1:9/fhir/R4";  // refused: items stay queued and retrying
  options.retry_initial_ms = 60000;
  options.retry_max_ms = 60000;
  gateway_ = std::make_unique<Gateway>(dir_.string(), options);
  gateway_->start();
  auto& gw = *gateway_;
  // Each patient consents to st-mary for sud: their prescriptions are queued (Bundles in the outbox).
  for (int m = 0; m < 40; ++m) {
    auto r = gw.post(
        consentRecord("M" + std::to_string(m), "st-mary", R"(["general","sud"])", "active", "cn" + std::to_string(m)));
    ASSERT_EQ(r.status, 202) << r.body;
  }
  constexpr int kPreloaded = 1500;
  for (int i = 0; i < kPreloaded; i += 50) {
    auto r = gw.post(ndjson(i, 50), "application/x-ndjson");
    ASSERT_EQ(r.status, 202) << r.body;
  }
  const auto before = envelopeCensus();
  const int sud = static_cast<int>(privacy::DataClass::Sud);
  ASSERT_GT(before.at({sud, 1}), kPreloaded * 3);

  // Clinics keep posting while the CLI rotates.
  std::atomic<bool> rotating{true};
  std::atomic<int> posted{0}, refused{0};
  std::vector<double> latencies_ms;
  std::thread load([&] {
    for (int i = kPreloaded; rotating; i += 5) {
      const auto t0 = std::chrono::steady_clock::now();
      auto r = gw.post(ndjson(i, 5), "application/x-ndjson");
      latencies_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      (r.status == 202 ? posted : refused) += 5;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  ChildProcess cli({GW_GATEWAY_BIN, "keys", "rotate-data", "--config", gw.configPath(), "--class", "sud", "--batch-rows",
                    "100"},
                   (dir_ / "cli.out").string(), (dir_ / "cli.err").string());
  const int status = cli.wait(std::chrono::seconds(240)).value_or(-1);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few posts after the rotation too
  rotating = false;
  load.join();
  const std::string out = readFile((dir_ / "cli.out").string()), err = readFile((dir_ / "cli.err").string());
  ASSERT_EQ(status, 0) << out << err;
  EXPECT_THAT(out, HasSubstr("made sud data key version 2"));
  EXPECT_THAT(out, HasSubstr("destroyed versions 1"));
  EXPECT_THAT(err, HasSubstr("data_key_resealed"));
  EXPECT_THAT(err, HasSubstr("data_key_versions_destroyed"));

  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p50 = latencies_ms.empty() ? 0 : latencies_ms[latencies_ms.size() / 2];
  const double worst = latencies_ms.empty() ? 0 : latencies_ms.back();
  std::cout << "[ rotation ] " << out << "[ rotation ] wall " << seconds << " s; ingest during it: " << posted
            << " records accepted, " << refused << " refused; post latency p50 " << p50 << " ms, max " << worst << " ms\n";
  EXPECT_EQ(refused.load(), 0) << "every post during the rotation is accepted";
  EXPECT_GT(posted.load(), 50);
  EXPECT_THAT(gw.log(), HasSubstr("data_key_version_loaded data_class=sud key_version=2"));

  // The running gateway reads re-sealed rows and what it wrote during the rotation.
  for (int i : {0, kPreloaded - 1, kPreloaded + 1, kPreloaded + posted.load() - 1}) {
    auto r = gw.status("c1:rx:" + std::to_string(100000 + i));
    EXPECT_EQ(r.status, 200) << i << " " << r.body;
  }
  ASSERT_EQ(gw.stop(), 0);

  // No envelope under sud version 1, its wrapped key gone; mh and general untouched.
  const auto after = envelopeCensus();
  EXPECT_EQ(after.count({sud, 1}), 0u);
  EXPECT_GT(after.at({sud, 2}), before.at({sud, 1}));
  {
    Poco::Data::Session s("SQLite", (dir_ / "gateway.db").string());
    std::vector<std::string> keys;
    s << "SELECT data_class || ' v' || key_version FROM data_keys WHERE data_class IN ('sud','mh','general') "
         "ORDER BY data_class",
        into(keys), now;
    EXPECT_EQ(keys, (std::vector<std::string>{"general v1", "mh v1", "sud v2"}));
  }

  // Every payload opens with the keys now in the database.
  auto master = crypto::loadKeyFile(dir_ / "master.key");
  ASSERT_TRUE(master) << master.error().describe();
  auto opened = store::openSqliteStore({(dir_ / "gateway.db").string(), true, 2, master.value()});
  ASSERT_TRUE(opened) << opened.error().describe();
  auto& st = *opened.value();
  for (int i = 0; i < kPreloaded + posted.load(); ++i) {
    const std::string id = "c1:rx:" + std::to_string(100000 + i);
    auto payload = st.recordPayload("c1", id, 1);
    ASSERT_TRUE(payload) << id << ": " << payload.error().describe();
    ASSERT_TRUE(payload.value()) << id;
    auto record = st.recordStatus("c1", id);
    ASSERT_TRUE(record) << id << ": " << record.error().describe();
  }
  auto due = st.dueItems("st-mary", std::chrono::system_clock::now() + std::chrono::hours(2), 100000);
  ASSERT_TRUE(due) << due.error().describe();
  EXPECT_GT(due.value().size(), 0u);
  auto consents = st.consents();
  ASSERT_TRUE(consents) << consents.error().describe();
  EXPECT_EQ(consents.value().size(), 40u);
  ASSERT_TRUE(st.deploymentSecret("record-key"));
}

}  // namespace
}  // namespace gw::test

// Several gateway instances on one PostgreSQL database (issue 14, point 2; docs/architecture.md §5.3,
// docs/privacy.md §8.3): two real gateway processes on a PostgreSQL server the test run starts
// (support/postgres_cluster.hpp), delivering to the real partner (Node + Medplum).
//
// - A revocation posted to instance a is ordered against instance b's sends the way the send gate
//   orders one process's: b's send that was decided before it ends before a answers 202, the
//   items b holds that are not yet sent are cancelled, and no request carrying the patient's data
//   starts after the 202.
// - N records posted to both instances in turn, one instance SIGKILLed three times while they are
//   delivered: every record reaches the partner exactly once, per patient in the order posted, and
//   the one audit chain both instances append to verifies.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "common/ids.hpp"
#include "delaying_proxy.hpp"
#include "gateway_fixture.hpp"
#include "support/postgres_cluster.hpp"
#include "support/sanitized_build.hpp"

namespace gw::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

std::string oneLine(std::string record) {
  std::replace(record.begin(), record.end(), '\n', ' ');
  return record;
}

class SeveralInstances : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const auto why = PostgresCluster::unavailableReason(); !why.empty()) GTEST_SKIP() << why;
    dir_ = (fs::temp_directory_path() / ("gw-instances-" + ids::randomHex(6))).string();
    fs::create_directories(dir_);
    dsn_ = PostgresCluster::shared()->createDatabase();
    {
      std::ofstream out(dir_ + "/postgres.dsn");
      out << dsn_ << "\n";
    }
    ::chmod((dir_ + "/postgres.dsn").c_str(), 0600);
    partner_ = std::make_unique<Partner>(dir_);
  }

  void TearDown() override {
    if (HasFailure()) {
      if (a_) std::cerr << "---- instance a log ----\n" << a_->log();
      if (b_) std::cerr << "---- instance b log ----\n" << b_->log();
      std::cerr << "---- partner stderr ----\n" << readFile(dir_ + "/partner.err");
    }
    a_.reset();
    b_.reset();
    partner_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::unique_ptr<Gateway> instance(const std::string& name, GatewayOptions options) {
    options.postgres_dsn_file = dir_ + "/postgres.dsn";
    options.instance_id = name;
    options.master_key_file = dir_ + "/master.key";
    if (options.partner_url.empty()) options.partner_url = partner_->baseUrl();
    fs::create_directories(dir_ + "/" + name);
    return std::make_unique<Gateway>(dir_ + "/" + name, options);
  }

  long long sql(const std::string& query) {
    return PostgresCluster::shared()->count(PostgresCluster::databaseOf(dsn_), query);
  }

  // Resources of a type the partner holds (GET /__admin/stats).
  int partnerHolds(const std::string& type) {
    auto stats = parseJson(partner_->admin("GET", "stats").body);
    if (!stats.IsObject() || !stats.HasMember("resources") || !stats["resources"].HasMember(type.c_str())) return 0;
    return stats["resources"][type.c_str()].GetInt();
  }

  std::string dir_;
  std::string dsn_;
  std::unique_ptr<Partner> partner_;
  std::unique_ptr<Gateway> a_;
  std::unique_ptr<Gateway> b_;
};

TEST_F(SeveralInstances, ARevocationThroughOneInstanceStopsTheOthersSendsBeforeItIsAnswered) {
  // b reaches the partner through a proxy that opens each connection 1.5 s late, and the partner
  // answers each request after 300 ms with Connection: close: every send of b is re-checked, then
  // spends 1.5 s opening its connection before its request starts. One sender: b's batch is sent
  // one item after another, the later ones claimed but not yet re-checked.
  DelayingProxy proxy(partner_->port(), 1500ms);
  ASSERT_EQ(partner_->admin("POST", "faults", R"({"delay_ms":300,"close":true,"count":100000})").status / 100, 2);
  GatewayOptions b_options;
  b_options.partner_url = "https://127.0.0.1:" + std::to_string(proxy.port()) + "/fhir/R4";
  b_options.partner_keys = R"("max_concurrent_requests": 1, "connect_timeout_ms": 5000,)";
  b_ = instance("b", b_options);
  b_->start();
  // a delivers only when its own commits wake it (no polling): it takes nothing of b's batch.
  GatewayOptions a_options;
  a_options.poll_interval_ms = 60000;
  a_ = instance("a", a_options);
  a_->start();
  ASSERT_TRUE(waitUntil([&] { return b_->log().find("capability_read") != std::string::npos; }, 20s)) << b_->log();

  const std::vector<std::string> mrns = {"IAX0Q", "IAX1Q", "IAX2Q"};
  for (const auto& mrn : mrns) {
    ASSERT_EQ(b_->post(consentRecord(mrn, "st-mary", R"(["general","sud"])", "active", "inst-" + mrn)).status, 202);
  }
  // One prescription of each patient in one request (one commit: b claims the three items in one
  // batch), and a second one of the first patient, which waits behind its first.
  const int connections_before = proxy.accepted();
  std::string body = "[";
  for (const auto& mrn : mrns) body += prescriptionRecord(mrn + "-1", mrn) + ",";
  body += prescriptionRecord(mrns[0] + "-2", mrns[0]) + "]";
  ASSERT_EQ(b_->post(body).status, 202);

  // b's first send of the batch has been re-checked and is opening its connection: every patient
  // revokes, through a.
  ASSERT_TRUE(waitUntil([&] { return proxy.accepted() > connections_before; }, 10s)) << "b sent nothing";
  std::string revocations = "[";
  for (const auto& mrn : mrns) {
    revocations += consentRecord(mrn, "st-mary", R"(["general","sud"])", "revoked", "inst-" + mrn) + ",";
  }
  revocations.back() = ']';
  const auto posted = nowMs();
  const auto revoked = a_->post(revocations);
  const auto answered = nowMs();
  ASSERT_EQ(revoked.status, 202) << revoked.body;

  // Every prescription item reaches a final state.
  std::vector<std::string> records;
  for (const auto& mrn : mrns) records.push_back("c1:rx:" + mrn + "-1");
  records.push_back("c1:rx:" + mrns[0] + "-2");
  for (const auto& record : records) {
    EXPECT_TRUE(waitUntil(
        [&] {
          const auto status = a_->status(record).body;
          return status.find("\"queued\"") == std::string::npos && status.find("\"retrying\"") == std::string::npos &&
                 status.find("\"deliveries\"") != std::string::npos;
        },
        20s))
        << record << ": " << a_->status(record).body;
  }
  int delivered = 0, cancelled = 0;
  for (const auto& record : records) {
    const auto status = a_->status(record).body;
    if (status.find("\"delivered\"") != std::string::npos) ++delivered;
    if (status.find("\"cancelled\"") != std::string::npos) ++cancelled;
  }

  // The partner's request log: no request carrying one of these patients' data began after the
  // 202. (The revocation passed on, a Bundle holding the patient's Consent alone, may: §8.4.)
  auto log = parseJson(partner_->admin("GET", "requests?bodies=1").body);
  ASSERT_TRUE(log.IsArray());
  int requests = 0, late = 0;
  std::string first_late;
  for (const auto& req : log.GetArray()) {
    if (!req.HasMember("body") || !req["body"].IsString()) continue;
    const std::string text = req["body"].GetString();
    const bool about_them = std::any_of(mrns.begin(), mrns.end(),
                                        [&](const std::string& mrn) { return text.find(mrn) != std::string::npos; });
    if (!about_them) continue;
    auto bundle = parseJson(text);
    bool consent_alone = bundle.IsObject() && bundle.HasMember("entry") && bundle["entry"].Size() > 0;
    if (consent_alone) {
      for (const auto& e : bundle["entry"].GetArray()) {
        if (!e.HasMember("resource") || std::string(e["resource"]["resourceType"].GetString()) != "Consent") {
          consent_alone = false;
        }
      }
    }
    if (consent_alone) continue;
    ++requests;
    const auto began = isoToMs(req["time"].GetString());
    if (began > answered) {
      ++late;
      if (first_late.empty()) {
        first_late = "a request began " + std::to_string(began - answered) + " ms after the revocation's 202";
      }
    }
  }
  std::cerr << "instances: revocation answered after " << (answered - posted) << " ms; " << requests
            << " requests with the patients' data, " << late << " after the 202; items delivered " << delivered
            << ", cancelled " << cancelled << "\n";
  EXPECT_GT(requests, 0) << "b's send in flight reached the partner";
  EXPECT_EQ(late, 0) << first_late;
  // a waited for b's send (1.5 s to connect, 300 ms at the partner) before it committed.
  EXPECT_GT(answered - posted, 800) << "the revocation did not wait for the send in flight on b";
  EXPECT_GE(cancelled, 1) << "what b held and had not yet sent is cancelled";
  EXPECT_EQ(delivered + cancelled, static_cast<int>(records.size()));
  EXPECT_THAT(b_->log(), ::testing::HasSubstr("INFO delivery cancelled")) << "b's re-check cancels an item it had claimed";
}

// N records (GW_INSTANCES_RECORDS; 2,000 in the suite, 1,000 under the sanitizers; the issue's
// 20,000 with GW_INSTANCES_RECORDS=20000), 10 per patient, posted to a and b in turn; b is
// SIGKILLed and restarted three times while they are delivered. Measured in a debug build on a
// 2-core machine shared with other builds: 20,000 in 9 min 50 s (posting 290 s; the partner, one
// Node process validating every Bundle, sets the delivery pace), 2,000 in 40 to 75 s. The suite
// keeps to 2,000 so that CI stays well under half an hour; the kills land at the same fractions.
TEST_F(SeveralInstances, EveryRecordReachesThePartnerOnceInOrderThroughKillsAndOneChainVerifies) {
  int n = kSanitizedBuild ? 1000 : 2000;
  if (const char* env = std::getenv("GW_INSTANCES_RECORDS"); env != nullptr && std::atoi(env) > 0) n = std::atoi(env);
  const int per_patient = 10;
  const int patients = std::max(1, n / per_patient);
  n = patients * per_patient;
  const auto started = std::chrono::steady_clock::now();

  GatewayOptions options;
  options.max_body_bytes = 4 << 20;
  a_ = instance("a", options);
  b_ = instance("b", options);
  a_->start();
  b_->start();
  Gateway* targets[2] = {a_.get(), b_.get()};
  const auto mrn = [](int p) { return "K" + std::to_string(100000 + p); };

  // Consents, 250 per request (answered well within the test client's 20 s in a debug build on a
  // busy machine), to a and b in turn.
  constexpr int kBatch = 250;
  int turn = 0;
  for (int from = 0; from < patients; from += kBatch) {
    std::string body;
    for (int p = from; p < std::min(patients, from + kBatch); ++p) {
      body += oneLine(consentRecord(mrn(p), "st-mary", R"(["general","sud"])", "active", "k" + std::to_string(p))) + "\n";
    }
    const auto r = targets[turn++ % 2]->post(body, "application/x-ndjson");
    ASSERT_EQ(r.status, 202) << r.body.substr(0, 500);
  }

  // b is killed when the partner holds 15%, 40% and 65% of the prescriptions, and started again.
  const std::vector<int> kill_at = {n * 15 / 100, n * 40 / 100, n * 65 / 100};
  std::size_t kills = 0;
  const auto killWhenDue = [&] {
    if (kills < kill_at.size() && partnerHolds("MedicationRequest") >= kill_at[kills]) {
      b_->kill();
      std::this_thread::sleep_for(200ms);
      b_->start();
      ++kills;
    }
  };

  // Prescriptions in rounds: round k holds every patient's k-th, so each patient's come in order,
  // in requests of 250 to a and b in turn (each answered before the next is posted).
  std::string body;
  int in_body = 0;
  const auto flush = [&] {
    if (in_body == 0) return;
    const auto r = targets[turn++ % 2]->post(body, "application/x-ndjson");
    ASSERT_EQ(r.status, 202) << r.body.substr(0, 500);
    body.clear();
    in_body = 0;
    killWhenDue();
  };
  for (int k = 0; k < per_patient; ++k) {
    for (int p = 0; p < patients; ++p) {
      body += oneLine(prescriptionRecord(mrn(p) + "-" + std::to_string(k), mrn(p))) + "\n";
      if (++in_body == kBatch) flush();
      if (HasFatalFailure()) return;
    }
  }
  flush();
  const auto posted = std::chrono::steady_clock::now();

  // Delivery ends: nothing queued or retrying, with the kills done on the way.
  const auto deadline = std::chrono::steady_clock::now() + 25min;
  while (std::chrono::steady_clock::now() < deadline) {
    killWhenDue();
    if (kills == kill_at.size() && sql("SELECT count(*) FROM outbox WHERE state IN ('queued','retrying')") == 0) break;
    std::this_thread::sleep_for(200ms);
  }
  const auto delivered_at = std::chrono::steady_clock::now();
  EXPECT_EQ(kills, kill_at.size()) << "b was killed " << kills << " times";
  EXPECT_EQ(sql("SELECT count(*) FROM outbox WHERE state='delivered'"), n);
  EXPECT_EQ(sql("SELECT count(*) FROM outbox WHERE state<>'delivered'"), 0) << "dead, queued or cancelled items";

  // At the partner: each prescription once, by its identifier, and each patient's in the order
  // posted (a conditional create keeps the first write's lastUpdated: when it first arrived).
  auto all = parseJson(partner_->get("MedicationRequest").body);
  ASSERT_TRUE(all.IsObject() && all.HasMember("entry")) << "the partner's search failed";
  std::map<std::string, int> copies;
  std::map<std::string, std::string> arrived;
  for (const auto& e : all["entry"].GetArray()) {
    const auto& resource = e["resource"];
    for (const auto& id : resource["identifier"].GetArray()) {
      if (std::string(id["system"].GetString()) != kRxSystem) continue;
      const std::string value = id["value"].GetString();
      ++copies[value];
      if (resource.HasMember("meta") && resource["meta"].HasMember("lastUpdated")) {
        arrived[value] = resource["meta"]["lastUpdated"].GetString();
      }
    }
  }
  int missing = 0, duplicated = 0, out_of_order = 0;
  std::string first_problem;
  for (int p = 0; p < patients; ++p) {
    std::string previous;
    for (int k = 0; k < per_patient; ++k) {
      const std::string value = mrn(p) + "-" + std::to_string(k);
      const auto it = copies.find(value);
      if (it == copies.end()) {
        ++missing;
        if (first_problem.empty()) first_problem = value + " never arrived";
        continue;
      }
      if (it->second > 1) {
        ++duplicated;
        if (first_problem.empty()) first_problem = value + " arrived " + std::to_string(it->second) + " times";
      }
      const auto& at = arrived[value];
      if (!previous.empty() && at < previous) {
        ++out_of_order;
        if (first_problem.empty()) first_problem = value + " arrived before the patient's earlier prescription";
      }
      previous = at;
    }
  }
  EXPECT_EQ(static_cast<int>(copies.size()), n);
  EXPECT_EQ(missing, 0) << first_problem;
  EXPECT_EQ(duplicated, 0) << first_problem;
  EXPECT_EQ(out_of_order, 0) << first_problem;
  EXPECT_EQ(partnerHolds("Patient"), patients) << "one Patient per patient";

  // One chain, both instances' rows, verified (through b's configuration; a's is the same database).
  a_->stop();
  b_->stop();
  ChildProcess verify({GW_GATEWAY_BIN, "audit", "verify", "--config", b_->configPath()}, dir_ + "/verify.out",
                      dir_ + "/verify.err");
  EXPECT_EQ(verify.wait(120s), 0) << readFile(dir_ + "/verify.out") << readFile(dir_ + "/verify.err");
  EXPECT_GT(sql("SELECT count(*) FROM audit_log"), n) << "a decision and a disclosure row per record at least";

  const auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cerr << "instances: " << n << " records, " << patients << " patients; posted in " << ms(posted - started)
            << " ms, all delivered after " << ms(delivered_at - started) << " ms, " << kills
            << " kills of b; total with checks " << ms(std::chrono::steady_clock::now() - started) << " ms\n";
}

}  // namespace
}  // namespace gw::test

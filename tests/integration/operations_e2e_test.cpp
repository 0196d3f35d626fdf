// Operations end to end (issue 12, docs/operations.md): the real binary, the Medplum partner and
// the CLI on the same database. Replay of a dead item after the partner is fixed arrives once; a
// replay after the consent was revoked is denied and logged; records left invalid are
// re-processed after a mapper fix and delivered; a pause survives a restart; an operator of one
// clinic sees and replays nothing of another; the record status says per partner why nothing
// went; /readyz fails while the disk is full (ingest 503) and recovers, and reports a partner
// that is down without failing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "child_process.hpp"
#include "common/ids.hpp"
#include "gateway_fixture.hpp"
#include "support/test_files.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

rapidjson::Document parseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

// The same record at clinic c2 (c2 has an otp program in the test config).
std::string atC2(std::string record) {
  for (std::size_t p; (p = record.find("\"clinic\":\"c1\"")) != std::string::npos;)
    record.replace(p, 13, "\"clinic\":\"c2\"");
  for (std::size_t p; (p = record.find("\"c1:")) != std::string::npos;) record.replace(p, 4, "\"c2:");
  return record;
}

const char* kRejection =
    R"({"status":400,"count":1,"body":{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"prescriber unknown here"}]}})";

// A port on 127.0.0.1 that was free a moment ago.
std::uint16_t freePort() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// server.metrics_listen on a free loopback port: where `fhir-gateway health` asks.
std::string loopbackListener(std::uint16_t port) {
  return R"("metrics_listen": "127.0.0.1:)" + std::to_string(port) + R"(",)";
}

// GET over plain HTTP with curl (an independent client); the body.
std::string curlGet(const std::string& url) {
  std::string out;
  if (FILE* pipe = ::popen(("curl -s --max-time 10 " + url).c_str(), "r")) {
    char chunk[4096];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0;) out.append(chunk, n);
    ::pclose(pipe);
  }
  return out;
}

struct CliRun {
  int status = -1;
  std::string out, err;
};

class OperationsEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_dir_ = (fs::temp_directory_path() / ("gw-ops-" + ids::randomHex(6))).string();
    fs::create_directories(suite_dir_);
    partner_ = new Partner(suite_dir_);
  }
  static void TearDownTestSuite() {
    delete partner_;
    partner_ = nullptr;
    fs::remove_all(suite_dir_);
  }
  void SetUp() override {
    partner_->reset();
    dir_ = suite_dir_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (HasFailure() && gateway_) std::cerr << "---- gateway log ----\n" << gateway_->log();
    gateway_.reset();
  }

  Gateway& startGateway(GatewayOptions options = {}, bool consents = true) {
    if (options.partner_url.empty()) options.partner_url = partner_->baseUrl();
    gateway_ = std::make_unique<Gateway>(dir_, options);
    gateway_->start();
    if (consents) {
      EXPECT_EQ(gateway_->post(consentRecord("A12345", "st-mary", R"(["general","sud","mh"])", "active", "ops-1")).status,
                202);
    }
    return *gateway_;
  }

  CliRun cli(std::vector<std::string> args) {
    args.insert(args.begin(), GW_GATEWAY_BIN);
    const std::string out = dir_ + "/cli.out", err = dir_ + "/cli.err";
    ChildProcess p(args, out, err);
    const int status = p.wait(60s).value_or(-1);
    return {status, readFile(out), readFile(err)};
  }

  std::int64_t itemOf(const std::string& record_id, const std::string& token = "dev-ingest-c1") {
    auto status = parseJson(gateway_->status(record_id, token).body);
    if (!status.IsObject() || !status.HasMember("deliveries") || status["deliveries"].Empty()) return 0;
    return status["deliveries"][0]["item"].GetInt64();
  }

  std::string whyFor(const std::string& record_id, const std::string& partner = "st-mary") {
    auto status = parseJson(gateway_->status(record_id).body);
    if (!status.IsObject() || !status.HasMember("partners")) return "(no partners in the status)";
    for (const auto& p : status["partners"].GetArray()) {
      if (partner == p["partner"].GetString()) return p.HasMember("why") ? p["why"].GetString() : p["status"].GetString();
    }
    return "(partner not listed)";
  }

  static inline std::string suite_dir_;
  static inline Partner* partner_ = nullptr;
  std::string dir_;
  std::unique_ptr<Gateway> gateway_;
};

TEST_F(OperationsEndToEnd, ADeadLetteredItemReplayedAfterThePartnerIsFixedArrivesExactlyOnce) {
  auto& gw = startGateway();
  ASSERT_EQ(partner_->admin("POST", "faults", kRejection).status / 100, 2);
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "dead"));
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 0);
  EXPECT_THAT(whyFor("c1:rx:9001"), HasSubstr("failed"));

  // What is stuck: listed with the clinic's record id, attempts and last error.
  auto listed = gw.request("GET", "/v1/outbox?partner=st-mary&state=dead", "", "test-operator");
  ASSERT_EQ(listed.status, 200) << listed.body;
  auto page = parseJson(listed.body);
  ASSERT_EQ(page["items"].Size(), 1u) << listed.body;
  const auto& item = page["items"][0];
  EXPECT_STREQ(item["record_id"].GetString(), "c1:rx:9001");
  EXPECT_EQ(item["attempts"].GetInt(), 1);
  EXPECT_THAT(std::string(item["last_error"].GetString()), HasSubstr("HTTP 400"));
  EXPECT_THAT(gw.log(), Not(HasSubstr("c1:rx:9001"))) << "record ids are shown, never logged";

  // The partner is fixed (its one rejection used up): the replay arrives, once.
  auto replayed = gw.request("POST", "/v1/outbox/replay", R"({"partner":"st-mary"})", "test-operator");
  ASSERT_EQ(replayed.status, 200) << replayed.body;
  EXPECT_EQ(parseJson(replayed.body)["replayed"].GetInt(), 1) << replayed.body;
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered"));
  auto again = gw.request("POST", "/v1/outbox/replay", R"({"partner":"st-mary"})", "test-operator");
  EXPECT_EQ(parseJson(again.body)["replayed"].GetInt(), 0) << "nothing dead is left";
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 1);

  // Logged with the operator's token id.
  auto log = gw.request("GET", "/v1/audit/decisions?kind=operation", "", "dev-compliance");
  ASSERT_EQ(log.status, 200) << log.body;
  EXPECT_THAT(log.body, HasSubstr(R"("actor":"operator")"));
  EXPECT_THAT(log.body, HasSubstr(R"("reason":"replay")"));
  EXPECT_THAT(log.body, HasSubstr(R"("reason":"outbox-list")")) << "a listing names records: it is logged";
  EXPECT_THAT(log.body, Not(HasSubstr("c1:rx:9001"))) << "by its filters and count, not the records it named";
}

TEST_F(OperationsEndToEnd, AReplayAfterTheConsentWasRevokedIsDeniedAndLogged) {
  auto& gw = startGateway();
  ASSERT_EQ(partner_->admin("POST", "faults", kRejection).status / 100, 2);
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "dead"));
  const auto item = itemOf("c1:rx:9001");
  ASSERT_GT(item, 0);
  ASSERT_EQ(gw.post(consentRecord("A12345", "st-mary", R"(["general","sud","mh"])", "revoked", "ops-1")).status, 202);

  auto replayed = gw.request("POST", "/v1/outbox/replay", R"({"item":)" + std::to_string(item) + "}", "test-operator");
  ASSERT_EQ(replayed.status, 200) << replayed.body;
  auto result = parseJson(replayed.body);
  EXPECT_EQ(result["denied"].GetInt(), 1) << replayed.body;
  EXPECT_EQ(result["replayed"].GetInt(), 0);
  EXPECT_THAT(replayed.body, HasSubstr("no longer permitted"));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 0);
  auto status = parseJson(gw.status("c1:rx:9001").body);
  EXPECT_STREQ(status["deliveries"][0]["state"].GetString(), "dead") << "left as it was";

  auto log = gw.request("GET", "/v1/audit/decisions?kind=operation&outcome=deny", "", "dev-compliance");
  ASSERT_EQ(log.status, 200) << log.body;
  EXPECT_THAT(log.body, HasSubstr("replay-denied"));
  EXPECT_THAT(log.body, HasSubstr(R"("actor":"operator")"));

  // The CLI takes the same decision: still denied.
  auto cancelled_replay = cli({"outbox", "replay", "--config", gw.configPath(), "--item", std::to_string(item)});
  EXPECT_EQ(cancelled_replay.status, 1) << cancelled_replay.err;
  EXPECT_THAT(cancelled_replay.out, HasSubstr(R"("denied":1)"));
}

TEST_F(OperationsEndToEnd, ReprocessTurnsInvalidRecordsValidAfterAMapperFixAndDeliversThem) {
  const std::string format = dir_ + "/format";
  fs::copy(std::string(GW_REPO_DIR) + "/mappers/clinic-v1", format, fs::copy_options::recursive);
  const std::string patient_mapper = readFile(format + "/patient.mapper.json");
  std::string misspelt = patient_mapper;
  ASSERT_NE(misspelt.find("\"birthDate\""), std::string::npos);
  misspelt.replace(misspelt.find("\"birthDate\""), 11, "\"birthdate\"");
  std::ofstream(format + "/patient.mapper.json") << misspelt;
  GatewayOptions options;
  options.format_dir = format;
  auto& gw = startGateway(options);
  for (const char* mrn : {"A12345", "B2"}) {
    auto r = gw.post(patientRecord(mrn));
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_THAT(r.body, HasSubstr(R"("state":"invalid")"));
  }
  EXPECT_THAT(whyFor("c1:pt:A12345"), HasSubstr("held: the record is invalid"));

  std::ofstream(format + "/patient.mapper.json") << patient_mapper;  // the fix
  // The API dry run uses the running mapping set: nothing maps until it is reloaded.
  const std::string dry_body = R"({"state":"invalid","dry_run":true})";
  EXPECT_EQ(gw.request("POST", "/v1/records/$reprocess", dry_body, "test-operator-c1").status, 403);
  auto before_reload = gw.request("POST", "/v1/records/$reprocess?clinic=c1", dry_body, "test-operator-c1");
  ASSERT_EQ(before_reload.status, 200) << before_reload.body;
  EXPECT_THAT(before_reload.body, HasSubstr(R"("would_be_mapped":0)"));
  ASSERT_EQ(gw.request("POST", "/v1/admin/reload", "", "dev-admin").status, 200);
  auto after_reload = gw.request("POST", "/v1/records/$reprocess?clinic=c1", dry_body, "test-operator-c1");
  EXPECT_THAT(after_reload.body, HasSubstr(R"("would_be_mapped":2)"));
  auto dry = cli({"records", "reprocess", "--config", gw.configPath(), "--state", "invalid", "--dry-run"});
  ASSERT_EQ(dry.status, 0) << dry.err;
  EXPECT_THAT(dry.out, HasSubstr(R"("would_be_mapped":2)"));
  EXPECT_THAT(dry.err, HasSubstr("progress: 2/2 records 100%")) << "plain lines when not a terminal";
  EXPECT_THAT(gw.status("c1:pt:A12345").body, HasSubstr(R"("state":"invalid")")) << "a dry run stores nothing";

  auto run = cli({"records", "reprocess", "--config", gw.configPath(), "--state", "invalid", "--record-type", "patient",
                  "--operator", "alice"});
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr(R"("mapped":2)"));
  EXPECT_THAT(run.out, HasSubstr(R"("deliveries_queued":1)")) << "B2 has no consent for st-mary";
  ASSERT_TRUE(gw.waitForDeliveries("c1:pt:A12345", "delivered"));
  EXPECT_EQ(partner_->count("Patient", kMrnSystem, "A12345"), 1);
  EXPECT_EQ(whyFor("c1:pt:B2"), "held: no consent on file for this partner");
  auto log = gw.request("GET", "/v1/audit/decisions?kind=operation", "", "dev-compliance");
  EXPECT_THAT(log.body, HasSubstr(R"("actor":"alice")"));
  EXPECT_THAT(log.body, HasSubstr(R"("reason":"reprocess")"));
}

TEST_F(OperationsEndToEnd, PauseAndResumeSurviveARestart) {
  auto& gw = startGateway();
  EXPECT_EQ(gw.request("POST", "/v1/partners/st-mary/pause", "", "test-operator-c1").status, 403)
      << "a pause stops every clinic's deliveries: a one-clinic operator may not";
  auto paused = gw.request("POST", "/v1/partners/st-mary/pause?reason=maintenance", "", "test-operator");
  ASSERT_EQ(paused.status, 200) << paused.body;
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  EXPECT_EQ(whyFor("c1:rx:9001"), "held: partner paused");
  auto ready = gw.request("GET", "/readyz", "", "");
  EXPECT_EQ(ready.status, 200) << "a paused partner is not a reason to stop taking records";
  EXPECT_THAT(ready.body, HasSubstr(R"("partner":"st-mary","state":"paused")"));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 0);

  ASSERT_EQ(gw.stop(), 0);
  gw.start();
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 0) << "still paused after the restart";
  EXPECT_THAT(gw.request("GET", "/readyz", "", "").body, HasSubstr(R"("state":"paused")"));
  auto status = cli({"outbox", "status", "--config", gw.configPath()});
  ASSERT_EQ(status.status, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr(R"("partner":"st-mary","paused":true)"));
  EXPECT_THAT(status.out, HasSubstr(R"("paused_by":"operator")"));

  auto resumed = cli({"outbox", "resume", "--config", gw.configPath(), "--partner", "st-mary", "--operator", "alice"});
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered"));
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 1);
  EXPECT_THAT(gw.request("GET", "/readyz", "", "").body, HasSubstr(R"("partner":"st-mary","state":"up")"));
  auto log = gw.request("GET", "/v1/audit/decisions?kind=operation", "", "dev-compliance");
  EXPECT_THAT(log.body, HasSubstr(R"("reason":"pause")"));
  EXPECT_THAT(log.body, HasSubstr(R"("reason":"resume")"));
  EXPECT_THAT(log.body, HasSubstr(R"("actor":"alice")"));
}

TEST_F(OperationsEndToEnd, AClinicsOperatorCannotListOrReplayAnotherClinicsItems) {
  auto& gw = startGateway();
  ASSERT_EQ(gw.post(atC2(consentRecord("A12345", "st-mary", R"(["general","sud","mh"])", "active", "ops-2")),
                    "application/json", "test-ingest-c2")
                .status,
            202);
  ASSERT_EQ(partner_->admin("POST", "faults", kRejection).status / 100, 2);
  auto posted = gw.post(atC2(prescriptionRecord()), "application/json", "test-ingest-c2");
  ASSERT_EQ(posted.status, 202) << posted.body;
  ASSERT_TRUE(waitUntil(
      [&] {
        return gw.request("GET", "/v1/outbox?clinic=c2&state=dead", "", "test-operator").body.find("c2:rx:9001") !=
               std::string::npos;
      },
      20s));
  auto all = parseJson(gw.request("GET", "/v1/outbox?clinic=c2&state=dead", "", "test-operator").body);
  const auto c2_item = all["items"][0]["id"].GetInt64();

  EXPECT_EQ(gw.request("GET", "/v1/outbox", "", "test-operator-c1").status, 403) << "must name its clinic";
  EXPECT_EQ(gw.request("GET", "/v1/outbox?clinic=c2", "", "test-operator-c1").status, 403);
  auto mine = gw.request("GET", "/v1/outbox?clinic=c1", "", "test-operator-c1");
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_THAT(mine.body, Not(HasSubstr("c2:")));
  EXPECT_EQ(
      gw.request("POST", "/v1/outbox/replay", R"({"item":)" + std::to_string(c2_item) + "}", "test-operator-c1").status,
      403);
  auto not_found = gw.request("POST", "/v1/outbox/replay?clinic=c1", R"({"item":)" + std::to_string(c2_item) + "}",
                              "test-operator-c1");
  EXPECT_EQ(not_found.status, 404) << not_found.body;
  auto theirs_all = gw.request("POST", "/v1/outbox/replay?clinic=c1", R"({"partner":"st-mary"})", "test-operator-c1");
  ASSERT_EQ(theirs_all.status, 200) << theirs_all.body;
  EXPECT_EQ(parseJson(theirs_all.body)["replayed"].GetInt(), 0) << "c2's dead item is not c1's to replay";
  EXPECT_THAT(gw.request("GET", "/v1/outbox?clinic=c2&state=dead", "", "test-operator").body, HasSubstr("c2:rx:9001"));
  EXPECT_EQ(gw.request("GET", "/v1/outbox?clinic=c1", "", "dev-ingest-c1").status, 403) << "the ingest role lists nothing";
}

TEST_F(OperationsEndToEnd, APartnerThatIsDownIsReportedWithoutFailingReadiness) {
  GatewayOptions options;
  options.partner_url = "https://127.0.0.1:1/fhir/R4";  // nothing listens there
  auto& gw = startGateway(options);
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  std::string body;
  ASSERT_TRUE(waitUntil(
      [&] {
        auto r = gw.request("GET", "/readyz", "", "");
        body = r.body;
        return r.status == 200 && body.find(R"("state":"failing")") != std::string::npos;
      },
      15s))
      << body;
  EXPECT_THAT(body, HasSubstr(R"("status":"ready")"));
  EXPECT_THAT(body, HasSubstr(R"("failing_since":")"));
  EXPECT_THAT(body, HasSubstr(R"("last_error_class":"connection")"));
  EXPECT_THAT(body, HasSubstr(R"("database":{"writable":true)"));
  EXPECT_THAT(whyFor("c1:rx:9001"), HasSubstr("retrying: the partner's last answer was a connection error"));
}

TEST_F(OperationsEndToEnd, AFullDiskFailsReadinessAndIngestUntilSpaceIsFreed) {
  const std::string data = dir_ + "/data";
  fs::create_directories(data);
  if (::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=24m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (" << std::strerror(errno) << "): run as root to test a full disk";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{data};
  GatewayOptions options;
  options.database_path = data + "/gateway.db";
  options.server_keys = loopbackListener(freePort());
  auto& gw = startGateway(options);
  ASSERT_EQ(gw.request("GET", "/readyz", "", "").status, 200);
  EXPECT_EQ(cli({"health", "--config", gw.configPath()}).status, 0);

  // Fill the file system.
  {
    std::ofstream fill(data + "/filler", std::ios::binary);
    const std::string block(1 << 20, '\0');
    while (fill.write(block.data(), static_cast<std::streamsize>(block.size()))) fill.flush();
  }
  test::HttpResponse ready;
  ASSERT_TRUE(waitUntil(
      [&] {
        ready = gw.request("GET", "/readyz", "", "");
        return ready.status == 503;
      },
      10s))
      << ready.body;
  EXPECT_THAT(ready.body, HasSubstr(R"("reason":"disk-full")"));
  EXPECT_EQ(ready.header("Retry-After"), "5");
  EXPECT_EQ(gw.request("GET", "/healthz", "", "").status, 200) << "liveness is not readiness";
  auto refused = gw.post(prescriptionRecord());
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.header("Retry-After"), "5");
  EXPECT_THAT(refused.body, HasSubstr("nothing was stored"));
  // The container health check sees it too, without a certificate or token.
  const auto unhealthy = cli({"health", "--config", gw.configPath()});
  EXPECT_EQ(unhealthy.status, 1) << unhealthy.out << unhealthy.err;
  EXPECT_THAT(unhealthy.out, HasSubstr("/readyz: 503, reason disk-full)"));

  fs::remove(data + "/filler");
  ASSERT_TRUE(waitUntil([&] { return gw.request("GET", "/readyz", "", "").status == 200; }, 10s)) << "recovers by itself";
  EXPECT_EQ(cli({"health", "--config", gw.configPath()}).status, 0);
  auto accepted = gw.post(prescriptionRecord());
  EXPECT_EQ(accepted.status, 202) << accepted.body;
  EXPECT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered"));
  gateway_.reset();  // stops before the tmpfs goes
}

// `fhir-gateway health` (the image's HEALTHCHECK): ready while the gateway runs, not ready once it
// is down, and a config without the loopback listener is a config error, not "unhealthy".
TEST_F(OperationsEndToEnd, HealthAsksTheRunningGatewayOnItsLoopbackListener) {
  const std::uint16_t port = freePort();
  GatewayOptions options;
  options.server_keys = loopbackListener(port);
  auto& gw = startGateway(options, false);
  const auto ready = cli({"health", "--config", gw.configPath()});
  EXPECT_EQ(ready.status, 0) << ready.out << ready.err;
  EXPECT_EQ(ready.out, "ready (127.0.0.1:" + std::to_string(port) + "/readyz: 200)\n");
  // The same answer as the main listener's /readyz, from the plain loopback listener.
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  EXPECT_THAT(curlGet(base + "/readyz"), HasSubstr(R"("status":"ready")"));
  EXPECT_THAT(curlGet(base + "/healthz"), HasSubstr(R"("status":"ok")"));
  EXPECT_THAT(curlGet(base + "/v1/records/c1:rx:9001?clinic=c1"), HasSubstr("only /metrics, /healthz and /readyz"));

  ASSERT_EQ(gw.stop(), 0);
  const auto down = cli({"health", "--config", gw.configPath()});
  EXPECT_EQ(down.status, 1) << down.out << down.err;
  EXPECT_THAT(down.out, HasSubstr("not ready: cannot connect to 127.0.0.1:" + std::to_string(port)));
  EXPECT_EQ(std::count(down.out.begin(), down.out.end(), '\n'), 1) << "one line: " << down.out;

  // Something else on the port that is not the gateway's listener: not ready either.
  const int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  const int reuse = 1;  // the gateway's listener just closed there
  ::setsockopt(silent, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(silent, 4), 0);  // accepts (the kernel does), never answers
  const auto started = std::chrono::steady_clock::now();
  const auto hung = cli({"health", "--config", gw.configPath()});
  ::close(silent);
  EXPECT_EQ(hung.status, 1) << hung.out << hung.err;
  EXPECT_THAT(hung.out, HasSubstr("no answer within 5000 ms"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 15s);

  // Without server.metrics_listen there is nothing to ask: exit 3 with what to set.
  std::string text = readFile(gw.configPath());
  const auto key = text.find(loopbackListener(port));
  ASSERT_NE(key, std::string::npos);
  text.erase(key, loopbackListener(port).size());
  const std::string bare = dir_ + "/no-listener.json";
  std::ofstream(bare) << text;
  const auto unset = cli({"health", "--config", bare});
  EXPECT_EQ(unset.status, 3) << unset.out << unset.err;
  EXPECT_THAT(unset.err, HasSubstr("server.metrics_listen is not set"));
}

}  // namespace
}  // namespace gw::test

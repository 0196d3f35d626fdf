// The gateway's promise about its threads (docs/threading.md): the I/O threads never wait on the
// database. Record status and audit reads keep answering while the group committer sits in a
// long fsync, and when every blocking thread is busy the client gets 503 with Retry-After, not
// a hang or a crash. Real parts: the gateway's own route table, runtime and TLS listener on
// 127.0.0.1, a real SQLite file behind a backend that can hold a commit or a read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "app/route_table.hpp"
#include "app/routes.hpp"
#include "app/runtime.hpp"
#include "common/ids.hpp"
#include "http/server.hpp"
#include "store/faulty_backend.hpp"
#include "store/record_store.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_keys.hpp"
#include "support/test_pki.hpp"
#include "support/tls_test_client.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A gate a store primitive waits at while it is closed.
class Gate {
 public:
  void close() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void pass() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    --waiting_;
  }
  /// Waits until `n` callers are held at the gate.
  bool awaitWaiting(int n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 10s, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = true;
  int waiting_ = 0;
};

class BlockingWorkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-blocking-" + ids::randomHex(6));
    fs::create_directories(dir_);
    const std::string pki = test::devPkiDir();
    const std::string repo = GW_REPO_DIR;
    // One blocking thread and one waiting place, so the test can fill the pool.
    const std::string text = R"({
      "deployment": "development",
      "server": {"port": 0, "threads": 2, "blocking_threads": 1, "blocking_queue": 1,
                 "tls": {"cert_file": ")" +
                             pki + R"(/server.crt", "key_file": ")" + pki + R"(/server.key",
                         "client_ca_file": ")" +
                             pki + R"(/ca.crt"}},
      "auth": {"tokens": [
        {"id": "clinic-c1", "sha256": "16fe3168dfc75472f79c00f62f719efaa73e9881e57cca363e1d0f945b24d372", "roles": ["ingest"], "clinics": ["c1"]},
        {"id": "compliance", "sha256": "8ca17ac4a03ec98104dea63e6883110b4fefb792703b2e80e914823a346e5c35", "roles": ["compliance"], "clinics": ["*"]}]},
      "storage": {"sqlite_path": ")" +
                             (dir_ / "gateway.db").string() + R"("},
      "mapping": {"format_dir": ")" +
                             repo + R"(/mappers/clinic-v1", "profiles_dir": ")" + repo + R"(/fhir-profiles"},
      "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c1.example.org/", "programs": [{"id": "otp", "part2": true}]}],
      "partners": [],
      "privacy": {"master_key_env": "GW_BLOCKING_TEST_UNUSED"}
    })";
    auto loaded = config::loadText(text, dir_, "blocking-test.json");
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors.front().describe());

    faults_ = std::make_shared<store::test::Faults>();
    faults_->before_write = [this](std::string_view primitive) {
      if (primitive == "commit") commit_gate_.pass();
    };
    auto backend = store::openSqliteBackend({(dir_ / "gateway.db").string(), true, 8, {}});
    ASSERT_TRUE(backend) << backend.error().describe();
    auto store = store::openStore(std::make_unique<store::test::FaultyBackend>(std::move(backend).value(), faults_),
                                  test::testMasterKey());
    ASSERT_TRUE(store) << store.error().describe();

    runtime_ = std::make_unique<Runtime>(std::move(*loaded.config), clock_);
    ASSERT_TRUE(runtime_->open(std::move(store).value()));
    ASSERT_TRUE(addGatewayRoutes(table_, *runtime_));
    http::ServerOptions options;
    options.port = 0;
    options.cert_file = pki + "/server.crt";
    options.key_file = pki + "/server.key";
    options.client_ca_file = pki + "/ca.crt";
    auto server = http::Server::create(options, table_.router(runtime_->authenticator(), runtime_->blockingPool()));
    ASSERT_TRUE(server) << server.error().describe();
    server_ = std::move(server).value();
    ASSERT_TRUE(server_->start());
    runtime_->start();
  }

  void TearDown() override {
    commit_gate_.open();
    if (server_) server_->stop();
    if (runtime_) runtime_->stop();
    server_.reset();
    runtime_.reset();
    fs::remove_all(dir_);
  }

  test::HttpResponse get(const std::string& target, const std::string& token) {
    test::TlsClientOptions o;
    o.ca_file = test::devPkiFile("ca.crt");
    o.cert_file = test::devPkiFile("client.crt");
    o.key_file = test::devPkiFile("client.key");
    return test::tlsRequest(server_->port(), o, "GET", target, {}, {{"Authorization", "Bearer " + token}});
  }
  test::HttpResponse post(const std::string& body) {
    test::TlsClientOptions o;
    o.ca_file = test::devPkiFile("ca.crt");
    o.cert_file = test::devPkiFile("client.crt");
    o.key_file = test::devPkiFile("client.key");
    return test::tlsRequest(server_->port(), o, "POST", "/v1/records", body,
                            {{"Authorization", "Bearer dev-ingest-c1"}, {"Content-Type", "application/json"}});
  }

  fs::path dir_;
  SystemClock clock_;
  std::shared_ptr<store::test::Faults> faults_;
  Gate commit_gate_;
  std::unique_ptr<Runtime> runtime_;
  RouteTable table_;
  std::unique_ptr<http::Server> server_;
};

const char* kPatient = R"({"record_id":"c1:pt:B777","record_type":"patient","clinic":"c1","program":"otp",
 "recorded_at":"2026-11-20T09:00:00-05:00","patient":{"mrn":"B777","family_name":"Doe","given_names":["Jo"],
 "birth_date":"1990-01-02","sex":"female"}})";

TEST_F(BlockingWorkTest, ReadsAnswerDuringALongCommitAndAFullPoolAnswers503) {
  auto& pool = runtime_->blockingPool();
  const auto waitFor = [](const auto& condition) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!condition() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return condition();
  };

  // 1. A commit that does not end (a long fsync): the record's POST waits for it, as it should.
  commit_gate_.close();
  auto posted = std::async(std::launch::async, [&] { return post(kPatient); });
  ASSERT_TRUE(commit_gate_.awaitWaiting(1)) << "the committer reached its commit";

  // 2. Reads that need no write answer meanwhile: a record's status, health.
  const auto status = get("/v1/records/c1:pt:B777?clinic=c1", "dev-ingest-c1");
  EXPECT_EQ(status.status, 404) << status.body;
  EXPECT_EQ(get("/healthz", "").status, 200);

  // 3. A decision-log read must log itself before it answers, so it waits behind the commit on
  //    the one blocking thread; one more request waits for that thread; the next is told to come
  //    back, at once, and the I/O threads still answer.
  auto audit = std::async(std::launch::async, [&] { return get("/v1/audit/decisions?clinic=c1", "dev-compliance"); });
  ASSERT_TRUE(waitFor([&] { return pool.stats().jobs_running.value() == 1; }));
  auto queued = std::async(std::launch::async, [&] { return get("/v1/records/c1:pt:B777?clinic=c1", "dev-ingest-c1"); });
  ASSERT_TRUE(waitFor([&] { return pool.stats().jobs_queued.value() == 1; }));
  const auto started = std::chrono::steady_clock::now();
  const auto busy = get("/v1/records/c1:pt:B777?clinic=c1", "dev-ingest-c1");
  EXPECT_EQ(busy.status, 503) << busy.body;
  EXPECT_EQ(busy.header("Retry-After"), "1");
  EXPECT_THAT(busy.body, HasSubstr("busy"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s) << "refused at once, not after a wait";
  EXPECT_EQ(get("/healthz", "").status, 200);
  EXPECT_EQ(pool.stats().jobs_refused.value(), 1u);

  // 4. The commit ends: the POST is accepted, the log read and the queued read answer.
  commit_gate_.open();
  const auto reply = posted.get();
  EXPECT_EQ(reply.status, 202) << reply.body;
  EXPECT_EQ(audit.get().status, 200);
  EXPECT_NE(queued.get().status, 503);
  EXPECT_EQ(get("/v1/records/c1:pt:B777?clinic=c1", "dev-ingest-c1").status, 200);
}

}  // namespace
}  // namespace gw::app

#pragma once
// The store contract: what every backend under the store's rules must do, written against the
// Store interface only and run once per backend in storeBackends(). A new backend (PostgreSQL)
// adds its factory there and must pass every store_contract_*_test.cpp unchanged.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "store/faulty_backend.hpp"
#include "store/record_store.hpp"
#include "store/sample_audit_entries.hpp"
#include "store/store.hpp"
#include "support/test_keys.hpp"

namespace gw::store::test {

/// The instance id every writable backend of the contract is opened with: what the rows it
/// appends carry (AuditEntry::instance_id).
inline constexpr const char* kContractInstance = "gw-contract";

struct BackendFactory {
  std::string name;
  /// The backend of the database kept in `dir` (created by the first open; the same database
  /// every later open, also while another backend object has it open).
  std::function<Result<std::unique_ptr<StoreBackend>>(const std::filesystem::path& dir)> open;
  /// The same database opened read-only: reads work, nothing is written, beginWrite fails.
  std::function<Result<std::unique_ptr<StoreBackend>>(const std::filesystem::path& dir)> open_read_only;
  /// Runs SQL on that database directly, as an attacker or a damaged disk would change it.
  std::function<void(const std::filesystem::path& dir, const std::string& sql)> exec;
  /// The integer the SQL selects (a COUNT(*)).
  std::function<std::int64_t(const std::filesystem::path& dir, const std::string& sql)> count;
  /// Why the backend cannot run here (its server is not installed): the tests skip, saying so.
  /// Empty or returning "": it can.
  std::function<std::string()> unavailable;
};

// gtest prints a failing test's parameter: the backend's name, not its bytes.
inline void PrintTo(const BackendFactory& f, std::ostream* os) { *os << f.name; }

/// Every backend the contract runs on (defined in store_contract_test.cpp).
std::vector<BackendFactory> storeBackends();

class StoreContract : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override {
    if (GetParam().unavailable) {
      if (const auto why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << GetParam().name << ": " << why;
    }
    dir_ = std::filesystem::temp_directory_path() / ("gw-contract-" + ids::randomHex(6));
    std::filesystem::create_directories(dir_);
    faults_ = std::make_shared<Faults>();
    store_ = open();
    ASSERT_TRUE(store_);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  /// A store over this test's database, its writes failing as faults_ says.
  std::unique_ptr<Store> open(char master = 'm') {
    auto s = openWith(gw::test::testMasterKey(master));
    EXPECT_TRUE(s) << (s ? "" : s.error().describe());
    return s ? std::move(s).value() : nullptr;
  }
  Result<std::unique_ptr<Store>> openWith(const crypto::SecretKey& master) {
    GW_TRY(auto backend, GetParam().open(dir_));
    return openStore(std::make_unique<FaultyBackend>(std::move(backend), faults_), master);
  }
  void exec(const std::string& sql) { GetParam().exec(dir_, sql); }
  /// The key the store keeps for c1's record `record_id` (what outbox items and held records
  /// carry instead of the id).
  std::string recordKey(const std::string& record_id) const { return store_->lookupKeys().record("c1", record_id); }
  /// An entry as the store keeps it: resource and consent ids as their lookup keys, and the
  /// instance that appended it.
  AuditEntry asStored(AuditEntry e) const {
    if (!e.resource_id.empty()) e.resource_id = store_->lookupKeys().resource(e.resource_type, e.resource_id);
    if (!e.consent_id.empty()) e.consent_id = store_->lookupKeys().consentReference(e.consent_id);
    if (e.instance_id.empty()) e.instance_id = store_->instanceId();
    return e;
  }
  std::int64_t count(const std::string& sql) { return GetParam().count(dir_, sql); }

 public:
  // Test data any contract test (and helper) may build.
  static SystemTime t(int seconds) { return fromUnixMillis(1'800'000'000'000 + seconds * 1000LL); }
  static SystemTime day(int d) { return fromUnixMillis(1'800'000'000'000 + d * 86'400'000LL); }

  /// A mapped record of patient `patient` with one resource and `outbox_items` items for p1.
  static IngestWrite write(std::string record_id, std::string hash, std::string patient, int outbox_items = 1,
                           privacy::ClassSet classes = privacy::DataClass::Sud) {
    IngestWrite w;
    w.clinic = "c1";
    w.record_id = std::move(record_id);
    w.record_type = "mat_prescription";
    w.content_hash = std::move(hash);
    w.payload = R"({"record":")" + w.record_id + R"("})";
    w.patient_key = std::move(patient);
    w.state = RecordState::Mapped;
    w.classes = classes;
    w.resources.push_back({"MedicationRequest", ids::randomHex(8), "https://ids/rx", "1", "{}", classes});
    for (int i = 0; i < outbox_items; ++i) w.outbox.push_back({"p1", "{\"resourceType\":\"Bundle\"}", 2, classes, ""});
    return w;
  }

  /// A decision entry (kind decision, outcome deny) about resource i.
  static AuditEntry decision(int i, AuditOutcome outcome = AuditOutcome::Deny) { return test::sampleDecision(i, outcome); }
  static std::vector<AuditEntry> decisions(int from, int n) {
    std::vector<AuditEntry> out;
    for (int i = from; i < from + n; ++i) out.push_back(decision(i));
    return out;
  }

 protected:
  /// The whole log, oldest first.
  std::vector<AuditEntry> auditLog() {
    std::vector<AuditEntry> all;
    AuditQuery q;
    q.limit = kMaxAuditPageSize;
    for (;;) {
      auto page = store_->queryAudit(q);
      EXPECT_TRUE(page) << (page ? "" : page.error().describe());
      if (!page) break;
      all.insert(all.end(), page.value().entries.begin(), page.value().entries.end());
      if (!page.value().next_after_seq) break;
      q.after_seq = *page.value().next_after_seq;
    }
    return all;
  }

  VerifyReport verify(const std::optional<ChainAnchor>& anchor = std::nullopt) {
    auto r = store_->verifyAudit(anchor);
    EXPECT_TRUE(r) << (r ? "" : r.error().describe());
    return r ? r.value() : VerifyReport{};
  }

  std::filesystem::path dir_;
  std::shared_ptr<Faults> faults_;
  std::unique_ptr<Store> store_;
};

std::string backendName(const ::testing::TestParamInfo<BackendFactory>& info);

}  // namespace gw::store::test

// What an engineer checks is what ingest stores: for every golden case (JSON and CSV), the
// resources `mappers test` / `map` / $test produce are byte for byte the resources ingest
// stores (labels included), because both run the one record pipeline.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <set>

#include "app/engineer_tools.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "ingest/ingest_service.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_files.hpp"
#include "support/test_keys.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;
const fs::path kRepo = GW_REPO_DIR;

class PipelineParity : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-parity-" + ids::randomHex(6));
    fs::create_directories(dir_);
    auto snapshot = loadMappingSnapshot(kRepo / "mappers/clinic-v1", kRepo / "fhir-profiles", kRepo / "mappers");
    ASSERT_TRUE(snapshot) << snapshot.error().describe();
    snapshot_ = std::move(snapshot).value();
    auto store = store::openSqliteStore({(dir_ / "gw.db").string(), false, 2, test::testMasterKey()});
    ASSERT_TRUE(store) << store.error().describe();
    store_ = std::move(store).value();
    // The golden cases' convention, as a configured gateway: clinic c1 with the dry run's
    // identifier systems and no Part 2 program; the partners their consents name.
    config::Clinic c1{"c1", "Clinic 1", "https://ids.clinic-c1.example/", {{"otp", false}, {"hr", false}}};
    settings_.pipeline.clinics = {c1};
    for (const char* id : {"st-mary", "county-hie"}) {
      config::Partner p;
      p.id = id;
      settings_.partners.push_back(p);
      settings_.pipeline.partner_ids.emplace_back(id);
    }
    settings_.record_key_secret = "parity";
    settings_.policy = {"42 CFR part 2 prohibits unauthorized use or disclosure of these records.", "parity"};
    committer_ = std::make_unique<ingest::GroupCommitter>(*store_, clock_);
    service_ = std::make_unique<ingest::IngestService>(
        ingest::IngestParts{settings_, snapshot_->rules, formats_, *committer_, *store_, registry_});
  }
  void TearDown() override {
    service_.reset();
    committer_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  ingest::BatchResult ingestBody(const std::string& body, const std::string& type, const std::string& mapper = "") {
    std::promise<ingest::BatchResult> promise;
    service_->ingest({body, type, mapper}, {"parity", {"*"}},
                     [&](ingest::BatchResult r) { promise.set_value(std::move(r)); });
    return promise.get_future().get();
  }

  // Every resource the engineer tool shows is stored by ingest with exactly the same bytes.
  void expectStoredAsShown(const std::string& label, const MappedRecord& shown) {
    ASSERT_TRUE(shown.errors.empty()) << label << ": " << shown.errors.front().describe();
    ASSERT_GT(shown.resources.Size(), 0u) << label;
    for (const auto& resource : shown.resources.GetArray()) {
      const std::string type(json::getString(resource, "resourceType"));
      const std::string id(json::getString(resource, "id"));
      auto stored = store_->resourceBody(type, id);
      ASSERT_TRUE(stored) << stored.error().describe();
      ASSERT_TRUE(stored.value().has_value()) << label << ": " << type << "/" << id << " was not stored";
      EXPECT_EQ(*stored.value(), json::toString(resource)) << label << ": " << type << "/" << id;
      const auto* meta = json::find(resource, "meta");
      EXPECT_TRUE(meta != nullptr && json::find(*meta, "security") != nullptr) << label << ": labelled";
      ++compared_;
    }
  }

  fs::path dir_;
  SystemClock clock_;
  std::shared_ptr<const MappingSnapshot> snapshot_;
  std::unique_ptr<store::Store> store_;
  ingest::IngestSettings settings_;
  ingest::InputFormatRegistry formats_ = ingest::InputFormatRegistry::builtins();
  consent::ConsentRegistry registry_;
  std::unique_ptr<ingest::GroupCommitter> committer_;
  std::unique_ptr<ingest::IngestService> service_;
  int compared_ = 0;
};

TEST_F(PipelineParity, EveryJsonGoldenCaseIsStoredExactlyAsMappersTestShowsIt) {
  int cases = 0;
  std::set<fs::path> inputs;
  for (const auto& entry : fs::directory_iterator(kRepo / "mappers/clinic-v1/golden")) {
    if (entry.path().string().ends_with(".input.json")) inputs.insert(entry.path());
  }
  for (const auto& path : inputs) {
    const std::string text = test::readFile(path);
    rapidjson::Document record;
    ASSERT_TRUE(json::parse(text, record)) << path;
    const MappedRecord shown = mapRecord(*snapshot_, record);
    const auto result = ingestBody(text, "application/json");
    ASSERT_FALSE(result.failure) << path << ": " << result.failure->describe();
    ASSERT_EQ(result.records.size(), 1u);
    ASSERT_TRUE(result.records[0].accepted) << path << ": " << ingest::batchResultJson(result);
    EXPECT_EQ(shown.state, store::recordStateName(result.records[0].state)) << path;
    expectStoredAsShown(path.filename().string(), shown);
    ++cases;
  }
  EXPECT_GE(cases, 25);
  EXPECT_GE(compared_, cases);
}

TEST_F(PipelineParity, EveryCsvGoldenRowIsStoredExactlyAsMapShowsIt) {
  const auto* mapper = snapshot_->rules->csv_mappers->find("harm-reduction-weekly/weekly-export");
  ASSERT_NE(mapper, nullptr);
  int rows = 0;
  for (const auto& entry : fs::directory_iterator(kRepo / "mappers/harm-reduction-weekly/golden")) {
    if (entry.path().extension() != ".csv") continue;
    const std::string text = test::readFile(entry.path());
    const MappedCsv shown = mapCsv(*snapshot_, *mapper, text);
    ASSERT_FALSE(shown.error) << entry.path();
    const auto result = ingestBody(text, "text/csv", "harm-reduction-weekly/weekly-export");
    ASSERT_FALSE(result.failure) << entry.path() << ": " << result.failure->describe();
    ASSERT_EQ(result.records.size(), shown.rows.size());
    for (std::size_t i = 0; i < shown.rows.size(); ++i) {
      const auto& row = shown.rows[i];
      EXPECT_EQ(result.records[i].accepted, row.valid()) << entry.path() << " line " << row.line;
      if (!row.valid()) continue;
      expectStoredAsShown(entry.path().filename().string() + " line " + std::to_string(row.line), row.mapped);
      ++rows;
    }
  }
  EXPECT_GE(rows, 3);
}

}  // namespace
}  // namespace gw::app

// Write modes end to end (docs/architecture.md §5.6): the Medplum partner is made to refuse
// transactions, or batches too, and says so in its CapabilityStatement; the gateway reads it at
// start and delivers the golden records in the mode the partner can take, exactly once each,
// also when it is SIGKILLed in the middle and restarted. A partner that cannot take a resource
// type keeps those items waiting, with the reason in the record status and /readyz.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <set>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "gateway_fixture.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

rapidjson::Document parseJsonText(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

struct Golden {
  std::string record_id;
  std::string line;  // the record as one NDJSON line
  std::vector<std::string> types;
  // resourceType|system|value of each resource it maps to (identifier systems as this gateway writes them)
  std::vector<std::array<std::string, 3>> identities;
};

std::vector<Golden> goldenRecords() {
  const fs::path golden = fs::path(GW_REPO_DIR) / "mappers/clinic-v1/golden";
  std::vector<fs::path> inputs;
  for (const auto& entry : fs::directory_iterator(golden)) {
    const auto name = entry.path().filename().string();
    // Consents travel with the Part 2 data they permit (and would replace the test consents).
    if (name.ends_with(".input.json") && name.rfind("consent_", 0) != 0) inputs.push_back(entry.path());
  }
  std::sort(inputs.begin(), inputs.end());
  std::vector<Golden> out;
  for (const auto& input : inputs) {
    Golden g;
    auto record = parseJsonText(readFile(input.string()));
    g.record_id = record["record_id"].GetString();
    g.line = json::toString(record);
    std::string expected_path = input.string();
    expected_path.replace(expected_path.size() - std::string(".input.json").size(), std::string::npos, ".expected.json");
    auto expected = parseJsonText(readFile(expected_path));
    std::vector<const rapidjson::Value*> resources;
    if (expected.IsArray()) {
      for (const auto& v : expected.GetArray()) resources.push_back(&v);
    } else {
      resources.push_back(&expected);
    }
    for (const auto* r : resources) {
      const auto& id = (*r)["identifier"][0];
      std::string system = id["system"].GetString();
      const std::string golden_base = "https://ids.clinic-c1.example/";
      if (system.rfind(golden_base, 0) == 0) system = "https://ids.c1.example.org/" + system.substr(golden_base.size());
      g.types.push_back((*r)["resourceType"].GetString());
      g.identities.push_back({(*r)["resourceType"].GetString(), system, id["value"].GetString()});
    }
    out.push_back(std::move(g));
  }
  return out;
}

class WriteModesEndToEnd : public PartnerSuite {
 protected:
  Gateway& startGateway(GatewayOptions options = {}) {
    PartnerSuite::startGateway(std::move(options));
    consentToEverything();
    return *gateway_;
  }

  rapidjson::Document readyCapability(Gateway& gw) {
    auto r = gw.request("GET", "/readyz", "", "dev-admin");
    EXPECT_EQ(r.status, 200) << r.body;
    auto d = parseJsonText(r.body);
    rapidjson::Document out;
    out.CopyFrom(d["capabilities"][0], out.GetAllocator());
    return out;
  }

  // Every golden record reaches the partner exactly once, in the mode the partner allows, with a
  // SIGKILL of the gateway while the partner is slow and deliveries are under way.
  void deliverGoldenOnceThroughAKill(const std::string& accepts, const std::string& expected_mode,
                                     const std::string& expected_bundle_kind) {
    ASSERT_EQ(partner_->admin("POST", "capability", accepts).status, 200);
    auto& gw = startGateway();
    const auto report = readyCapability(gw);
    EXPECT_STREQ(report["write_mode"].GetString(), expected_mode.c_str()) << json::toString(report);
    EXPECT_TRUE(report["statement_read"].GetBool());

    const auto golden = goldenRecords();
    ASSERT_GE(golden.size(), 25u);
    ASSERT_EQ(partner_->admin("POST", "faults", R"({"count":100000,"delay_ms":40})").status / 100, 2);
    std::string batch;
    for (const auto& g : golden) batch += g.line + "\n";
    auto posted = gw.post(batch, "application/x-ndjson");
    ASSERT_EQ(posted.status, 202) << posted.body;
    ASSERT_TRUE(gw.waitForDeliveries(golden.front().record_id, "delivered", std::chrono::seconds(60)))
        << gw.status(golden.front().record_id).body;
    auto last = parseJsonText(gw.status(golden.back().record_id).body);
    ASSERT_STRNE(last["deliveries"][0]["state"].GetString(), "delivered") << "work left at the kill";
    gw.kill();
    partner_->admin("DELETE", "faults");
    gw.start();
    for (const auto& g : golden) {
      ASSERT_TRUE(gw.waitForDeliveries(g.record_id, "delivered", std::chrono::seconds(60)))
          << g.record_id << ": " << gw.status(g.record_id).body;
    }
    std::set<std::string> checked;
    // Per patient, when the partner stored each record's resources, by the record's last place in
    // the posted order (a record posted twice is stored as its second version).
    std::map<std::string, std::size_t> last_posted;
    for (std::size_t i = 0; i < golden.size(); ++i) last_posted[golden[i].record_id] = i;
    struct Stored {
      std::size_t posted;
      std::string last_updated;
      std::string record_id;
    };
    std::map<std::string, std::vector<Stored>> stored_per_patient;
    for (const auto& g : golden) {
      for (const auto& [type, system, value] : g.identities) {
        if (!checked.insert(type + "|" + system + "|" + value).second) continue;
        auto found = partner_->search(type, system, value);
        ASSERT_EQ(found["total"].GetInt(), 1) << type << " " << value;
        const auto& stored = found["entry"][0]["resource"];
        if (type != "Patient" && stored.HasMember("subject") && stored["subject"].HasMember("reference")) {
          stored_per_patient[stored["subject"]["reference"].GetString()].push_back(
              {last_posted[g.record_id], stored["meta"]["lastUpdated"].GetString(), g.record_id});
        }
        // References between resources of a record point at what the partner stored (a batch or
        // a single request resolves no urn:uuid): the Patient was written first.
        const auto& resource = found["entry"][0]["resource"];
        for (const char* field : {"subject", "patient"}) {
          if (!resource.HasMember(field) || !resource[field].HasMember("reference")) continue;
          const std::string ref = resource[field]["reference"].GetString();
          EXPECT_EQ(ref.rfind("Patient/", 0), 0u) << type << "." << field << " = " << ref;
          EXPECT_EQ(partner_->get(ref).status, 200) << type << "." << field << " = " << ref;
        }
      }
    }
    EXPECT_GT(checked.size(), 20u);
    // In order per patient: records were posted in golden order, so each patient's resources were
    // stored in that order (ISO timestamps of one zone compare as text).
    std::size_t patients_with_several = 0;
    for (const auto& [patient, stored] : stored_per_patient) {
      std::set<std::size_t> records;
      for (const auto& a : stored) {
        records.insert(a.posted);
        for (const auto& b : stored) {
          // Resources of one record share a write and may be stored in any order among themselves.
          if (a.posted < b.posted) {
            EXPECT_LE(a.last_updated, b.last_updated)
                << patient << ": " << a.record_id << " was stored after " << b.record_id;
          }
        }
      }
      if (records.size() > 1) ++patients_with_several;
    }
    EXPECT_GT(patients_with_several, 0u) << "no patient has several records: the order check checks nothing";
    // The partner saw only the kind of writes it takes.
    auto stats = parseJsonText(partner_->admin("GET", "stats").body);
    for (const char* kind : {"transactions", "batches"}) {
      if (expected_bundle_kind == kind) {
        EXPECT_GT(stats[kind].GetInt(), 0) << kind;
      } else {
        EXPECT_EQ(stats[kind].GetInt(), 0) << kind;
      }
    }
  }
};

TEST_F(WriteModesEndToEnd, TransactionPartnerGetsEveryGoldenRecordOnceThroughAKill) {
  deliverGoldenOnceThroughAKill(R"({"transaction":true,"batch":true})", "transaction", "transactions");
}

TEST_F(WriteModesEndToEnd, BatchOnlyPartnerGetsEveryGoldenRecordOnceThroughAKill) {
  deliverGoldenOnceThroughAKill(R"({"transaction":false,"batch":true})", "batch", "batches");
}

TEST_F(WriteModesEndToEnd, PartnerWithoutBundlesGetsEveryGoldenRecordOnceThroughAKill) {
  deliverGoldenOnceThroughAKill(R"({"transaction":false,"batch":false})", "per-resource", "none");
}

TEST_F(WriteModesEndToEnd, ConfiguredWriteModeOverridesDiscovery) {
  GatewayOptions options;
  options.partner_keys = R"("write_mode": "per-resource",)";
  auto& gw = startGateway(options);
  EXPECT_STREQ(readyCapability(gw)["write_mode"].GetString(), "per-resource");
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "delivered")) << gw.status("c1:rx:9001").body;
  auto stats = parseJsonText(partner_->admin("GET", "stats").body);
  EXPECT_EQ(stats["transactions"].GetInt(), 0);
  EXPECT_EQ(partner_->count("MedicationRequest", kRxSystem, "9001"), 1);
}

TEST_F(WriteModesEndToEnd, ATypeThePartnerDoesNotTakeWaitsWithItsReasonInStatusAndReadyz) {
  ASSERT_EQ(partner_->admin("POST", "capability", R"({"types":["Patient","Consent","Provenance"]})").status, 200);
  auto& gw = startGateway();
  ASSERT_EQ(gw.post(prescriptionRecord()).status, 202);
  ASSERT_TRUE(gw.waitForDeliveries("c1:rx:9001", "retrying")) << gw.status("c1:rx:9001").body;
  auto status = parseJsonText(gw.status("c1:rx:9001").body);
  const auto& d = status["deliveries"][0];
  EXPECT_THAT(d["last_error"].GetString(), HasSubstr("partner does not accept MedicationRequest"));
  EXPECT_EQ(d["attempts"].GetInt(), 0) << "waiting is not a failed attempt";
  const auto report = readyCapability(gw);
  ASSERT_GE(report["unsupported"].Size(), 1u) << json::toString(report);
  EXPECT_THAT(report["unsupported"][0].GetString(), HasSubstr("MedicationRequest"));
  EXPECT_EQ(report["waiting_items"].GetInt(), 1);
  EXPECT_EQ(parseJsonText(partner_->admin("GET", "stats").body)["transactions"].GetInt(), 0);
}

}  // namespace
}  // namespace gw::test

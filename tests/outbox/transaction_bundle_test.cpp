#include "outbox/transaction_bundle.hpp"

#include <gtest/gtest.h>

#include "common/json.hpp"

namespace gw::outbox {
namespace {

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  return d;
}

class TransactionBundleTest : public ::testing::Test {
 protected:
  rapidjson::Document patient_ = parse(R"({"resourceType":"Patient","id":"p-1","identifier":[{"value":"A1"}]})");
  rapidjson::Document request_ = parse(
      R"({"resourceType":"MedicationRequest","id":"m-1","subject":{"reference":"Patient/p-1"},"requester":{"reference":"Practitioner/x"}})");

  BundleEntry stub() { return {"Patient", "p-1", "https://ids/mrn", "A1", &patient_, EntryMethod::ConditionalCreate}; }
  BundleEntry rx(std::string id = "m-1") {
    return {"MedicationRequest", std::move(id), "https://ids/rx", "9 001", &request_, EntryMethod::ConditionalUpdate};
  }
};

TEST_F(TransactionBundleTest, ConditionalEntriesAndLocalReferences) {
  auto bundles = buildTransactionBundles({stub(), rx()}, 8);
  ASSERT_EQ(bundles.size(), 1u);
  EXPECT_EQ(bundles[0].entry_count, 2);
  auto b = parse(bundles[0].json);
  ASSERT_FALSE(b.HasParseError());
  EXPECT_STREQ(b["type"].GetString(), "transaction");
  const auto& e0 = b["entry"][0];
  EXPECT_STREQ(e0["fullUrl"].GetString(), "urn:uuid:p-1");
  EXPECT_STREQ(e0["request"]["method"].GetString(), "POST");
  EXPECT_STREQ(e0["request"]["ifNoneExist"].GetString(), "identifier=https://ids/mrn|A1");
  EXPECT_FALSE(e0["resource"].HasMember("id")) << "partners assign their own ids";
  const auto& e1 = b["entry"][1];
  EXPECT_STREQ(e1["request"]["method"].GetString(), "PUT");
  EXPECT_STREQ(e1["request"]["url"].GetString(), "MedicationRequest?identifier=https://ids/rx|9%20001");
  EXPECT_STREQ(e1["resource"]["subject"]["reference"].GetString(), "urn:uuid:p-1");
  // A reference to something not in the Bundle is left alone.
  EXPECT_STREQ(e1["resource"]["requester"]["reference"].GetString(), "Practitioner/x");
}

TEST_F(TransactionBundleTest, PipeInsideIdentifierIsEscaped) {
  EXPECT_EQ(conditionalUrl("Patient", "urn:x", "a|b&c"), "Patient?identifier=urn:x|a%7Cb%26c");
}

TEST_F(TransactionBundleTest, SplitsAndRepeatsTheSharedPatient) {
  std::vector<BundleEntry> entries{stub()};
  for (int i = 0; i < 5; ++i) entries.push_back(rx("m-" + std::to_string(i)));
  auto bundles = buildTransactionBundles(entries, 3);
  ASSERT_EQ(bundles.size(), 3u);  // 5 requests, 2 per part next to the patient
  int requests = 0;
  for (const auto& built : bundles) {
    auto b = parse(built.json);
    EXPECT_LE(b["entry"].Size(), 3u);
    EXPECT_STREQ(b["entry"][0]["resource"]["resourceType"].GetString(), "Patient");
    requests += static_cast<int>(b["entry"].Size()) - 1;
  }
  EXPECT_EQ(requests, 5);
}

TEST_F(TransactionBundleTest, PatientAloneIsOneBundle) {
  BundleEntry p = stub();
  p.method = EntryMethod::ConditionalUpdate;
  auto bundles = buildTransactionBundles({p}, 8);
  ASSERT_EQ(bundles.size(), 1u);
  auto b = parse(bundles[0].json);
  EXPECT_STREQ(b["entry"][0]["request"]["url"].GetString(), "Patient?identifier=https://ids/mrn|A1");
}

TEST_F(TransactionBundleTest, DroppedResourceBecomesAConditionalDelete) {
  BundleEntry dropped{"Observation", "o-9", "https://ids/service", "55|naloxone", nullptr, EntryMethod::ConditionalDelete};
  auto bundles = buildTransactionBundles({stub(), rx(), dropped}, 8);
  ASSERT_EQ(bundles.size(), 1u);
  EXPECT_EQ(bundles[0].entry_count, 3) << "the partner answers one entry per request, deletes included";
  auto b = parse(bundles[0].json);
  const auto& e2 = b["entry"][2];
  EXPECT_FALSE(e2.HasMember("resource"));
  EXPECT_FALSE(e2.HasMember("fullUrl"));
  EXPECT_STREQ(e2["request"]["method"].GetString(), "DELETE");
  EXPECT_STREQ(e2["request"]["url"].GetString(), "Observation?identifier=https://ids/service|55%7Cnaloxone");
}

TEST_F(TransactionBundleTest, BundleCarriesTheGivenSecurityLabels) {
  auto labels = parse(R"([{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}])");
  auto bundles = buildTransactionBundles({stub(), rx()}, 8, &labels);
  auto b = parse(bundles[0].json);
  ASSERT_TRUE(b.HasMember("meta"));
  EXPECT_STREQ(b["meta"]["security"][0]["code"].GetString(), "R");
  auto plain = parse(buildTransactionBundles({stub(), rx()}, 8)[0].json);
  EXPECT_FALSE(plain.HasMember("meta"));
}

}  // namespace
}  // namespace gw::outbox

#include "delivery/capability.hpp"

#include <gtest/gtest.h>

namespace gw::delivery {
namespace {

// A HAPI-like statement: transaction and batch, conditional writes on Patient and Observation,
// SMART endpoints.
constexpr std::string_view kFull = R"({
  "resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
  "format": ["json"],
  "rest": [{
    "mode": "server",
    "security": {"extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
      "extension": [{"url": "token", "valueUri": "https://ehr.example/token"},
                    {"url": "authorize", "valueUri": "https://ehr.example/authorize"}]}]},
    "resource": [
      {"type": "Patient", "interaction": [{"code": "create"}, {"code": "update"}, {"code": "read"}],
       "conditionalCreate": true, "conditionalUpdate": true},
      {"type": "Observation", "interaction": [{"code": "update"}], "conditionalUpdate": true,
       "conditionalDelete": "single"},
      {"type": "Condition", "interaction": [{"code": "update"}]}
    ],
    "interaction": [{"code": "transaction"}, {"code": "batch"}]
  }, {"mode": "client", "interaction": [{"code": "search-system"}]}]
})";

TEST(CapabilityStatement, ReadsVersionResourcesInteractionsAndSmartEndpoints) {
  auto cap = parseCapabilityStatement(kFull);
  ASSERT_TRUE(cap) << cap.error().describe();
  EXPECT_EQ(cap.value().fhir_version, "4.0.1");
  EXPECT_TRUE(cap.value().transaction);
  EXPECT_TRUE(cap.value().batch);
  EXPECT_EQ(cap.value().token_url, "https://ehr.example/token");
  EXPECT_EQ(cap.value().authorize_url, "https://ehr.example/authorize");
  ASSERT_EQ(cap.value().resources.size(), 3u);
  const auto& patient = cap.value().resources.at("Patient");
  EXPECT_TRUE(patient.conditional_create);
  EXPECT_TRUE(patient.conditional_update);
  EXPECT_EQ(patient.interactions.count("create"), 1u);
  EXPECT_TRUE(cap.value().resources.at("Observation").conditional_delete);
  EXPECT_FALSE(cap.value().resources.at("Condition").conditional_update);
}

TEST(CapabilityStatement, RefusesWhatIsNotAnR4ServerStatement) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {R"([])", "$"},
      {R"({"resourceType": "Patient"})", "$.resourceType"},
      {R"({"resourceType": "CapabilityStatement", "rest": [{"mode": "server"}]})", "$.fhirVersion"},
      {R"({"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0", "rest": [{"mode": "server"}]})", "$.fhirVersion"},
      {R"({"resourceType": "CapabilityStatement", "fhirVersion": "3.0.2", "rest": [{"mode": "server"}]})", "$.fhirVersion"},
      {R"({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": [{"mode": "client"}]})", "$.rest"},
      {R"({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": "server"})", "$.rest"},
      {R"({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
           "rest": [{"mode": "server", "resource": [{"interaction": []}]}]})",
       "$.rest[0].resource[0].type"},
      {R"({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
           "rest": [{"mode": "server", "resource": [{"type": "Patient", "conditionalUpdate": "yes"}]}]})",
       "$.rest[0].resource[0].conditionalUpdate"},
      {R"({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
           "rest": [{"mode": "server", "interaction": [{"code": 3}]}]})",
       "$.rest[0].interaction[0].code"},
  };
  for (const auto& [text, where] : cases) {
    auto cap = parseCapabilityStatement(text);
    ASSERT_FALSE(cap) << text;
    EXPECT_EQ(cap.error().where, where) << text << ": " << cap.error().describe();
    EXPECT_FALSE(cap.error().hint.empty());
  }
}

TEST(CapabilityStatement, StrictJson) {
  // A key twice and trailing bytes are refused, not read as the first or ignored.
  EXPECT_FALSE(parseCapabilityStatement(
      R"({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "fhirVersion": "5.0.0", "rest": []})"));
  EXPECT_FALSE(parseCapabilityStatement(std::string(kFull) + "x"));
  EXPECT_FALSE(parseCapabilityStatement("\xff"));
}

TEST(WriteModeChoice, TransactionThenBatchThenPerResource) {
  auto cap = parseCapabilityStatement(kFull).value();
  EXPECT_EQ(chooseWriteMode("auto", cap).mode, WriteMode::Transaction);
  EXPECT_TRUE(chooseWriteMode("auto", cap).discovered);
  cap.transaction = false;
  EXPECT_EQ(chooseWriteMode("auto", cap).mode, WriteMode::Batch);
  cap.batch = false;
  EXPECT_EQ(chooseWriteMode("auto", cap).mode, WriteMode::PerResource);
  EXPECT_EQ(chooseWriteMode("auto", std::nullopt).mode, WriteMode::Transaction);
  EXPECT_FALSE(chooseWriteMode("auto", std::nullopt).discovered);
}

TEST(WriteModeChoice, ConfiguredModeOverridesDiscovery) {
  const auto cap = parseCapabilityStatement(kFull).value();
  for (const auto* name : {"transaction", "batch", "per-resource"}) {
    const auto choice = chooseWriteMode(name, cap);
    EXPECT_EQ(writeModeName(choice.mode), name);
    EXPECT_FALSE(choice.discovered);
    EXPECT_NE(choice.why.find("write_mode"), std::string::npos);
  }
}

TEST(UnsupportedWrite, NamesTheTypeAndTheMissingInteraction) {
  const auto cap = parseCapabilityStatement(kFull).value();
  using M = RequiredWrite::Method;
  EXPECT_FALSE(unsupportedWrite(cap, {"Patient", M::ConditionalCreate}));
  EXPECT_FALSE(unsupportedWrite(cap, {"Observation", M::ConditionalUpdate}));
  EXPECT_EQ(*unsupportedWrite(cap, {"Observation", M::ConditionalDelete}), "partner does not allow delete of Observation");
  EXPECT_EQ(*unsupportedWrite(cap, {"MedicationRequest", M::ConditionalUpdate}),
            "partner does not accept MedicationRequest (not in its CapabilityStatement)");
  EXPECT_EQ(*unsupportedWrite(cap, {"Condition", M::ConditionalUpdate}),
            "partner does not allow conditional update of Condition");
  EXPECT_EQ(*unsupportedWrite(cap, {"Observation", M::ConditionalCreate}), "partner does not allow create of Observation");
  EXPECT_FALSE(unsupportedWrite(std::nullopt, {"Anything", M::ConditionalUpdate}));
}

}  // namespace
}  // namespace gw::delivery

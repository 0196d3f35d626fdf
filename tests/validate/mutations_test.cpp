// Agreement on invalid input, gateway side: every mutation of a golden output in
// tests/validate/mutations/mutations.json breaks one rule, and the gateway's validator must reject
// it with the expected issue. tests/mapping/validate_mutations.test.js runs the same set through
// the partner's independent (Medplum-based) validator.
#include <gtest/gtest.h>

#include <set>

#include "validate/validate_test_support.hpp"

namespace gw::validate {
namespace {

using vtest::kRepo;
using vtest::parse;
using vtest::readFile;
using vtest::repoProfiles;

const std::string kGw = "https://fhir-gateway.dev/fhir/StructureDefinition/";

// RFC 6902 add / remove / replace (all the mutation set uses). Returns what went wrong, if anything.
std::string applyOperation(rapidjson::Document& doc, const rapidjson::Value& op) {
  const std::string_view kind = json::getString(op, "op");
  const std::string path(json::getString(op, "path"));
  const rapidjson::Pointer pointer(path.c_str());
  if (!pointer.IsValid()) return "invalid path " + path;
  if (kind == "remove") return pointer.Erase(doc) ? "" : "nothing to remove at " + path;
  const rapidjson::Value* value = json::find(op, "value");
  if (value == nullptr) return "no value for " + path;
  rapidjson::Value copy(*value, doc.GetAllocator());
  if (kind == "replace") {
    if (pointer.Get(doc) == nullptr) return "nothing to replace at " + path;
    pointer.Set(doc, copy);
    return "";
  }
  if (kind != "add") return "unsupported op " + std::string(kind);
  // add: into an object member (created or replaced), or appended with "-"
  const auto slash = path.rfind('/');
  const rapidjson::Pointer parent_pointer(path.substr(0, slash).c_str());
  rapidjson::Value* parent = parent_pointer.Get(doc);
  if (parent == nullptr) return "no parent for " + path;
  if (parent->IsArray()) {
    if (path.substr(slash + 1) != "-") return "only '-' is supported for array adds: " + path;
    parent->PushBack(copy, doc.GetAllocator());
    return "";
  }
  pointer.Set(doc, copy);
  return "";
}

TEST(MutationTest, GatewayRejectsEveryMutation) {
  const rapidjson::Document set = parse(readFile(kRepo / "tests" / "validate" / "mutations" / "mutations.json"));
  ASSERT_TRUE(set.IsObject());
  const auto& mutations = set["mutations"];
  ASSERT_TRUE(mutations.IsArray());
  EXPECT_GE(mutations.Size(), 20U);
  std::set<std::string> ids;
  for (const auto& m : mutations.GetArray()) {
    const std::string id(json::getString(m, "id"));
    SCOPED_TRACE(id);
    EXPECT_TRUE(ids.insert(id).second) << "duplicate id";
    const std::string golden(json::getString(m, "golden"));
    const rapidjson::Document goldens = parse(
        readFile(kRepo / "mappers" / "clinic-v1" / "golden" / (golden + ".expected.json")));
    ASSERT_TRUE(goldens.IsArray());
    const auto index = m["resource"].GetUint();
    ASSERT_LT(index, goldens.Size());
    rapidjson::Document resource;
    resource.CopyFrom(goldens[index], resource.GetAllocator());
    const std::string profile = kGw + std::string(json::getString(m, "profile"));

    const auto before = repoProfiles().validateAgainst(resource, profile);
    ASSERT_TRUE(before.issues.empty()) << "the golden itself does not validate: " << before.operationOutcomeJson();
    for (const auto& op : m["patch"].GetArray()) {
      const std::string problem = applyOperation(resource, op);
      ASSERT_TRUE(problem.empty()) << problem;
    }

    const auto result = repoProfiles().validateAgainst(resource, profile);
    const std::string_view code = json::getString(m["gateway"], "code");
    const std::string_view expression = json::getString(m["gateway"], "expression");
    EXPECT_FALSE(result.valid()) << json::getString(m, "breaks");
    bool found = false;
    for (const auto& i : result.issues) {
      found = found || (i.severity == Severity::Error && i.code == code && i.expression == expression);
    }
    EXPECT_TRUE(found) << "want " << code << " at " << expression << "\n" << result.operationOutcomeJson();
  }
}

}  // namespace
}  // namespace gw::validate

#pragma once
// Helpers shared by the privacy tests: repo files, the shipped value sets, golden resources.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/json.hpp"
#include "privacy/classifier.hpp"
#include "support/mapper_output.hpp"
#include "support/scratch_dir.hpp"
#include "support/test_files.hpp"
#include "support/test_json.hpp"

namespace gw::privacy::testing {

using gw::test::parseJson;
using gw::test::readFile;
using gw::test::repoPath;
using gw::test::ScratchDir;

inline std::filesystem::path profilesDir() { return repoPath("fhir-profiles"); }
inline std::filesystem::path goldenDir() { return repoPath("mappers/clinic-v1/golden"); }

/// The resources a golden case's mapper emits: its .expected.json array without the labels
/// ingest adds (these tests classify and label them).
inline rapidjson::Document golden(const std::string& name) {
  auto doc = parseJson(readFile(goldenDir() / (name + ".expected.json")));
  EXPECT_TRUE(doc.IsArray()) << name;
  test::stripSecurityLabelsFromAll(doc);
  return doc;
}

/// Resource `index` of a golden case as its own document (so it can be labelled).
inline rapidjson::Document goldenResource(const std::string& name, rapidjson::SizeType index = 0) {
  auto all = golden(name);
  rapidjson::Document one;
  if (all.IsArray() && index < all.Size()) one.CopyFrom(all[index], one.GetAllocator());
  return one;
}

/// The classifier over the shipped value sets, loaded once for the whole test program.
inline const Classifier& shippedClassifier() {
  static const Classifier classifier = [] {
    auto loaded = Classifier::load(ValueSetFiles::inProfilesDir(profilesDir()));
    if (!loaded) {
      ADD_FAILURE() << loaded.error().describe();
      std::abort();
    }
    return std::move(loaded).value();
  }();
  return classifier;
}

}  // namespace gw::privacy::testing

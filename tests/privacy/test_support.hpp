#pragma once
// Helpers shared by the privacy tests: repo files, the shipped value sets, golden resources.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/json.hpp"
#include "support/mapper_output.hpp"
#include "privacy/classifier.hpp"

namespace gw::privacy::testing {

inline std::filesystem::path repoPath(const std::string& relative) { return std::filesystem::path(GW_REPO_DIR) / relative; }
inline std::filesystem::path profilesDir() { return repoPath("fhir-profiles"); }
inline std::filesystem::path goldenDir() { return repoPath("mappers/clinic-v1/golden"); }

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline rapidjson::Document parseJson(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  EXPECT_FALSE(doc.HasParseError()) << "test JSON does not parse at byte " << doc.GetErrorOffset();
  return doc;
}

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

/// A fresh directory under the test temp dir, removed when the object goes away.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("gw-privacy-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream out(path_ / name, std::ios::binary);
    out << text;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace gw::privacy::testing

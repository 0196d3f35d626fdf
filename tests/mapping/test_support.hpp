#pragma once
// Helpers shared by the mapping tests: repo files, JSON parsing, scratch directories.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/json.hpp"

namespace gw::mapping::testing {

inline std::filesystem::path repoPath(const std::string& relative) { return std::filesystem::path(GW_REPO_DIR) / relative; }
inline std::filesystem::path mappersDir() { return repoPath("mappers/clinic-v1"); }
inline std::filesystem::path schemasDir() { return repoPath("mappers/clinic-v1/schemas"); }

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

/// A fresh directory under the test temp dir, removed when the object goes away.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("gw-mapping-" + std::string(info->test_suite_name()) + "-" + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream out(path_ / name, std::ios::binary);
    out << text;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace gw::mapping::testing

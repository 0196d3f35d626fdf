#pragma once
// Helpers shared by the validator tests that load the repository's fhir-profiles/.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/json.hpp"
#include "support/test_files.hpp"
#include "support/test_json.hpp"
#include "validate/profile_set.hpp"

namespace gw::validate::vtest {

inline const std::filesystem::path kRepo = GW_REPO_DIR;
inline const std::filesystem::path kProfiles = kRepo / "fhir-profiles";

using gw::test::readFile;

inline rapidjson::Document parse(std::string_view text) { return gw::test::parseJson(text); }

/// The repository's profile set, loaded once per test program.
inline const ProfileSet& repoProfiles() {
  static const ProfileSet set = [] {
    auto loaded = ProfileSet::loadDirectory(kProfiles);
    if (!loaded) {
      ADD_FAILURE() << loaded.error().describe();
      std::abort();
    }
    return std::move(loaded).value();
  }();
  return set;
}

/// Sets the JSON pointer `pointer` of `text` to `value` (JSON text), or removes it when `value` is empty.
inline std::string edit(std::string_view text, const char* pointer, std::string_view value) {
  rapidjson::Document doc = parse(text);
  if (value.empty()) {
    EXPECT_TRUE(rapidjson::Pointer(pointer).Erase(doc)) << pointer;
  } else {
    rapidjson::Document v = parse(value);
    rapidjson::Pointer(pointer).Set(doc, rapidjson::Value(v, doc.GetAllocator()));
  }
  return json::toString(doc);
}

}  // namespace gw::validate::vtest

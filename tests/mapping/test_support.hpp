#pragma once
// Helpers shared by the mapping tests: repo files, JSON parsing, scratch directories.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <string>

#include "common/json.hpp"
#include "support/scratch_dir.hpp"
#include "support/test_files.hpp"
#include "support/test_json.hpp"

namespace gw::mapping::testing {

using gw::test::parseJson;
using gw::test::readFile;
using gw::test::repoPath;
using gw::test::ScratchDir;

inline std::filesystem::path mappersDir() { return repoPath("mappers/clinic-v1"); }
inline std::filesystem::path schemasDir() { return repoPath("mappers/clinic-v1/schemas"); }

}  // namespace gw::mapping::testing

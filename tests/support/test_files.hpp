#pragma once
// Files for tests: the repository's own (mappers, profiles, examples) and scratch ones.
#include <filesystem>
#include <string>
#include <string_view>

namespace gw::test {

/// `relative` inside the repository checkout the tests were built from.
std::filesystem::path repoPath(std::string_view relative);

/// The whole file, byte for byte; empty when it cannot be read (the assertion on its content
/// then fails, naming what was expected).
std::string readFile(const std::filesystem::path& path);

}  // namespace gw::test

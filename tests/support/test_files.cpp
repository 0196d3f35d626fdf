#include "support/test_files.hpp"

#include <fstream>
#include <sstream>

namespace gw::test {

std::filesystem::path repoPath(std::string_view relative) { return std::filesystem::path(GW_REPO_DIR) / relative; }

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace gw::test

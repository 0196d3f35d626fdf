#include "validate/profile_file.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/json.hpp"

namespace gw::validate {

namespace fs = std::filesystem;

Result<std::unique_ptr<ProfileFile>> readProfileFile(const std::filesystem::path& path) {
  auto src = std::make_unique<ProfileFile>();
  src->file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return makeError(ErrorCode::Config, "cannot read profile file", src->file, "check that it exists and is readable");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  src->text = buffer.str();
  if (auto parsed = json::parseStrictFile(src->file, src->text, src->doc); !parsed) {
    Error e = parsed.error();
    e.code = ErrorCode::Config;
    return e;
  }
  if (!src->doc.IsObject()) return src->error("", "a profile file must hold one JSON object");
  return src;
}

std::vector<std::filesystem::path> jsonFiles(const std::filesystem::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace gw::validate

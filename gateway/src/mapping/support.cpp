#include "mapping/support.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/json.hpp"

namespace gw::mapping {

std::string_view jsonTypeName(const rapidjson::Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType: return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return "boolean";
    case rapidjson::kObjectType: return "object";
    case rapidjson::kArrayType: return "array";
    case rapidjson::kStringType: return "string";
    case rapidjson::kNumberType: return "number";
  }
  return "value";
}

std::string quoteCode(std::string_view code) {
  constexpr std::size_t kMax = 64;
  std::size_t end = code.size();
  bool cut = false;
  if (end > kMax) {
    end = kMax;
    while (end > 0 && (static_cast<unsigned char>(code[end]) & 0xC0) == 0x80) --end;  // not inside a UTF-8 sequence
    cut = true;
  }
  std::string out;
  out.reserve(end + 5);
  out += '\'';
  for (std::size_t i = 0; i < end; ++i) {
    const auto c = static_cast<unsigned char>(code[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (cut) out += "...";
  out += '\'';
  return out;
}

Result<std::string> readTextFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return makeError(ErrorCode::Config, "cannot read file", file.string(), "check that the file exists and is readable");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return makeError(ErrorCode::Config, "error while reading file", file.string());
  return buffer.str();
}

Result<std::vector<std::filesystem::path>> listFiles(const std::filesystem::path& dir, std::string_view suffix) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return makeError(ErrorCode::Config, "directory not found", dir.string(), "check the configured mappers directory");
  }
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        it->is_regular_file(ec)) {
      files.push_back(it->path());
    }
  }
  if (ec) return makeError(ErrorCode::Config, "cannot list directory: " + ec.message(), dir.string());
  std::sort(files.begin(), files.end());
  return files;
}

Status parseJsonFile(const std::string& file, std::string_view text, rapidjson::Document& doc, bool allow_comments) {
  auto parsed = json::parseStrictFile(file, text, doc, allow_comments);
  if (parsed) return ok();
  Error e = parsed.error();
  e.code = ErrorCode::Config;
  return e;
}

}  // namespace gw::mapping

#pragma once
// One JSON file of fhir-profiles/, kept in memory while the profile set is built so that every
// problem can be reported as "file:line:column: message".
#include <rapidjson/document.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/json_locations.hpp"

namespace gw::validate {

/// One parsed file; `where` turns a JSON pointer into "file:line:column" (computed on first use).
struct ProfileFile {
  std::string file;
  std::string text;
  rapidjson::Document doc;
  mutable std::optional<json::JsonLocations> locations;

  std::string where(std::string_view pointer) const {
    if (!locations) locations = json::JsonLocations::build(text, false);
    return json::JsonLocations::position(file, text, locations->valueOffset(pointer));
  }
  Error error(std::string_view pointer, std::string message, std::string hint = {}) const {
    return makeError(ErrorCode::Config, std::move(message), where(pointer), std::move(hint));
  }
};

/// Reads and parses one file (nesting capped); it must hold one JSON object.
Result<std::unique_ptr<ProfileFile>> readProfileFile(const std::filesystem::path& path);

/// The .json files directly in `dir`, sorted by name; none when `dir` is missing.
std::vector<std::filesystem::path> jsonFiles(const std::filesystem::path& dir);

}  // namespace gw::validate

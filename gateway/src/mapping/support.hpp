#pragma once
// Small helpers shared by the schema and mapper loaders: files and user-facing message text.
#include <rapidjson/document.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace gw::mapping {

/// "string", "number", "boolean", "object", "array" or "null" (JSON types as users know them).
std::string_view jsonTypeName(const rapidjson::Value& value);

/// A code (enum value, value-map key, field name) made safe to quote in a message: at most 64
/// bytes (cut on a UTF-8 boundary, with "..." appended), no control characters, in single quotes.
/// Only codes are quoted in messages; free-text values (names, dates, identifiers) never are.
std::string quoteCode(std::string_view code);

/// Whole file as text; Config error naming the file when it cannot be read.
Result<std::string> readTextFile(const std::filesystem::path& file);

/// Regular files in `dir` whose name ends with `suffix`, sorted by name (load order is stable).
Result<std::vector<std::filesystem::path>> listFiles(const std::filesystem::path& dir, std::string_view suffix);

/// Parses `text` into `doc`; on a syntax error: Config error with where = "file:line:column".
Status parseJsonFile(const std::string& file, std::string_view text, rapidjson::Document& doc, bool allow_comments);

}  // namespace gw::mapping

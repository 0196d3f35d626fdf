#include "common/json.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace gw::json {

std::string toString(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string toPrettyString(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
  writer.SetIndent(' ', 2);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::optional<std::size_t> findExcessiveNesting(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

Status parse(std::string_view text, rapidjson::Document& doc, std::size_t base_offset, bool allow_comments) {
  if (const auto offset = findExcessiveNesting(text)) {
    doc.SetNull();
    return makeError(ErrorCode::MalformedJson,
                     "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels",
                     "byte " + std::to_string(base_offset + *offset), "flatten the document");
  }
  if (allow_comments) {
    doc.Parse<rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(text.data(), text.size());
  } else {
    doc.Parse(text.data(), text.size());
  }
  if (!doc.HasParseError()) return ok();
  const std::size_t offset = base_offset + doc.GetErrorOffset();
  return makeError(ErrorCode::MalformedJson,
                   std::string("malformed JSON: ") + rapidjson::GetParseError_En(doc.GetParseError()),
                   "byte " + std::to_string(offset), "fix the JSON syntax at that byte offset");
}

std::string operationOutcome(const Error& e) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  rapidjson::Value issue(rapidjson::kObjectType);
  issue.AddMember("severity", "error", a);
  issue.AddMember("code", str(fhirIssueTypeFor(e.code), a), a);
  std::string diagnostics = e.message;
  if (!e.hint.empty()) diagnostics += " (" + e.hint + ")";
  issue.AddMember("diagnostics", str(diagnostics, a), a);
  if (!e.where.empty()) {
    rapidjson::Value expression(rapidjson::kArrayType);
    expression.PushBack(str(e.where, a), a);
    issue.AddMember("expression", expression, a);
  }
  rapidjson::Value issues(rapidjson::kArrayType);
  issues.PushBack(issue, a);
  doc.AddMember("resourceType", "OperationOutcome", a);
  doc.AddMember("issue", issues, a);
  return toString(doc);
}

std::pair<std::size_t, std::size_t> lineColumn(std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

std::string pointerToPath(std::string_view pointer) {
  std::string out;
  std::size_t i = 0;
  while (i < pointer.size()) {
    if (pointer[i] != '/') {
      ++i;
      continue;
    }
    std::size_t end = pointer.find('/', i + 1);
    if (end == std::string_view::npos) end = pointer.size();
    std::string token(pointer.substr(i + 1, end - i - 1));
    // JSON pointer escapes
    for (std::size_t p; (p = token.find("~1")) != std::string::npos;) token.replace(p, 2, "/");
    for (std::size_t p; (p = token.find("~0")) != std::string::npos;) token.replace(p, 2, "~");
    const bool numeric = !token.empty() && token.find_first_not_of("0123456789") == std::string::npos;
    if (numeric) {
      out += "[" + token + "]";
    } else {
      if (!out.empty()) out += ".";
      out += token;
    }
    i = end;
  }
  return out;
}

const rapidjson::Value* find(const rapidjson::Value& object, std::string_view key) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(rapidjson::StringRef(key.data(), key.size()));
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string_view getString(const rapidjson::Value& object, std::string_view key) {
  const auto* v = find(object, key);
  if (v == nullptr || !v->IsString()) return {};
  return {v->GetString(), v->GetStringLength()};
}

}  // namespace gw::json


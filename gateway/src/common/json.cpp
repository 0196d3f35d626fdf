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

#include <rapidjson/reader.h>

#include <algorithm>

namespace gw::json {
namespace {

// Records, for each value, the reader offset at which its key (or, in arrays, the value) starts.
struct LocatingHandler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, LocatingHandler> {
  struct Frame {
    bool is_array;
    std::size_t index;
    std::string key;
  };
  rapidjson::StringStream* stream = nullptr;
  std::vector<Frame> frames;
  std::vector<std::pair<std::string, std::size_t>>* out = nullptr;

  std::string currentPointer() const {
    std::string p;
    for (const auto& f : frames) {
      p += '/';
      if (f.is_array) {
        p += std::to_string(f.index);
      } else {
        for (char c : f.key) {
          if (c == '~') p += "~0";
          else if (c == '/') p += "~1";
          else p += c;
        }
      }
    }
    return p;
  }
  void value() {
    if (!frames.empty() && frames.back().is_array) {
      out->emplace_back(currentPointer(), stream->Tell());
    }
  }
  void afterValue() {
    if (!frames.empty() && frames.back().is_array) ++frames.back().index;
  }
  bool Default() {
    value();
    afterValue();
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    frames.back().key.assign(s, len);
    out->emplace_back(currentPointer(), stream->Tell());
    return true;
  }
  bool StartObject() {
    value();
    frames.push_back({false, 0, {}});
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    frames.pop_back();
    afterValue();
    return true;
  }
  bool StartArray() {
    value();
    frames.push_back({true, 0, {}});
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    frames.pop_back();
    afterValue();
    return true;
  }
};

}  // namespace

SourceLocator SourceLocator::build(std::string_view text, bool allow_comments) {
  SourceLocator locator;
  locator.text_ = text;
  std::string copy(text);  // StringStream needs a terminated buffer
  rapidjson::StringStream stream(copy.c_str());
  LocatingHandler handler;
  handler.stream = &stream;
  handler.out = &locator.offsets_;
  rapidjson::Reader reader;
  const bool parsed = allow_comments
                          ? !reader.Parse<rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(stream, handler).IsError()
                          : !reader.Parse(stream, handler).IsError();
  if (!parsed) locator.offsets_.clear();
  std::sort(locator.offsets_.begin(), locator.offsets_.end());
  return locator;
}

std::string SourceLocator::position(std::string_view pointer) const {
  std::string p(pointer);
  while (true) {
    auto it = std::lower_bound(offsets_.begin(), offsets_.end(), p,
                               [](const auto& entry, const std::string& key) { return entry.first < key; });
    if (it != offsets_.end() && it->first == p) {
      auto [line, column] = lineColumn(text_, it->second);
      return std::to_string(line) + ":" + std::to_string(column);
    }
    const auto slash = p.rfind('/');
    if (slash == std::string::npos || p.empty()) return "1:1";
    p.resize(slash);
  }
}

}  // namespace gw::json

#include "common/json_locations.hpp"

#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <vector>

#include "common/json.hpp"

namespace gw::json {
namespace {

using InputStream = rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream>;

// The reader reports an event after it has consumed the token, so the start of a value is found by
// skipping separators, whitespace and comments forward from the end of the previous token.
struct LocatingHandler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, LocatingHandler> {
  struct Frame {
    bool is_array;
    std::size_t index;
    std::size_t base_length;  // length of `pointer` naming this container
  };

  std::string_view text;
  InputStream* stream = nullptr;
  std::unordered_map<std::string, JsonLocations::Location>* out = nullptr;
  std::size_t previous_end = 0;
  std::string pointer;
  std::vector<Frame> frames;

  std::size_t skipToToken(std::size_t p) const {
    while (p < text.size()) {
      const char c = text[p];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ':') {
        ++p;
      } else if (c == '/' && p + 1 < text.size() && text[p + 1] == '/') {
        while (p < text.size() && text[p] != '\n') ++p;
      } else if (c == '/' && p + 1 < text.size() && text[p + 1] == '*') {
        const auto end = text.find("*/", p + 2);
        p = end == std::string_view::npos ? text.size() : end + 2;
      } else {
        break;
      }
    }
    return p;
  }

  void valueStarts() {
    const std::size_t start = skipToToken(previous_end);
    if (frames.empty()) {
      pointer.clear();
      (*out)[pointer] = {start, start};
    } else if (frames.back().is_array) {
      Frame& frame = frames.back();
      pointer.resize(frame.base_length);
      pointer += '/';
      pointer += std::to_string(frame.index++);
      (*out)[pointer] = {start, start};
    } else {
      (*out)[pointer].value = start;  // the key event already created the entry
    }
  }
  void tokenEnds() { previous_end = stream->Tell(); }

  bool Default() {
    valueStarts();
    tokenEnds();
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType length, bool) {
    const std::size_t start = skipToToken(previous_end);
    pointer.resize(frames.back().base_length);
    appendPointerToken(pointer, std::string_view(s, length));
    (*out)[pointer] = {start, start};
    tokenEnds();
    return true;
  }
  bool StartObject() {
    valueStarts();
    frames.push_back({false, 0, pointer.size()});
    tokenEnds();
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    frames.pop_back();
    tokenEnds();
    return true;
  }
  bool StartArray() {
    valueStarts();
    frames.push_back({true, 0, pointer.size()});
    tokenEnds();
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    frames.pop_back();
    tokenEnds();
    return true;
  }
};

}  // namespace

void appendPointerToken(std::string& pointer, std::string_view token) {
  pointer += '/';
  for (const char c : token) {
    if (c == '~') {
      pointer += "~0";
    } else if (c == '/') {
      pointer += "~1";
    } else {
      pointer += c;
    }
  }
}

JsonLocations JsonLocations::build(std::string_view text, bool allow_comments) {
  JsonLocations result;
  rapidjson::MemoryStream memory(text.data(), text.size());
  InputStream stream(memory);
  LocatingHandler handler;
  handler.text = text;
  handler.stream = &stream;
  handler.out = &result.locations_;
  rapidjson::Reader reader;
  const bool parsed =
      allow_comments
          ? !reader.Parse<rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(stream, handler).IsError()
          : !reader.Parse(stream, handler).IsError();
  if (!parsed) result.locations_.clear();
  return result;
}

const JsonLocations::Location* JsonLocations::lookup(std::string_view pointer) const {
  std::string p(pointer);
  while (true) {
    const auto it = locations_.find(p);
    if (it != locations_.end()) return &it->second;
    if (p.empty()) return nullptr;
    p.resize(p.rfind('/'));
  }
}

std::size_t JsonLocations::valueOffset(std::string_view pointer) const {
  const Location* l = lookup(pointer);
  return l == nullptr ? 0 : l->value;
}

std::size_t JsonLocations::keyOffset(std::string_view pointer) const {
  const Location* l = lookup(pointer);
  return l == nullptr ? 0 : l->key;
}

std::string JsonLocations::position(const std::string& file, std::string_view text, std::size_t offset) {
  const auto [line, column] = json::lineColumn(text, offset);
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

}  // namespace gw::json

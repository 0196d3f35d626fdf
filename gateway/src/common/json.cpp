#include "common/json.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace gw::json {

namespace {

// RapidJSON's Writer (without SSE) copies strings one byte at a time and reserves six output bytes
// per input byte; FHIR resources are mostly strings (a CarePlan narrative is kilobytes). This one
// writes exactly the same bytes (same escapes, UTF-8 passed through unvalidated) but copies each
// run that needs no escaping whole.
class FastWriter : public rapidjson::Writer<rapidjson::StringBuffer> {
 public:
  using Base = rapidjson::Writer<rapidjson::StringBuffer>;
  using Base::Base;

  bool String(const Ch* str, rapidjson::SizeType length, bool /*copy*/ = false) {
    Prefix(rapidjson::kStringType);
    return EndValue(writeString(str, length));
  }
  bool Key(const Ch* str, rapidjson::SizeType length, bool copy = false) { return String(str, length, copy); }

 private:
  // Whether any of the 8 bytes at `p` is a control character, '"' or '\\' (SWAR zero-byte tests).
  static bool needsEscape8(const Ch* p) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
    std::uint64_t x = 0;
    std::memcpy(&x, p, 8);
    const auto hasZero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    // Bytes below 0x20: clear the high bit first so bytes >= 0x80 (UTF-8) do not count.
    const std::uint64_t low = ((x & ~kHigh) - kOnes * 0x20) & ~x & kHigh;
    return (low | hasZero(x ^ (kOnes * '"')) | hasZero(x ^ (kOnes * '\\'))) != 0;
  }

  bool writeString(const Ch* str, rapidjson::SizeType length) {
    // Writer's table: control characters, '"' and '\\'; 'u' means \u00XX.
    static constexpr auto kEscape = [] {
      std::array<char, 256> t{};
      for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = 'u';
      t['\b'] = 'b';
      t['\t'] = 't';
      t['\n'] = 'n';
      t['\f'] = 'f';
      t['\r'] = 'r';
      t['"'] = '"';
      t['\\'] = '\\';
      return t;
    }();
    static constexpr char kHexDigits[] = "0123456789ABCDEF";
    os_->Put('"');
    std::size_t run = 0;  // start of the pending unescaped run
    for (std::size_t i = 0; i < length; ++i) {
      // Skip eight plain bytes at a time (no byte < 0x20, '"' or '\\').
      while (i + 8 <= length && !needsEscape8(str + i)) i += 8;
      if (i == length) break;
      const auto c = static_cast<unsigned char>(str[i]);
      const char e = kEscape[c];
      if (e == 0) continue;
      if (i > run) std::memcpy(os_->Push(i - run), str + run, i - run);
      run = i + 1;
      if (e == 'u') {
        char* out = os_->Push(6);
        out[0] = '\\';
        out[1] = 'u';
        out[2] = '0';
        out[3] = '0';
        out[4] = kHexDigits[c >> 4];
        out[5] = kHexDigits[c & 0xF];
      } else {
        char* out = os_->Push(2);
        out[0] = '\\';
        out[1] = e;
      }
    }
    if (length > run) std::memcpy(os_->Push(length - run), str + run, length - run);
    os_->Put('"');
    return true;
  }
};

// Most resources fit without the buffer growing (RapidJSON starts at 256 bytes, grows by half).
constexpr std::size_t kInitialBufferBytes = 4096;

}  // namespace

std::string toString(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer(nullptr, kInitialBufferBytes);
  FastWriter writer(buffer);
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
    // JSON pointer escapes (RFC 6901: "~1" is '/', "~0" is '~'), undone in one pass so that an
    // unescaped "~" is never read again as the start of another escape.
    std::string token;
    token.reserve(end - i - 1);
    for (std::size_t k = i + 1; k < end; ++k) {
      const char c = pointer[k];
      if (c == '~' && k + 1 < end && (pointer[k + 1] == '0' || pointer[k + 1] == '1')) {
        token.push_back(pointer[++k] == '1' ? '/' : '~');
      } else {
        token.push_back(c);
      }
    }
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


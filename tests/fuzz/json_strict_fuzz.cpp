// Fuzzes json::parseStrict, the parser of every JSON input from outside the process (request bodies,
// partner answers, config, mapper and profile files), with and without comments. What it accepts is
// well-formed UTF-8 throughout (checked here by a decoder of its own, and by RapidJSON's validating
// parse), names each key once per object, and reads back strictly to the same document once the
// gateway writes it; what it refuses is refused with a reason, a place in the text and a hint, in
// words that carry none of the input's bad bytes.
#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/json.hpp"

namespace {

// Decodes each sequence (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
bool isUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t length = 1;
    std::uint32_t code = lead;
    std::uint32_t min = 0;
    if (lead >= 0x80) {
      if ((lead & 0xE0) == 0xC0) {
        length = 2, code = lead & 0x1F, min = 0x80;
      } else if ((lead & 0xF0) == 0xE0) {
        length = 3, code = lead & 0x0F, min = 0x800;
      } else if ((lead & 0xF8) == 0xF0) {
        length = 4, code = lead & 0x07, min = 0x10000;
      } else {
        return false;
      }
      if (s.size() - i < length) return false;
      for (std::size_t k = 1; k < length; ++k) {
        const auto next = static_cast<unsigned char>(s[i + k]);
        if ((next & 0xC0) != 0x80) return false;
        code = (code << 6) | (next & 0x3F);
      }
      if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    }
    i += length;
  }
  return true;
}

std::string_view text(const rapidjson::Value& string) { return {string.GetString(), string.GetStringLength()}; }

// Every string and key is UTF-8 and no object names a key twice.
void checkAccepted(const rapidjson::Value& v) {
  if (v.IsString() && !isUtf8(text(v))) __builtin_trap();
  if (v.IsArray()) {
    for (const auto& item : v.GetArray()) checkAccepted(item);
  }
  if (!v.IsObject()) return;
  for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
    if (!isUtf8(text(m->name))) __builtin_trap();
    for (auto earlier = v.MemberBegin(); earlier != m; ++earlier) {
      if (text(earlier->name) == text(m->name)) __builtin_trap();
    }
    checkAccepted(m->value);
  }
}

// Same types, strings, keys in order and integers; doubles only as doubles (RapidJSON's default
// number parsing may differ from the written shortest form in the last place).
bool sameDocument(const rapidjson::Value& a, const rapidjson::Value& b) {
  if (a.GetType() != b.GetType()) return false;
  if (a.IsString()) return text(a) == text(b);
  if (a.IsNumber()) {
    if (a.IsDouble() || b.IsDouble()) return a.IsDouble() && b.IsDouble();
    return a.IsInt64() ? b.IsInt64() && a.GetInt64() == b.GetInt64() : b.IsUint64() && a.GetUint64() == b.GetUint64();
  }
  if (a.IsArray()) {
    if (a.Size() != b.Size()) return false;
    for (rapidjson::SizeType i = 0; i < a.Size(); ++i) {
      if (!sameDocument(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.IsObject()) {
    if (a.MemberCount() != b.MemberCount()) return false;
    for (auto m = a.MemberBegin(), n = b.MemberBegin(); m != a.MemberEnd(); ++m, ++n) {
      if (text(m->name) != text(n->name) || !sameDocument(m->value, n->value)) return false;
    }
  }
  return true;
}

void checkRefusal(const gw::Error& e, const rapidjson::Document& doc, std::size_t size) {
  if (e.code != gw::ErrorCode::MalformedJson || e.message.empty() || e.where.empty() || e.hint.empty()) __builtin_trap();
  if (!doc.IsNull()) __builtin_trap();
  if (!isUtf8(e.message) || !isUtf8(e.where) || !isUtf8(e.hint)) __builtin_trap();
  if (e.where.starts_with("byte ")) {
    if (std::stoull(e.where.substr(5)) > size) __builtin_trap();  // where 0..size (the end for a cut text)
  } else if (!e.where.starts_with("$")) {
    __builtin_trap();  // a repeated key's path
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const bool comments : {false, true}) {
    rapidjson::Document strict;
    const auto status = gw::json::parseStrict(input, strict, 0, comments);
    rapidjson::Document lenient;
    const bool lenient_ok = static_cast<bool>(gw::json::parse(input, lenient, 0, comments));
    if (!status) {
      checkRefusal(status.error(), strict, size);
      continue;
    }
    if (!lenient_ok) __builtin_trap();  // strict accepts a subset of what RapidJSON accepts
    if (!isUtf8(input)) __builtin_trap();
    checkAccepted(strict);
    rapidjson::Document validated;
    if (comments) {
      validated.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseCommentsFlag |
                      rapidjson::kParseTrailingCommasFlag>(input.data(), input.size());
    } else {
      validated.Parse<rapidjson::kParseValidateEncodingFlag>(input.data(), input.size());
    }
    if (validated.HasParseError()) __builtin_trap();  // RapidJSON's own validation agrees
    const std::string written = gw::json::toString(strict);
    rapidjson::Document again;
    if (!gw::json::parseStrict(written, again) || !sameDocument(strict, again)) __builtin_trap();
  }
  return 0;
}

#include "common/json.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <rapidjson/internal/dtoa.h>
#include <rapidjson/internal/ieee754.h>
#include <rapidjson/internal/itoa.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

namespace gw::json {

namespace {

// Compact serialization straight into a per-thread scratch buffer. It writes exactly the bytes
// RapidJSON's Writer<StringBuffer> writes (same escapes, same number formatting through RapidJSON's
// own itoa/dtoa, UTF-8 passed through unvalidated, and the same truncated output when a double is
// NaN or infinite) without its per-value level stack and per-byte capacity checks: serialization
// runs once per resource stored, and FHIR resources are mostly strings (a CarePlan narrative is
// kilobytes).
class CompactWriter {
 public:
  explicit CompactWriter(std::string& buffer) : buffer_(buffer), cur_(buffer.data()), end_(buffer.data() + buffer.size()) {}

  std::size_t size() const { return static_cast<std::size_t>(cur_ - buffer_.data()); }

  // False where Writer would fail (a NaN or infinite double); what was written so far stays.
  bool value(const rapidjson::Value& v) {
    switch (v.GetType()) {
      case rapidjson::kNullType: return literal("null", 4);
      case rapidjson::kFalseType: return literal("false", 5);
      case rapidjson::kTrueType: return literal("true", 4);
      case rapidjson::kStringType: return string(v.GetString(), v.GetStringLength(), 0);
      case rapidjson::kObjectType: {
        char* out = room(1);
        *out = '{';
        cur_ = out + 1;
        char separator = 0;
        for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
          // The key with the separator before it and the ':' after it.
          string(m->name.GetString(), m->name.GetStringLength(), separator);
          separator = ',';
          *cur_++ = ':';  // string() leaves room for it
          if (!value(m->value)) return false;
        }
        return literal("}", 1);
      }
      case rapidjson::kArrayType: {
        literal("[", 1);
        bool first = true;
        for (const auto& item : v.GetArray()) {
          if (!first) literal(",", 1);
          first = false;
          if (!value(item)) return false;
        }
        return literal("]", 1);
      }
      case rapidjson::kNumberType: return number(v);
    }
    return false;
  }

 private:
  // Room for `n` more bytes at cur_.
  char* room(std::size_t n) {
    if (static_cast<std::size_t>(end_ - cur_) < n) grow(n);
    return cur_;
  }
  [[gnu::noinline]] void grow(std::size_t n) {
    const std::size_t used = size();
    buffer_.resize(std::max(buffer_.size() * 2, used + n));
    cur_ = buffer_.data() + used;
    end_ = buffer_.data() + buffer_.size();
  }

  bool literal(const char* text, std::size_t n) {
    std::memcpy(room(n), text, n);
    cur_ += n;
    return true;
  }

  // The same choice of writer call as GenericValue::Accept makes.
  bool number(const rapidjson::Value& v) {
    char* out = room(32);  // dtoa writes at most 25 bytes, u64toa 20
    if (v.IsDouble()) {
      const double d = v.GetDouble();
      if (rapidjson::internal::Double(d).IsNanOrInf()) return false;  // Writer's default flags
      out = rapidjson::internal::dtoa(d, out);
    } else if (v.IsInt()) {
      out = rapidjson::internal::i32toa(v.GetInt(), out);
    } else if (v.IsUint()) {
      out = rapidjson::internal::u32toa(v.GetUint(), out);
    } else if (v.IsInt64()) {
      out = rapidjson::internal::i64toa(v.GetInt64(), out);
    } else {
      out = rapidjson::internal::u64toa(v.GetUint64(), out);
    }
    cur_ = out;
    return true;
  }

  // Whether any of the 8 bytes of `x` is a control character, '"' or '\\' (SWAR zero-byte tests).
  static bool needsEscape8(std::uint64_t x) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
    const auto hasZero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    // Bytes below 0x20: clear the high bit first so bytes >= 0x80 (UTF-8) do not count.
    const std::uint64_t low = ((x & ~kHigh) - kOnes * 0x20) & ~x & kHigh;
    return (low | hasZero(x ^ (kOnes * '"')) | hasZero(x ^ (kOnes * '\\'))) != 0;
  }

  // One byte as Writer writes it. Writer's table: control characters, '"' and '\\'; 'u' means \u00XX.
  static char* put(char* out, char ch) {
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
    const auto c = static_cast<unsigned char>(ch);
    const char e = kEscape[c];
    if (e == 0) {
      *out = ch;
      return out + 1;
    }
    out[0] = '\\';
    if (e != 'u') {
      out[1] = e;
      return out + 2;
    }
    out[1] = 'u';
    out[2] = '0';
    out[3] = '0';
    out[4] = kHexDigits[c >> 4];
    out[5] = kHexDigits[c & 0xF];
    return out + 6;
  }

  // The 1 to 7 bytes at `p` in the low bytes of a number (little-endian memory order), the rest
  // zero: two overlapping loads, since the same byte lands on the same place from either.
  static std::uint64_t shortString(const char* p, std::size_t n) {
    if (n >= 4) {
      std::uint32_t lo = 0;
      std::uint32_t hi = 0;
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + n - 4, 4);
      return std::uint64_t{lo} | (std::uint64_t{hi} << (8 * (n - 4)));
    }
    if (n >= 2) {
      std::uint16_t lo = 0;
      std::uint16_t hi = 0;
      std::memcpy(&lo, p, 2);
      std::memcpy(&hi, p + n - 2, 2);
      return std::uint64_t{lo} | (std::uint64_t{hi} << (8 * (n - 2)));
    }
    return static_cast<unsigned char>(p[0]);
  }

  // A quoted string, preceded by `separator` unless it is 0. Leaves one spare byte (for a key's ':').
  [[gnu::always_inline]] bool string(const char* str, std::size_t length, char separator) {
    char* out = room(4 + 6 * length);  // every byte escaped as \u00XX at worst
    if (separator != 0) *out++ = separator;
    *out++ = '"';
    const char* p = str;
    const char* const end = str + length;
#if defined(__SSE2__)
    // Sixteen bytes at a time (SSE2 is part of x86-64): stored whole before looking, then, if
    // one needs escaping, redone from the first such byte. Output room is reserved for the worst
    // case, so 16-byte stores are safe.
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control_max = _mm_set1_epi8(0x1F);
    for (; end - p >= 16; p += 16) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(x, control_max), control_max);  // x <= 0x1F
      const __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)), control);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), x);
      const int mask = _mm_movemask_epi8(special);
      if (mask == 0) {
        out += 16;
        continue;
      }
      const int first = __builtin_ctz(static_cast<unsigned>(mask));
      out += first;
      for (int k = first; k < 16; ++k) out = put(out, p[k]);
    }
#endif
    // Eight bytes at a time: copied whole when none needs escaping (the common case), else
    // byte by byte. Output room is reserved for the worst case, so 8-byte stores are safe.
    for (; end - p >= 8; p += 8) {
      std::uint64_t x = 0;
      std::memcpy(&x, p, 8);
      if (!needsEscape8(x)) {
        std::memcpy(out, &x, 8);
        out += 8;
      } else {
        for (int k = 0; k < 8; ++k) out = put(out, p[k]);
      }
    }
    // The last 1 to 7 bytes, without a variable-length copy: a library call per string (most keys
    // are shorter than 8 bytes) would cost more than the scan. The spare room takes an 8-byte store.
    if (const auto rest = static_cast<std::size_t>(end - p); rest > 0) {
      std::uint64_t tail = 0;  // the rest in its low bytes (memory order on little-endian)
      bool plain = false;
      if constexpr (std::endian::native == std::endian::little) {
        if (length >= 8) {
          std::uint64_t last = 0;
          std::memcpy(&last, end - 8, 8);
          plain = !needsEscape8(last);  // also sees bytes done already: at worst the slow path
          tail = last >> (8 * (8 - rest));
        } else {
          tail = shortString(p, rest);
          // Padded with 'a' (which needs no escape) for the test.
          plain = !needsEscape8(tail | (0x6161616161616161ULL << (8 * rest)));
        }
      }
      if (plain) {
        std::memcpy(out, &tail, 8);
        out += rest;
      } else {
        for (; p != end; ++p) out = put(out, *p);
      }
    }
    *out++ = '"';
    cur_ = out;
    return true;
  }

  std::string& buffer_;  // its size is the capacity in use
  char* cur_;
  char* end_;
};

// The scratch buffer is kept per thread (resources are serialized one after another), but not
// when an unusually large value made it big.
constexpr std::size_t kScratchBytes = 16 * 1024;
constexpr std::size_t kScratchKeepBytes = 256 * 1024;

}  // namespace

std::string toString(const rapidjson::Value& value) {
  thread_local std::string scratch;
  if (scratch.size() < kScratchBytes) scratch.resize(kScratchBytes);
  CompactWriter writer(scratch);
  writer.value(value);
  std::string out(scratch.data(), writer.size());
  if (scratch.size() > kScratchKeepBytes) std::string().swap(scratch);
  return out;
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
    return makeError(ErrorCode::MalformedJson, "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels",
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

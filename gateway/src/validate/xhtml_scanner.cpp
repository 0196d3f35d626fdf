#include "validate/xhtml_scanner.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace gw::validate {
namespace {

// The elements and attributes FHIR R4 allows in a narrative (basic HTML 4 formatting, tables,
// lists, links, images; no scripts, forms, frames, objects, head/body or event attributes).
constexpr std::array<std::string_view, 53> kXhtmlElements{
    "a",     "abbr", "acronym", "address",  "area",  "b",     "bdo",  "big",    "blockquote", "br",  "caption",
    "cite",  "code", "col",     "colgroup", "dd",    "dfn",   "div",  "dl",     "dt",         "em",  "h1",
    "h2",    "h3",   "h4",      "h5",       "h6",    "hr",    "i",    "img",    "kbd",        "li",  "map",
    "ol",    "p",    "pre",     "q",        "samp",  "small", "span", "strong", "sub",        "sup", "table",
    "tbody", "td",   "tfoot",   "th",       "thead", "tr",    "tt",   "ul",     "var"};
constexpr std::array<std::string_view, 47> kXhtmlAttributes{
    "abbr",   "accesskey", "align",   "alt",    "axis",     "border",    "cellpadding", "cellspacing",
    "char",   "charoff",   "cite",    "class",  "colspan",  "compact",   "coords",      "datetime",
    "dir",    "frame",     "headers", "height", "href",     "id",        "lang",        "longdesc",
    "name",   "nohref",    "noshade", "nowrap", "rowspan",  "rules",     "scope",       "shape",
    "span",   "src",       "start",   "style",  "summary",  "tabindex",  "title",       "type",
    "usemap", "valign",    "value",   "width",  "xml:lang", "xml:space", "xmlns"};
static_assert(std::is_sorted(kXhtmlElements.begin(), kXhtmlElements.end()));  // kept sorted for review
static_assert(std::is_sorted(kXhtmlAttributes.begin(), kXhtmlAttributes.end()));

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Equality of short names, inline (string_view == calls memcmp, which dominates on 1-4 bytes).
bool sameName(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// A name packed into an integer (its length and first 7 bytes) for NameSet; a hit on a longer
// name is confirmed in full.
constexpr std::uint64_t nameKey(std::string_view name) {
  std::uint64_t key = static_cast<std::uint64_t>(name.size() & 0xFF) << 56;
  for (std::size_t i = 0; i < name.size() && i < 7; ++i) {
    key |= static_cast<std::uint64_t>(static_cast<unsigned char>(name[i])) << (48 - 8 * i);
  }
  return key;
}

// A fixed set of names with a collision-free multiplicative hash found at start-up: a lookup is
// one multiply, one load and one compare (a narrative has a tag every few bytes).
class NameSet {
 public:
  template <std::size_t N>
  explicit NameSet(const std::array<std::string_view, N>& names) {
    static_assert(N < kSlots / 4, "keep the table sparse so a multiplier is found quickly");
    std::uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (;;) {
      state += 0x9E3779B97F4A7C15ULL;  // splitmix64 candidates
      std::uint64_t z = state;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      multiplier_ = (z ^ (z >> 31)) | 1U;
      slots_.fill(Slot{});
      bool collision = false;
      for (const std::string_view name : names) {
        Slot& slot = slots_[slotOf(nameKey(name))];
        if (slot.key != 0) {
          collision = true;
          break;
        }
        slot = Slot{nameKey(name), name};
      }
      if (!collision) return;
    }
  }
  bool contains(std::string_view name) const {
    if (name.empty() || name.size() > 255) return false;
    const std::uint64_t key = nameKey(name);
    const Slot& slot = slots_[slotOf(key)];
    return slot.key == key && (name.size() <= 7 || sameName(slot.name, name));
  }

 private:
  static constexpr std::size_t kSlots = 512;
  struct Slot {
    std::uint64_t key = 0;  // 0: empty (a real key has its length in the top byte)
    std::string_view name;
  };
  std::size_t slotOf(std::uint64_t key) const { return static_cast<std::size_t>((key * multiplier_) >> 55); }
  std::uint64_t multiplier_ = 1;
  std::array<Slot, kSlots> slots_{};
};
static_assert(std::size_t{1} << (64 - 55) == 512, "slotOf's shift matches kSlots");

const NameSet& elementNames() {
  static const NameSet set(kXhtmlElements);
  return set;
}
const NameSet& attributeNames() {
  static const NameSet set(kXhtmlAttributes);
  return set;
}

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ':' ||
         c == '.';
}

// First position at or after `from` holding `a` or `b` (s.size() if none). Eight bytes at a time
// and inline: narrative text runs are short, where a memchr call per run costs more than the scan.
constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
std::size_t findEither(std::string_view s, std::size_t from, char a, char b) {
  const std::uint64_t pa = kOnes * static_cast<unsigned char>(a);
  const std::uint64_t pb = kOnes * static_cast<unsigned char>(b);
  std::size_t i = from;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    const std::uint64_t xa = w ^ pa, xb = w ^ pb;
    const std::uint64_t hit = ((xa - kOnes) & ~xa & kHighs) | ((xb - kOnes) & ~xb & kHighs);
    if (hit != 0) {
      // The lowest flagged byte is always a real match (a borrow only runs upward); little-endian.
      for (std::size_t k = i;; ++k) {
        if (s[k] == a || s[k] == b) return k;
      }
    }
  }
  for (; i < s.size(); ++i) {
    if (s[i] == a || s[i] == b) return i;
  }
  return s.size();
}

// XML entity at s[i] == '&': the five predefined ones or a character reference. Sets `length`
// and whether it stands for whitespace.
bool readEntity(std::string_view s, std::size_t i, std::size_t& length, bool& whitespace) {
  const std::size_t end = s.find(';', i + 1);
  if (end == std::string_view::npos || end - i > 12) return false;
  const std::string_view name(s.data() + i + 1, end - i - 1);
  length = end - i + 1;
  whitespace = false;
  if (sameName(name, "amp") || sameName(name, "lt") || sameName(name, "gt") || sameName(name, "quot") ||
      sameName(name, "apos")) {
    return true;
  }
  if (name.size() < 2 || name[0] != '#') return false;
  const bool hex = name[1] == 'x';
  std::uint32_t cp = 0;
  const std::string_view digits = name.substr(hex ? 2 : 1);
  if (digits.empty()) return false;
  for (char c : digits) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0) return false;
    cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
    if (cp > 0x10FFFF) return false;
  }
  if (cp == 0) return false;
  whitespace = cp == 0x20 || cp == 0x9 || cp == 0xA || cp == 0xD;
  return true;
}

bool entitiesValid(std::string_view text) {
  for (std::size_t i = findEither(text, 0, '&', '&'); i < text.size(); i = findEither(text, i + 1, '&', '&')) {
    std::size_t length = 0;
    bool whitespace = false;
    if (!readEntity(text, i, length, whitespace)) return false;
  }
  return true;
}

bool isScriptUrl(std::string_view value) {
  while (!value.empty() && isSpace(value.front())) value.remove_prefix(1);
  for (std::string_view scheme : {std::string_view("javascript:"), std::string_view("vbscript:")}) {
    if (value.size() < scheme.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < scheme.size() && same; ++i) {
      const char c = value[i];
      same = (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) == scheme[i];
    }
    if (same) return true;
  }
  return false;
}

}  // namespace

XhtmlVerdict scanNarrative(std::string_view s) {
  XhtmlVerdict verdict;
  const NameSet& elements = elementNames();
  const NameSet& attributes = attributeNames();
  struct Open {  // trivially constructible: the stack is not zeroed on every scan
    const char* name;
    std::size_t size;
  };
  std::array<Open, 48> stack;  // only read below depth
  std::size_t depth = 0;
  bool root_closed = false;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '<') {
      // A text run up to the next tag, its entities validated on the way.
      std::size_t end = i;
      for (;;) {
        end = findEither(s, end, '<', '&');
        if (end == s.size() || s[end] == '<') break;
        std::size_t length = 0;
        bool whitespace = false;
        if (depth == 0 || !readEntity(s, end, length, whitespace)) return verdict;
        verdict.content = verdict.content || !whitespace;
        end += length;
      }
      const std::string_view text(s.data() + i, end - i);
      if (depth == 0) {
        for (char c : text) {
          if (!isSpace(c)) return verdict;  // text outside the root div
        }
      } else {
        for (std::size_t k = 0; k < text.size() && !verdict.content;) {
          if (text[k] == '&') {  // entities were counted above
            const std::size_t semicolon = text.find(';', k);
            if (semicolon == std::string_view::npos) break;
            k = semicolon + 1;
            continue;
          }
          verdict.content = !isSpace(text[k]);
          ++k;
        }
      }
      i = end;
      continue;
    }
    if (root_closed) return verdict;  // a second top-level element
    if (i + 3 < s.size() && s[i + 1] == '!' && s[i + 2] == '-' && s[i + 3] == '-') {
      const std::size_t end = s.find("-->", i + 4);
      if (end == std::string_view::npos) return verdict;
      i = end + 3;
      continue;
    }
    const bool closing = i + 1 < s.size() && s[i + 1] == '/';
    std::size_t p = i + (closing ? 2 : 1);
    const std::size_t name_start = p;
    while (p < s.size() && isNameChar(s[p])) ++p;
    const std::string_view name(s.data() + name_start, p - name_start);  // in range: p <= size
    if (name.empty()) return verdict;                                    // <!DOCTYPE, <![CDATA[, <?pi, stray '<'
    if (closing) {
      while (p < s.size() && isSpace(s[p])) ++p;
      if (p >= s.size() || s[p] != '>' || depth == 0 ||
          !sameName(std::string_view(stack[depth - 1].name, stack[depth - 1].size), name)) {
        return verdict;
      }
      if (--depth == 0) root_closed = true;
      i = p + 1;
      continue;
    }
    if (depth == 0 && (i != 0 || !sameName(name, "div"))) return verdict;
    if (!elements.contains(name)) return verdict;
    if (sameName(name, "img")) verdict.content = true;
    bool self_closing = false;
    for (;;) {
      const std::size_t before_space = p;
      while (p < s.size() && isSpace(s[p])) ++p;
      if (p >= s.size()) return verdict;
      if (s[p] == '>') {
        ++p;
        break;
      }
      if (s[p] == '/') {
        if (p + 1 >= s.size() || s[p + 1] != '>') return verdict;
        self_closing = true;
        p += 2;
        break;
      }
      if (p == before_space) return verdict;  // attributes are separated by whitespace
      const std::size_t attr_start = p;
      while (p < s.size() && isNameChar(s[p])) ++p;
      const std::string_view attr(s.data() + attr_start, p - attr_start);
      if (!attributes.contains(attr)) return verdict;
      while (p < s.size() && isSpace(s[p])) ++p;
      if (p >= s.size() || s[p] != '=') return verdict;
      ++p;
      while (p < s.size() && isSpace(s[p])) ++p;
      if (p >= s.size() || (s[p] != '"' && s[p] != '\'')) return verdict;
      const char quote = s[p++];
      const std::size_t end = findEither(s, p, quote, '<');
      if (end == s.size() || s[end] == '<') return verdict;
      const std::string_view value(s.data() + p, end - p);
      if (!entitiesValid(value)) return verdict;
      if ((sameName(attr, "href") || sameName(attr, "src")) && isScriptUrl(value)) return verdict;
      p = end + 1;
    }
    if (self_closing) {
      if (depth == 0) root_closed = true;
    } else {
      if (depth == stack.size()) return verdict;  // deeper than any narrative needs
      stack[depth++] = Open{name.data(), name.size()};
    }
    i = p;
  }
  verdict.allowed = root_closed && depth == 0;
  return verdict;
}

}  // namespace gw::validate

#include "common/xhtml.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace gw::xhtml {

// Copies runs of plain text whole: narratives are built from many short parts, one append each;
// eight bytes at a time are checked for the five characters that need an entity.
void appendEscaped(std::string& out, std::string_view text) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  const auto hasByte = [](std::uint64_t x, char c) {
    const std::uint64_t v = x ^ (kOnes * static_cast<unsigned char>(c));
    return (v - kOnes) & ~v & kHigh;
  };
  std::size_t run = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (i + 8 <= text.size()) {
      std::uint64_t x = 0;
      std::memcpy(&x, text.data() + i, 8);
      if ((hasByte(x, '&') | hasByte(x, '<') | hasByte(x, '>') | hasByte(x, '"') | hasByte(x, '\'')) == 0) {
        i += 8;
        continue;
      }
    }
    // A byte at a time through this block (or the last few bytes).
    const std::size_t stop = std::min(text.size(), i + 8);
    for (; i < stop; ++i) {
      std::string_view entity;
      switch (text[i]) {
        case '&': entity = "&amp;"; break;
        case '<': entity = "&lt;"; break;
        case '>': entity = "&gt;"; break;
        case '"': entity = "&quot;"; break;
        case '\'': entity = "&#39;"; break;
        default: continue;
      }
      out.append(text.substr(run, i - run)).append(entity);
      run = i + 1;
    }
  }
  out.append(text.substr(run));
}

std::string listNarrative(std::string_view title, std::span<const NarrativeSection> sections) {
  std::string div = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p><b>";
  appendEscaped(div, title);
  div += "</b></p>";
  for (const auto& section : sections) {
    div += "<p>";
    appendEscaped(div, section.heading);
    if (section.items.empty()) {
      div += ": ";
      appendEscaped(div, section.when_empty);
      div += "</p>";
      continue;
    }
    div += ":</p><ul>";
    for (const auto& item : section.items) {
      div += "<li>";
      appendEscaped(div, item.label);
      if (!item.qualifier.empty()) {
        div += " (";
        appendEscaped(div, item.qualifier);
        div += ')';
      }
      if (!item.detail.empty()) {
        div += ": ";
        appendEscaped(div, item.detail);
      }
      div += "</li>";
    }
    div += "</ul>";
  }
  div += "</div>";
  return div;
}

}  // namespace gw::xhtml

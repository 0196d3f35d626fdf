#pragma once
// XHTML for FHIR narratives (Resource.text.div): escaping text, and the one list-narrative format
// the gateway writes, a bold title and then sections, each a heading with its items or, when it
// has none, a short sentence. Mappers write narratives in it with $narrative (the treatment_plan
// mapper's CarePlan), and privacy/redaction.cpp rewrites a redacted CarePlan's narrative with
// it, so the narrative a partner receives after redaction has the form the mapper gave it.
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gw::xhtml {

/// Appends `text` with & < > " ' written as entities.
void appendEscaped(std::string& out, std::string_view text);

/// "label (qualifier): detail"; the qualifier and the detail are left out, with their
/// punctuation, when empty.
struct NarrativeItem {
  std::string_view label;
  std::string_view qualifier;
  std::string_view detail;
};

struct NarrativeSection {
  std::string_view heading;          // "Activities"
  std::vector<NarrativeItem> items;  // in order
  std::string_view when_empty;       // "none recorded.": written after "Activities: " when there are no items
};

/// <div xmlns="http://www.w3.org/1999/xhtml"><p><b>title</b></p>, then per section
/// <p>heading:</p><ul><li>item</li>...</ul> or <p>heading: when_empty</p>, then </div>.
/// Every text is escaped.
std::string listNarrative(std::string_view title, std::span<const NarrativeSection> sections);

}  // namespace gw::xhtml

#pragma once
// The narrative check behind txt-1 and txt-2: one pass over a Narrative.div, without
// allocation, that accepts only the XHTML FHIR R4 allows in a narrative (the basic HTML 4
// formatting elements and attributes, no scripts, event attributes or javascript: links).
#include <string_view>

namespace gw::validate {

struct XhtmlVerdict {
  bool allowed = false;  // well-formed, one root div, only allowed elements/attributes (txt-1)
  bool content = false;  // some non-whitespace text or an image (txt-2)
};

XhtmlVerdict scanNarrative(std::string_view div);

}  // namespace gw::validate

// The narrative XHTML the mappers ($narrative, $escapeXhtml) and the CarePlan redaction share.
#include "common/xhtml.hpp"

#include <gtest/gtest.h>

namespace gw::xhtml {
namespace {

TEST(XhtmlEscape, TheFiveSpecialCharactersBecomeEntitiesAtAnyPosition) {
  std::string out = "x";
  appendEscaped(out, "a&b<c>d\"e'f");
  EXPECT_EQ(out, "xa&amp;b&lt;c&gt;d&quot;e&#39;f");
  // Past the eight-byte blocks, and a block with nothing to escape followed by one that has.
  out.clear();
  appendEscaped(out, "plain text, no specials <");
  EXPECT_EQ(out, "plain text, no specials &lt;");
  out.clear();
  appendEscaped(out, "José — “sin fentanilo”");  // UTF-8 passes through
  EXPECT_EQ(out, "José — “sin fentanilo”");
}

TEST(ListNarrative, TitleSectionsItemsAndEmptySections) {
  const std::vector<NarrativeSection> sections{
      {"Goals", {}, "not included."},
      {"Activities",
       {{"Counseling", "scheduled", "CBT & more"}, {"Peer <support>", "", ""}, {"Housing", "", "soon"}},
       "none."}};
  EXPECT_EQ(listNarrative("Treatment plan", sections),
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p><b>Treatment plan</b></p><p>Goals: not included.</p>"
            "<p>Activities:</p><ul><li>Counseling (scheduled): CBT &amp; more</li><li>Peer &lt;support&gt;</li>"
            "<li>Housing: soon</li></ul></div>");
}

}  // namespace
}  // namespace gw::xhtml

#include "common/json_locations.hpp"

#include <gtest/gtest.h>

namespace gw::json {
namespace {

std::string at(std::string_view text, std::size_t offset) { return JsonLocations::position("f.json", text, offset); }

TEST(JsonLocations, FindsKeysValuesAndArrayElements) {
  const std::string text = "{\n  \"a\": {\n    \"b\": 1\n  },\n  \"list\": [\n    10,\n    {\"c\": true}\n  ]\n}";
  const auto locations = JsonLocations::build(text, false);
  EXPECT_EQ(at(text, locations.keyOffset("/a/b")), "f.json:3:5");     // the opening quote of "b"
  EXPECT_EQ(at(text, locations.valueOffset("/a/b")), "f.json:3:10");  // the 1
  EXPECT_EQ(at(text, locations.valueOffset("/a")), "f.json:2:8");
  EXPECT_EQ(at(text, locations.valueOffset("/list/0")), "f.json:6:5");
  EXPECT_EQ(at(text, locations.keyOffset("/list/1/c")), "f.json:7:6");
  EXPECT_EQ(at(text, locations.valueOffset("/list/1/c")), "f.json:7:11");
  // Unknown pointers fall back to the nearest known ancestor.
  EXPECT_EQ(at(text, locations.valueOffset("/a/zzz")), "f.json:2:8");
  EXPECT_EQ(at(text, locations.valueOffset("/nothing")), "f.json:1:1");
}

TEST(JsonLocations, SkipsCommentsAndEscapesPointerTokens) {
  const std::string text = "// header\n{\"x/y\": /* c */ \"v\", \"t~\": [1, // one\n 2]}";
  const auto locations = JsonLocations::build(text, true);
  EXPECT_EQ(at(text, locations.keyOffset("/x~1y")), "f.json:2:2");
  EXPECT_EQ(at(text, locations.valueOffset("/x~1y")), "f.json:2:17");
  EXPECT_EQ(at(text, locations.valueOffset("/t~0/1")), "f.json:3:2");
}

TEST(JsonLocations, SyntaxErrorGivesEmptyLocations) {
  const auto locations = JsonLocations::build("{\"a\": }", false);
  EXPECT_EQ(locations.valueOffset("/a"), 0u);
}

}  // namespace
}  // namespace gw::json

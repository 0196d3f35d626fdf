#include "common/json.hpp"

#include <gtest/gtest.h>

namespace gw::json {
namespace {

TEST(JsonParse, ReportsByteOffsetOfSyntaxError) {
  rapidjson::Document doc;
  auto status = parse(R"({"a": 1,})", doc, 100);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().code, ErrorCode::MalformedJson);
  EXPECT_EQ(status.error().where, "byte 108");
}

TEST(JsonParse, CommentsOnlyWhenAllowed) {
  rapidjson::Document doc;
  EXPECT_FALSE(parse("// c\n{\"a\":1}", doc));
  EXPECT_TRUE(parse("// c\n{\"a\":1}", doc, 0, true));
}

TEST(PointerToPath, ReadsLikeAFieldPath) {
  EXPECT_EQ(pointerToPath("/prescription/dose/value"), "prescription.dose.value");
  EXPECT_EQ(pointerToPath("/patient/given_names/1"), "patient.given_names[1]");
  EXPECT_EQ(pointerToPath("/a~1b"), "a/b");
  EXPECT_EQ(pointerToPath(""), "");
}

TEST(LineColumn, CountsFromOne) {
  EXPECT_EQ(lineColumn("ab\ncd", 4), std::make_pair(std::size_t{2}, std::size_t{2}));
}

}  // namespace
}  // namespace gw::json


namespace gw::json {
namespace {

TEST(JsonParse, RejectsExcessiveNestingBeforeRecursing) {
  rapidjson::Document doc;
  const std::string deep(100000, '[');
  auto status = parse(deep, doc);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().where, "byte " + std::to_string(kMaxDepth));
  // Brackets inside strings do not count.
  EXPECT_FALSE(findExcessiveNesting("[\"" + std::string(1000, '[') + "\"]"));
  EXPECT_TRUE(parse("[\"[[[\\\"[[\"]", doc));
}

}  // namespace
}  // namespace gw::json

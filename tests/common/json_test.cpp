#include "common/json.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <string>

#include "support/test_files.hpp"

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

TEST(PointerToPath, UndoesEscapesOnceEach) {
  EXPECT_EQ(pointerToPath("/a~0b"), "a~b");
  EXPECT_EQ(pointerToPath("/a~01"), "a~1") << "RFC 6901: ~01 is the text ~1, not a slash";
  EXPECT_EQ(pointerToPath("/a~00/~1~1"), "a~0.//");
  EXPECT_EQ(pointerToPath("/a~"), "a~");
}

// toString must write the bytes RapidJSON's Writer writes: stored resources, content hashes and
// golden files depend on them.
std::string writerBytes(const rapidjson::Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

TEST(ToString, WritesWhatRapidJsonWriterWritesForEveryByteAndLength) {
  rapidjson::Document doc(rapidjson::kArrayType);
  auto& a = doc.GetAllocator();
  const unsigned char special[] = {0x00, 0x01, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1F,
                                   0x20, '"',  '\\', '/',  'a',  0x7F, 0x80, 0xC3, 0xFF};
  for (std::size_t length = 0; length <= 40; ++length) {
    doc.PushBack(str(std::string(length, 'x'), a), a);
    for (std::size_t pos = 0; pos < length; ++pos) {
      for (const unsigned char c : special) {
        std::string text(length, 'y');
        text[pos] = static_cast<char>(c);
        if (pos + 9 < length) text[pos + 9] = '"';  // a second escape, a block further on
        doc.PushBack(str(text, a), a);
      }
    }
  }
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  doc.PushBack(str(all, a), a);
  for (const auto& item : doc.GetArray()) ASSERT_EQ(toString(item), writerBytes(item)) << writerBytes(item);
  rapidjson::Value keyed(rapidjson::kObjectType);
  for (const auto& item : doc.GetArray()) keyed.AddMember(rapidjson::Value(item, a), rapidjson::Value(item, a), a);
  EXPECT_EQ(toString(keyed), writerBytes(keyed));
  EXPECT_EQ(toString(doc), writerBytes(doc));
}

TEST(ToString, WritesNumbersAndLiteralsAsRapidJsonWriterDoes) {
  rapidjson::Document doc;
  doc.Parse(R"({"a":[0,-1,2147483647,-2147483648,4294967295,4294967296,-2147483649,9223372036854775807,
      -9223372036854775808,18446744073709551615,0.1,-0.0,1e300,5e-324,1.0,123456.789,1e21,-3.25e-7],
      "b":{},"c":[],"d":null,"e":true,"f":false,"g":{"h":[{"i":""}]},"":"empty key"})");
  ASSERT_FALSE(doc.HasParseError());
  EXPECT_EQ(toString(doc), writerBytes(doc));
  rapidjson::Value big(rapidjson::kArrayType);
  big.PushBack(rapidjson::Value(1e-7), doc.GetAllocator());
  big.PushBack(rapidjson::Value(static_cast<std::uint64_t>(1) << 63), doc.GetAllocator());
  big.PushBack(rapidjson::Value(std::int64_t{-5}), doc.GetAllocator());
  EXPECT_EQ(toString(big), writerBytes(big));
}

TEST(ToString, StopsWhereRapidJsonWriterStopsOnANonFiniteNumber) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("a", 1, a);
  rapidjson::Value items(rapidjson::kArrayType);
  items.PushBack(2, a);
  items.PushBack(std::numeric_limits<double>::quiet_NaN(), a);
  items.PushBack(3, a);
  doc.AddMember("b", items, a);
  EXPECT_EQ(writerBytes(doc), R"({"a":1,"b":[2,)");
  EXPECT_EQ(toString(doc), writerBytes(doc));
}

TEST(ToString, WritesEveryGoldenResourceAsRapidJsonWriterDoes) {
  const auto dir = std::filesystem::path(GW_REPO_DIR) / "mappers" / "clinic-v1" / "golden";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string text = gw::test::readFile(entry.path());
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    ASSERT_FALSE(doc.HasParseError()) << entry.path();
    EXPECT_EQ(toString(doc), writerBytes(doc)) << entry.path();
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

TEST(LineColumn, CountsFromOne) { EXPECT_EQ(lineColumn("ab\ncd", 4), std::make_pair(std::size_t{2}, std::size_t{2})); }

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

// Strict parsing of outside input (issue 9, defect 6): RapidJSON alone accepts invalid UTF-8 in
// strings, ignores whatever follows a NUL byte, and keeps the first of two members with one key.
namespace gw::json {
namespace {

Error strictError(std::string_view text, std::size_t base_offset = 0, bool allow_comments = false) {
  rapidjson::Document doc;
  auto status = parseStrict(text, doc, base_offset, allow_comments);
  if (status) return makeError(ErrorCode::Internal, "accepted", "nowhere");
  EXPECT_TRUE(doc.IsNull()) << "a refused document keeps nothing of the input";
  return status.error();
}

bool strictAccepts(std::string_view text, bool allow_comments = false) {
  rapidjson::Document doc;
  auto status = parseStrict(text, doc, 0, allow_comments);
  EXPECT_TRUE(status) << status.error().describe();
  return static_cast<bool>(status);
}

TEST(JsonParseStrict, RefusesInvalidUtf8InAStringWithItsByteOffset) {
  // {"a":" is 6 bytes: the bad sequence starts at byte 6 of the text.
  for (const std::string bad : {"\xff\xfe", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80",
                                "\xf5\x80\x80\x80", "\x80", "\xe2\x82", "\xf0\x9f\x98"}) {
    const Error e = strictError("{\"a\":\"" + bad + "\"}", 100);
    EXPECT_EQ(e.code, ErrorCode::MalformedJson);
    EXPECT_EQ(e.where, "byte 106");
    EXPECT_THAT(e.message, ::testing::HasSubstr("UTF-8"));
    EXPECT_EQ(e.message.find(bad), std::string::npos) << "the bad bytes are not echoed";
  }
  const Error in_key = strictError("{\"ok\":1,\"\xc0\xaf\":2}");
  EXPECT_EQ(in_key.where, "byte 9");
  const Error later = strictError("{\"a\":\"caf\xc3\xa9 \xff\"}");
  EXPECT_EQ(later.where, "byte 12") << "the offset of the bad byte, not of the string";
}

TEST(JsonParseStrict, RefusesAnEscapedSurrogateThatIsNotAPair) {
  EXPECT_EQ(strictError(R"({"a":"\udc00"})").where, "byte 6");
  EXPECT_EQ(strictError(R"({"a":"x\ud800"})").where, "byte 7");
  EXPECT_EQ(strictError(R"({"a":"\ud800\u0041"})").code, ErrorCode::MalformedJson);
  EXPECT_EQ(strictError(R"({"a":["ok","\\","\uDFFF"]})").code, ErrorCode::MalformedJson);
  EXPECT_EQ(strictError(R"({"\udc00":1})").code, ErrorCode::MalformedJson);
}

TEST(JsonParseStrict, AcceptsWellFormedUtf8AndEscapes) {
  EXPECT_TRUE(
      strictAccepts("{\"a\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80\"}"));
  EXPECT_TRUE(strictAccepts(R"({"a":"\ud83d\ude00 \u00e9 \\udc00 \u0000"})"));
  EXPECT_TRUE(strictAccepts("\xef\xbb\xbf{\"bom\":true}"));  // as RapidJSON always did
  EXPECT_TRUE(strictAccepts(" [1, 2.5, true, null, \"x\", {}] \r\n\t "));
}

TEST(JsonParseStrict, RefusesAnyByteAfterTheValueButWhitespace) {
  const std::string nul_then_garbage = std::string("{\"a\":1}") + '\0' + "{garbage";
  const Error e = strictError(nul_then_garbage, 10);
  EXPECT_EQ(e.code, ErrorCode::MalformedJson);
  EXPECT_EQ(e.where, "byte 17");
  EXPECT_EQ(strictError(std::string("{\"a\":1}  \n") + '\0').where, "byte 10");
  EXPECT_EQ(strictError(std::string("[1]") + '\0' + ' ').where, "byte 3");
  EXPECT_EQ(strictError("{\"a\":1} x").where, "byte 8");
  EXPECT_EQ(strictError(std::string("// c\n{\"a\":1} /* d */") + '\0', 0, true).where, "byte 20");
}

TEST(JsonParseStrict, RefusesARepeatedKeyNamingItsPath) {
  const Error e = strictError(R"({"clinic":"c1","record_id":"r","clinic":"c2"})", 5);
  EXPECT_EQ(e.code, ErrorCode::MalformedJson);
  EXPECT_EQ(e.where, "$.clinic");
  EXPECT_THAT(e.message, ::testing::HasSubstr("byte 36")) << e.message;
  EXPECT_THAT(e.message, ::testing::Not(::testing::HasSubstr("c2"))) << "values are never echoed";
  EXPECT_EQ(strictError(R"([{"b":1},{"a":{"b":1,"c":[{"d":1,"d":1}]}}])").where, "$[1].a.c[0].d");
  EXPECT_EQ(strictError(R"({"a":1,"\u0061":2})").where, "$.a") << "the same key after unescaping";
  EXPECT_EQ(strictError(R"({"odd key":1,"odd key":2})").where, R"($["odd key"])");
  EXPECT_EQ(strictError(R"({"a\"b":1,"a\"b":2})").where, R"($["a\"b"])");
  EXPECT_EQ(strictError("// c\n{\"a\":1,\n\"a\":2,}", 0, true).where, "$.a");
  // Keys that only look alike are distinct.
  EXPECT_TRUE(strictAccepts(R"({"a":1,"A":2,"a ":3,"a\u0000":4,"":5,"b":{"a":6},"c":[{"a":7},{"a":8}]})"));
}

TEST(JsonParseStrict, FindsARepeatedKeyInALargeObjectWithoutComparingEveryPair) {
  constexpr int kMembers = 100000;
  std::string text = "{";
  for (int i = 0; i < kMembers; ++i) text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  const std::string unique = text.substr(0, text.size() - 1) + "}";
  const std::string repeated = text + "\"k77777\":0}";
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(strictAccepts(unique));
  EXPECT_EQ(strictError(repeated).where, "$.k77777");
  const auto elapsed = std::chrono::steady_clock::now() - started;
  // Comparing every pair would be 5e9 comparisons (minutes); sorting takes milliseconds.
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(JsonParseStrict, FileErrorsSayFileLineAndColumn) {
  rapidjson::Document doc;
  auto dup = parseStrictFile("gateway.jsonc", "{\n  \"a\": 1,\n  \"a\": 2\n}", doc, true);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().where, "gateway.jsonc:3:3");
  EXPECT_THAT(dup.error().message, ::testing::HasSubstr("$.a"));
  auto bad = parseStrictFile("m.json", "{\n\"a\":\"\xff\"}", doc);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().where, "m.json:2:6");
  auto deep = parseStrictFile("m.json", std::string(100, '['), doc);
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().where, "m.json:1:" + std::to_string(kMaxDepth + 1));
  EXPECT_TRUE(parseStrictFile("m.json", "{\"a\":1}\n", doc));
}

}  // namespace
}  // namespace gw::json

#include "common/json.hpp"

#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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

#include "ingest/payload.hpp"

#include <gtest/gtest.h>

namespace gw::ingest {
namespace {

TEST(Payload, SingleObjectArrayAndNdjson) {
  auto one = parsePayload(R"({"a":1})", PayloadFormat::Auto, 10);
  ASSERT_TRUE(one);
  EXPECT_EQ(one.value()->records.size(), 1u);

  auto array = parsePayload(R"([{"a":1},{"a":2}])", PayloadFormat::Json, 10);
  ASSERT_TRUE(array);
  ASSERT_EQ(array.value()->records.size(), 2u);
  EXPECT_EQ((*array.value()->records[1])["a"].GetInt(), 2);

  auto nd = parsePayload("{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}", PayloadFormat::Ndjson, 10);
  ASSERT_TRUE(nd);
  ASSERT_EQ(nd.value()->records.size(), 3u);
  EXPECT_EQ((*nd.value()->records[2])["a"].GetInt(), 3);
}

TEST(Payload, NdjsonWithoutContentTypeIsDetected) {
  auto nd = parsePayload("{\"a\":1}\n{\"a\":2}\n", PayloadFormat::Auto, 10);
  ASSERT_TRUE(nd);
  EXPECT_EQ(nd.value()->records.size(), 2u);
}

TEST(Payload, MalformedNdjsonLineNamesOffsetInWholeBody) {
  auto nd = parsePayload("{\"a\":1}\n{\"a\":}\n", PayloadFormat::Ndjson, 10);
  ASSERT_FALSE(nd);
  EXPECT_EQ(nd.error().code, ErrorCode::MalformedJson);
  EXPECT_EQ(nd.error().where, "line 2 (byte 13)");
}

TEST(Payload, BodiesAreReadStrictlyAndNdjsonErrorsNameTheLine) {
  EXPECT_EQ(parsePayload("{\"a\":\"\xff\"}", PayloadFormat::Json, 10).error().where, "byte 6");
  EXPECT_EQ(parsePayload(std::string("{\"a\":1}") + '\0' + "{", PayloadFormat::Auto, 10).error().where, "byte 7");
  EXPECT_EQ(parsePayload("[{},{\"a\":1,\"a\":1}]", PayloadFormat::Json, 10).error().where, "$[1].a");
  EXPECT_EQ(parsePayload("{}\n{\"a\":\"\xc0\xaf\"}", PayloadFormat::Ndjson, 10).error().where, "line 2 (byte 9)");
  EXPECT_EQ(parsePayload("{}\n{\"a\":1,\"a\":1}", PayloadFormat::Ndjson, 10).error().where, "line 2, $.a");
  // Without a Content-Type, a sequence of values is NDJSON whichever line is broken.
  EXPECT_EQ(parsePayload("{\"a\":\"\xff\"}\n{}", PayloadFormat::Auto, 10).error().where, "line 1 (byte 6)");
  EXPECT_EQ(parsePayload("{}\n{\"a\":1,\"a\":1}\n", PayloadFormat::Auto, 10).error().where, "line 2, $.a");
  EXPECT_EQ(parsePayload("{}\n" + std::string(100000, '['), PayloadFormat::Auto, 10).error().code, ErrorCode::MalformedJson);
}

TEST(Payload, RejectsNonObjectsEmptyAndTooMany) {
  EXPECT_EQ(parsePayload("[1]", PayloadFormat::Json, 10).error().where, "[0]");
  EXPECT_EQ(parsePayload("  ", PayloadFormat::Auto, 10).error().code, ErrorCode::BadRequest);
  EXPECT_EQ(parsePayload("[]", PayloadFormat::Auto, 10).error().code, ErrorCode::BadRequest);
  EXPECT_EQ(parsePayload("\"x\"", PayloadFormat::Auto, 10).error().code, ErrorCode::BadRequest);
  EXPECT_EQ(parsePayload("[{},{},{}]", PayloadFormat::Json, 2).error().code, ErrorCode::PayloadTooLarge);
  EXPECT_EQ(parsePayload("{}\n{}\n{}", PayloadFormat::Ndjson, 2).error().code, ErrorCode::PayloadTooLarge);
  EXPECT_EQ(parsePayload("{}\n[1]", PayloadFormat::Ndjson, 10).error().code, ErrorCode::BadRequest);
}

TEST(Payload, DeepNestingIsRefusedNotRecursed) {
  auto deep = parsePayload(std::string(1'000'000, '['), PayloadFormat::Auto, 10);
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().code, ErrorCode::MalformedJson);
}

TEST(Payload, ContentTypes) {
  EXPECT_EQ(formatFromContentType("application/x-ndjson").value(), PayloadFormat::Ndjson);
  EXPECT_EQ(formatFromContentType("application/json; charset=utf-8").value(), PayloadFormat::Json);
  EXPECT_EQ(formatFromContentType("").value(), PayloadFormat::Auto);
  EXPECT_FALSE(formatFromContentType("text/csv"));
}

}  // namespace
}  // namespace gw::ingest

namespace gw::ingest {
namespace {

TEST(Payload, MediaTypesAreCaseInsensitive) {
  EXPECT_EQ(mediaType(" Text/CSV ; charset=utf-8"), "text/csv");
  EXPECT_EQ(formatFromContentType("Application/X-NDJSON").value(), PayloadFormat::Ndjson);
}

}  // namespace
}  // namespace gw::ingest

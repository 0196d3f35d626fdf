// The two log formats: today's key=value text and one JSON object per line (logging.format).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <string>

#include "common/log.hpp"
#include "support/log_capture.hpp"

namespace gw::log {
namespace {

class LogFormatTest : public ::testing::Test {
 protected:
  void TearDown() override {
    setFormat(Format::Text);
    setInstanceId("");
  }
};

TEST_F(LogFormatTest, TextFormatKeepsKeyValueLines) {
  test::LogCapture capture;
  GW_LOG(Warn, Delivery, "retry").kv("partner", "p1").kv("attempt", 3).kv("error", "HTTP 503 \"busy\"");
  const auto lines = capture.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" WARN delivery retry partner=p1 attempt=3 error=\"HTTP 503 \\\"busy\\\"\"\n"), std::string::npos)
      << lines[0];
}

TEST_F(LogFormatTest, JsonFormatWritesOneObjectPerLineWithStableFields) {
  setFormat(Format::Json);
  test::LogCapture capture;
  const std::int64_t item = 42;
  GW_LOG(Warn, Delivery, "retry")
      .kv("partner", "p1")
      .kv("item", item)
      .kv("ms", 12.5)
      .kv("proxy", true)
      .kv("error", "line one\nline \"two\"")
      .kv("event", "shadowed");
  const auto lines = capture.lines();
  ASSERT_EQ(lines.size(), 1u);
  const std::string& line = lines[0];
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per event";
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size() - 1);
  ASSERT_FALSE(doc.HasParseError()) << line;
  ASSERT_TRUE(doc.IsObject());
  EXPECT_TRUE(doc["ts"].IsString());
  EXPECT_EQ(std::string(doc["ts"].GetString()).back(), 'Z') << "RFC 3339, UTC";
  EXPECT_STREQ(doc["level"].GetString(), "WARN");
  EXPECT_STREQ(doc["category"].GetString(), "delivery");
  EXPECT_STREQ(doc["event"].GetString(), "retry");
  EXPECT_STREQ(doc["partner"].GetString(), "p1");
  ASSERT_TRUE(doc["item"].IsInt64());
  EXPECT_EQ(doc["item"].GetInt64(), 42);
  ASSERT_TRUE(doc["ms"].IsDouble());
  EXPECT_DOUBLE_EQ(doc["ms"].GetDouble(), 12.5);
  ASSERT_TRUE(doc["proxy"].IsBool());
  EXPECT_TRUE(doc["proxy"].GetBool());
  EXPECT_STREQ(doc["error"].GetString(), "line one\nline \"two\"");
  EXPECT_STREQ(doc["event_"].GetString(), "shadowed") << "a field never overwrites a fixed one";
}

TEST_F(LogFormatTest, JsonFormatWritesNonFiniteNumbersAsStrings) {
  setFormat(Format::Json);
  test::LogCapture capture;
  GW_LOG(Info, Main, "odd").kv("ratio", 1.0 / 0.0);
  const auto lines = capture.lines();
  ASSERT_EQ(lines.size(), 1u);
  rapidjson::Document doc;
  doc.Parse(lines[0].data(), lines[0].size() - 1);
  ASSERT_FALSE(doc.HasParseError()) << lines[0];
  EXPECT_TRUE(doc["ratio"].IsString());
}

TEST_F(LogFormatTest, EveryLineCarriesTheInstanceIdOnceItIsSet) {
  test::LogCapture capture;
  GW_LOG(Info, Main, "before").kv("n", 1);
  setInstanceId("gw-east-1");
  GW_LOG(Info, Delivery, "retry").kv("partner", "p1");
  setFormat(Format::Json);
  GW_LOG(Info, Delivery, "retry").kv("partner", "p1").kv("instance_id", "shadowed");
  const auto lines = capture.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].find("instance_id"), std::string::npos) << "no id set: no field (tools, tests)";
  EXPECT_NE(lines[1].find(" INFO delivery retry partner=p1 instance_id=gw-east-1\n"), std::string::npos) << lines[1];
  rapidjson::Document doc;
  doc.Parse(lines[2].data(), lines[2].size() - 1);
  ASSERT_FALSE(doc.HasParseError()) << lines[2];
  EXPECT_STREQ(doc["instance_id"].GetString(), "gw-east-1");
  EXPECT_STREQ(doc["instance_id_"].GetString(), "shadowed") << "a field never overwrites the instance id";
}

TEST(LogFormatNames, ParseAndName) {
  Format f = Format::Text;
  EXPECT_TRUE(parseFormat("json", f));
  EXPECT_EQ(f, Format::Json);
  EXPECT_EQ(formatName(f), "json");
  EXPECT_TRUE(parseFormat("text", f));
  EXPECT_EQ(f, Format::Text);
  EXPECT_FALSE(parseFormat("xml", f));
}

}  // namespace
}  // namespace gw::log

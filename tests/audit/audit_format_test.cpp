#include "audit/audit_format.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "common/json.hpp"

namespace gw::audit {
namespace {

store::AuditEntry entry(std::int64_t seq) {
  auto e = store::AuditEntryBuilder(store::AuditKind::Decision, store::AuditOutcome::Redact, "gateway", 1'800'000'000'123)
               .clinic("c1")
               .patient("pat-1")
               .partner("p1", "TREAT")
               .resource("Observation", "obs-1", privacy::ClassSet(privacy::DataClass::Sud).add(privacy::DataClass::Mh))
               .labels("R,SUD,MH")
               .consent("consent-9", 3)
               .reason("class-not-covered:mh")
               .policy("2026.1")
               .detail(R"({"removed_activity_kinds":["psychiatric_care"],"outbox_id":7})")
               .build();
  e.seq = seq;
  e.prev_hash = std::string(64, 'a');
  e.hash = std::string(64, 'b');
  return e;
}

// Minimal RFC 4180 reader for checking what a spreadsheet would see.
std::vector<std::vector<std::string>> readCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, in_quotes = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell.push_back('"');
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        cell.push_back(c);
      }
    } else if (c == '"' && cell.empty() && !quoted) {
      in_quotes = quoted = true;
    } else if (c == ',') {
      row.push_back(cell);
      cell.clear();
      quoted = false;
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(cell);
      rows.push_back(row);
      row.clear();
      cell.clear();
      quoted = false;
      ++i;
    } else {
      EXPECT_NE(c, '"') << "bare quote in an unquoted cell at byte " << i;
      EXPECT_NE(c, '\n') << "bare LF at byte " << i;
      cell.push_back(c);
    }
  }
  EXPECT_FALSE(in_quotes) << "unterminated quoted cell";
  EXPECT_TRUE(cell.empty() && row.empty()) << "last line not CRLF-terminated";
  return rows;
}

TEST(CsvCellTest, QuotesOnlyWhatRfc4180Requires) {
  EXPECT_EQ(csvCell("plain"), "plain");
  EXPECT_EQ(csvCell(""), "");
  EXPECT_EQ(csvCell("a,b"), "\"a,b\"");
  EXPECT_EQ(csvCell("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csvCell("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csvCell("two\r\nlines"), "\"two\r\nlines\"");
  EXPECT_EQ(csvCell("it's"), "it's");
}

TEST(CsvCellTest, FormulaLeadersAreNeutralised) {
  EXPECT_EQ(csvCell("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
  EXPECT_EQ(csvCell("+1"), "'+1");
  EXPECT_EQ(csvCell("-2+3"), "'-2+3");
  EXPECT_EQ(csvCell("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(csvCell("\t=1"), "'\t=1");
  EXPECT_EQ(csvCell("\r=1"), "\"'\r=1\"");
  EXPECT_EQ(csvCell("=1,2"), "\"'=1,2\"");
  // Only the first character matters: these are data, not formulas.
  EXPECT_EQ(csvCell("a=b"), "a=b");
  EXPECT_EQ(csvCell("x-1"), "x-1");
}

TEST(CsvExportTest, EveryRowHasEveryColumnAndReadsBack) {
  store::AuditPage page;
  page.entries = {entry(1), entry(2)};
  page.entries[1].reason = "=cmd|' /C calc'!A0";
  page.entries[1].detail = R"({"note":"a, \"b\"\nc"})";
  page.entries[1].classes = "";
  page.entries[1].labels = "";
  page.entries[1].instance_id = "gw-east-1";
  const std::string csv = pageToCsv(page);
  const auto rows = readCsv(csv);
  ASSERT_EQ(rows.size(), 3u);
  ASSERT_EQ(rows[0].size(), 22u);
  EXPECT_EQ(rows[0][0], "seq");
  EXPECT_EQ(rows[0][20], "hash");
  EXPECT_EQ(rows[0][21], "instance_id") << "added last (schema 9): the other columns keep their places";
  EXPECT_EQ(rows[2][21], "gw-east-1");
  for (const auto& r : rows) EXPECT_EQ(r.size(), rows[0].size());
  EXPECT_EQ(rows[1][0], "1");
  EXPECT_EQ(rows[1][1], "2027-01-15T08:00:00.123Z");
  EXPECT_EQ(rows[1][2], "1800000000123");
  EXPECT_EQ(rows[1][11], "sud,mh");  // one cell
  EXPECT_EQ(rows[1][12], "R,SUD,MH");
  EXPECT_EQ(rows[1][18], entry(1).detail);
  EXPECT_EQ(rows[2][16], "'=cmd|' /C calc'!A0");
  EXPECT_EQ(rows[2][18], R"({"note":"a, \"b\"\nc"})");
  EXPECT_EQ(rows[2][11], "");
  // Header once; rows alone for streaming pages.
  EXPECT_EQ(csvHeader() + csvRows(page), csv);
  EXPECT_EQ(csvRows(store::AuditPage{}), "");
}

TEST(JsonExportTest, EntriesCarryEveryColumnWithListsAndDetailAsJson) {
  store::AuditPage page;
  page.entries = {entry(41), entry(42)};
  page.entries[1].detail = "";
  page.entries[1].classes = "";
  page.next_after_seq = 42;
  rapidjson::Document doc;
  ASSERT_TRUE(json::parse(pageToJson(page), doc));
  EXPECT_EQ(doc["count"].GetInt(), 2);
  EXPECT_EQ(doc["next_after_seq"].GetInt64(), 42);
  const auto& e = doc["entries"][0];
  EXPECT_EQ(e["seq"].GetInt64(), 41);
  EXPECT_STREQ(e["at"].GetString(), "2027-01-15T08:00:00.123Z");
  EXPECT_EQ(e["at_ms"].GetInt64(), 1'800'000'000'123);
  EXPECT_STREQ(e["outcome"].GetString(), "redact");
  ASSERT_TRUE(e["classes"].IsArray());
  ASSERT_EQ(e["classes"].Size(), 2u);
  EXPECT_STREQ(e["classes"][1].GetString(), "mh");
  EXPECT_EQ(e["labels"].Size(), 3u);
  EXPECT_EQ(e["consent_version"].GetInt(), 3);
  ASSERT_TRUE(e["detail"].IsObject());
  EXPECT_STREQ(e["detail"]["removed_activity_kinds"][0].GetString(), "psychiatric_care");
  EXPECT_EQ(std::string(e["hash"].GetString()), std::string(64, 'b'));
  EXPECT_TRUE(doc["entries"][1]["detail"].IsNull());
  EXPECT_EQ(doc["entries"][1]["classes"].Size(), 0u);
  EXPECT_STREQ(e["instance_id"].GetString(), "");
  EXPECT_EQ(e.MemberCount(), 22u);

  page.next_after_seq.reset();
  ASSERT_TRUE(json::parse(pageToJson(page), doc));
  EXPECT_TRUE(doc["next_after_seq"].IsNull());
}

TEST(JsonExportTest, UnreadableDetailIsShownAsText) {
  store::AuditPage page;
  page.entries = {entry(1)};
  page.entries[0].detail = "{not json";
  rapidjson::Document doc;
  ASSERT_TRUE(json::parse(pageToJson(page), doc));
  EXPECT_STREQ(doc["entries"][0]["detail"].GetString(), "{not json");
}

TEST(VerifyReportTest, JsonAndExitCode) {
  store::VerifyReport good;
  good.rows = 10;
  good.last_seq = 10;
  good.head_hash = std::string(64, 'c');
  rapidjson::Document doc;
  ASSERT_TRUE(json::parse(verifyReportToJson(good), doc));
  EXPECT_TRUE(doc["ok"].GetBool());
  EXPECT_EQ(doc["rows"].GetInt64(), 10);
  EXPECT_EQ(std::string(doc["anchor"].GetString()), "10:" + std::string(64, 'c'));
  EXPECT_EQ(doc["breaks"].Size(), 0u);
  EXPECT_STREQ(doc["anchor_check"]["status"].GetString(), "none");
  EXPECT_STREQ(doc["anchor_check"]["source"].GetString(), "none");
  EXPECT_FALSE(doc["anchor_check"].HasMember("seq"));
  EXPECT_EQ(verifyExitCode(good), 0);

  store::VerifyReport anchored = good;
  anchored.keyed_from_seq = 4;
  anchored.unkeyed_rows = 3;
  anchored.anchor = {store::AnchorStatus::Truncated,
                     store::ChainAnchor{12, "v2:" + std::string(64, 'd')},
                     "file /var/log/gw/anchors.log",
                     1'800'000'000'000,
                     7,
                     1};
  ASSERT_TRUE(json::parse(verifyReportToJson(anchored), doc));
  EXPECT_EQ(doc["keyed_from_seq"].GetInt64(), 4);
  EXPECT_EQ(doc["unkeyed_rows"].GetInt64(), 3);
  const auto& check = doc["anchor_check"];
  EXPECT_STREQ(check["status"].GetString(), "truncated");
  EXPECT_STREQ(check["source"].GetString(), "file /var/log/gw/anchors.log");
  EXPECT_EQ(check["seq"].GetInt64(), 12);
  EXPECT_EQ(std::string(check["hash"].GetString()), "v2:" + std::string(64, 'd'));
  EXPECT_STREQ(check["published_at"].GetString(), "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(check["lines"].GetInt64(), 7);
  EXPECT_EQ(check["forged_lines"].GetInt64(), 1);

  store::VerifyReport bad = good;
  bad.ok = false;
  bad.break_count = 2;
  bad.breaks = {{5, store::ChainProblem::HashMismatch, "seq 5 does not match its hash"},
                {8, store::ChainProblem::SeqGap, "seq 8 missing"}};
  ASSERT_TRUE(json::parse(verifyReportToJson(bad), doc));
  EXPECT_FALSE(doc["ok"].GetBool());
  EXPECT_EQ(doc["break_count"].GetInt(), 2);
  EXPECT_EQ(doc["breaks"][0]["seq"].GetInt64(), 5);
  EXPECT_STREQ(doc["breaks"][0]["problem"].GetString(), "hash-mismatch");
  EXPECT_STREQ(doc["breaks"][1]["problem"].GetString(), "seq-gap");
  EXPECT_NE(verifyExitCode(bad), 0);
}

}  // namespace
}  // namespace gw::audit

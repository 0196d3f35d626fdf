// The RFC 4180 reader: what spreadsheet exports actually contain, and the strict failures that
// keep cells from sliding into the wrong columns.
#include <gtest/gtest.h>

#include "mapping/csv.hpp"

namespace gw::mapping {
namespace {

using Fields = std::vector<std::string>;

CsvTable parseOk(std::string_view text, CsvDialect dialect = {}) {
  auto table = parseCsv(text, dialect);
  EXPECT_TRUE(table) << table.error().describe();
  return table ? std::move(table).value() : CsvTable{};
}

TEST(CsvTest, HeaderAndRowsWithLineNumbers) {
  const auto t = parseOk("a,b,c\n1,2,3\n4,5,6\n");
  EXPECT_EQ(t.header, (Fields{"a", "b", "c"}));
  EXPECT_EQ(t.header_line, 1u);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields, (Fields{"1", "2", "3"}));
  EXPECT_EQ(t.rows[0].line, 2u);
  EXPECT_EQ(t.rows[1].fields, (Fields{"4", "5", "6"}));
  EXPECT_EQ(t.rows[1].line, 3u);
}

TEST(CsvTest, LastRowWithoutLineBreak) {
  const auto t = parseOk("a,b\n1,2");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0].fields, (Fields{"1", "2"}));
}

TEST(CsvTest, CrlfAndLoneCrEndRows) {
  const auto t = parseOk("a,b\r\n1,2\r\n3,4\r5,6\r\n");
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.header, (Fields{"a", "b"}));
  EXPECT_EQ(t.rows[0].fields, (Fields{"1", "2"}));
  EXPECT_EQ(t.rows[1].fields, (Fields{"3", "4"}));
  EXPECT_EQ(t.rows[2].fields, (Fields{"5", "6"}));
  EXPECT_EQ(t.rows[2].line, 4u);
}

TEST(CsvTest, QuotedFieldsWithDelimitersEscapedQuotesAndLineBreaks) {
  const auto t = parseOk("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\r\nlines\"\nnext,row,here\n");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields, (Fields{"x, y", "say \"hi\"", "two\r\nlines"}));
  EXPECT_EQ(t.rows[0].line, 2u);
  EXPECT_EQ(t.rows[1].line, 4u) << "the embedded line break counts for the next row's line number";
}

TEST(CsvTest, EmptyFieldsAndQuotedEmptyField) {
  const auto t = parseOk("a,b,c\n,,\n\"\",x,\n");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields, (Fields{"", "", ""}));
  EXPECT_EQ(t.rows[1].fields, (Fields{"", "x", ""}));
}

TEST(CsvTest, BlankLinesAreSkippedButCounted) {
  const auto t = parseOk("\na,b\n\n1,2\n\r\n\n3,4\n\n");
  EXPECT_EQ(t.header_line, 2u);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].line, 4u);
  EXPECT_EQ(t.rows[1].line, 7u);
}

TEST(CsvTest, Utf8BomIsDroppedAndUtf8KeptVerbatim) {
  const auto t = parseOk("\xEF\xBB\xBFname,city\nJos\xC3\xA9,S\xC3\xA3o Paulo\n");
  EXPECT_EQ(t.header[0], "name");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0].fields, (Fields{"Jos\xC3\xA9", "S\xC3\xA3o Paulo"}));
}

TEST(CsvTest, ConfigurableDelimiterAndQuote) {
  const auto semicolon = parseOk("a;b\n'1;2';3\n", {';', '\''});
  ASSERT_EQ(semicolon.rows.size(), 1u);
  EXPECT_EQ(semicolon.rows[0].fields, (Fields{"1;2", "3"}));
  const auto tab = parseOk("a\tb\n1,5\t\"x\ty\"\n", {'\t', '"'});
  ASSERT_EQ(tab.rows.size(), 1u);
  EXPECT_EQ(tab.rows[0].fields, (Fields{"1,5", "x\ty"}));
}

TEST(CsvTest, RowsKeepTheirOwnFieldCount) {
  // Mismatches against the header are the caller's per-row error, not the reader's.
  const auto t = parseOk("a,b,c\n1\n1,2,3,4\n");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields.size(), 1u);
  EXPECT_EQ(t.rows[1].fields.size(), 4u);
}

void expectError(std::string_view text, ErrorCode code, const std::string& where, const std::string& message_part) {
  auto t = parseCsv(text);
  ASSERT_FALSE(t) << "accepted: " << text;
  EXPECT_EQ(t.error().code, code);
  EXPECT_EQ(t.error().where, where);
  EXPECT_NE(t.error().message.find(message_part), std::string::npos) << t.error().message;
}

TEST(CsvTest, UnterminatedQuoteNamesTheLineWhereItOpened) {
  expectError("a,b\n1,2\n3,\"open\nstill open\n", ErrorCode::BadRequest, "line 3", "never closed");
}

TEST(CsvTest, TextAfterClosingQuoteIsAnError) {
  expectError("a,b\n\"x\"y,2\n", ErrorCode::BadRequest, "line 2", "after the closing quote");
}

TEST(CsvTest, QuoteInsideUnquotedFieldIsAnError) {
  expectError("a,b\n1,2\nab\"c,2\n", ErrorCode::BadRequest, "line 3", "inside an unquoted field");
}

TEST(CsvTest, InvalidUtf8NamesItsLine) {
  expectError("a,b\n1,2\nJos\xE9,3\n", ErrorCode::BadRequest, "line 3", "not valid UTF-8");
  expectError("a\n\xC0\x80\n", ErrorCode::BadRequest, "line 2", "not valid UTF-8");      // overlong
  expectError("a\n\xED\xA0\x80\n", ErrorCode::BadRequest, "line 2", "not valid UTF-8");  // surrogate
  expectError("a\nx\xE2\x82", ErrorCode::BadRequest, "line 2", "not valid UTF-8");       // truncated
}

TEST(CsvTest, EmptyTextHasNoHeader) {
  expectError("", ErrorCode::BadRequest, "line 1", "no header row");
  expectError("\xEF\xBB\xBF\r\n\n", ErrorCode::BadRequest, "line 1", "no header row");
}

TEST(CsvTest, RowLimit) {
  EXPECT_TRUE(parseCsv("a\n1\n2\n", {}, 2));
  auto t = parseCsv("a\n1\n2\n3\n", {}, 2);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, ErrorCode::PayloadTooLarge);
  EXPECT_EQ(t.error().where, "line 4");
}

TEST(CsvTest, ErrorsNeverQuoteCellValues) {
  auto t = parseCsv("a,b\nSECRET-MRN\"x,2\n");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().describe().find("SECRET"), std::string::npos) << t.error().describe();
}

}  // namespace
}  // namespace gw::mapping

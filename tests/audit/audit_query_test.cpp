#include "audit/audit_query.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "audit/audit_format.hpp"
#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_keys.hpp"

namespace gw::audit {
namespace {

using Params = std::multimap<std::string, std::string>;

std::int64_t ms(std::string_view text) {
  auto r = parseRfc3339Millis(text);
  EXPECT_TRUE(r) << text << ": " << (r ? "" : r.error().describe());
  return r ? r.value() : -1;
}

void expectBad(const Params& params, std::string_view where_part, std::string_view message_part = {}) {
  auto r = parseAuditQuery(params);
  ASSERT_FALSE(r) << "accepted: " << (params.empty() ? "" : params.begin()->first);
  EXPECT_EQ(r.error().code, ErrorCode::BadRequest);
  EXPECT_NE(r.error().where.find(where_part), std::string::npos) << r.error().describe();
  EXPECT_NE(r.error().message.find(message_part), std::string::npos) << r.error().describe();
  EXPECT_FALSE(r.error().hint.empty()) << r.error().describe();
}

TEST(Rfc3339Test, ParsesUtcOffsetsAndFractions) {
  EXPECT_EQ(ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ms("2027-01-15T08:00:00.123Z"), 1'800'000'000'123);
  EXPECT_EQ(ms("2027-01-15t08:00:00.123z"), 1'800'000'000'123);
  EXPECT_EQ(ms("2027-01-15T03:00:00.123-05:00"), 1'800'000'000'123);
  EXPECT_EQ(ms("2027-01-15T13:30:00.123+05:30"), 1'800'000'000'123);
  EXPECT_EQ(ms("2027-01-15T13:30:00.123 05:30"), 1'800'000'000'123);  // '+' decoded as a space
  EXPECT_EQ(ms("2027-01-15T08:00:00.1Z"), 1'800'000'000'100);
  EXPECT_EQ(ms("2027-01-15T08:00:00.123999Z"), 1'800'000'000'123);  // truncated to ms
  EXPECT_EQ(ms("2024-02-29T00:00:00Z"), ms("2024-03-01T00:00:00Z") - 86'400'000);
  EXPECT_EQ(ms("2000-02-29T00:00:00Z"), 951'782'400'000);
  EXPECT_EQ(ms("1969-12-31T23:59:59Z"), -1000);
}

TEST(Rfc3339Test, RoundTripsTheGatewaysOwnFormat) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::int64_t> dist(0, 4'102'444'800'000);  // up to 2100
  for (int i = 0; i < 2000; ++i) {
    const std::int64_t t = dist(rng);
    EXPECT_EQ(ms(formatRfc3339(fromUnixMillis(t))), t);
  }
}

TEST(Rfc3339Test, RejectsWhatIsNotAnRfc3339DateTime) {
  for (const char* text : {"",
                           "2026",
                           "2026-03-01",
                           "2026-03-01T10:00Z",
                           "2026-03-01T10:00:00",
                           "2026-03-01 10:00:00",
                           "2026-3-01T10:00:00Z",
                           "2026-13-01T10:00:00Z",
                           "2026-00-10T10:00:00Z",
                           "2023-02-29T10:00:00Z",
                           "2026-04-31T10:00:00Z",
                           "2026-03-01T24:00:00Z",
                           "2026-03-01T10:60:00Z",
                           "2026-03-01T10:00:61Z",
                           "2026-03-01T10:00:00.Z",
                           "2026-03-01T10:00:00+0500",
                           "2026-03-01T10:00:00+25:00",
                           "2026-03-01T10:00:00Zjunk",
                           "1800000000000",
                           "yesterday",
                           "2026-03-01X10:00:00Z"}) {
    auto r = parseRfc3339Millis(text);
    EXPECT_FALSE(r) << "accepted '" << text << "'";
    if (!r) {
      EXPECT_EQ(r.error().code, ErrorCode::BadRequest);
      EXPECT_NE(r.error().hint.find("2026-03-01T10:00:00Z"), std::string::npos);
    }
  }
}

TEST(AuditQueryParamsTest, EveryParameterIsRead) {
  auto r = parseAuditQuery({{"clinic", "c1"},
                            {"patient_key", "pat-1"},
                            {"partner_id", "p1"},
                            {"outcome", "deny"},
                            {"kind", "decision"},
                            {"class", "mh"},
                            {"from", "2027-01-15T08:00:00Z"},
                            {"to", "2027-01-16T08:00:00Z"},
                            {"after_seq", "1200"},
                            {"limit", "1000"},
                            {"format", "csv"}});
  ASSERT_TRUE(r) << r.error().describe();
  const auto& q = r.value().query;
  EXPECT_EQ(q.clinic, "c1");
  EXPECT_EQ(q.patient_key, "pat-1");
  EXPECT_EQ(q.partner_id, "p1");
  EXPECT_EQ(q.outcome, store::AuditOutcome::Deny);
  EXPECT_EQ(q.kind, store::AuditKind::Decision);
  EXPECT_EQ(q.data_class, privacy::DataClass::Mh);
  EXPECT_EQ(q.from_ms, 1'800'000'000'000);
  EXPECT_EQ(q.to_ms, 1'800'086'400'000);
  EXPECT_EQ(q.after_seq, 1200);
  EXPECT_EQ(q.limit, 1000);
  EXPECT_EQ(r.value().format, ExportFormat::Csv);
}

TEST(AuditQueryParamsTest, DefaultsWhenNothingIsGiven) {
  auto r = parseAuditQuery({});
  ASSERT_TRUE(r);
  const auto& q = r.value().query;
  EXPECT_TRUE(q.clinic.empty() && q.patient_key.empty() && q.partner_id.empty() && !q.outcome && !q.kind);
  EXPECT_FALSE(q.data_class || q.from_ms || q.to_ms);
  EXPECT_EQ(q.after_seq, 0);
  EXPECT_EQ(q.limit, 100);
  EXPECT_EQ(r.value().format, ExportFormat::Json);
}

TEST(AuditQueryParamsTest, BadParametersAreNamed) {
  expectBad({{"patient", "pat-1"}}, "'patient'", "unknown query parameter");
  expectBad({{"outcome", "deny"}, {"outcome", "permit"}}, "'outcome'", "2 times");
  expectBad({{"clinic", ""}}, "'clinic'", "empty");
  expectBad({{"patient_key", std::string(300, 'x')}}, "'patient_key'", "longer");
  expectBad({{"partner_id", "p\x01"}}, "'partner_id'", "control");
  expectBad({{"outcome", "allowed"}}, "'outcome'", "unknown outcome");
  expectBad({{"kind", "decisions"}}, "'kind'", "unknown kind");
  expectBad({{"class", "hiv"}}, "'class'", "unknown class");
  expectBad({{"from", "2026-03-01"}}, "'from'", "RFC 3339");
  expectBad({{"to", "1800000000000"}}, "'to'", "RFC 3339");
  expectBad({{"from", "2027-01-15T08:00:00Z"}, {"to", "2027-01-15T08:00:00Z"}}, "'to'", "not after");
  for (const char* limit : {"0", "1001", "-1", "+5", "ten", "10x", " 10", "99999999999999999999999"}) {
    expectBad({{"limit", limit}}, "'limit'", "1 to 1000");
  }
  for (const char* after : {"-1", "abc", "1.5", "99999999999999999999999"}) {
    expectBad({{"after_seq", after}}, "'after_seq'", "non-negative");
  }
  expectBad({{"format", "xml"}}, "'format'", "unknown format");
}

TEST(AuditQueryParamsTest, ErrorsDoNotEchoIdentifiers) {
  auto r = parseAuditQuery({{"patient_key", std::string(300, 'Z')}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().describe().find("ZZZ"), std::string::npos);
}

TEST(ChainAnchorTest, ParsesSeqColonHash) {
  const std::string hash(64, 'f');
  auto a = parseChainAnchor("1042:" + hash);
  ASSERT_TRUE(a);
  EXPECT_EQ(a.value().seq, 1042);
  EXPECT_EQ(a.value().hash, hash);
  auto keyed = parseChainAnchor("1043:v2:" + hash);
  ASSERT_TRUE(keyed) << keyed.error().describe();
  EXPECT_EQ(keyed.value().hash, "v2:" + hash);
  auto instance = parseChainAnchor("1044:v3:" + hash);
  ASSERT_TRUE(instance) << "schema 9 rows' hashes";
  EXPECT_EQ(instance.value().hash, "v3:" + hash);
  for (std::string bad : {std::string("1042"), "x:" + hash, "-1:" + hash, "5:" + hash.substr(1), "5:" + hash + "0",
                          "5:" + std::string(64, 'F'), "5:v4:" + hash, "5:v2:" + hash.substr(1), "5:v2" + hash}) {
    auto r = parseChainAnchor(bad);
    EXPECT_FALSE(r) << bad;
  }
  auto none = parseVerifyParams({});
  ASSERT_TRUE(none);
  EXPECT_FALSE(none.value());
  auto some = parseVerifyParams({{"anchor", "7:" + hash}});
  ASSERT_TRUE(some && some.value());
  EXPECT_EQ(some.value()->seq, 7);
  auto unknown = parseVerifyParams({{"seq", "7"}});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, ErrorCode::BadRequest);
  auto bad = parseVerifyParams({{"anchor", "7"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().where, "query parameter 'anchor'");
}

TEST(AuditTrailEntriesTest, ReadAndVerifyEntriesAreValidAndDescribeTheRequest) {
  auto req = parseAuditQuery({{"patient_key", "pat-1"}, {"class", "sud"}, {"format", "csv"}, {"limit", "50"}});
  ASSERT_TRUE(req);
  const auto e = auditReadEntry(req.value(), "tok-ops", 1'800'000'000'000, 12);
  EXPECT_TRUE(store::validateAuditEntry(e)) << store::validateAuditEntry(e).error().describe();
  EXPECT_EQ(e.kind, store::AuditKind::AuditRead);
  EXPECT_EQ(e.actor, "tok-ops");
  EXPECT_EQ(e.patient_key, "pat-1");
  rapidjson::Document doc;
  ASSERT_TRUE(json::parse(e.detail, doc));
  EXPECT_EQ(doc["returned"].GetInt(), 12);
  EXPECT_STREQ(doc["format"].GetString(), "csv");
  EXPECT_STREQ(doc["filters"]["class"].GetString(), "sud");
  EXPECT_EQ(doc["filters"]["limit"].GetInt(), 50);

  // A read filtered by partner is no event about the partner: the filter is in the detail only,
  // so the read never shows in that partner's log.
  auto by_partner = parseAuditQuery({{"partner_id", "st-mary"}, {"kind", "decision"}});
  ASSERT_TRUE(by_partner);
  const auto read = auditReadEntry(by_partner.value(), "tok-ops", 1'800'000'000'000, 3);
  EXPECT_EQ(read.partner_id, "");
  ASSERT_TRUE(json::parse(read.detail, doc));
  EXPECT_STREQ(doc["filters"]["partner_id"].GetString(), "st-mary");

  store::VerifyReport report;
  report.ok = false;
  report.rows = 9;
  report.last_seq = 9;
  report.head_hash = std::string(64, 'e');
  report.break_count = 1;
  report.breaks = {{5, store::ChainProblem::HashMismatch, "x"}};
  const auto v = auditVerifyEntry(report, "gateway", 1'800'000'000'000);
  EXPECT_TRUE(store::validateAuditEntry(v));
  EXPECT_EQ(v.outcome, store::AuditOutcome::Error);
  EXPECT_EQ(v.reason, "hash-mismatch at seq 5");
}

// End to end on a real store: append, read a page as the API would, log the read, verify.
TEST(AuditEndToEndTest, QueryExportLogTheReadAndVerify) {
  const auto dir = std::filesystem::temp_directory_path() / ("gw-audit-e2e-" + ids::randomHex(6));
  {
    auto store = store::openSqliteStore({(dir / "gw.db").string(), false, 2, test::testMasterKey()});
    ASSERT_TRUE(store) << store.error().describe();
    auto& s = *store.value();
    std::vector<store::AuditEntry> entries;
    for (int i = 0; i < 5; ++i) {
      entries.push_back(store::AuditEntryBuilder(store::AuditKind::Disclosure,
                                                 i == 4 ? store::AuditOutcome::Failed : store::AuditOutcome::Delivered,
                                                 "gateway", 1'800'000'000'000 + i)
                            .patient(i % 2 ? "pat-1" : "pat-2")
                            .partner("p1")
                            .reason(i == 4 ? "-partner answered 500" : "")
                            .detail(R"({"status":"201 Created","location":"Bundle/1"})")
                            .build());
    }
    ASSERT_TRUE(s.appendAudit(entries));

    auto req = parseAuditQuery({{"patient_key", "pat-2"}, {"format", "csv"}});
    ASSERT_TRUE(req);
    auto page = s.queryAudit(req.value().query);
    ASSERT_TRUE(page);
    ASSERT_EQ(page.value().entries.size(), 3u);
    const std::string csv = pageToCsv(page.value());
    EXPECT_NE(csv.find(",'-partner answered 500,"), std::string::npos) << csv;

    ASSERT_TRUE(s.appendAudit({auditReadEntry(req.value(), "tok-ops", 1'800'000'001'000, 3)}));
    AuditRequest reads;
    reads.query.kind = store::AuditKind::AuditRead;
    auto read = s.queryAudit(reads.query);
    ASSERT_TRUE(read && read.value().entries.size() == 1);
    EXPECT_EQ(read.value().entries[0].seq, 6);

    auto report = s.verifyAudit(std::nullopt);
    ASSERT_TRUE(report);
    EXPECT_TRUE(report.value().ok);
    EXPECT_EQ(report.value().rows, 6);
    EXPECT_EQ(verifyExitCode(report.value()), 0);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gw::audit

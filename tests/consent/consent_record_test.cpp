// Reading consent records and the validity rules of docs/privacy.md §4.2.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/pointer.h>

#include <algorithm>
#include <optional>

#include "consent/consent_record.hpp"
#include "consent_test_support.hpp"

namespace gw::consent {
namespace {

using namespace gw::consent::testing;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A valid Part 2 consent: sud, recipient, purpose, signature date and an end.
constexpr std::string_view kSudConsent = R"({
  "record_id": "c1:cn:90", "record_type": "consent", "clinic": "c1", "program": "otp",
  "recorded_at": "2026-11-20T08:55:00-05:00", "patient": {"mrn": "A12345"},
  "consent": {"id": "90", "recipient": "st-mary", "purposes": ["TREAT"], "categories": ["general", "sud"],
              "effective": {"start": "2026-11-20", "end": "2027-11-20"}, "signed_on": "2026-11-19",
              "signed_by": "patient", "status": "active"}})";

// The same record with the member at `pointer` replaced by `json`, or removed when json is empty.
rapidjson::Document changed(std::string_view pointer, std::string_view json = {}, std::string_view base = kSudConsent) {
  rapidjson::Document doc = parseJson(base);
  const rapidjson::Pointer p(pointer.data(), pointer.size());
  if (json.empty()) {
    EXPECT_TRUE(p.Erase(doc)) << "nothing to remove at " << pointer;
  } else {
    rapidjson::Document value(&doc.GetAllocator());
    value.Parse(json.data(), json.size());
    EXPECT_FALSE(value.HasParseError()) << json;
    p.Set(doc, value);
  }
  return doc;
}

std::vector<std::string> paths(const std::vector<FieldError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.path);
  return out;
}

// The version a valid record describes; each problem found fails the test, naming it.
std::optional<ConsentVersion> read(const rapidjson::Value& record) {
  auto reading = readConsentRecord(record);
  for (const auto& p : reading.problems) ADD_FAILURE() << p.path << " " << p.reason;
  return std::move(reading.version);
}

// --- the clinic format's own examples ------------------------------------------------------

TEST(ReadConsentRecord, ReadsTheSpecExample) {
  auto doc = parseJson(readRepoFile("mappers/clinic-v1/golden/consent_spec_example.input.json"));
  auto v = read(doc);
  ASSERT_TRUE(v);
  EXPECT_EQ(v.value().clinic, "c1");
  EXPECT_EQ(v.value().consent_id, "77");
  EXPECT_EQ(v.value().version, 0);       // assigned by the caller
  EXPECT_EQ(v.value().patient_key, "");  // known to the caller after mapping
  EXPECT_EQ(v.value().partner_id, "st-mary");
  EXPECT_EQ(v.value().status, ConsentStatus::Active);
  EXPECT_EQ(v.value().purposes, PurposeSet(Purpose::Treat));
  EXPECT_EQ(v.value().classes, kGeneralSud);
  EXPECT_EQ(v.value().period_start, day("2026-11-20"));
  EXPECT_EQ(v.value().period_end, day("2027-11-20"));
  EXPECT_EQ(v.value().signed_on, day("2026-11-20"));
  EXPECT_FALSE(v.value().revoked_on.has_value());
  EXPECT_EQ(v.value().resource_id, "");
  // 2026-11-20T08:55:00-05:00 = 13:55Z
  EXPECT_EQ(v.value().recorded_at, *parseRfc3339Millis("2026-11-20T13:55:00Z"));
}

TEST(ReadConsentRecord, ReadsDateTimeBoundsAndARevocationInstant) {
  auto doc = parseJson(readRepoFile("mappers/clinic-v1/golden/consent_revoked_at_instant.input.json"));
  EXPECT_THAT(checkValidity(doc), IsEmpty());
  auto v = read(doc);
  ASSERT_TRUE(v);
  EXPECT_EQ(v.value().period_start, Bound::instant(*parseRfc3339Millis("2026-01-01T14:30:00Z")));
  EXPECT_EQ(v.value().period_end, Bound(day("2026-12-31")));
  EXPECT_EQ(v.value().revoked_on, Bound::instant(*parseRfc3339Millis("2026-03-15T20:45:00Z")));
  EXPECT_EQ(boundForms(v.value()), "start:instant,end:local-day,revoked:instant");
  // Stored and read back as written (an instant in UTC).
  const ConsentRow row = toRow(v.value());
  EXPECT_EQ(row.period_start, "2026-01-01T14:30:00.000Z");
  EXPECT_EQ(row.revoked_on, "2026-03-15T20:45:00.000Z");
  auto back = fromRow(row);
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value(), v.value());
}

TEST(ReadConsentRecord, RevocationFormsAreChecked) {
  const auto revoked = [](std::string_view member, std::string_view value) {
    rapidjson::Document doc = changed("/consent/status", "\"revoked\"");
    rapidjson::Document v(&doc.GetAllocator());
    v.Parse(value.data(), value.size());
    rapidjson::Pointer(("/consent/" + std::string(member)).c_str()).Set(doc, v);
    return checkValidity(doc);
  };
  EXPECT_THAT(revoked("revoked_at", "\"2026-12-01T09:00:00-05:00\""), IsEmpty());
  EXPECT_THAT(paths(revoked("revoked_at", "\"2026-12-01\"")), ElementsAre("consent.revoked_at"));
  EXPECT_THAT(paths(revoked("revoked_on", "\"2026-12-01T09:00:00-05:00\"")), ElementsAre("consent.revoked_on"));
  rapidjson::Document both = changed("/consent/status", "\"revoked\"");
  rapidjson::Pointer("/consent/revoked_on").Set(both, "2026-12-01");
  rapidjson::Pointer("/consent/revoked_at").Set(both, "2026-12-01T09:00:00-05:00");
  EXPECT_THAT(paths(checkValidity(both)), ElementsAre("consent.revoked_at"));
  // Active with an instant: as with a day, ambiguous.
  rapidjson::Document active = changed("/consent/revoked_at", "\"2026-12-01T09:00:00-05:00\"");
  EXPECT_THAT(paths(checkValidity(active)), ElementsAre("consent.revoked_at"));
  // Date-time bounds are accepted; an end instant before the start instant is not.
  EXPECT_THAT(checkValidity(changed("/consent/effective/start", "\"2026-11-20T09:00:00-05:00\"")), IsEmpty());
  auto backwards = changed("/consent/effective",
                           R"({"start": "2026-11-20T09:00:00-05:00", "end": "2026-11-20T08:00:00-05:00"})");
  EXPECT_THAT(paths(checkValidity(backwards)), ElementsAre("consent.effective.end"));
  EXPECT_THAT(paths(checkValidity(changed("/consent/effective/end", "\"2027-11-20 09:00\""))),
              ElementsAre("consent.effective.end"));
}

TEST(ReadConsentRecord, ReadsARevokedConsentEndingOnAnEvent) {
  auto doc = parseJson(readRepoFile("mappers/clinic-v1/golden/consent_revoked_representative.input.json"));
  EXPECT_THAT(checkValidity(doc), IsEmpty());
  auto v = read(doc);
  ASSERT_TRUE(v);
  EXPECT_EQ(v.value().status, ConsentStatus::Revoked);
  EXPECT_EQ(v.value().revoked_on, day("2026-03-15"));
  EXPECT_FALSE(v.value().period_end.has_value());
  EXPECT_EQ(v.value().classes, ClassSet(DataClass::General).add(DataClass::Mh));
  EXPECT_EQ(purposeSetName(v.value().purposes), "TREAT,HPAYMT,HOPERAT");
  EXPECT_EQ(v.value().signed_on, day("2025-12-31"));
}

TEST(ReadConsentRecord, TheTpoGoldenEndsOnAnEventAndIsValid) {
  // A TPO consent for sud data may end on an event ("end of treatment") instead of a date.
  auto doc = parseJson(readRepoFile("mappers/clinic-v1/golden/consent_tpo_sud.input.json"));
  EXPECT_THAT(checkValidity(doc), IsEmpty());
  auto v = read(doc);
  ASSERT_TRUE(v);
  EXPECT_FALSE(v.value().period_end.has_value()) << "open until the event or a revocation";
  // Without the event it would be refused: sud and neither end nor event.
  doc["consent"].RemoveMember("expires_on_event");
  EXPECT_THAT(paths(checkValidity(doc)), ElementsAre("consent.effective.end"));
}

// --- section 4, one rule at a time ---------------------------------------------------------

TEST(CheckValidity, TheBaseSudConsentIsValid) { EXPECT_THAT(checkValidity(parseJson(kSudConsent)), IsEmpty()); }

struct RuleCase {
  const char* name;
  const char* pointer;
  const char* json;  // "" removes the member
  const char* path;  // the one problem expected
  const char* reason_part;
};

class SudRule : public ::testing::TestWithParam<RuleCase> {};

TEST_P(SudRule, NamesTheFieldAndWhatToDo) {
  const auto& c = GetParam();
  const auto errors = checkValidity(changed(c.pointer, c.json));
  ASSERT_EQ(errors.size(), 1u) << c.name;
  EXPECT_EQ(errors[0].path, c.path);
  EXPECT_THAT(errors[0].reason, HasSubstr(c.reason_part));
  EXPECT_FALSE(errors[0].hint.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Section4, SudRule,
    ::testing::Values(
        RuleCase{"no_recipient", "/consent/recipient", "", "consent.recipient", "42 CFR 2.31"},
        RuleCase{"empty_recipient", "/consent/recipient", "\"\"", "consent.recipient", "non-empty"},
        RuleCase{"no_purposes", "/consent/purposes", "", "consent.purposes", "42 CFR 2.31"},
        RuleCase{"empty_purposes", "/consent/purposes", "[]", "consent.purposes", "no purpose"},
        RuleCase{"no_signature_date", "/consent/signed_on", "", "consent.signed_on", "42 CFR 2.31"},
        RuleCase{"no_end_nor_event", "/consent/effective/end", "", "consent.effective.end", "expires_on_event"},
        RuleCase{"revoked_without_date", "/consent/status", "\"revoked\"", "consent.revoked_on", "is missing"},
        RuleCase{"starts_after_end", "/consent/effective/end", "\"2026-11-19\"", "consent.effective.end",
                 "before consent.effective.start"},
        RuleCase{"unknown_category", "/consent/categories", "[\"sud\",\"hiv\"]", "consent.categories[1]",
                 "not a known category"},
        RuleCase{"unknown_purpose", "/consent/purposes", "[\"TREAT\",\"RESEARCH\"]", "consent.purposes[1]",
                 "not a known purpose"},
        RuleCase{"not_a_date", "/consent/signed_on", "\"2026-02-30\"", "consent.signed_on", "calendar date"},
        RuleCase{"unknown_status", "/consent/status", "\"paused\"", "consent.status", "not a known status"},
        RuleCase{"active_with_revoked_on", "/consent/revoked_on", "\"2026-12-01\"", "consent.revoked_on", "active consent"},
        RuleCase{"no_start", "/consent/effective/start", "", "consent.effective.start", "is missing"},
        RuleCase{"empty_categories", "/consent/categories", "[]", "consent.categories", "permit nothing"}),
    [](const ::testing::TestParamInfo<RuleCase>& info) { return std::string(info.param.name); });

TEST(CheckValidity, AnEventIsEnoughOfAnEnd) {
  auto doc = changed("/consent/effective/end");
  rapidjson::Pointer("/consent/expires_on_event").Set(doc, "end of treatment");
  EXPECT_THAT(checkValidity(doc), IsEmpty());
}

TEST(CheckValidity, AOneDayConsentIsValid) {
  EXPECT_THAT(checkValidity(changed("/consent/effective/end", "\"2026-11-20\"")), IsEmpty());
}

TEST(CheckValidity, TheSudOnlyRulesDoNotBindAGeneralConsent) {
  // No signature date and no end: fine without sud (HIPAA authorisations are the clinic's policy).
  auto doc = changed("/consent/categories", R"(["general","mh"])");
  rapidjson::Pointer("/consent/signed_on").Erase(doc);
  rapidjson::Pointer("/consent/effective/end").Erase(doc);
  EXPECT_THAT(checkValidity(doc), IsEmpty());
  // ... but a general consent still needs a recipient and a purpose, or it could never be used.
  rapidjson::Pointer("/consent/recipient").Erase(doc);
  const auto errors = checkValidity(doc);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "consent.recipient");
  EXPECT_THAT(errors[0].reason, ::testing::Not(HasSubstr("42 CFR")));
}

TEST(CheckValidity, AnUnreadableCategoryListIsHeldToTheSudRules) {
  auto doc = changed("/consent/categories", R"(["sud-ish"])");
  rapidjson::Pointer("/consent/signed_on").Erase(doc);
  EXPECT_THAT(paths(checkValidity(doc)), ElementsAre("consent.categories[0]", "consent.signed_on"));
}

TEST(CheckValidity, ReportsEveryProblemAtOnce) {
  auto doc = parseJson(R"({"clinic":"c1","recorded_at":"2026-11-20T08:55:00Z",
    "consent":{"id":"1","purposes":["TREAT","BOGUS"],"categories":["sud","xyz"],
               "effective":{"start":"2026-12-01","end":"2026-11-01"},"status":"revoked"}})");
  EXPECT_THAT(paths(checkValidity(doc)), ElementsAre("consent.categories[1]", "consent.recipient", "consent.purposes[1]",
                                                     "consent.effective.end", "consent.signed_on", "consent.revoked_on"));
  const auto reading = readConsentRecord(doc);
  EXPECT_FALSE(reading.version.has_value());
  EXPECT_THAT(paths(reading.problems), ElementsAre("consent.categories[1]", "consent.recipient", "consent.purposes[1]",
                                                   "consent.effective.end", "consent.signed_on", "consent.revoked_on"));
  for (const auto& e : checkValidity(doc)) EXPECT_FALSE(e.hint.empty()) << e.path;
}

TEST(CheckValidity, WrongTypesAreReportedWithAHint) {
  auto doc = changed("/consent/effective/end", "5");
  rapidjson::Pointer("/consent/expires_on_event").Set(doc, "");
  rapidjson::Pointer("/consent/categories").Set(doc, "sud");
  rapidjson::Pointer("/consent/purposes").Set(doc, "TREAT");
  const auto errors = checkValidity(doc);
  EXPECT_THAT(paths(errors),
              ElementsAre("consent.categories", "consent.purposes", "consent.effective.end", "consent.expires_on_event"));
  for (const auto& e : errors) EXPECT_FALSE(e.hint.empty()) << e.path;
}

TEST(CheckValidity, MessagesNeverRepeatTheRecordsValues) {
  // Dates and recipient codes can identify a patient; messages name fields, not values.
  auto doc = changed("/consent/effective", R"({"start":"2031-07-09","end":"2030-01-02"})");
  rapidjson::Pointer("/consent/signed_on").Set(doc, "2029-13-45");
  rapidjson::Pointer("/consent/categories/1").Set(doc, "secret-category");
  const auto errors = checkValidity(doc);
  ASSERT_EQ(errors.size(), 3u);
  for (const auto& e : errors) {
    for (const char* value : {"2031", "2030", "2029", "secret-category"}) {
      EXPECT_THAT(e.reason + e.hint, ::testing::Not(HasSubstr(value))) << e.path;
    }
  }
}

TEST(CheckValidity, ARecordWithoutAConsentObjectSaysSo) {
  const auto errors = checkValidity(parseJson(R"({"clinic":"c1"})"));
  EXPECT_THAT(paths(errors), ElementsAre("consent"));
  EXPECT_THAT(paths(checkValidity(parseJson(R"({"consent":[]})"))), ElementsAre("consent"));
  EXPECT_THAT(paths(checkValidity(parseJson("[]"))), ElementsAre("consent"));
}

TEST(ReadConsentRecord, NeedsTheEnvelopesClinicAndRecordedAt) {
  auto reading = readConsentRecord(changed("/recorded_at", "\"yesterday\""));
  EXPECT_FALSE(reading.version.has_value());
  EXPECT_THAT(paths(reading.problems), ElementsAre("recorded_at"));
  reading = readConsentRecord(changed("/clinic"));
  EXPECT_FALSE(reading.version.has_value());
  EXPECT_THAT(paths(reading.problems), ElementsAre("clinic"));
  for (const auto& e : reading.problems) EXPECT_FALSE(e.hint.empty()) << e.path;
}

// --- dates, purposes and stored rows -------------------------------------------------------

TEST(Dates, AcceptOnlyRealDays) {
  EXPECT_TRUE(parseDate("2028-02-29"));
  EXPECT_FALSE(parseDate("2027-02-29"));
  EXPECT_FALSE(parseDate("2026-1-01"));
  EXPECT_FALSE(parseDate("2026-01-01T00:00:00Z"));
  EXPECT_FALSE(parseDate("0000-01-01"));
  EXPECT_EQ(formatDate(day("0987-06-05")), "0987-06-05");
  EXPECT_EQ(day("2026-03-01") - day("2026-02-28"), std::chrono::days(1));
  EXPECT_EQ(utcDate(fromUnixMillis(*parseRfc3339Millis("2026-03-01T23:30:00-05:00"))), day("2026-03-02"));
}

TEST(Dates, Rfc3339ToMillis) {
  EXPECT_EQ(parseRfc3339Millis("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parseRfc3339Millis("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_EQ(parseRfc3339Millis("1969-12-31T19:00:00.25-05:00"), 250);
  EXPECT_EQ(parseRfc3339Millis("2026-11-20T08:55:00.123456789z"), *parseRfc3339Millis("2026-11-20T08:55:00Z") + 123);
  EXPECT_FALSE(parseRfc3339Millis("2026-11-20T08:55:00"));  // no offset
  EXPECT_FALSE(parseRfc3339Millis("2026-11-20 08:55:00Z"));
  EXPECT_FALSE(parseRfc3339Millis("2026-11-20T24:00:00Z"));
}

TEST(Purposes, NamesRoundTripInAFixedOrder) {
  const auto set = parsePurposeSet("HOPERAT,TREAT");
  ASSERT_TRUE(set);
  EXPECT_EQ(purposeSetName(*set), "TREAT,HOPERAT");
  EXPECT_FALSE(parsePurposeSet("TREAT,treat"));
  EXPECT_EQ(parsePurposeSet(""), PurposeSet());
}

TEST(ConsentRows, RoundTripEveryColumn) {
  ConsentVersion v = sampleConsent();
  v.version = 3;
  v.status = ConsentStatus::Revoked;
  v.revoked_on = day("2026-04-01");
  v.purposes.add(Purpose::Hoperat);
  const ConsentRow row = toRow(v);
  EXPECT_EQ(row.status, "revoked");
  EXPECT_EQ(row.purposes, "TREAT,HOPERAT");
  EXPECT_EQ(row.classes, "general,sud");
  EXPECT_EQ(row.period_start, "2026-03-01");
  EXPECT_EQ(row.period_end, "2026-08-31");
  EXPECT_EQ(row.revoked_on, "2026-04-01");
  auto back = fromRow(row);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back.value(), v);

  v.period_end.reset();
  v.signed_on.reset();
  EXPECT_EQ(toRow(v).period_end, "");
  EXPECT_EQ(fromRow(toRow(v)).value(), v);
}

TEST(ConsentRows, ADamagedColumnIsAnErrorNamingIt) {
  ConsentRow row = toRow(sampleConsent());
  row.classes = "general,phi";
  auto v = fromRow(row);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().where, "consents.classes");
  row = toRow(sampleConsent());
  row.period_end = "someday";
  v = fromRow(row);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().where, "consents.period_end");
  row = toRow(sampleConsent());
  row.status = "ACTIVE";
  EXPECT_FALSE(fromRow(row));
}

TEST(ConsentRows, RowProblemCatchesWhatWouldMakeADecisionMeaningless) {
  EXPECT_EQ(rowProblem(sampleConsent()), "");
  auto v = sampleConsent();
  v.purposes = PurposeSet();
  EXPECT_NE(rowProblem(v), "");
  v = sampleConsent();
  v.classes = ClassSet();
  EXPECT_NE(rowProblem(v), "");
  v = sampleConsent();
  v.period_end = day("2026-02-01");
  EXPECT_NE(rowProblem(v), "");
  v = sampleConsent();
  v.version = 0;
  EXPECT_NE(rowProblem(v), "");
}

}  // namespace
}  // namespace gw::consent

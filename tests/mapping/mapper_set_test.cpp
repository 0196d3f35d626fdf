#include "mapping/mapper_set.hpp"

#include <gmock/gmock.h>

#include <thread>
#include <type_traits>

#include "common/ids.hpp"
#include "mapping/record_schemas.hpp"
#include "test_support.hpp"

namespace gw::mapping {
namespace {

using ::testing::HasSubstr;
using testing::mappersDir;
using ::testing::Not;
using testing::parseJson;
using testing::readFile;
using testing::schemasDir;
using testing::ScratchDir;

static_assert(std::is_nothrow_move_constructible_v<MapperSet>);
static_assert(std::is_nothrow_move_assignable_v<MapperSet>);

const MappingContext kContext{"c1", "https://ids.clinic-c1.example/"};

rapidjson::Document golden(const std::string& name) {
  return parseJson(readFile(mappersDir() / "golden" / (name + ".input.json")));
}

class ClinicV1Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto schemas = RecordSchemas::loadDirectory(schemasDir());
    ASSERT_TRUE(schemas) << schemas.error().describe();
    auto mappers = MapperSet::loadDirectory(mappersDir(), &schemas.value());
    ASSERT_TRUE(mappers) << mappers.error().describe();
    mappers_ = new MapperSet(std::move(mappers).value());
  }
  static void TearDownTestSuite() {
    delete mappers_;
    mappers_ = nullptr;
  }
  static const rapidjson::Value& only(const Result<MappingOutput>& output) {
    EXPECT_EQ(output.value().resources.size(), 1u);
    return output.value().resources[0].resource;
  }
  static MapperSet* mappers_;
};

MapperSet* ClinicV1Test::mappers_ = nullptr;

TEST_F(ClinicV1Test, LoadsTheReferenceMappers) {
  EXPECT_TRUE(mappers_->has("patient"));
  EXPECT_TRUE(mappers_->has("mat_prescription"));
  EXPECT_FALSE(mappers_->has("invoice"));
  // One mapper per record type of the reference clinic format.
  EXPECT_THAT(mappers_->recordTypes(),
              ::testing::ElementsAre("consent", "encounter", "harm_reduction_service", "lab_result", "mat_prescription",
                                     "overdose_event", "patient", "screening", "treatment_plan"));
}

TEST_F(ClinicV1Test, IdsAreDeterministicAndReferencesMatchThePatient) {
  const auto patient = mappers_->map(golden("patient_full"), kContext);
  const auto rx = mappers_->map(golden("prescription_spec_example"), kContext);
  ASSERT_TRUE(patient) << patient.error().describe();
  ASSERT_TRUE(rx) << rx.error().describe();
  const auto& p = patient.value().resources[0];
  const auto& m = rx.value().resources[0];

  EXPECT_EQ(p.id, ids::resourceId("c1", "Patient", "A12345"));
  EXPECT_EQ(p.identifier_system, "https://ids.clinic-c1.example/mrn");
  EXPECT_EQ(p.identifier_value, "A12345");
  EXPECT_EQ(m.id, ids::resourceId("c1", "MedicationRequest", "9001"));
  EXPECT_EQ(m.identifier_system, "https://ids.clinic-c1.example/prescription");
  EXPECT_EQ(m.identifier_value, "9001");
  EXPECT_EQ(json::getString(m.resource["subject"], "reference"), "Patient/" + p.id);

  // Same record again: same ids. Another clinic: different ids.
  const auto again = mappers_->map(golden("prescription_spec_example"), kContext);
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value().resources[0].id, m.id);
  EXPECT_TRUE(again.value().resources[0].resource == m.resource);
  const auto other = mappers_->map(golden("prescription_spec_example"), {"c2", "https://ids.clinic-c2.example/"});
  ASSERT_TRUE(other);
  EXPECT_NE(other.value().resources[0].id, m.id);
  EXPECT_EQ(json::getString(other.value().resources[0].resource["subject"], "reference"),
            "Patient/" + ids::resourceId("c2", "Patient", "A12345"));
}

TEST_F(ClinicV1Test, UnknownValueMapCodeNamesCodeMapFileAndFieldPath) {
  auto record = golden("prescription_spec_example");
  record["prescription"]["frequency"].SetString("hourly");
  const auto output = mappers_->map(record, kContext);
  ASSERT_FALSE(output);
  const Error& e = output.error();
  EXPECT_EQ(e.code, ErrorCode::InvalidInput);
  EXPECT_EQ(e.where, "prescription.frequency");
  EXPECT_THAT(e.message, HasSubstr("'hourly'"));
  EXPECT_THAT(e.message, HasSubstr("value map 'frequency'"));
  EXPECT_THAT(e.message, HasSubstr("mat_prescription.mapper.json:"));
  EXPECT_THAT(e.hint, HasSubstr("daily"));
}

// Codes the schema would reject can still reach a mapper (another format, a schema that lags a
// value map): the error names the code, the value map and the record field, with the item index.
TEST_F(ClinicV1Test, UnknownLocalCodesInTheNewMappersAreClearErrors) {
  struct Case {
    const char* golden;
    const char* pointer;
    const char* where;
    const char* map;
  };
  for (const Case& c : {Case{"screening_phq9", "/screening/instrument", "screening.instrument", "instrument"},
                        Case{"harm_reduction_all_items", "/service/items/3/kind", "service.items[3].kind", "item"},
                        Case{"overdose_full", "/event/outcome", "event.outcome", "outcome"},
                        Case{"treatment_plan_full", "/plan/activities/1/kind", "plan.activities[1].kind", "activity"},
                        Case{"consent_spec_example", "/consent/purposes/0", "consent.purposes[0]", "purpose"},
                        Case{"lab_fentanyl_positive", "/result/status", "result.status", "status"}}) {
    auto record = golden(c.golden);
    rapidjson::Pointer(c.pointer).Get(record)->SetString("bogus_code");
    const auto output = mappers_->map(record, kContext);
    ASSERT_FALSE(output) << c.golden;
    EXPECT_EQ(output.error().code, ErrorCode::InvalidInput) << c.golden;
    EXPECT_EQ(output.error().where, c.where) << c.golden;
    EXPECT_THAT(output.error().message, HasSubstr("code 'bogus_code'")) << c.golden;
    EXPECT_THAT(output.error().message, HasSubstr(std::string("value map '") + c.map + "'")) << c.golden;
  }
}

TEST_F(ClinicV1Test, HarmReductionItemsOfOneKindTwiceAreRejected) {
  auto record = golden("harm_reduction_all_items");
  record["service"]["items"][1]["kind"].SetString("naloxone_kit");
  const auto output = mappers_->map(record, kContext);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().where, "service.items[1]");
  EXPECT_THAT(output.error().hint, HasSubstr("add up the quantities"));
}

TEST_F(ClinicV1Test, InvalidCalendarDateNamesThePathButNotTheValue) {
  auto record = golden("patient_full");
  record["patient"]["birth_date"].SetString("1990-02-30");
  const auto output = mappers_->map(record, kContext);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().code, ErrorCode::InvalidInput);
  EXPECT_EQ(output.error().where, "patient.birth_date");
  EXPECT_THAT(output.error().message, HasSubstr("calendar date"));
  EXPECT_THAT(output.error().message, HasSubstr("patient.mapper.json:"));
  EXPECT_THAT(output.error().describe(), Not(HasSubstr("1990")));  // a birth date is PHI

  record["patient"]["birth_date"].SetString("2023-02-29");  // not a leap year
  EXPECT_FALSE(mappers_->map(record, kContext));
  record["patient"]["birth_date"].SetString("2024-02-29");
  EXPECT_TRUE(mappers_->map(record, kContext));
}

TEST_F(ClinicV1Test, OptionalFieldsThatAreAbsentLeaveNoTrace) {
  auto record = golden("prescription_spec_example");
  record["prescription"].RemoveMember("days_supply");
  record["prescription"].RemoveMember("refills");
  auto output = mappers_->map(record, kContext);
  ASSERT_TRUE(output) << output.error().describe();
  const auto& dispense = only(output)["dispenseRequest"];
  EXPECT_TRUE(dispense.HasMember("quantity"));
  EXPECT_FALSE(dispense.HasMember("expectedSupplyDuration"));  // its literal unit/system/code go too
  EXPECT_FALSE(dispense.HasMember("numberOfRepeatsAllowed"));

  record["prescription"].RemoveMember("quantity");
  record["prescription"].RemoveMember("diagnosis");
  output = mappers_->map(record, kContext);
  ASSERT_TRUE(output);
  EXPECT_FALSE(only(output).HasMember("dispenseRequest"));
  EXPECT_FALSE(only(output).HasMember("reasonCode"));
  EXPECT_FALSE(only(output).HasMember("extension"));
}

struct FrequencyCase {
  const char* code;
  const char* repeat;  // expected Timing.repeat
};
void PrintTo(const FrequencyCase& c, std::ostream* os) { *os << c.code; }

class FrequencyTest : public ClinicV1Test, public ::testing::WithParamInterface<FrequencyCase> {};

TEST_P(FrequencyTest, MapsToTimingRepeat) {
  auto record = golden("prescription_spec_example");
  record["prescription"]["frequency"].SetString(rapidjson::StringRef(GetParam().code));
  const auto output = mappers_->map(record, kContext);
  ASSERT_TRUE(output) << output.error().describe();
  const auto& repeat = only(output)["dosageInstruction"][0]["timing"]["repeat"];
  EXPECT_TRUE(repeat == parseJson(GetParam().repeat)) << json::toString(repeat);
}

INSTANTIATE_TEST_SUITE_P(ClinicV1, FrequencyTest,
                         ::testing::Values(FrequencyCase{"daily", R"({"frequency":1,"period":1,"periodUnit":"d"})"},
                                           FrequencyCase{"bid", R"({"frequency":2,"period":1,"periodUnit":"d"})"},
                                           FrequencyCase{"tid", R"({"frequency":3,"period":1,"periodUnit":"d"})"},
                                           FrequencyCase{"weekly", R"({"frequency":1,"period":1,"periodUnit":"wk"})"},
                                           FrequencyCase{"monthly", R"({"frequency":1,"period":1,"periodUnit":"mo"})"},
                                           FrequencyCase{"once", R"({"count":1})"}),
                         [](const auto& info) { return std::string(info.param.code); });

struct RouteCase {
  const char* code;
  const char* snomed;
};
void PrintTo(const RouteCase& c, std::ostream* os) { *os << c.code; }

class RouteTest : public ClinicV1Test, public ::testing::WithParamInterface<RouteCase> {};

TEST_P(RouteTest, MapsToSnomedRoute) {
  auto record = golden("prescription_spec_example");
  record["prescription"]["route"].SetString(rapidjson::StringRef(GetParam().code));
  const auto output = mappers_->map(record, kContext);
  ASSERT_TRUE(output) << output.error().describe();
  const auto& route = only(output)["dosageInstruction"][0]["route"];
  EXPECT_EQ(json::getString(route["coding"][0], "system"), "http://snomed.info/sct");
  EXPECT_EQ(json::getString(route["coding"][0], "code"), GetParam().snomed);
  EXPECT_EQ(json::getString(route, "text"), GetParam().code);
}

INSTANTIATE_TEST_SUITE_P(ClinicV1, RouteTest,
                         ::testing::Values(RouteCase{"sublingual", "37839007"}, RouteCase{"oral", "26643006"},
                                           RouteCase{"subcutaneous", "34206005"}, RouteCase{"intramuscular", "78421000"},
                                           RouteCase{"nasal", "46713006"}, RouteCase{"buccal", "54471007"}),
                         [](const auto& info) { return std::string(info.param.code); });

TEST_F(ClinicV1Test, UnknownRecordTypeIsAnError) {
  auto record = golden("prescription_spec_example");
  record["record_type"].SetString("invoice");
  const auto output = mappers_->map(record, kContext);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().where, "record_type");
}

TEST_F(ClinicV1Test, ConcurrentMappingGivesIdenticalResults) {
  const auto record = golden("prescription_full");
  const auto reference = mappers_->map(record, kContext);
  ASSERT_TRUE(reference);
  const std::string expected = json::toString(reference.value().resources[0].resource);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        const auto output = mappers_->map(record, kContext);
        if (!output || json::toString(output.value().resources[0].resource) != expected) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(ClinicV1Test, OutputDoesNotPointIntoTheRecord) {
  std::string text = readFile(mappersDir() / "golden" / "prescription_full.input.json");
  Result<MappingOutput> output = makeError(ErrorCode::Internal, "unset");
  {
    rapidjson::Document record;
    record.ParseInsitu(text.data());  // strings point into `text`
    ASSERT_FALSE(record.HasParseError());
    output = mappers_->map(record, kContext);
    ASSERT_TRUE(output);
  }
  std::fill(text.begin(), text.end(), 'x');
  EXPECT_EQ(json::getString(output.value().resources[0].resource["medicationCodeableConcept"], "text"),
            "methadone hydrochloride 10 MG/ML oral concentrate");
}

// ---- The language, on small mappers written for the test ----

constexpr const char* kDemoRecord = R"({"record_type":"demo","clinic":"c1","patient":{"mrn":"M1"},
  "item":{"id":"I-1","code":"b","count":3,"when":"2026-11-20t09:00:00.123z","flag":false,"list":["x","y"]}})";

Result<MapperSet> loadDemo(const ScratchDir& dir, const std::string& mapper) {
  dir.write("demo.mapper.json", mapper);
  return MapperSet::loadDirectory(dir.path());
}

std::string demoMapper(const std::string& value_maps, const std::string& template_members) {
  return R"({
  "format": "gw-mapper/1",
  "recordType": "demo",
  "valueMaps": {)" +
         value_maps + R"(},
  "resources": [{
    "resourceType": "Basic",
    "sourceId": "$.item.id",
    "identifierKind": "item",
    "template": {
      "identifier": [{"system": "$identifierSystem", "value": "$sourceId"}])" +
         (template_members.empty() ? "" : ",\n      " + template_members) + R"(
    }
  }]
})";
}

TEST(MappingLanguage, FunctionsAndVariables) {
  ScratchDir dir;
  const auto set = loadDemo(dir, demoMapper(R"(
    "codes": {"entries": {"a": {"code": "A1", "display": "Alpha"}}, "default": {"code": "UNK", "display": "Unknown"}})",
                                            R"("text": {"$concat": ["$clinic", "/", "$.item.id", " n=", "$.item.count"]},
      "code": {"$lookup": "codes", "value": "$.item.code", "select": "code"},
      "when": {"$dateTime": "$.item.when"},
      "self": {"$resourceId": "Basic", "sourceId": "$.item.id"},
      "idVar": "$id",
      "patientSystem": {"$identifierSystem": "mrn"},
      "dollar": {"$literal": "$5"},
      "nested": {"a": {"$literal": "$5"}, "b": [1, {"$literal": {"$x": 2}}]},
      "flagged": {"$if": "$.item.flag", "then": "yes", "else": "no"},
      "counted": {"$if": "$.item.count", "then": "has count"},
      "missing": {"$if": "$.item.nothing", "then": "never"},
      "second": "$.item.list[1]",
      "outOfRange": "$.item.list[5]")"));
  ASSERT_TRUE(set) << set.error().describe();
  const auto output = set.value().map(parseJson(kDemoRecord), kContext);
  ASSERT_TRUE(output) << output.error().describe();
  const auto& r = output.value().resources[0].resource;
  const std::string id = ids::resourceId("c1", "Basic", "I-1");
  EXPECT_EQ(json::getString(r, "resourceType"), "Basic");
  EXPECT_EQ(json::getString(r, "text"), "c1/I-1 n=3");
  EXPECT_EQ(json::getString(r, "code"), "UNK");  // "b" is not in the map: the default applies
  EXPECT_EQ(json::getString(r, "when"), "2026-11-20T09:00:00.123Z");
  EXPECT_EQ(json::getString(r, "self"), id);
  EXPECT_EQ(json::getString(r, "idVar"), id);
  EXPECT_EQ(json::getString(r, "patientSystem"), "https://ids.clinic-c1.example/mrn");
  EXPECT_EQ(json::getString(r, "dollar"), "$5");
  EXPECT_TRUE(r["nested"] == parseJson(R"({"a": "$5", "b": [1, {"$x": 2}]})")) << json::toString(r["nested"]);
  EXPECT_EQ(json::getString(r, "flagged"), "no");
  EXPECT_EQ(json::getString(r, "counted"), "has count");
  EXPECT_FALSE(r.HasMember("missing"));
  EXPECT_EQ(json::getString(r, "second"), "y");
  EXPECT_FALSE(r.HasMember("outOfRange"));
}

TEST(MappingLanguage, InvalidDateTimeNamesThePath) {
  ScratchDir dir;
  const auto set = loadDemo(dir, demoMapper("", R"("when": {"$dateTime": "$.item.when"})"));
  ASSERT_TRUE(set) << set.error().describe();
  for (const char* bad :
       {"2026-11-20T09:00:00", "2026-11-31T09:00:00Z", "2026-11-20T24:00:00Z", "2026-11-20T09:00:00+15:00"}) {
    auto record = parseJson(kDemoRecord);
    record["item"]["when"].SetString(rapidjson::StringRef(bad));
    const auto output = set.value().map(record, kContext);
    ASSERT_FALSE(output) << bad;
    EXPECT_EQ(output.error().where, "item.when");
  }
}

TEST(MappingLanguage, ContextWithoutClinicOrIdentifierBaseIsRefused) {
  ScratchDir dir;
  const auto set = loadDemo(dir, demoMapper("", ""));
  ASSERT_TRUE(set) << set.error().describe();
  EXPECT_FALSE(set.value().map(parseJson(kDemoRecord), {"", "https://ids.example/"}));
  EXPECT_FALSE(set.value().map(parseJson(kDemoRecord), {"c1", ""}));
}

TEST(MappingLanguage, SourceIdMissingIsAnError) {
  ScratchDir dir;
  const auto set = loadDemo(dir, demoMapper("", ""));
  ASSERT_TRUE(set) << set.error().describe();
  auto record = parseJson(kDemoRecord);
  record["item"].RemoveMember("id");
  const auto output = set.value().map(record, kContext);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().where, "item.id");
}

std::string where(const ScratchDir& dir, int line, int column) {
  return (dir.path() / "demo.mapper.json").string() + ":" + std::to_string(line) + ":" + std::to_string(column);
}

// ---- Loops, conditionals on values, string functions ----

constexpr const char* kLoopRecord = R"({"record_type":"demo","clinic":"c1","patient":{"mrn":"M1"},
  "visit":{"id":"V-9","notes":["  a < b & c  ","Ünïcödé"],
    "parts":[{"kind":"alpha","n":2,"tags":["x","y"]},{"kind":"beta","tags":[]},{"kind":"gamma","n":0.5}]}})";

std::string loopMapper(const std::string& value_maps, const std::string& template_members) {
  return R"({
  "format": "gw-mapper/1",
  "recordType": "demo",
  "valueMaps": {)" +
         value_maps + R"(},
  "resources": [{
    "resourceType": "Basic",
    "forEach": "$.visit.parts",
    "sourceId": {"$concat": ["$.visit.id", ":", "$item.kind"]},
    "identifierKind": "part",
    "template": {
      "identifier": [{"system": "$identifierSystem", "value": "$sourceId"}])" +
         (template_members.empty() ? "" : ",\n      " + template_members) + R"(
    }
  }]
})";
}

TEST(MappingLanguage, ForEachMakesOneResourcePerItemWithDeterministicIds) {
  ScratchDir dir;
  const auto set = loadDemo(dir, loopMapper(R"("kinds": {"entries": {"alpha": "A", "beta": "B", "gamma": "G"}})",
                                            R"("code": {"$lookup": "kinds", "value": "$item.kind"},
      "position": "$index",
      "amount": "$item.n",
      "tags": {"$join": "$item.tags", "separator": "+"},
      "patient": {"$reference": "Patient", "sourceId": "$.patient.mrn"})"));
  ASSERT_TRUE(set) << set.error().describe();
  const auto output = set.value().map(parseJson(kLoopRecord), kContext);
  ASSERT_TRUE(output) << output.error().describe();
  const auto& resources = output.value().resources;
  ASSERT_EQ(resources.size(), 3u);
  const char* kinds[] = {"alpha", "beta", "gamma"};
  const char* codes[] = {"A", "B", "G"};
  for (std::size_t i = 0; i < 3; ++i) {
    const std::string source_id = std::string("V-9:") + kinds[i];
    EXPECT_EQ(resources[i].identifier_value, source_id);
    EXPECT_EQ(resources[i].identifier_system, "https://ids.clinic-c1.example/part");
    EXPECT_EQ(resources[i].id, ids::resourceId("c1", "Basic", source_id));
    EXPECT_EQ(json::getString(resources[i].resource, "code"), codes[i]);
    EXPECT_EQ(resources[i].resource["position"].GetInt64(), static_cast<std::int64_t>(i));
    EXPECT_EQ(json::getString(resources[i].resource, "patient"), "Patient/" + ids::resourceId("c1", "Patient", "M1"));
  }
  EXPECT_EQ(json::getString(resources[0].resource, "tags"), "x+y");
  EXPECT_FALSE(resources[1].resource.HasMember("tags"));    // empty array: absent
  EXPECT_FALSE(resources[1].resource.HasMember("amount"));  // missing field in this item: absent
  EXPECT_EQ(resources[2].resource["amount"].GetDouble(), 0.5);

  // No items, no resources (and no error).
  auto record = parseJson(kLoopRecord);
  record["visit"]["parts"].SetArray();
  const auto none = set.value().map(record, kContext);
  ASSERT_TRUE(none) << none.error().describe();
  EXPECT_TRUE(none.value().resources.empty());
}

TEST(MappingLanguage, ErrorsInsideLoopsNameTheItemIndex) {
  ScratchDir dir;
  const auto set = loadDemo(dir, loopMapper(R"("kinds": {"entries": {"alpha": "A", "beta": "B"}})",
                                            R"("code": {"$lookup": "kinds", "value": "$item.kind"})"));
  ASSERT_TRUE(set) << set.error().describe();
  const auto output = set.value().map(parseJson(kLoopRecord), kContext);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().where, "visit.parts[2].kind");
  EXPECT_THAT(output.error().message, HasSubstr("code 'gamma' of 'visit.parts[2].kind' is not in value map 'kinds'"));
  EXPECT_THAT(output.error().hint, HasSubstr("alpha"));
}

TEST(MappingLanguage, TwoItemsWithOneSourceIdAreRejected) {
  ScratchDir dir;
  const auto set = loadDemo(dir, loopMapper("", ""));
  ASSERT_TRUE(set) << set.error().describe();
  auto record = parseJson(kLoopRecord);
  record["visit"]["parts"][2]["kind"].SetString("alpha");
  const auto output = set.value().map(record, kContext);
  ASSERT_FALSE(output);
  EXPECT_EQ(output.error().where, "visit.parts[2]");
  EXPECT_THAT(output.error().message, HasSubstr("items 0 and 2 of 'visit.parts' give the same source id"));
  EXPECT_THAT(output.error().describe(), Not(HasSubstr("V-9")));  // identifiers are not quoted
}

TEST(MappingLanguage, MapJoinAndStringFunctions) {
  ScratchDir dir;
  const auto set = loadDemo(dir, demoMapper("", R"("upper": {"$upper": "$.item.code"},
      "lower": {"$lower": "Ab-Ü"},
      "trimmed": {"$trim": "$.item.pad"},
      "blank": {"$trim": "$.item.blank"},
      "escaped": {"$escapeXhtml": "$.item.text"},
      "list": {"$map": "$.item.list", "to": {"value": "$item", "at": "$index"}},
      "joined": {"$join": {"$map": "$.item.list", "to": {"$concat": ["<", "$item", ">"]}}, "separator": ", "},
      "nested": {"$map": "$.item.groups", "to": {"$join": {"$map": "$item.members", "to": {"$upper": "$item"}}, "separator": "|"}},
      "none": {"$map": "$.item.missing", "to": "x"},
      "numbered": {"$join": {"$map": "$.item.groups", "to": {"$concat": ["#", "$index", "=", "$item.n"]}}, "separator": ","},
      "noNumbers": {"$join": {"$map": "$.item.list", "to": {"$concat": ["#", "$item.n"]}}})"));
  ASSERT_TRUE(set) << set.error().describe();
  auto record = parseJson(R"({"record_type":"demo","item":{"id":"I-1","code":"abc","pad":" \t padded \n","blank":"   ",
    "text":"Tom & \"Jerry\" <b>'s</b>","list":["x","y"],"groups":[{"members":["a","b"],"n":1},{"members":["c"]},{"members":["d"],"n":3}]}})");
  const auto output = set.value().map(record, kContext);
  ASSERT_TRUE(output) << output.error().describe();
  const auto& r = output.value().resources[0].resource;
  EXPECT_EQ(json::getString(r, "upper"), "ABC");
  EXPECT_EQ(json::getString(r, "lower"), "ab-Ü");  // ASCII only: UTF-8 passes through
  EXPECT_EQ(json::getString(r, "trimmed"), "padded");
  EXPECT_FALSE(r.HasMember("blank"));  // trims to nothing: absent, as FHIR has no empty strings
  EXPECT_EQ(json::getString(r, "escaped"), "Tom &amp; &quot;Jerry&quot; &lt;b&gt;&#39;s&lt;/b&gt;");
  EXPECT_TRUE(r["list"] == parseJson(R"([{"value":"x","at":0},{"value":"y","at":1}])")) << json::toString(r["list"]);
  EXPECT_EQ(json::getString(r, "joined"), "<x>, <y>");
  EXPECT_TRUE(r["nested"] == parseJson(R"(["A|B","C","D"])")) << json::toString(r["nested"]);
  EXPECT_FALSE(r.HasMember("none"));
  // Items whose value is absent are left out, with no stray separator; none left: absent.
  EXPECT_EQ(json::getString(r, "numbered"), "#0=1,#2=3");
  EXPECT_FALSE(r.HasMember("noNumbers"));
}

TEST(MappingLanguage, NarrativeWritesTheSharedListFormat) {
  ScratchDir dir;
  const auto set = loadDemo(dir, demoMapper("", R"("div": {"$narrative": "Demo & co", "sections": [
        {"heading": "Groups", "empty": "none.",
         "items": {"$map": "$.item.groups", "to": {"label": "$item.name", "qualifier": "$item.n", "detail": "$item.note"}}},
        {"heading": "Missing", "items": {"$map": "$.item.missing", "to": {"label": "$item"}}, "empty": "none recorded."}]})"));
  ASSERT_TRUE(set) << set.error().describe();
  auto record = parseJson(R"({"record_type":"demo","item":{"id":"I-1",
    "groups":[{"name":"A<1>","n":1,"note":"x & y"},{"name":"B"},{"n":3}]}})");
  auto output = set.value().map(record, kContext);
  ASSERT_FALSE(output) << "the third group has no label";
  EXPECT_THAT(output.error().message, HasSubstr("$narrative items need a label"));
  record["item"]["groups"].PopBack();
  output = set.value().map(record, kContext);
  ASSERT_TRUE(output) << output.error().describe();
  // Every text escaped; qualifier and detail left out when absent.
  EXPECT_EQ(json::getString(output.value().resources[0].resource, "div"),
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p><b>Demo &amp; co</b></p><p>Groups:</p><ul>"
            "<li>A&lt;1&gt; (1): x &amp; y</li><li>B</li></ul><p>Missing: none recorded.</p></div>");
}

TEST(MapperLoadErrors, NarrativeSectionsAreCheckedAtLoad) {
  ScratchDir dir;
  auto set = loadDemo(dir, demoMapper("", R"("div": {"$narrative": "T"})"));
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("$narrative needs \"sections\""));
  set = loadDemo(dir,
                 demoMapper("", R"("div": {"$narrative": "T", "sections": [{"heading": "H", "items": "$.item.list"}]})"));
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("empty takes the text written when the section has no items"));
  set = loadDemo(
      dir,
      demoMapper(
          "",
          R"("div": {"$narrative": "T", "sections": [{"heading": "H", "items": "$.item.list", "empty": "-", "note": 1}]})"));
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("unknown key 'note' in a $narrative section"));
}

TEST(MappingLanguage, IfTestsValuesTypesAndMembership) {
  ScratchDir dir;
  const auto set =
      loadDemo(dir, demoMapper("", R"("isCode": {"$if": "$.item.code", "equals": "b", "then": "is b", "else": "not b"},
      "isNumber": {"$if": "$.item.count", "is": "number", "then": "number"},
      "isString": {"$if": "$.item.count", "is": "string", "then": "string", "else": "not a string"},
      "isBool": {"$if": "$.item.flag", "is": "boolean", "then": "boolean"},
      "hasY": {"$if": "$.item.list", "contains": "y", "then": "has y"},
      "hasZ": {"$if": "$.item.list", "contains": "z", "then": "has z", "else": "no z"},
      "absent": {"$if": "$.item.nothing", "equals": "b", "then": "never", "else": "absent is not equal"})"));
  ASSERT_TRUE(set) << set.error().describe();
  const auto output = set.value().map(parseJson(kDemoRecord), kContext);
  ASSERT_TRUE(output) << output.error().describe();
  const auto& r = output.value().resources[0].resource;
  EXPECT_EQ(json::getString(r, "isCode"), "is b");
  EXPECT_EQ(json::getString(r, "isNumber"), "number");
  EXPECT_EQ(json::getString(r, "isString"), "not a string");
  EXPECT_EQ(json::getString(r, "isBool"), "boolean");  // false is a value, not an absence
  EXPECT_EQ(json::getString(r, "hasY"), "has y");
  EXPECT_EQ(json::getString(r, "hasZ"), "no z");
  EXPECT_EQ(json::getString(r, "absent"), "absent is not equal");
}

TEST(MapperLoadErrors, LoopConstructsAreCheckedAtLoad) {
  ScratchDir dir;
  // $item outside any loop (line 11 is the first template member).
  auto set = loadDemo(dir, demoMapper("", R"("code": "$item.kind")"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 15));
  // $index has no fields.
  set = loadDemo(dir, loopMapper("", R"("n": "$index.x")"));
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("'$index' is a number"));
  // $map over something that is not a path; $map without "to".
  set = loadDemo(dir, demoMapper("", R"("xs": {"$map": "literal", "to": "x"})"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 22));
  EXPECT_THAT(set.error().message, HasSubstr("$map takes the path of a record array"));
  set = loadDemo(dir, demoMapper("", R"("xs": {"$map": "$.item.list"})"));
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("$map needs \"to\""));
  // $if with two tests, or an unknown type.
  set = loadDemo(dir, demoMapper("", R"("x": {"$if": "$.item.code", "equals": "a", "is": "string", "then": "y"})"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 12));
  EXPECT_THAT(set.error().message, HasSubstr("at most one of"));
  set = loadDemo(dir, demoMapper("", R"("x": {"$if": "$.item.code", "is": "text", "then": "y"})"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 41));
  EXPECT_THAT(set.error().message, HasSubstr("is takes one of"));
  // forEach must be a record path.
  set = loadDemo(dir, R"({"format": "gw-mapper/1", "recordType": "demo", "resources": [
    {"resourceType": "Basic", "forEach": "$sourceId", "sourceId": "$.a.id", "identifierKind": "a",
     "template": {"identifier": [{"system": "$identifierSystem", "value": "$sourceId"}]}}]})");
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 2, 42));
  EXPECT_THAT(set.error().message, HasSubstr("forEach must walk a record array"));
}

TEST(MapperLoadErrors, ItemPathsAreCheckedAgainstTheRecordSchema) {
  auto schemas = RecordSchemas::loadDirectory(schemasDir());
  ASSERT_TRUE(schemas);
  ScratchDir dir;
  std::string text = readFile(mappersDir() / "harm_reduction_service.mapper.json");
  const auto at = text.find("\"$item.quantity\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 16, "\"$item.quantty\"");
  dir.write("harm_reduction_service.mapper.json", text);
  const auto set = MapperSet::loadDirectory(dir.path(), &schemas.value());
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("'service.items[0].quantty' is not declared"));
  EXPECT_THAT(set.error().where, HasSubstr("harm_reduction_service.mapper.json:"));
}

// ---- Broken mapper files: file:line:column ----

TEST(MapperLoadErrors, MalformedJsonGivesFileLineColumn) {
  ScratchDir dir;
  const auto set = loadDemo(dir, "{\n  \"format\": \"gw-mapper/1\",\n  \"recordType\" \"demo\"\n}\n");
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, ErrorCode::Config);
  EXPECT_EQ(set.error().where, where(dir, 3, 16));
  EXPECT_THAT(set.error().message, HasSubstr("malformed JSON"));
}

TEST(MapperLoadErrors, AKeyTwiceGivesFileLineColumnAndPath) {
  ScratchDir dir;
  const auto set = loadDemo(dir, "{\n  \"format\": \"gw-mapper/1\",\n  \"format\": \"gw-mapper/2\"\n}\n");
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, ErrorCode::Config);
  EXPECT_EQ(set.error().where, where(dir, 3, 3));
  EXPECT_THAT(set.error().message, HasSubstr("$.format"));
}

TEST(MapperLoadErrors, UnknownFunctionPointsAtItsName) {
  ScratchDir dir;
  // Line 11 of the generated file is the first template member after identifier.
  const auto set = loadDemo(dir, demoMapper("", R"("code": {"$lowercase": "$.item.code"})"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 16));
  EXPECT_THAT(set.error().message, HasSubstr("unknown function '$lowercase'"));
  EXPECT_THAT(set.error().message, HasSubstr("$lookup"));
}

TEST(MapperLoadErrors, BadPathSyntaxPointsAtTheValue) {
  ScratchDir dir;
  const auto set = loadDemo(dir, demoMapper("", R"("code": "$.item..code")"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 15));
  EXPECT_THAT(set.error().message, HasSubstr("bad path syntax at character 8"));
}

TEST(MapperLoadErrors, UnknownVariableSuggestsRecordPath) {
  ScratchDir dir;
  auto set = loadDemo(dir, demoMapper("", R"("code": "$itme.code")"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 15));
  EXPECT_THAT(set.error().message, HasSubstr("unknown variable '$itme'"));
  EXPECT_THAT(set.error().hint, HasSubstr("$.itme"));
  // $item is a loop variable: outside a loop it is an error that still suggests the record path.
  set = loadDemo(dir, demoMapper("", R"("code": "$item.code")"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 15));
  EXPECT_THAT(set.error().message, HasSubstr("'$item' exists only inside a loop"));
  EXPECT_THAT(set.error().hint, HasSubstr("$.item"));
}

TEST(MapperLoadErrors, UnknownValueMapAndUnknownKeys) {
  ScratchDir dir;
  auto set = loadDemo(dir, demoMapper(R"("codes": {"entries": {"a": "A"}})",
                                      R"("code": {"$lookup": "kodes", "value": "$.item.code"})"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 27));
  EXPECT_THAT(set.error().message, HasSubstr("unknown value map 'kodes'; defined: codes"));

  set = loadDemo(dir, demoMapper(R"("codes": {"entries": {"a": "A"}})",
                                 R"("code": {"$lookup": "codes", "valeu": "$.item.code"})"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 36));
  EXPECT_THAT(set.error().message, HasSubstr("unknown key 'valeu' in $lookup"));

  set = loadDemo(dir, demoMapper(R"("codes": {"entires": {"a": "A"}})", ""));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 4, 27));
  EXPECT_THAT(set.error().message, HasSubstr("unknown key 'entires'"));
}

TEST(MapperLoadErrors, TemplateMustCarryTheBusinessIdentifierAndNotSetId) {
  ScratchDir dir;
  auto set = loadDemo(dir, R"({"format": "gw-mapper/1", "recordType": "demo", "resources": [
    {"resourceType": "Basic", "sourceId": "$.item.id", "identifierKind": "item", "template": {"code": "x"}}]})");
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("business identifier"));

  set = loadDemo(dir, demoMapper("", R"("id": "$.item.id")"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 11, 7));
  EXPECT_THAT(set.error().message, HasSubstr("the engine sets \"id\""));
}

TEST(MapperLoadErrors, FormatAndRecordTypeAreChecked) {
  ScratchDir dir;
  auto set = loadDemo(dir, R"({"format": "gw-mapper/2", "recordType": "demo", "resources": []})");
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().where, where(dir, 1, 12));
  set = loadDemo(dir, R"({"format": "gw-mapper/1", "recordType": "patient", "resources": []})");
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("recordType must be \"demo\""));
}

TEST(MapperLoadErrors, PathsAreCheckedAgainstTheRecordSchema) {
  auto schemas = RecordSchemas::loadDirectory(schemasDir());
  ASSERT_TRUE(schemas);
  ScratchDir dir;
  std::string text = readFile(mappersDir() / "mat_prescription.mapper.json");
  const auto at = text.find("\"$.prescription.frequency\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 26, "\"$.prescription.frequncy\"");
  dir.write("mat_prescription.mapper.json", text);
  const auto set = MapperSet::loadDirectory(dir.path(), &schemas.value());
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("'prescription.frequncy' is not declared"));
  EXPECT_THAT(set.error().where, HasSubstr("mat_prescription.mapper.json:"));
  // Without schemas the same file loads (and would map nothing for that field).
  EXPECT_TRUE(MapperSet::loadDirectory(dir.path()));
}

TEST(MapperLoadErrors, EmptyDirectoryIsAnError) {
  ScratchDir dir;
  const auto set = MapperSet::loadDirectory(dir.path());
  ASSERT_FALSE(set);
  EXPECT_THAT(set.error().message, HasSubstr("no *.mapper.json"));
}

}  // namespace
}  // namespace gw::mapping

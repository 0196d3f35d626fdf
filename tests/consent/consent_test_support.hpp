#pragma once
// Helpers shared by the consent tests: dates, consent rows, class sets, repo files.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <string_view>

#include "consent/consent_registry.hpp"
#include "consent/consent_version.hpp"
#include "support/test_files.hpp"
#include "support/test_json.hpp"

namespace gw::consent::testing {

using privacy::ClassSet;
using privacy::DataClass;

inline Date day(std::string_view text) {
  auto d = parseDate(text);
  EXPECT_TRUE(d.has_value()) << "bad test date " << text;
  return d.value_or(Date{});
}

/// 12:00 UTC of a day: inside that day in every registry that reads days as UTC days.
inline SystemTime noon(std::string_view date) { return SystemTime(day(date)) + std::chrono::hours(12); }

inline const ClassSet kGeneral{DataClass::General};
inline const ClassSet kSud{DataClass::Sud};
inline const ClassSet kMh{DataClass::Mh};
inline const ClassSet kSudMh = ClassSet(DataClass::Sud).add(DataClass::Mh);
inline const ClassSet kGeneralSud = ClassSet(DataClass::General).add(DataClass::Sud);
inline const ClassSet kAll = ClassSet(DataClass::General).add(DataClass::Sud).add(DataClass::Mh);

/// An active TREAT consent of patient "pat-1" for partner "st-mary" covering general and sud,
/// 2026-03-01..2026-08-31, version 1; tests change what they need.
inline ConsentVersion sampleConsent(std::string consent_id = "77") {
  ConsentVersion v;
  v.clinic = "c1";
  v.consent_id = std::move(consent_id);
  v.version = 1;
  v.patient_key = "pat-1";
  v.partner_id = "st-mary";
  v.status = ConsentStatus::Active;
  v.purposes = PurposeSet(Purpose::Treat);
  v.classes = kGeneralSud;
  v.period_start = day("2026-03-01");
  v.period_end = day("2026-08-31");
  v.signed_on = day("2026-02-20");
  v.resource_id = "res-" + v.consent_id;
  v.recorded_at = 1'770'000'000'000;
  return v;
}

inline void add(ConsentRegistry& registry, ConsentVersion v) {
  auto r = registry.upsert(std::move(v));
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_TRUE(r.value().applied);
}

inline DecisionRequest request(ClassSet classes, std::string_view date = "2026-05-15", std::string_view partner = "st-mary",
                               std::string_view purpose = "TREAT", std::string_view patient = "pat-1") {
  DecisionRequest r;
  r.patient_key = patient;
  r.partner_id = partner;
  r.purpose = purpose;
  r.at = noon(date);
  r.classes = classes;
  return r;
}

inline std::string readRepoFile(const std::string& relative) {
  std::string text = gw::test::readFile(gw::test::repoPath(relative));
  EXPECT_FALSE(text.empty()) << "cannot read " << relative;
  return text;
}

using gw::test::parseJson;

}  // namespace gw::consent::testing

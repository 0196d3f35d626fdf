#include "consent/consent_version.hpp"

#include <cstdio>

#include "common/dates.hpp"

namespace gw::consent {
namespace {

std::string optionalDate(const std::optional<Date>& d) { return d ? formatDate(*d) : std::string(); }

Error columnError(std::string_view column, std::string_view expected) {
  return makeError(ErrorCode::Storage, "consents." + std::string(column) + " is not " + std::string(expected),
                   "consents." + std::string(column),
                   "the consent row is damaged: restore the consents table from a backup or re-send the consent record");
}

Result<std::optional<Date>> optionalColumnDate(std::string_view column, const std::string& text) {
  if (text.empty()) return std::optional<Date>();
  auto d = parseDate(text);
  if (!d) return columnError(column, "a YYYY-MM-DD date or empty");
  return std::optional<Date>(*d);
}

}  // namespace

std::optional<Date> parseDate(std::string_view text) {
  const auto date = text.size() == 10 ? dates::readCalendarDate(text) : std::nullopt;
  if (!date) return std::nullopt;
  return Date(std::chrono::days(dates::daysFromCivil(date->year, date->month, date->day)));
}

std::string formatDate(Date d) {
  const std::chrono::year_month_day ymd(d);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

Date utcDate(SystemTime t) { return std::chrono::floor<std::chrono::days>(t); }

std::optional<std::int64_t> parseRfc3339Millis(std::string_view s) {
  dates::DateTime t;
  if (dates::readRfc3339(s, t) != dates::Rfc3339Status::Ok) return std::nullopt;
  return dates::unixMillis(t);
}

std::string_view purposeName(Purpose p) {
  switch (p) {
    case Purpose::Treat: return "TREAT";
    case Purpose::Hpaymt: return "HPAYMT";
    case Purpose::Hoperat: return "HOPERAT";
  }
  return "";
}

std::optional<Purpose> parsePurpose(std::string_view s) {
  if (s == "TREAT") return Purpose::Treat;
  if (s == "HPAYMT") return Purpose::Hpaymt;
  if (s == "HOPERAT") return Purpose::Hoperat;
  return std::nullopt;
}

std::string purposeSetName(PurposeSet s) {
  std::string out;
  for (Purpose p : {Purpose::Treat, Purpose::Hpaymt, Purpose::Hoperat}) {
    if (!s.has(p)) continue;
    if (!out.empty()) out += ',';
    out += purposeName(p);
  }
  return out;
}

std::optional<PurposeSet> parsePurposeSet(std::string_view s) {
  PurposeSet out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    auto p = parsePurpose(s.substr(0, comma));
    if (!p) return std::nullopt;
    out.add(*p);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::string_view statusName(ConsentStatus s) { return s == ConsentStatus::Active ? "active" : "revoked"; }

std::optional<ConsentStatus> parseStatus(std::string_view s) {
  if (s == "active") return ConsentStatus::Active;
  if (s == "revoked") return ConsentStatus::Revoked;
  return std::nullopt;
}

ConsentRow toRow(const ConsentVersion& v) {
  ConsentRow r;
  r.clinic = v.clinic;
  r.consent_id = v.consent_id;
  r.version = v.version;
  r.patient_key = v.patient_key;
  r.partner_id = v.partner_id;
  r.status = std::string(statusName(v.status));
  r.purposes = purposeSetName(v.purposes);
  r.classes = privacy::classSetName(v.classes);
  r.period_start = formatDate(v.period_start);
  r.period_end = optionalDate(v.period_end);
  r.revoked_on = optionalDate(v.revoked_on);
  r.signed_on = optionalDate(v.signed_on);
  r.resource_id = v.resource_id;
  r.recorded_at = v.recorded_at;
  return r;
}

Result<ConsentVersion> fromRow(const ConsentRow& row) {
  ConsentVersion v;
  v.clinic = row.clinic;
  v.consent_id = row.consent_id;
  v.version = row.version;
  v.patient_key = row.patient_key;
  v.partner_id = row.partner_id;
  auto status = parseStatus(row.status);
  if (!status) return columnError("status", "'active' or 'revoked'");
  v.status = *status;
  auto purposes = parsePurposeSet(row.purposes);
  if (!purposes) return columnError("purposes", "a comma-separated list of TREAT, HPAYMT, HOPERAT");
  v.purposes = *purposes;
  auto classes = privacy::parseClassSet(row.classes);
  if (!classes) return columnError("classes", "a comma-separated list of general, sud, mh");
  v.classes = *classes;
  auto start = parseDate(row.period_start);
  if (!start) return columnError("period_start", "a YYYY-MM-DD date");
  v.period_start = *start;
  GW_TRY(v.period_end, optionalColumnDate("period_end", row.period_end));
  GW_TRY(v.revoked_on, optionalColumnDate("revoked_on", row.revoked_on));
  GW_TRY(v.signed_on, optionalColumnDate("signed_on", row.signed_on));
  v.resource_id = row.resource_id;
  v.recorded_at = row.recorded_at;
  return v;
}

std::string rowProblem(const ConsentVersion& v) {
  if (v.clinic.empty()) return "the clinic is empty";
  if (v.consent_id.empty()) return "the consent id is empty";
  if (v.version < 1) return "the version is below 1";
  if (v.patient_key.empty()) return "the patient key is empty";
  if (v.partner_id.empty()) return "the recipient partner is empty";
  if (v.purposes.empty()) return "no purpose is listed";
  if (v.classes.empty()) return "no category is listed";
  if (v.period_end && *v.period_end < v.period_start) return "the period ends before it starts";
  return {};
}

}  // namespace gw::consent

#include "consent/consent_version.hpp"

#include <cstdio>

#include "common/dates.hpp"

namespace gw::consent {
namespace {

std::string optionalDate(const std::optional<Date>& d) { return d ? formatDate(*d) : std::string(); }
std::string optionalBound(const std::optional<Bound>& b) { return b ? formatBound(*b) : std::string(); }

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

Result<std::optional<Bound>> optionalColumnBound(std::string_view column, const std::string& text) {
  if (text.empty()) return std::optional<Bound>();
  auto b = parseBound(text);
  if (!b) return columnError(column, "a YYYY-MM-DD date, an RFC 3339 date-time or empty");
  return std::optional<Bound>(*b);
}

}  // namespace

std::string formatBound(const Bound& b) {
  if (b.dateOnly()) return formatDate(b.day);
  const std::int64_t ms = *b.at_ms;
  const std::int64_t days = ms >= 0 ? ms / 86'400'000 : -((-ms + 86'399'999) / 86'400'000);
  const std::int64_t rest = ms - days * 86'400'000;
  const std::string date = formatDate(Date(std::chrono::days(days)));
  char buf[48];
  std::snprintf(buf, sizeof buf, "%sT%02d:%02d:%02d.%03dZ", date.c_str(), static_cast<int>(rest / 3'600'000),
                static_cast<int>(rest / 60'000 % 60), static_cast<int>(rest / 1000 % 60), static_cast<int>(rest % 1000));
  return buf;
}

std::optional<Bound> parseBound(std::string_view text) {
  if (text.size() == 10) {
    auto d = parseDate(text);
    if (!d) return std::nullopt;
    return Bound(*d);
  }
  auto ms = parseRfc3339Millis(text);
  if (!ms) return std::nullopt;
  return Bound::instant(*ms);
}

std::string_view boundForm(const Bound& b) { return b.dateOnly() ? "local-day" : "instant"; }

std::string boundForms(const ConsentVersion& v) {
  std::string out = "start:";
  out += boundForm(v.period_start);
  if (v.period_end) {
    out += ",end:";
    out += boundForm(*v.period_end);
  }
  if (v.revoked_on) {
    out += ",revoked:";
    out += boundForm(*v.revoked_on);
  }
  return out;
}

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
  r.period_start = formatBound(v.period_start);
  r.period_end = optionalBound(v.period_end);
  r.revoked_on = optionalBound(v.revoked_on);
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
  auto start = parseBound(row.period_start);
  if (!start) return columnError("period_start", "a YYYY-MM-DD date or an RFC 3339 date-time");
  v.period_start = *start;
  GW_TRY(v.period_end, optionalColumnBound("period_end", row.period_end));
  GW_TRY(v.revoked_on, optionalColumnBound("revoked_on", row.revoked_on));
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
  if (v.period_end && v.period_end->dateOnly() == v.period_start.dateOnly() &&
      (v.period_start.dateOnly() ? v.period_end->day < v.period_start.day : *v.period_end->at_ms < *v.period_start.at_ms)) {
    return "the period ends before it starts";
  }
  return {};
}

}  // namespace gw::consent

#include "consent/consent_record.hpp"

#include "common/json.hpp"

namespace gw::consent {
namespace {

// Cited in messages so a clinic knows why a sud consent needs more than a general one.
constexpr std::string_view kPart2 = " (a consent that includes 'sud' must have it: 42 CFR 2.31)";

class Checker {
 public:
  explicit Checker(std::vector<FieldError>& out) : out_(out) {}

  void add(std::string path, std::string reason, std::string hint) {
    out_.push_back({std::move(path), std::move(reason), std::move(hint)});
  }

  /// The member as a non-empty string, or nullptr (reporting why when `required`).
  const rapidjson::Value* string(const rapidjson::Value& object, std::string_view key, const std::string& path,
                                 bool required, std::string_view missing_hint, std::string_view why = {}) {
    const rapidjson::Value* v = json::find(object, key);
    if (v == nullptr) {
      if (required) add(path, "is missing" + std::string(why), std::string(missing_hint));
      return nullptr;
    }
    if (!v->IsString() || v->GetStringLength() == 0) {
      add(path, "must be a non-empty string",
          missing_hint.empty() ? "send text, or leave the field out" : std::string(missing_hint));
      return nullptr;
    }
    return v;
  }

  /// The member as a real YYYY-MM-DD day; nullopt when absent or wrong (reported when wrong, or
  /// when absent and `required`).
  std::optional<Date> date(const rapidjson::Value& object, std::string_view key, const std::string& path, bool required,
                           std::string_view missing_hint, std::string_view why = {}) {
    const rapidjson::Value* v = json::find(object, key);
    if (v == nullptr) {
      if (required) add(path, "is missing" + std::string(why), std::string(missing_hint));
      return std::nullopt;
    }
    auto d = v->IsString() ? parseDate(json::view(*v)) : std::nullopt;
    if (!d) add(path, "is not a real calendar date in the form YYYY-MM-DD", "send the date as YYYY-MM-DD, e.g. 2026-11-20");
    return d;
  }

  /// The member as a bound: a YYYY-MM-DD day (the clinic's local day) or, when `date_time_ok`,
  /// an RFC 3339 date-time with an offset (an instant).
  std::optional<Bound> bound(const rapidjson::Value& object, std::string_view key, const std::string& path, bool required,
                             std::string_view missing_hint, bool date_time_ok = true) {
    const rapidjson::Value* v = json::find(object, key);
    if (v == nullptr) {
      if (required) add(path, "is missing", std::string(missing_hint));
      return std::nullopt;
    }
    const std::string_view text = v->IsString() ? json::view(*v) : std::string_view();
    auto b = text.size() == 10 ? parseBound(text) : (date_time_ok && !text.empty() ? parseBound(text) : std::nullopt);
    if (!b) {
      add(path,
          date_time_ok ? "is neither a real calendar date (YYYY-MM-DD) nor an RFC 3339 date-time with an offset"
                       : "is not a real calendar date in the form YYYY-MM-DD",
          date_time_ok
              ? "send a day, e.g. 2026-11-20 (the clinic's local day), or an instant, e.g. 2026-11-20T14:05:00-05:00"
              : "send the date as YYYY-MM-DD, e.g. 2026-11-20");
    }
    return b;
  }

 private:
  std::vector<FieldError>& out_;
};

}  // namespace

std::vector<FieldError> checkValidity(const rapidjson::Value& record) {
  std::vector<FieldError> errors;
  Checker check(errors);
  const rapidjson::Value* consent = record.IsObject() ? json::find(record, "consent") : nullptr;
  if (consent == nullptr || !consent->IsObject()) {
    check.add("consent", consent == nullptr ? "is missing" : "must be an object",
              "a consent record carries a 'consent' object (see the clinic record format, type consent)");
    return errors;
  }
  const rapidjson::Value& c = *consent;

  // Categories first: whether the consent includes sud decides which other fields are required.
  privacy::ClassSet classes;
  bool categories_ok = false;
  if (const auto* cats = json::find(c, "categories"); cats == nullptr) {
    check.add("consent.categories", "is missing", "list the data categories the patient consented to: general, sud, mh");
  } else if (!cats->IsArray()) {
    check.add("consent.categories", "must be an array", "list the data categories as an array, e.g. [\"general\",\"sud\"]");
  } else {
    categories_ok = true;
    for (rapidjson::SizeType i = 0; i < cats->Size(); ++i) {
      const auto& item = (*cats)[i];
      auto cls = item.IsString() ? privacy::parseClass(json::view(item)) : std::nullopt;
      if (!cls) {
        categories_ok = false;
        check.add("consent.categories[" + std::to_string(i) + "]", "is not a known category",
                  "use one of: general, sud, mh");
      } else {
        classes.add(*cls);
      }
    }
    if (cats->Empty()) {
      categories_ok = false;
      check.add("consent.categories", "is empty: the consent would permit nothing",
                "list at least one data category: general, sud, mh");
    }
  }
  // An unreadable category list might have meant sud: hold the consent to the sud rules then
  // (without citing Part 2, which may not apply).
  const bool sud = classes.has(privacy::DataClass::Sud) || !categories_ok;
  const std::string_view why = classes.has(privacy::DataClass::Sud) ? kPart2 : std::string_view();

  check.string(c, "id", "consent.id", true, "send the clinic's identifier of this consent");
  check.string(c, "recipient", "consent.recipient", true,
               "name the partner the patient consented to disclose to (a partner id of the configuration)", why);

  if (const auto* purposes = json::find(c, "purposes"); purposes == nullptr) {
    check.add("consent.purposes", "is missing" + std::string(why),
              "list at least one purpose of use: TREAT, HPAYMT, HOPERAT");
  } else if (!purposes->IsArray()) {
    check.add("consent.purposes", "must be an array", "list the purposes as an array, e.g. [\"TREAT\"]");
  } else {
    if (purposes->Empty()) {
      check.add("consent.purposes", "lists no purpose" + std::string(why),
                "list at least one purpose of use: TREAT, HPAYMT, HOPERAT");
    }
    for (rapidjson::SizeType i = 0; i < purposes->Size(); ++i) {
      const auto& item = (*purposes)[i];
      if (!item.IsString() || !parsePurpose(json::view(item))) {
        check.add("consent.purposes[" + std::to_string(i) + "]", "is not a known purpose of use",
                  "use one of: TREAT, HPAYMT, HOPERAT");
      }
    }
  }

  std::optional<Bound> start;
  std::optional<Bound> end;
  const rapidjson::Value* effective = json::find(c, "effective");
  if (effective == nullptr) {
    check.add("consent.effective", "is missing", "send the period the consent is in force: {\"start\": \"YYYY-MM-DD\"}");
  } else if (!effective->IsObject()) {
    check.add("consent.effective", "must be an object", "send {\"start\": \"YYYY-MM-DD\", \"end\": \"YYYY-MM-DD\"}");
  } else {
    start = check.bound(*effective, "start", "consent.effective.start", true, "send the first day the consent is in force");
    end = check.bound(*effective, "end", "consent.effective.end", false, {});
  }
  check.string(c, "expires_on_event", "consent.expires_on_event", false,
               "describe the event that ends the consent, or leave the field out");
  const bool has_end = effective != nullptr && effective->IsObject() && json::find(*effective, "end") != nullptr;
  if (sud && !has_end && json::find(c, "expires_on_event") == nullptr) {
    check.add("consent.effective.end", "is missing and there is no consent.expires_on_event" + std::string(why),
              "send the last day the consent is in force as consent.effective.end, or the event that ends it as "
              "consent.expires_on_event");
  }
  // Mixed forms (a day and an instant) are compared once placed in the clinic's zone (registry).
  if (start && end && start->dateOnly() == end->dateOnly() &&
      (start->dateOnly() ? end->day < start->day : *end->at_ms < *start->at_ms)) {
    check.add("consent.effective.end", "is before consent.effective.start",
              "correct the period: the end must not precede the start");
  }

  check.date(c, "signed_on", "consent.signed_on", sud, "send the day the patient or representative signed", why);

  if (const auto* signed_by = json::find(c, "signed_by"); signed_by != nullptr) {
    if (!signed_by->IsString() || (json::view(*signed_by) != "patient" && json::view(*signed_by) != "representative")) {
      check.add("consent.signed_by", "is not a known signer", "use 'patient' or 'representative'");
    }
  }

  const rapidjson::Value* status = json::find(c, "status");
  std::optional<ConsentStatus> st;
  if (status == nullptr) {
    check.add("consent.status", "is missing", "send 'active' or 'revoked'");
  } else if (!status->IsString() || !(st = parseStatus(json::view(*status)))) {
    check.add("consent.status", "is not a known status", "send 'active' or 'revoked'");
  }
  // The revocation: revoked_on (a day: from the start of that local day) or revoked_at (an
  // instant), one of them, on a revoked consent only.
  const bool has_on = json::find(c, "revoked_on") != nullptr;
  const bool has_at = json::find(c, "revoked_at") != nullptr;
  if (has_on) check.bound(c, "revoked_on", "consent.revoked_on", false, {}, false);
  if (has_at) {
    const auto* at = json::find(c, "revoked_at");
    if (!at->IsString() || json::view(*at).size() == 10 || !parseRfc3339Millis(json::view(*at))) {
      check.add("consent.revoked_at", "is not an RFC 3339 date-time with an offset",
                "send the instant of the revocation, e.g. 2026-11-20T14:05:00-05:00, or the day as consent.revoked_on");
    }
  }
  if (has_on && has_at) {
    check.add("consent.revoked_at", "is sent together with consent.revoked_on",
              "send one of them: revoked_at for the instant, revoked_on for the day");
  }
  if (st == ConsentStatus::Revoked && !has_on && !has_at) {
    check.add("consent.revoked_on", "is missing (a revoked consent must say when it was revoked)",
              "send the day the consent was revoked as consent.revoked_on, or the instant as consent.revoked_at");
  } else if (st == ConsentStatus::Active && (has_on || has_at)) {
    check.add(has_on ? "consent.revoked_on" : "consent.revoked_at", "is set on an active consent",
              "if the consent was revoked send status 'revoked'; otherwise remove the revocation date");
  }
  return errors;
}

ConsentReading readConsentRecord(const rapidjson::Value& record) {
  ConsentReading out;
  out.problems = checkValidity(record);
  if (!out.problems.empty()) return out;
  const std::string_view clinic = json::getString(record, "clinic");
  if (clinic.empty()) {
    out.problems.push_back({"clinic", "is missing or empty", "send the clinic id of the record"});
    return out;
  }
  auto recorded_at = parseRfc3339Millis(json::getString(record, "recorded_at"));
  if (!recorded_at) {
    out.problems.push_back({"recorded_at", "is missing or not an RFC 3339 date-time with an offset",
                            "send when the clinic system recorded it, e.g. 2026-11-20T09:00:00-05:00"});
    return out;
  }
  const rapidjson::Value& c = record["consent"];
  const rapidjson::Value& effective = c["effective"];
  ConsentVersion v;
  v.clinic = std::string(clinic);
  v.consent_id = std::string(json::getString(c, "id"));
  v.partner_id = std::string(json::getString(c, "recipient"));
  v.status = *parseStatus(json::getString(c, "status"));
  for (const auto& p : c["purposes"].GetArray()) v.purposes.add(*parsePurpose(json::view(p)));
  for (const auto& k : c["categories"].GetArray()) v.classes.add(*privacy::parseClass(json::view(k)));
  v.period_start = *parseBound(json::getString(effective, "start"));
  v.period_end = parseBound(json::getString(effective, "end"));
  v.revoked_on = c.HasMember("revoked_at") ? parseBound(json::getString(c, "revoked_at"))
                                           : parseBound(json::getString(c, "revoked_on"));
  v.signed_on = parseDate(json::getString(c, "signed_on"));
  v.recorded_at = *recorded_at;
  out.version = std::move(v);
  return out;
}

}  // namespace gw::consent

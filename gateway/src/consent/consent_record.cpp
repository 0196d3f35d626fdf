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

  std::optional<Date> start;
  std::optional<Date> end;
  const rapidjson::Value* effective = json::find(c, "effective");
  if (effective == nullptr) {
    check.add("consent.effective", "is missing", "send the period the consent is in force: {\"start\": \"YYYY-MM-DD\"}");
  } else if (!effective->IsObject()) {
    check.add("consent.effective", "must be an object", "send {\"start\": \"YYYY-MM-DD\", \"end\": \"YYYY-MM-DD\"}");
  } else {
    start = check.date(*effective, "start", "consent.effective.start", true, "send the first day the consent is in force");
    end = check.date(*effective, "end", "consent.effective.end", false, {});
  }
  check.string(c, "expires_on_event", "consent.expires_on_event", false,
               "describe the event that ends the consent, or leave the field out");
  const bool has_end = effective != nullptr && effective->IsObject() && json::find(*effective, "end") != nullptr;
  if (sud && !has_end && json::find(c, "expires_on_event") == nullptr) {
    check.add("consent.effective.end", "is missing and there is no consent.expires_on_event" + std::string(why),
              "send the last day the consent is in force as consent.effective.end, or the event that ends it as "
              "consent.expires_on_event");
  }
  if (start && end && *end < *start) {
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
  if (st == ConsentStatus::Revoked) {
    check.date(c, "revoked_on", "consent.revoked_on", true, "send the day the consent was revoked",
               " (a revoked consent must say when it was revoked)");
  } else if (json::find(c, "revoked_on") != nullptr) {
    check.date(c, "revoked_on", "consent.revoked_on", false, {});
    if (st == ConsentStatus::Active) {
      check.add("consent.revoked_on", "is set on an active consent",
                "if the consent was revoked send status 'revoked'; otherwise remove revoked_on");
    }
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
  v.period_start = *parseDate(json::getString(effective, "start"));
  v.period_end = parseDate(json::getString(effective, "end"));
  v.revoked_on = parseDate(json::getString(c, "revoked_on"));
  v.signed_on = parseDate(json::getString(c, "signed_on"));
  v.recorded_at = *recorded_at;
  out.version = std::move(v);
  return out;
}

}  // namespace gw::consent

#include "outbox/disclosure.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/json.hpp"

namespace gw::outbox {

std::string toJson(const Disclosure& d) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("purpose");
  json::writeString(w, d.purpose);
  w.Key("patient");
  json::writeString(w, d.patient_key);
  w.Key("resources");
  w.StartArray();
  for (const auto& r : d.resources) {
    w.StartObject();
    w.Key("type");
    json::writeString(w, r.resource_type);
    w.Key("id");
    json::writeString(w, r.resource_id);
    w.Key("classes");
    json::writeString(w, privacy::classSetName(r.classes));
    if (!r.activity_classes.empty()) {
      w.Key("activities");
      w.StartArray();
      for (auto c : r.activity_classes) json::writeString(w, privacy::classSetName(c));
      w.EndArray();
    }
    if (!r.plan_classes.empty()) {
      w.Key("plan_classes");
      json::writeString(w, privacy::classSetName(r.plan_classes));
    }
    w.Key("outcome");
    json::writeString(w, consent::outcomeName(r.outcome));
    if (!r.removed_activities.empty()) {
      w.Key("removed");
      w.StartArray();
      for (auto i : r.removed_activities) w.Uint(i);
      w.EndArray();
    }
    w.Key("consent");
    json::writeString(w, r.consent_id);
    w.Key("consent_version");
    w.Int(r.consent_version);
    if (!r.break_glass_id.empty()) {
      w.Key("break_glass");
      json::writeString(w, r.break_glass_id);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("consent_copies");
  w.StartArray();
  for (const auto& c : d.consent_copies) json::writeString(w, c);
  w.EndArray();
  if (d.consent_update) {
    w.Key("kind");
    w.String("consent-update");
  }
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

Result<Disclosure> parseDisclosure(std::string_view text) {
  const auto bad = [](const std::string& what) {
    return makeError(ErrorCode::Internal, "outbox item has an unreadable disclosure record: " + what, "outbox.disclosure",
                     "the item is not sent; re-post the record to queue it again");
  };
  rapidjson::Document d;
  // json::parse caps the nesting: a damaged row of a million '[' would exhaust the stack.
  if (!json::parse(text, d) || !d.IsObject()) return bad("not a JSON object");
  Disclosure out;
  const auto* purpose = json::find(d, "purpose");
  const auto* patient = json::find(d, "patient");
  const auto* resources = json::find(d, "resources");
  if (purpose == nullptr || !purpose->IsString() || patient == nullptr || !patient->IsString() || resources == nullptr ||
      !resources->IsArray()) {
    return bad("purpose, patient or resources missing");
  }
  out.purpose = purpose->GetString();
  out.patient_key = patient->GetString();
  for (const auto& r : resources->GetArray()) {
    if (!r.IsObject()) return bad("a resource entry is not an object");
    DisclosedResource dr;
    dr.resource_type = std::string(json::getString(r, "type"));
    dr.resource_id = std::string(json::getString(r, "id"));
    auto classes = privacy::parseClassSet(json::getString(r, "classes"));
    if (!classes || classes->empty()) return bad("unknown classes on " + dr.resource_type);
    dr.classes = *classes;
    if (const auto* acts = json::find(r, "activities"); acts != nullptr) {
      if (!acts->IsArray()) return bad("activities is not an array");
      for (const auto& a : acts->GetArray()) {
        auto c = a.IsString() ? privacy::parseClassSet(a.GetString()) : std::nullopt;
        if (!c) return bad("unknown activity classes on " + dr.resource_type);
        dr.activity_classes.push_back(*c);
      }
    }
    if (const auto* plan = json::find(r, "plan_classes"); plan != nullptr) {
      auto c = plan->IsString() ? privacy::parseClassSet(plan->GetString()) : std::nullopt;
      if (!c) return bad("unknown plan classes on " + dr.resource_type);
      dr.plan_classes = *c;
    }
    const std::string_view outcome = json::getString(r, "outcome");
    if (const auto* removed = json::find(r, "removed"); removed != nullptr) {
      if (!removed->IsArray()) return bad("removed is not an array");
      for (const auto& i : removed->GetArray()) {
        if (!i.IsUint()) return bad("removed holds a non-index");
        dr.removed_activities.push_back(i.GetUint());
      }
    }
    const auto parsed_outcome = consent::parseOutcome(outcome);
    if (!parsed_outcome || *parsed_outcome == consent::Outcome::Deny) return bad("outcome '" + std::string(outcome) + "'");
    dr.outcome = *parsed_outcome;
    dr.consent_id = std::string(json::getString(r, "consent"));
    const auto* version = json::find(r, "consent_version");
    if (version == nullptr || !version->IsInt()) return bad("consent_version missing");
    dr.consent_version = version->GetInt();
    if (const auto* glass = json::find(r, "break_glass"); glass != nullptr) {
      if (!glass->IsString() || glass->GetStringLength() == 0) return bad("break_glass is not an id");
      dr.break_glass_id = glass->GetString();
    }
    if (dr.resource_type.empty() || dr.resource_id.empty()) return bad("resource type or id missing");
    out.resources.push_back(std::move(dr));
  }
  const auto* copies = json::find(d, "consent_copies");
  out.consent_copies_known = copies != nullptr;
  if (copies != nullptr) {
    if (!copies->IsArray()) return bad("consent_copies is not an array");
    for (const auto& c : copies->GetArray()) {
      if (!c.IsString()) return bad("consent_copies holds a non-string");
      out.consent_copies.emplace_back(c.GetString(), c.GetStringLength());
    }
  }
  if (const auto* kind = json::find(d, "kind"); kind != nullptr) {
    if (!kind->IsString() || std::string_view(kind->GetString()) != "consent-update") return bad("unknown kind");
    out.consent_update = true;
  }
  return out;
}

}  // namespace gw::outbox

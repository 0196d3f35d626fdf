#include "app/views.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>

#include "common/ids.hpp"
#include "common/json.hpp"

namespace gw::app {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using json::writeString;

}  // namespace

int batchHttpStatus(const ingest::BatchResult& result) {
  if (result.failure) return httpStatusFor(result.failure->code);
  return result.accepted() > 0 ? 202 : 422;
}

http::Response batchResponse(const ingest::BatchResult& result) {
  return http::jsonResponse(batchHttpStatus(result), ingest::batchResultJson(result));
}

std::string reloadSummaryJson(const ReloadSummary& s) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("status");
  w.String("reloaded");
  w.Key("schemas");
  w.Uint64(s.schemas);
  w.Key("mappers");
  w.Uint64(s.mappers);
  w.Key("profiles");
  w.Uint64(s.profiles);
  w.Key("golden_cases");
  w.Uint64(s.golden_cases);
  w.Key("coalesced");
  w.Bool(s.coalesced);
  w.Key("instance_id");
  w.String(s.instance_id.c_str(), static_cast<rapidjson::SizeType>(s.instance_id.size()));
  w.Key("mappers_version");
  w.String(s.mappers_version.c_str(), static_cast<rapidjson::SizeType>(s.mappers_version.size()));
  w.Key("announced");
  w.Bool(s.announced);
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::string recordStatusJson(const store::RecordStatus& st, std::string_view record_key_secret,
                             const std::vector<PartnerWhy>& partners) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("clinic");
  writeString(w, st.clinic);
  w.Key("record_id");
  writeString(w, st.record_id);
  w.Key("record_key");
  writeString(w, ids::recordKey(record_key_secret, st.clinic, st.record_id));
  w.Key("record_type");
  writeString(w, st.record_type);
  w.Key("version");
  w.Int(st.version);
  w.Key("state");
  writeString(w, store::recordStateName(st.state));
  if (!st.error.empty()) {
    rapidjson::Document outcome;  // invalid records keep the validator's OperationOutcome
    outcome.Parse(st.error.c_str());
    if (!outcome.HasParseError() && outcome.IsObject()) {
      w.Key("outcome");
      outcome.Accept(w);
    } else {
      w.Key("error");
      writeString(w, st.error);
    }
  }
  w.Key("received_at");
  writeString(w, formatRfc3339(fromUnixMillis(st.received_at_ms)));
  w.Key("updated_at");
  writeString(w, formatRfc3339(fromUnixMillis(st.updated_at_ms)));
  w.Key("resources");
  w.StartArray();
  for (const auto& r : st.resources) writeString(w, r.resource_type + "/" + r.resource_id);
  w.EndArray();
  w.Key("deliveries");
  w.StartArray();
  for (const auto& d : st.deliveries) {
    w.StartObject();
    w.Key("partner");
    writeString(w, d.partner_id);
    w.Key("item");
    w.Int64(d.id);
    w.Key("record_version");
    w.Int(d.record_version);
    w.Key("state");
    writeString(w, store::outboxStateName(d.state));
    w.Key("attempts");
    w.Int(d.attempts);
    w.Key("updated_at");
    writeString(w, formatRfc3339(fromUnixMillis(d.updated_at_ms)));
    if (d.state == store::OutboxState::Retrying) {
      w.Key("next_attempt_at");
      writeString(w, formatRfc3339(fromUnixMillis(d.next_attempt_at_ms)));
    }
    if (!d.last_error.empty()) {
      w.Key("last_error");
      writeString(w, d.last_error);
    }
    if (d.state == store::OutboxState::Dead && !d.outcome.empty()) {
      rapidjson::Document outcome;
      outcome.Parse(d.outcome.c_str());
      w.Key("outcome");
      if (outcome.HasParseError()) {
        writeString(w, d.outcome);
      } else {
        outcome.Accept(w);
      }
    }
    if (!d.entries.empty()) {
      w.Key("partner_resources");
      w.StartArray();
      for (const auto& e : d.entries) {
        w.StartObject();
        w.Key("status");
        writeString(w, e.status);
        w.Key("location");
        writeString(w, e.location);
        if (!e.etag.empty()) {
          w.Key("etag");
          writeString(w, e.etag);
        }
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  if (!partners.empty()) {
    w.Key("partners");
    w.StartArray();
    for (const auto& p : partners) {
      w.StartObject();
      w.Key("partner");
      writeString(w, p.partner_id);
      w.Key("status");
      writeString(w, p.status);
      if (!p.why.empty()) {
        w.Key("why");
        writeString(w, p.why);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// A patient's consents with every version, newest version first within each consent (what a
// compliance officer reviews: who may receive what, since when, and when it was revoked).
std::string consentsJson(std::string_view patient_key, const std::vector<store::StoredConsent>& stored,
                         const std::function<std::string(std::string_view clinic)>& time_zone_of) {
  std::map<std::pair<std::string, std::string>, std::vector<const consent::ConsentRow*>> by_consent;
  std::map<std::pair<std::string, std::string>, std::string_view> consent_keys;
  for (const auto& c : stored) {
    by_consent[{c.row.clinic, c.row.consent_id}].push_back(&c.row);
    consent_keys[{c.row.clinic, c.row.consent_id}] = c.consent_key;
  }
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("patient_key");
  writeString(w, patient_key);
  w.Key("consents");
  w.StartArray();
  for (auto& [key, rows] : by_consent) {
    std::sort(rows.begin(), rows.end(), [](const auto* a, const auto* b) { return a->version > b->version; });
    w.StartObject();
    w.Key("clinic");
    writeString(w, key.first);
    w.Key("consent_id");
    writeString(w, key.second);
    // How the decision log names this consent (its consent_id column): to find its decisions.
    w.Key("consent_key");
    writeString(w, consent_keys[key]);
    w.Key("partner");
    writeString(w, rows.front()->partner_id);
    w.Key("current_version");
    w.Int64(rows.front()->version);
    // The zone the consent's days are local days of (docs/privacy.md §5.6).
    if (const std::string zone = time_zone_of ? time_zone_of(key.first) : std::string(); !zone.empty()) {
      w.Key("time_zone");
      writeString(w, zone);
    }
    w.Key("versions");
    w.StartArray();
    for (const auto* r : rows) {
      w.StartObject();
      w.Key("version");
      w.Int64(r->version);
      // FHIR Consent.status: R4 has no "revoked"; a revocation is a version with status inactive.
      w.Key("status");
      w.String(r->status == "active" ? "active" : "inactive");
      w.Key("purposes");
      writeString(w, r->purposes);
      w.Key("classes");
      writeString(w, r->classes);
      w.Key("period_start");
      writeString(w, r->period_start);
      if (!r->period_end.empty()) {
        w.Key("period_end");
        writeString(w, r->period_end);
      }
      if (!r->revoked_on.empty()) {
        w.Key("revoked_on");
        writeString(w, r->revoked_on);
      }
      // How each bound is read: a day of the clinic's zone or an instant (stored in UTC).
      const auto form = [](const std::string& text) { return text.size() == 10 ? "local-day" : "instant"; };
      std::string bounds = std::string("start:") + form(r->period_start);
      if (!r->period_end.empty()) bounds += std::string(",end:") + form(r->period_end);
      if (!r->revoked_on.empty()) bounds += std::string(",revoked:") + form(r->revoked_on);
      w.Key("bounds");
      writeString(w, bounds);
      if (!r->signed_on.empty()) {
        w.Key("signed_on");
        writeString(w, r->signed_on);
      }
      w.Key("resource");
      writeString(w, "Consent/" + r->resource_id);
      w.Key("recorded_at");
      writeString(w, formatRfc3339(fromUnixMillis(r->recorded_at)));
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace gw::app

#include "app/operations.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <future>
#include <memory>

#include "app/health.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "ingest/batch_result.hpp"
#include "ingest/input_format.hpp"
#include "ingest/record_pipeline.hpp"
#include "outbox/recheck.hpp"

namespace gw::app {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

std::optional<std::int64_t> parseWhole(std::string_view text) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || v < 0) return std::nullopt;
  return v;
}

// "3600", "90s", "15m", "2h", "3d" -> seconds.
std::optional<std::int64_t> parseAge(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t unit = 1;
  switch (text.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return parseWhole(text);
  }
  auto v = parseWhole(text.substr(0, text.size() - 1));
  if (!v) return std::nullopt;
  return *v * unit;
}

bool covers(const std::vector<std::string>& clinics, std::string_view clinic) {
  return std::any_of(clinics.begin(), clinics.end(), [&](const auto& c) { return c == "*" || c == clinic; });
}

// The clinics a query may read: the one named (which the caller must cover), else all the caller covers.
Result<std::vector<std::string>> queryClinics(const std::vector<std::string>& caller, std::string_view named) {
  if (!named.empty()) {
    if (!covers(caller, named)) {
      return makeError(ErrorCode::Forbidden, "this operator may not act on that clinic's items", "clinic",
                       "name a clinic this token is configured for");
    }
    return std::vector<std::string>{std::string(named)};
  }
  if (std::find(caller.begin(), caller.end(), "*") != caller.end()) return std::vector<std::string>{};
  if (caller.empty()) {
    return makeError(ErrorCode::Forbidden, "this operator covers no clinic", "clinic",
                     "configure the token with the clinics it operates");
  }
  return caller;
}

store::AuditEntry operationEntry(const OperatorContext& ctx, store::AuditOutcome outcome, std::string reason,
                                 std::string detail) {
  return store::AuditEntryBuilder(store::AuditKind::Operation, outcome, ctx.actor, toUnixMillis(ctx.now))
      .policy(ctx.policy_version)
      .reason(std::move(reason))
      .detail(std::move(detail))
      .build();
}

}  // namespace

Result<store::OutboxQuery> parseOutboxQuery(const std::map<std::string, std::string>& params,
                                            const std::vector<std::string>& clinics, SystemTime now) {
  store::OutboxQuery q;
  for (const auto& [key, value] : params) {
    if (key == "partner") {
      q.partner_id = value;
    } else if (key == "state") {
      if (!value.empty()) {
        q.state = store::parseOutboxState(value);
        if (!q.state) {
          return makeError(ErrorCode::BadRequest, "unknown outbox state '" + value + "'", "state",
                           "use queued, retrying, delivered, dead, superseded or cancelled");
        }
      }
    } else if (key == "older_than") {
      auto age = parseAge(value);
      if (!age) {
        return makeError(ErrorCode::BadRequest, "older_than must be an age such as 3600, 90s, 15m, 2h or 3d", "older_than",
                         "give the age in seconds, or with a unit s, m, h or d");
      }
      q.created_before_ms = toUnixMillis(now) - *age * 1000;
    } else if (key == "limit") {
      auto n = parseWhole(value);
      if (!n || *n < 1 || *n > 1000) {
        return makeError(ErrorCode::BadRequest, "limit must be a whole number from 1 to 1000", "limit",
                         "ask for at most 1000 items a page");
      }
      q.limit = static_cast<int>(*n);
    } else if (key == "after") {
      auto n = parseWhole(value);
      if (!n) {
        return makeError(ErrorCode::BadRequest, "after must be an item id (the next_after of the previous page)", "after",
                         "leave it out for the first page");
      }
      q.after_id = *n;
    } else if (key != "clinic") {
      return makeError(ErrorCode::BadRequest, "unknown parameter '" + key + "'", key,
                       "use partner, state, clinic, older_than, limit and after");
    }
  }
  const auto clinic = params.find("clinic");
  GW_TRY(q.clinics, queryClinics(clinics, clinic == params.end() ? std::string_view() : std::string_view(clinic->second)));
  return q;
}

store::AuditEntry outboxListEntry(const store::OutboxQuery& query, std::size_t items, std::string_view actor,
                                  SystemTime now) {
  rapidjson::StringBuffer b;
  JsonWriter w(b);
  w.StartObject();
  if (query.state) {
    w.Key("state");
    json::writeString(w, store::outboxStateName(*query.state));
  }
  if (!query.clinics.empty()) {
    w.Key("clinics");
    w.StartArray();
    for (const auto& c : query.clinics) json::writeString(w, c);
    w.EndArray();
  }
  if (query.created_before_ms > 0) {
    w.Key("created_before");
    json::writeString(w, formatRfc3339(fromUnixMillis(query.created_before_ms)));
  }
  w.Key("after");
  w.Int64(query.after_id);
  w.Key("items");
  w.Uint64(items);
  w.EndObject();
  auto e = store::AuditEntryBuilder(store::AuditKind::Operation, store::AuditOutcome::Ok, actor, toUnixMillis(now))
               .reason("outbox-list")
               .detail(std::string(b.GetString(), b.GetSize()))
               .build();
  e.partner_id = query.partner_id;
  if (query.clinics.size() == 1) e.clinic = query.clinics.front();
  return e;
}

std::string outboxPageJson(const store::OutboxPage& page) {
  rapidjson::StringBuffer b;
  JsonWriter w(b);
  w.StartObject();
  w.Key("items");
  w.StartArray();
  for (const auto& i : page.items) {
    w.StartObject();
    w.Key("id");
    w.Int64(i.id);
    w.Key("partner");
    json::writeString(w, i.partner_id);
    w.Key("clinic");
    json::writeString(w, i.clinic);
    w.Key("record_id");
    json::writeString(w, i.record_id);
    w.Key("record_type");
    json::writeString(w, i.record_type);
    w.Key("record_version");
    w.Int(i.record_version);
    w.Key("state");
    json::writeString(w, store::outboxStateName(i.state));
    w.Key("attempts");
    w.Int(i.attempts);
    w.Key("last_error");
    json::writeString(w, i.last_error);
    w.Key("next_attempt_at");
    if (i.state == store::OutboxState::Queued || i.state == store::OutboxState::Retrying) {
      json::writeString(w, formatRfc3339(fromUnixMillis(i.next_attempt_at_ms)));
    } else {
      w.Null();
    }
    w.Key("created_at");
    json::writeString(w, formatRfc3339(fromUnixMillis(i.created_at_ms)));
    w.Key("updated_at");
    json::writeString(w, formatRfc3339(fromUnixMillis(i.updated_at_ms)));
    w.EndObject();
  }
  w.EndArray();
  w.Key("next_after");
  if (page.next_after_id > 0) {
    w.Int64(page.next_after_id);
  } else {
    w.Null();
  }
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

Result<ReplayResult> replayDead(const OperatorContext& ctx, const ReplayFilter& filter) {
  if (!filter.item_id && filter.partner_id.empty()) {
    return makeError(ErrorCode::BadRequest, "a replay names one item, or a partner (with optional filters)", "partner",
                     "give an item id, or a partner id to replay its dead items");
  }
  store::OutboxQuery query;
  query.partner_id = filter.partner_id;
  query.state = store::OutboxState::Dead;
  query.created_before_ms = filter.created_before_ms;
  query.limit = 200;
  GW_TRY(query.clinics, queryClinics(ctx.clinics, ""));
  if (!filter.clinics.empty()) {
    for (const auto& c : filter.clinics) {
      if (!covers(ctx.clinics, c)) {
        return makeError(ErrorCode::Forbidden, "this operator may not act on that clinic's items", "clinic",
                         "name a clinic this token is configured for");
      }
    }
    query.clinics = filter.clinics;
  }
  ReplayResult result;
  const auto replayOne = [&](const store::OutboxListItem& listed) -> Status {
    GW_TRY(auto found, ctx.store.outboxItem(listed.id));
    if (!found || found->state != store::OutboxState::Dead) {
      result.items.push_back({listed.id, "skipped", "not dead (any more)"});
      ++result.skipped;
      return ok();
    }
    const store::OutboxItem& item = *found;
    const std::string detail = R"({"outbox_item":)" + std::to_string(item.id) + "}";
    // A newer version of the record carries it now: the old one must not overtake it.
    if (!listed.record_id.empty()) {
      GW_TRY(auto status, ctx.store.recordStatus(item.clinic, listed.record_id));
      if (status && status->version > item.record_version) {
        result.items.push_back({item.id, "skipped", "the record has a newer version"});
        ++result.skipped;
        return ok();
      }
    }
    // The same re-check the partner worker takes before each send: nothing that is no longer
    // permitted is queued again.
    const auto check = outbox::recheckItem(item, ctx.registry, ctx.now, ctx.policy_version);
    if (!check.send) {
      auto entry = operationEntry(ctx, store::AuditOutcome::Deny, "replay-denied: " + check.reason, detail);
      entry.clinic = item.clinic;
      entry.patient_key = item.patient_key;
      entry.partner_id = item.partner_id;
      GW_TRY(ctx.store.appendAudit({std::move(entry)}));
      GW_LOG(Info, Delivery, "replay_denied").kv("partner", item.partner_id).kv("item", item.id).kv("reason", check.reason);
      result.items.push_back({item.id, "denied", "no longer permitted: " + check.reason});
      ++result.denied;
      return ok();
    }
    auto entry = operationEntry(ctx, store::AuditOutcome::Ok, "replay", detail);
    entry.clinic = item.clinic;
    entry.patient_key = item.patient_key;
    entry.partner_id = item.partner_id;
    GW_TRY(auto requeued, ctx.store.requeueDead(item.id, "replayed by " + ctx.actor, ctx.now, {std::move(entry)}));
    if (!requeued) {
      result.items.push_back({item.id, "skipped", "not dead (any more)"});
      ++result.skipped;
      return ok();
    }
    GW_LOG(Info, Delivery, "replayed").kv("partner", item.partner_id).kv("item", item.id).kv("token", ctx.actor);
    result.items.push_back({item.id, "replayed", ""});
    ++result.replayed;
    return ok();
  };

  if (filter.item_id) {
    // One item: found through the list so the clinic scope applies exactly as to a listing.
    query.after_id = *filter.item_id - 1;
    query.limit = 1;
    query.state.reset();
    GW_TRY(auto page, ctx.store.listOutbox(query));
    if (page.items.empty() || page.items.front().id != *filter.item_id) {
      return makeError(ErrorCode::NotFound, "no outbox item " + std::to_string(*filter.item_id) + " for this operator",
                       "item", "list the items with GET /v1/outbox or fhir-gateway outbox list");
    }
    const auto& listed = page.items.front();
    if (listed.state != store::OutboxState::Dead) {
      return makeError(ErrorCode::BadRequest,
                       "outbox item " + std::to_string(listed.id) + " is " +
                           std::string(store::outboxStateName(listed.state)) + ", not dead",
                       "item",
                       listed.state == store::OutboxState::Cancelled
                           ? "a cancelled item is never replayed: post the record again if it may now be sent"
                           : "only dead items are replayed");
    }
    GW_TRY(replayOne(listed));
    return result;
  }
  // Pages of dead items; replayed ones leave the state, so the keyset moves past what was seen.
  for (;;) {
    GW_TRY(auto page, ctx.store.listOutbox(query));
    for (const auto& listed : page.items) {
      GW_TRY(replayOne(listed));
    }
    if (page.next_after_id == 0) break;
    query.after_id = page.next_after_id;
  }
  return result;
}

std::string replayResultJson(const ReplayResult& result) {
  rapidjson::StringBuffer b;
  JsonWriter w(b);
  w.StartObject();
  w.Key("replayed");
  w.Int(result.replayed);
  w.Key("denied");
  w.Int(result.denied);
  w.Key("skipped");
  w.Int(result.skipped);
  w.Key("items");
  w.StartArray();
  for (const auto& i : result.items) {
    w.StartObject();
    w.Key("id");
    w.Int64(i.id);
    w.Key("outcome");
    json::writeString(w, i.outcome);
    if (!i.reason.empty()) {
      w.Key("reason");
      json::writeString(w, i.reason);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

Status setPartnerPaused(const OperatorContext& ctx, std::string_view partner_id, bool paused, std::string_view reason) {
  store::PartnerPause pause{std::string(partner_id), toUnixMillis(ctx.now), ctx.actor, std::string(reason)};
  auto entry = operationEntry(ctx, store::AuditOutcome::Ok, paused ? "pause" : "resume", "");
  entry.partner_id = std::string(partner_id);
  if (!reason.empty()) {
    rapidjson::StringBuffer b;
    JsonWriter w(b);
    w.StartObject();
    w.Key("why");
    json::writeString(w, reason.substr(0, 512));
    w.EndObject();
    entry.detail = std::string(b.GetString(), b.GetSize());
  }
  GW_TRY(ctx.store.setPartnerPaused(pause, paused, {std::move(entry)}));
  GW_LOG(Info, Delivery, paused ? "partner_paused" : "partner_resumed").kv("partner", partner_id).kv("token", ctx.actor);
  return ok();
}

Result<ReprocessResult> reprocessRecords(const OperatorContext& ctx, const ReprocessParts& parts,
                                         const ReprocessOptions& options, const ProgressFn& progress) {
  if (options.state != store::RecordState::Invalid && options.state != store::RecordState::Unmapped) {
    return makeError(ErrorCode::BadRequest, "only records left invalid or unmapped are re-processed", "--state",
                     "use --state invalid or --state unmapped");
  }
  if (!options.dry_run && parts.service == nullptr) {
    return makeError(ErrorCode::Internal, "re-processing needs the ingest service", "reprocess", "");
  }
  // The total first (for progress), then the records a batch at a time.
  std::size_t total = 0;
  {
    std::string after_clinic, after_key;
    for (;;) {
      GW_TRY(auto rows, ctx.store.recordsInState(options.state, options.record_type, after_clinic, after_key, 2000));
      if (rows.empty()) break;
      for (const auto& r : rows) total += covers(ctx.clinics, r.clinic) ? 1 : 0;
      after_clinic = rows.back().clinic;
      after_key = rows.back().record_key;
    }
  }
  ReprocessResult result;
  if (progress) progress(0, total);
  std::string after_clinic, after_key;
  const ingest::Submitter submitter{ctx.actor, ctx.clinics};
  for (;;) {
    GW_TRY(auto rows, ctx.store.recordsInState(options.state, options.record_type, after_clinic, after_key,
                                               static_cast<int>(std::max<std::size_t>(1, options.batch))));
    if (rows.empty()) break;
    after_clinic = rows.back().clinic;
    after_key = rows.back().record_key;
    auto docs = std::make_shared<std::vector<rapidjson::Document>>();
    docs->reserve(rows.size());
    std::vector<std::string> types;
    for (const auto& r : rows) {
      if (!covers(ctx.clinics, r.clinic)) continue;
      rapidjson::Document doc;
      doc.Parse(r.payload.data(), r.payload.size());
      if (doc.HasParseError() || !doc.IsObject()) {
        ++result.rejected;  // cannot happen for a stored record; counted rather than stopping the run
        continue;
      }
      docs->push_back(std::move(doc));
      types.push_back(r.record_type);
    }
    result.examined += docs->size();
    if (options.dry_run) {
      const ingest::RecordPipeline pipeline(*parts.dry_rules, parts.dry_settings);
      for (std::size_t i = 0; i < docs->size(); ++i) {
        const auto processed = pipeline.process((*docs)[i], {});
        if (processed.errors.empty() && processed.state == store::RecordState::Mapped) {
          ++result.fixed;
          ++result.by_type[types[i]];
        } else {
          ++result.still;
        }
      }
    } else {
      ingest::InputBatch batch;
      for (const auto& d : *docs) batch.records.push_back({&d, 0, std::nullopt});
      batch.storage = docs;
      std::promise<ingest::BatchResult> promise;
      parts.service->ingestBatch(std::move(batch), submitter,
                                 [&](ingest::BatchResult r) { promise.set_value(std::move(r)); });
      auto done = promise.get_future().get();
      if (done.failure) return *done.failure;
      for (std::size_t i = 0; i < done.records.size(); ++i) {
        const auto& r = done.records[i];
        if (!r.accepted) {
          ++result.rejected;
        } else if (r.state == store::RecordState::Mapped) {
          ++result.fixed;
          ++result.by_type[i < types.size() ? types[i] : std::string()];
          result.queued += r.queued_for.size();
        } else {
          ++result.still;
        }
      }
    }
    if (progress) progress(result.examined, total);
  }
  if (!options.dry_run) {
    auto entry = operationEntry(ctx, store::AuditOutcome::Ok, "reprocess",
                                R"({"state":")" + std::string(store::recordStateName(options.state)) + R"(","examined":)" +
                                    std::to_string(result.examined) + R"(,"fixed":)" + std::to_string(result.fixed) +
                                    R"(,"still":)" + std::to_string(result.still) + R"(,"queued":)" +
                                    std::to_string(result.queued) + "}");
    GW_TRY(ctx.store.appendAudit({std::move(entry)}));
  }
  GW_LOG(Info, Ingest, options.dry_run ? "reprocess_dry_run" : "reprocess_done")
      .kv("examined", static_cast<std::int64_t>(result.examined))
      .kv("fixed", static_cast<std::int64_t>(result.fixed))
      .kv("still", static_cast<std::int64_t>(result.still))
      .kv("token", ctx.actor);
  return result;
}

std::string reprocessResultJson(const ReprocessResult& result, bool dry_run) {
  rapidjson::StringBuffer b;
  JsonWriter w(b);
  w.StartObject();
  w.Key("dry_run");
  w.Bool(dry_run);
  w.Key("examined");
  w.Uint64(result.examined);
  w.Key(dry_run ? "would_be_mapped" : "mapped");
  w.Uint64(result.fixed);
  w.Key("still_failing");
  w.Uint64(result.still);
  w.Key("rejected");
  w.Uint64(result.rejected);
  w.Key("deliveries_queued");
  w.Uint64(result.queued);
  w.Key("by_record_type");
  w.StartObject();
  for (const auto& [type, n] : result.by_type) {
    w.Key(type.c_str());
    w.Uint64(n);
  }
  w.EndObject();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

namespace {

// A decision's reason in clinic-safe words: which rule held the data, not what the consent says.
std::string heldWhy(std::string_view reason) {
  if (reason == "no-consent") return "held: no consent on file for this partner";
  if (reason == "expired" || reason == "revoked" || reason == "not-yet-valid") {
    return "held: the patient's consent for this partner is not in force";
  }
  if (reason == "purpose-not-covered") return "held: the consent does not cover this partner's purpose";
  if (reason.starts_with("class-not-covered")) return "held: the consent does not cover this kind of data";
  if (reason == "unclassified") return "held: the data could not be classified, so it is not sent";
  return "held: not permitted for this partner";
}

std::string errorClassText(std::string_view error) {
  const auto c = errorClass(error);
  return c.empty() ? std::string("an error") : "a " + c + " error";
}

}  // namespace

std::vector<PartnerWhy> explainDeliveries(const store::RecordStatus& st,
                                          const std::vector<store::ResourceDecision>& decisions,
                                          const std::vector<std::string>& partner_ids,
                                          const std::vector<store::PartnerPause>& pauses) {
  std::vector<PartnerWhy> out;
  for (const auto& partner : partner_ids) {
    PartnerWhy why{partner, "held", ""};
    const bool paused = std::any_of(pauses.begin(), pauses.end(), [&](const auto& p) { return p.partner_id == partner; });
    if (st.state != store::RecordState::Mapped) {
      why.why = "held: the record is " + std::string(store::recordStateName(st.state)) +
                (st.state == store::RecordState::Received ? "" : "; nothing is sent until it maps (fix it and post again)");
      out.push_back(std::move(why));
      continue;
    }
    // The newest item of this partner at the record's current version.
    const store::OutboxItem* item = nullptr;
    for (const auto& d : st.deliveries) {
      if (d.partner_id == partner && d.record_version == st.version && d.state != store::OutboxState::Superseded &&
          (item == nullptr || d.id > item->id)) {
        item = &d;
      }
    }
    // A resource held back from an item that went (a redaction, a denied resource).
    std::string held_part;
    for (const auto& d : decisions) {
      if (d.partner_id == partner && d.outcome == store::AuditOutcome::Deny && held_part.empty()) {
        held_part = heldWhy(d.reason);
      }
    }
    if (item == nullptr) {
      why.why = held_part.empty() ? std::string("held: nothing of this record is for this partner") : held_part;
      out.push_back(std::move(why));
      continue;
    }
    switch (item->state) {
      case store::OutboxState::Delivered:
        why.status = "delivered";
        if (!held_part.empty()) why.why = "delivered in part; " + held_part;
        break;
      case store::OutboxState::Queued:
      case store::OutboxState::Retrying:
        if (paused) {
          why.why = "held: partner paused";
        } else if (item->state == store::OutboxState::Retrying) {
          why.status = "retrying";
          why.why = "retrying: the partner's last answer was " + errorClassText(item->last_error) + "; next attempt at " +
                    formatRfc3339(fromUnixMillis(item->next_attempt_at_ms));
        } else {
          why.status = "queued";
        }
        break;
      case store::OutboxState::Dead:
        why.status = "failed";
        why.why =
            "failed: the partner refused it or it could not be delivered (see deliveries); an operator can "
            "replay it once the cause is fixed";
        break;
      case store::OutboxState::Cancelled:
        why.why = "held: no longer permitted by the patient's consent for this partner";
        break;
      case store::OutboxState::Superseded: break;
    }
    out.push_back(std::move(why));
  }
  return out;
}

}  // namespace gw::app

#include "delivery/partner_worker.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdlib>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "delivery/attempt_outcome.hpp"
#include "delivery/partner_auth.hpp"
#include "delivery/write_plan.hpp"
#include "outbox/disclosure.hpp"
#include "outbox/recheck.hpp"

namespace gw::delivery {

Result<PartnerEndpoint> endpointFor(const config::Partner& partner) {
  PartnerEndpoint e;
  e.id = partner.id;
  e.base_url = partner.fhir_base_url;
  e.ca_file = partner.ca_file.string();
  e.client_cert_file = partner.client_cert_file.string();
  e.client_key_file = partner.client_key_file.string();
  e.connect_timeout = partner.connect_timeout;
  e.request_timeout = partner.request_timeout;
  e.proxy_url = partner.proxy_url;
  e.proxy_auth_file = partner.proxy_auth_file.string();
  return e;
}

Result<std::unique_ptr<CredentialSource>> credentialsFor(const config::Partner& partner, const Clock* clock) {
  if (partner.auth.enabled()) {
    GW_TRY(auto endpoint, endpointFor(partner));
    return oauthCredentialsFor(partner, endpoint, clock);
  }
  if (partner.bearer_token_env.empty()) return noCredential();
  const std::string where = "partners." + partner.id + ".bearer_token_env";
  const char* token = std::getenv(partner.bearer_token_env.c_str());
  if (token == nullptr || *token == '\0') {
    return makeError(ErrorCode::Config, "environment variable " + partner.bearer_token_env + " is not set", where,
                     "export the partner's token in that variable before starting, or remove the key");
  }
  return staticBearerToken(token, where);
}

namespace {

std::vector<std::unique_ptr<FhirClient>> oneClient(std::unique_ptr<FhirClient> client) {
  std::vector<std::unique_ptr<FhirClient>> clients;
  clients.push_back(std::move(client));
  return clients;
}

}  // namespace

PartnerWorker::PartnerWorker(const config::Partner& partner, const config::Delivery& settings, store::Store& store,
                             const Clock& clock, std::unique_ptr<FhirClient> client, DisclosureCheck check)
    : PartnerWorker(partner, settings, store, clock, oneClient(std::move(client)), std::move(check)) {}

PartnerWorker::PartnerWorker(const config::Partner& partner, config::Delivery settings, store::Store& store,
                             const Clock& clock, std::vector<std::unique_ptr<FhirClient>> clients, DisclosureCheck check)
    : partner_(partner),
      settings_(std::move(settings)),
      policy_{partner.retry.initial, partner.retry.max, 2.0},
      store_(store),
      clock_(clock),
      clients_(std::move(clients)),
      check_(std::move(check)),
      random_(std::random_device{}()),
      rate_(partner.max_requests_per_second, std::chrono::steady_clock::now()),
      breaker_(partner.circuit_breaker, clock, partner.id),
      mode_(chooseWriteMode(partner.write_mode, std::nullopt)) {
  const auto senders = static_cast<std::size_t>(std::max(1, partner.max_concurrent_requests));
  if (clients_.size() > senders) clients_.resize(senders);
  report_.write_mode = std::string(writeModeName(mode_.mode));
  report_.why = mode_.why;
}

PartnerWorker::~PartnerWorker() { stop(); }

void PartnerWorker::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void PartnerWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PartnerWorker::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_cv_.notify_all();
}

namespace {

// The disclosure log's entries for one attempt's final outcome: one per resource the Bundle
// carried, with the partner's status and the ids it assigned (no content).
std::vector<store::AuditEntry> disclosureEntries(const store::OutboxItem& item, store::AuditOutcome outcome,
                                                 std::string_view reason, std::string_view detail, SystemTime now,
                                                 std::string_view policy_version) {
  std::vector<store::AuditEntry> entries;
  auto disclosure = outbox::parseDisclosure(item.disclosure);
  const auto entry = [&](const outbox::DisclosedResource* r) {
    auto e = store::AuditEntryBuilder(store::AuditKind::Disclosure, outcome, "gateway", toUnixMillis(now));
    e.clinic(item.clinic)
        .patient(item.patient_key)
        .partner(item.partner_id, disclosure ? std::string_view(disclosure.value().purpose) : std::string_view())
        // A consent's new version passed on (a revocation) is logged as such (docs/privacy.md §8.4).
        .reason(reason.empty() && disclosure && disclosure.value().consent_update ? std::string("consent-update")
                                                                                  : std::string(reason))
        .policy(policy_version)
        .detail(std::string(detail));
    if (r != nullptr) e.resource(r->resource_type, r->resource_id, r->classes).consent(r->consent_id, r->consent_version);
    if (r != nullptr && !r->break_glass_id.empty() && reason.empty()) {
      // Sent under an emergency disclosure (docs/privacy.md §7.1): flagged in the accounting.
      e.reason("break-glass");
      std::string with_id = detail.empty() ? std::string("{}") : std::string(detail);
      with_id.insert(1, R"("break_glass":")" + r->break_glass_id + (with_id.size() > 2 ? "\"," : "\""));
      e.detail(std::move(with_id));
    }
    entries.push_back(std::move(e).build());
  };
  if (!disclosure || disclosure.value().resources.empty()) {
    entry(nullptr);
  } else {
    for (const auto& r : disclosure.value().resources) entry(&r);
  }
  return entries;
}

std::string deliveryDetail(const store::OutboxItem& item, int http_status,
                           const std::vector<store::DeliveredEntry>& entries) {
  std::string detail = R"({"outbox_item":)" + std::to_string(item.id) + R"(,"http_status":)" + std::to_string(http_status);
  if (!entries.empty()) {
    detail += R"(,"locations":[)";
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) detail += ',';
      rapidjson::StringBuffer b;
      rapidjson::Writer<rapidjson::StringBuffer> w(b);
      json::writeString(w, entries[i].location);
      detail.append(b.GetString(), b.GetSize());
    }
    detail += ']';
  }
  return detail + "}";
}

}  // namespace

std::string PartnerWorker::circuitWaitReason(const CircuitReport& circuit) const {
  return "waiting: partner circuit open since " + formatRfc3339(circuit.since) +
         (circuit.last_error.empty() ? std::string() : " (last error: " + circuit.last_error + ")") + "; next probe at " +
         formatRfc3339(circuit.probe_at) + "; the item is sent when partner " + partner_.id +
         " answers again, its retries are not used up meanwhile";
}

bool PartnerWorker::waitForRateLimit(int requests) {
  if (!rate_.limited()) return true;
  const auto wait = rate_.reserve(std::chrono::steady_clock::now(), requests);
  std::unique_lock lock(mutex_);
  return !stop_cv_.wait_for(lock, wait, [this] { return stopping_; });
}

std::optional<Result<HttpResult>> PartnerWorker::request(const std::function<Result<HttpResult>()>& call) {
  const auto permit = breaker_.acquire();
  if (permit == CircuitBreaker::Permit::Refused) return std::nullopt;
  auto response = call();
  breaker_.record(permit, breakerFailureClass(response));
  return response;
}

Status PartnerWorker::attempt(const store::OutboxItem& item, FhirClient& client) {
  // The consent decision is taken again right before each send (docs/privacy.md §8.1): a
  // consent revoked, narrowed or expired since the item was queued stops it here.
  // Under the send gate, the re-check and the claim are one step: a consent change either came
  // before (this check sees it) or waits for this send to finish and its outcome to be recorded
  // (docs/privacy.md §8.3). The claim is held until this function returns.
  // The rate limit's wait comes before the claim, for every request the item may take (one in
  // transaction mode, at most one per entry otherwise): a consent change never waits behind it,
  // and no request starts long after its decision (docs/privacy.md §8.3).
  WriteMode mode;
  {
    std::lock_guard lock(capability_mutex_);
    mode = mode_.mode;
  }
  if (!waitForRateLimit(mode == WriteMode::Transaction ? 1 : std::max(1, item.entry_count))) {
    return ok();  // stopping: the item stays due as it is
  }
  // Several instances on one database (docs/architecture.md §5.3, docs/privacy.md §8.3): the send
  // holds (patient, partner) against consent changes on every instance from before the consents
  // are read again until its last request has ended, and lets go before its outcome is recorded
  // (a change waiting for the hold may hold the write lock's turn). An empty hold on SQLite.
  auto held = store_.holdSend(item.patient_key, partner_.id);
  const auto notNow = [&](const std::string& why) {
    GW_LOG(Warn, Delivery, "not_sent").kv("partner", partner_.id).kv("item", item.id).kv("reason", why);
    return outcomes_.record(store::OutboxOutcome::retry(item.id, item.attempts, clock_.now() + std::chrono::seconds(1),
                                                        "not sent: " + why, clock_.now()));
  };
  if (!held) return notNow(held.error().message);
  store::SendHold hold = std::move(held).value();
  if (check_.refresh && !check_.refresh(item.patient_key)) {
    hold.release();
    return notNow("the patient's stored consents could not be read for the re-check");
  }
  outbox::RecheckResult check;
  const auto recheck = [&] {
    check = outbox::recheckItem(item, *check_.registry, clock_.now(), check_.policy_version);
    return check.send;
  };
  outbox::SendGate::Claim sending;
  if (check_.gate != nullptr) {
    sending = check_.gate->claim(item.patient_key, partner_.id, recheck);
  } else {
    recheck();
  }
  if (!check.send) {
    hold.release();
    GW_LOG(Info, Delivery, "cancelled").kv("partner", partner_.id).kv("item", item.id).kv("reason", check.reason);
    stats_.cancelled.inc();
    {
      std::lock_guard lock(progress_mutex_);
      progress_.erase(item.id);
    }
    return outcomes_.record(store::OutboxOutcome::cancelled(item.id, "no longer permitted: " + check.reason, clock_.now(),
                                                            std::move(check.cancellations)));
  }
  if (auto reason = cannotTake(item)) {
    hold.release();
    // Not the item's fault and not a failed attempt: it waits, without using up its retries,
    // until the next read of the partner's statement (or a restart with another config).
    SystemTime until;
    {
      std::lock_guard lock(capability_mutex_);
      until = next_capability_read_;
    }
    GW_LOG(Warn, Delivery, "waiting_for_partner_capability")
        .kv("partner", partner_.id)
        .kv("item", item.id)
        .kv("reason", *reason);
    return outcomes_.record(
        store::OutboxOutcome::retry(item.id, item.attempts, std::max(until, clock_.now() + std::chrono::seconds(1)),
                                    "waiting: " + *reason + "; fix partners[" + partner_.id +
                                        "] or the partner, the item is sent when the partner can take it",
                                    clock_.now()));
  }
  const auto started = std::chrono::steady_clock::now();
  const AttemptOutcome outcome = send(item, client, hold);
  hold.release();  // the last request has ended; recording the outcome takes the write lock
  stats_.attempt_us.recordMicros(std::chrono::steady_clock::now() - started);
  const SystemTime now = clock_.now();
  if (!outcome.not_sent) countAnswer(outcome, now);  // a request never sent is no answer
  if (outcome.kind != AttemptOutcome::Kind::Retry) {
    std::lock_guard lock(progress_mutex_);
    progress_.erase(item.id);
  }
  if (outcome.kind == AttemptOutcome::Kind::Retry && (outcome.not_sent || breaker_.blocking())) {
    // The partner's breaker is open (this failure may have opened it): the item waits for the
    // probe and keeps its retries, so an outage of the partner sends nothing dead.
    const auto circuit = breaker_.report();
    if (circuit.state != CircuitState::Closed) {
      return outcomes_.record(store::OutboxOutcome::retry(item.id, item.attempts, std::max(circuit.probe_at, now),
                                                          circuitWaitReason(circuit), now));
    }
    // Not sent because the gateway is stopping (due again at once after a restart), or because
    // the send's hold would not last through another request (the rest goes at the next turn).
    return outcomes_.record(store::OutboxOutcome::retry(
        item.id, item.attempts, now,
        outcome.error_summary.empty() ? "not sent: the gateway stopped before the request" : outcome.error_summary, now));
  }
  const int attempts = item.attempts + 1;
  const auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();

  switch (outcome.kind) {
    case AttemptOutcome::Kind::Delivered: {
      stats_.delivered.inc();
      if (item.created_at_ms > 0) {
        stats_.delivery_latency_ms.record(
            static_cast<double>(std::max<std::int64_t>(0, toUnixMillis(now) - item.created_at_ms)));
      }
      std::vector<store::DeliveredEntry> entries;
      entries.reserve(outcome.entries.size());
      for (const auto& e : outcome.entries) entries.push_back({e.status, e.location, e.etag});
      GW_LOG(Info, Delivery, "delivered")
          .kv("partner", partner_.id)
          .kv("item", item.id)
          .kv("attempt", attempts)
          .kv("status", outcome.http_status)
          .kv("ms", elapsed_ms);
      return outcomes_.record(store::OutboxOutcome::delivered(
          item.id, entries, now,
          disclosureEntries(item, store::AuditOutcome::Delivered, "", deliveryDetail(item, outcome.http_status, entries),
                            now, check_.policy_version)));
    }
    case AttemptOutcome::Kind::Retry: {
      if (partner_.retry.max_attempts > 0 && attempts >= partner_.retry.max_attempts) {
        GW_LOG(Warn, Delivery, "dead_after_retries")
            .kv("partner", partner_.id)
            .kv("item", item.id)
            .kv("attempt", attempts)
            .kv("error", outcome.error_summary);
        stats_.dead.inc();
        const std::string error = "gave up after " + std::to_string(attempts) + " attempts: " + outcome.error_summary;
        return outcomes_.record(store::OutboxOutcome::dead(item.id, attempts, error, outcome.operation_outcome_json, now,
                                                           disclosureEntries(item, store::AuditOutcome::Failed, error,
                                                                             deliveryDetail(item, outcome.http_status, {}),
                                                                             now, check_.policy_version)));
      }
      stats_.retries.inc();
      double jitter = 0;
      {
        std::lock_guard lock(random_mutex_);
        jitter = std::uniform_real_distribution<double>(0.0, 1.0)(random_);
      }
      const auto delay = backoffDelay(attempts, policy_, jitter, outcome.retry_after);
      GW_LOG(Warn, Delivery, "retry")
          .kv("partner", partner_.id)
          .kv("item", item.id)
          .kv("attempt", attempts)
          .kv("status", outcome.http_status)
          .kv("error", outcome.error_summary)
          .kv("retry_in_ms", delay.count());
      return outcomes_.record(store::OutboxOutcome::retry(item.id, attempts, now + delay, outcome.error_summary, now));
    }
    case AttemptOutcome::Kind::Dead:
      stats_.dead.inc();
      GW_LOG(Warn, Delivery, "dead_letter")
          .kv("partner", partner_.id)
          .kv("item", item.id)
          .kv("attempt", attempts)
          .kv("status", outcome.http_status)
          .kv("error", outcome.error_summary);
      return outcomes_.record(store::OutboxOutcome::dead(
          item.id, attempts, outcome.error_summary, outcome.operation_outcome_json, now,
          disclosureEntries(item, store::AuditOutcome::Failed, outcome.error_summary,
                            deliveryDetail(item, outcome.http_status, {}), now, check_.policy_version)));
  }
  return ok();
}

void PartnerWorker::countAnswer(const AttemptOutcome& outcome, SystemTime now) {
  const int status = outcome.http_status;
  (status >= 200 && status < 300   ? stats_.answers_2xx
   : status >= 300 && status < 400 ? stats_.answers_3xx
   : status >= 400 && status < 500 ? stats_.answers_4xx
   : status >= 500                 ? stats_.answers_5xx
                                   : stats_.answers_none)
      .inc();
  // The partner is failing while its attempts fail for its own reasons (no answer, 5xx, 429,
  // 408); a 4xx refusal of one item says nothing about the partner's health.
  if (outcome.kind == AttemptOutcome::Kind::Retry) {
    if (stats_.consecutive_failures.value() == 0) stats_.failing_since_ms.set(toUnixMillis(now));
    stats_.consecutive_failures.add(1);
  } else if (outcome.kind == AttemptOutcome::Kind::Delivered || status != 0) {
    stats_.consecutive_failures.set(0);
    stats_.failing_since_ms.set(0);
  }
}

namespace {

AttemptOutcome notSent(std::string why = {}) {
  AttemptOutcome out;
  out.kind = AttemptOutcome::Kind::Retry;
  out.not_sent = true;
  out.error_summary = std::move(why);
  return out;
}

// A request starts only while the send's hold will outlast it (store::SendHold::mayStart).
AttemptOutcome holdEnded() {
  return notSent(
      "not sent: the send's hold against consent changes ends before another request could; "
      "the rest goes at the next turn");
}

}  // namespace

AttemptOutcome PartnerWorker::send(const store::OutboxItem& item, FhirClient& client, const store::SendHold& hold) {
  WriteMode mode;
  {
    std::lock_guard lock(capability_mutex_);
    mode = mode_.mode;
  }
  if (mode != WriteMode::Transaction) return sendInParts(item, mode, client, hold);
  if (!hold.mayStart()) return holdEnded();
  const auto response = request([&] { return client.postBundle(item.bundle); });
  if (!response) return notSent();
  stats_.attempts.inc();
  return classify(*response, clock_.now(), static_cast<std::size_t>(item.entry_count));
}

namespace {

bool retryableStatus(int status) { return status == 0 || status == 408 || status == 429 || status >= 500; }

// The outcome of a 2xx single write: its status, and where the partner keeps the resource
// (Location, Content-Location, or the id of the resource it sent back).
EntryResult singleWriteResult(const HttpResult& res) {
  EntryResult r;
  r.status = std::to_string(res.status);
  const auto header = [&](const char* name) {
    const auto it = res.headers.find(name);
    return it == res.headers.end() ? std::string() : it->second;
  };
  r.location = header("location");
  if (r.location.empty()) r.location = header("content-location");
  r.etag = header("etag");
  r.last_modified = header("last-modified");
  if (resourceReference(r.location).empty() && !res.body.empty()) {
    rapidjson::Document doc;
    if (json::parseStrict(res.body, doc) && doc.IsObject()) {
      const auto type = json::getString(doc, "resourceType");
      const auto id = json::getString(doc, "id");
      if (!type.empty() && !id.empty()) r.location = std::string(type) + "/" + std::string(id);
    }
  }
  return r;
}

}  // namespace

AttemptOutcome PartnerWorker::sendInParts(const store::OutboxItem& item, WriteMode mode, FhirClient& client,
                                          const store::SendHold& hold) {
  auto plan = planWrites(item.bundle);
  if (!plan) {
    AttemptOutcome dead;
    dead.error_summary = plan.error().message;
    dead.operation_outcome_json = json::operationOutcome(plan.error());
    return dead;
  }
  ItemProgress* progress_entry = nullptr;
  {
    std::lock_guard lock(progress_mutex_);
    progress_entry = &progress_[item.id];  // map nodes stay put; only this item's lane uses it
  }
  auto& progress = *progress_entry;
  progress.results.resize(plan.value().entries.size());
  std::set<std::string> in_bundle;
  for (const auto& e : plan.value().entries) {
    if (!e.full_url.empty()) in_bundle.insert(e.full_url);
  }
  const auto accepted = [&](const PlannedEntry& e, EntryResult result) {
    if (!e.full_url.empty()) {
      const auto reference = resourceReference(result.location);
      if (!reference.empty()) progress.resolved[e.full_url] = reference;
    }
    progress.results[e.index] = std::move(result);
  };
  AttemptOutcome out;
  while (true) {
    // The entries whose references can be written now: those to the partner's ids of entries
    // it already accepted (a batch, unlike a transaction, resolves no urn:uuid between entries).
    std::vector<const PlannedEntry*> ready;
    bool pending = false;
    for (const auto& e : plan.value().entries) {
      if (progress.results[e.index]) continue;
      pending = true;
      const bool resolvable = std::all_of(e.depends_on.begin(), e.depends_on.end(), [&](const std::string& d) {
        return in_bundle.count(d) == 0 || progress.resolved.count(d) != 0;
      });
      if (resolvable) ready.push_back(&e);
    }
    if (!pending) break;
    if (ready.empty()) {
      out.kind = AttemptOutcome::Kind::Dead;
      out.error_summary = "entries refer to entries the partner gave no location for";
      out.operation_outcome_json = json::operationOutcome(
          makeError(ErrorCode::Unavailable, "the partner's answers named no location for an entry others refer to",
                    partner_.id, "use write_mode \"transaction\" for this partner if it supports it"));
      return out;
    }
    if (mode == WriteMode::PerResource) {
      // One at a time, in order: the Patient before what refers to it.
      for (const auto* e : ready) {
        FhirWrite write;
        write.method = e->write.method == RequiredWrite::Method::ConditionalUpdate   ? "PUT"
                       : e->write.method == RequiredWrite::Method::ConditionalCreate ? "POST"
                                                                                     : "DELETE";
        write.path_suffix = "/" + e->url;
        write.body = resolvedResource(*e, progress.resolved);
        write.if_none_exist = e->if_none_exist;
        if (!hold.mayStart()) return holdEnded();  // what was accepted before stays accepted
        const auto sent = request([&] { return client.write(write); });
        if (!sent) return notSent();  // what was accepted before stays accepted
        const auto& response = *sent;
        stats_.attempts.inc();
        if (!response || response.value().status < 200 || response.value().status > 299) {
          // Retry (transport, 408, 429, 5xx) or Dead (other 4xx), as for a Bundle; what was
          // accepted before stays accepted.
          return classify(response, clock_.now());
        }
        out.http_status = response.value().status;
        accepted(*e, singleWriteResult(response.value()));
      }
      continue;
    }
    if (!hold.mayStart()) return holdEnded();
    const auto sent = request([&] { return client.postBundle(batchBundle(plan.value(), ready, progress.resolved)); });
    if (!sent) return notSent();
    const auto& response = *sent;
    stats_.attempts.inc();
    if (!response || response.value().status < 200 || response.value().status > 299) {
      return classify(response, clock_.now());
    }
    out.http_status = response.value().status;
    auto results = parseBatchResponse(response.value().body, ready.size());
    if (!results) {
      // Which entries it stored is unknown; every write is conditional, so a resend is harmless.
      AttemptOutcome retry;
      retry.kind = AttemptOutcome::Kind::Retry;
      retry.http_status = response.value().status;
      retry.error_summary = results.error().message;
      return retry;
    }
    // Each entry stands alone in a batch: keep what was accepted, retry only what failed.
    std::string first_failure;
    bool retry = false, refused = false;
    for (std::size_t i = 0; i < ready.size(); ++i) {
      auto& r = results.value()[i];
      const int code = entryStatusCode(r.status);
      if (code >= 200 && code <= 299) {
        accepted(*ready[i], std::move(r));
        continue;
      }
      if (first_failure.empty()) {
        first_failure = "entry " + std::to_string(ready[i]->index) + " (" + ready[i]->write.resource_type + ") answered " +
                        (code == 0 ? std::string("no status") : std::to_string(code));
      }
      (retryableStatus(code) ? retry : refused) = true;
    }
    if (!first_failure.empty()) {
      out.kind = refused ? AttemptOutcome::Kind::Dead : AttemptOutcome::Kind::Retry;
      out.error_summary = "batch: " + first_failure;
      if (refused) {
        out.operation_outcome_json = json::operationOutcome(
            makeError(ErrorCode::InvalidInput, "the partner refused " + first_failure, partner_.id,
                      "see the partner's answer for the entry; the other entries were accepted"));
      }
      (void)retry;
      return out;
    }
  }
  out.kind = AttemptOutcome::Kind::Delivered;
  for (auto& r : progress.results) out.entries.push_back(r ? std::move(*r) : EntryResult{});
  return out;
}

std::optional<std::string> PartnerWorker::cannotTake(const store::OutboxItem& item) {
  std::optional<PartnerCapability> capability;
  {
    std::lock_guard lock(capability_mutex_);
    capability = capability_;
  }
  std::optional<std::string> reason;
  if (capability) {
    auto plan = planWrites(item.bundle);
    if (plan) {
      for (const auto& e : plan.value().entries) {
        if ((reason = unsupportedWrite(capability, e.write))) break;
      }
    }
  }
  std::lock_guard lock(capability_mutex_);
  if (reason) {
    waiting_.insert(item.id);
    if (std::find(report_.unsupported.begin(), report_.unsupported.end(), *reason) == report_.unsupported.end()) {
      report_.unsupported.push_back(*reason);
    }
  } else {
    waiting_.erase(item.id);
  }
  report_.waiting_items = waiting_.size();
  return reason;
}

Status PartnerWorker::refreshCapability() {
  const SystemTime now = clock_.now();
  // Through the rate limit, but neither asking nor telling the breaker: a statement read is not
  // a delivery, and the worker does not read while the breaker is open.
  (void)waitForRateLimit(1);
  const auto response = clients_.front()->readMetadata();
  std::optional<PartnerCapability> capability;
  std::string error;
  if (!response) {
    error = response.error().message;
  } else if (response.value().status != 200) {
    error = "GET metadata answered HTTP " + std::to_string(response.value().status);
  } else if (auto parsed = parseCapabilityStatement(response.value().body); !parsed) {
    error = parsed.error().describe();
  } else {
    capability = std::move(parsed).value();
  }
  std::lock_guard lock(capability_mutex_);
  report_.read_at = now;
  if (!error.empty()) {
    // What was known stays in force; a partner down at start keeps the configured or default
    // mode. Tried again sooner than a full refresh period.
    next_capability_read_ = now + std::min<SystemTime::duration>(partner_.capability_refresh, std::chrono::minutes(5));
    report_.error = error;
    GW_LOG(Warn, Delivery, "capability_read_failed").kv("partner", partner_.id).kv("error", error);
    return makeError(ErrorCode::Unavailable, "partner " + partner_.id + ": capability statement: " + error,
                     partner_.fhir_base_url + "/metadata",
                     "the gateway keeps its current write mode; set partners[].write_mode to choose one");
  }
  next_capability_read_ = now + partner_.capability_refresh;
  capability_ = std::move(capability);
  mode_ = chooseWriteMode(partner_.write_mode, capability_);
  report_.statement_read = true;
  report_.error.clear();
  report_.fhir_version = capability_->fhir_version;
  report_.write_mode = std::string(writeModeName(mode_.mode));
  report_.why = mode_.why;
  // Items that waited are looked at again now (they are due at this read): they report anew.
  report_.unsupported.clear();
  waiting_.clear();
  report_.waiting_items = 0;
  GW_LOG(Info, Delivery, "capability_read")
      .kv("partner", partner_.id)
      .kv("fhir_version", report_.fhir_version)
      .kv("write_mode", report_.write_mode)
      .kv("why", report_.why);
  return ok();
}

CapabilityReport PartnerWorker::capabilityReport() const {
  CapabilityReport report;
  {
    std::lock_guard lock(capability_mutex_);
    report = report_;
  }
  report.circuit = breaker_.report();
  return report;
}

std::vector<std::vector<const store::OutboxItem*>> PartnerWorker::lanesByPatient(
    const std::vector<store::OutboxItem>& items) {
  std::vector<std::vector<const store::OutboxItem*>> lanes;
  std::map<std::string_view, std::size_t> lane_of;
  for (const auto& item : items) {
    const auto [it, added] = lane_of.emplace(item.patient_key, lanes.size());
    if (added) lanes.emplace_back();
    lanes[it->second].push_back(&item);
  }
  return lanes;
}

Status PartnerWorker::sendLanes(const std::vector<std::vector<const store::OutboxItem*>>& lanes) {
  std::atomic<std::size_t> next_lane{0};
  std::mutex error_mutex;
  Status first_error = ok();
  const auto sender = [&](FhirClient& client) {
    for (std::size_t lane = next_lane++; lane < lanes.size(); lane = next_lane++) {
      for (const auto* item : lanes[lane]) {
        {
          std::lock_guard lock(mutex_);
          if (stopping_) return;
        }
        if (auto done = attempt(*item, client); !done) {
          // The lane stops: its later items must not overtake this one, whose outcome is unknown.
          std::lock_guard lock(error_mutex);
          if (first_error) first_error = done;
          break;
        }
      }
    }
  };
  const std::size_t senders = std::min(clients_.size(), lanes.size());
  std::vector<std::thread> threads;
  threads.reserve(senders);
  for (std::size_t i = 1; i < senders; ++i) threads.emplace_back([&sender, this, i] { sender(*clients_[i]); });
  sender(*clients_.front());
  for (auto& t : threads) t.join();
  return first_error;
}

Result<int> PartnerWorker::parkWhileOpen(const CircuitReport& circuit) {
  auto due = store_.dueItems(partner_.id, clock_.now(), settings_.batch_size);
  if (!due) return due.error();
  const std::string reason = circuitWaitReason(circuit);
  const SystemTime now = clock_.now();
  for (const auto& item : due.value()) {
    GW_TRY(store_.markRetry(item.id, item.attempts, std::max(circuit.probe_at, now), reason, now));
  }
  return static_cast<int>(due.value().size());
}

Result<int> PartnerWorker::runOnce() {
  const auto circuit = breaker_.report();
  if (circuit.state != CircuitState::Closed) {
    // Open: nothing goes to the partner before the probe; the due items wait for it, saying why.
    if (circuit.state == CircuitState::Open && clock_.now() < circuit.probe_at) return parkWhileOpen(circuit);
    // The probe's turn: one item, alone; its first request is the probe.
    auto due = store_.dueItems(partner_.id, clock_.now(), 1);
    if (!due) return due.error();
    if (due.value().empty()) return 0;
    GW_TRY(attempt(due.value().front(), *clients_.front()));
    return 1;
  }
  auto due = store_.dueItems(partner_.id, clock_.now(), settings_.batch_size);
  if (!due) return due.error();
  // The next batch is claimed only when this one is settled: a patient's next item becomes due
  // once the one before it has its outcome, so lanes never hold two items of one patient at once.
  GW_TRY(sendLanes(lanesByPatient(due.value())));
  return static_cast<int>(due.value().size());
}

void PartnerWorker::run() {
  GW_LOG(Info, Delivery, "worker_started").kv("partner", partner_.id);
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      woken_ = false;
    }
    SystemTime next_read;
    {
      std::lock_guard lock(capability_mutex_);
      next_read = next_capability_read_;
    }
    // Not while the breaker is open: the read would be one more request to a failing partner.
    if (clock_.now() >= next_read && !breaker_.blocking()) (void)refreshCapability();  // failures: logged, reported
    auto made = runOnce();
    if (!made) {
      GW_LOG(Error, Delivery, "outbox_error").kv("partner", partner_.id).kv("error", made.error().message);
    }
    if (made && made.value() > 0) continue;  // more may be due right away (next per-patient items)

    // Sleep until the next item is due, a poll interval passes, or new work is announced.
    auto wait = settings_.poll_interval;
    if (auto next = store_.nextDueTime(partner_.id); next && next.value()) {
      const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*next.value() - clock_.now());
      wait = std::max(std::chrono::milliseconds(1), std::min(wait, until));
    }
    if (!breaker_.blocking()) {  // an open breaker postpones the read (above)
      std::lock_guard lock(capability_mutex_);
      const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(next_capability_read_ - clock_.now());
      wait = std::max(std::chrono::milliseconds(1), std::min(wait, until));
    }
    std::unique_lock lock(mutex_);
    wake_cv_.wait_for(lock, wait, [this] { return stopping_ || woken_; });
  }
  GW_LOG(Info, Delivery, "worker_stopped").kv("partner", partner_.id);
}

}  // namespace gw::delivery

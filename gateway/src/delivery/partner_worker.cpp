#include "delivery/partner_worker.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdlib>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "delivery/attempt_outcome.hpp"
#include "delivery/partner_auth.hpp"
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

PartnerWorker::PartnerWorker(const config::Partner& partner, const config::Delivery& settings, store::Store& store,
                             const Clock& clock, std::unique_ptr<FhirClient> client, DisclosureCheck check)
    : partner_(partner),
      settings_(settings),
      policy_{partner.retry.initial, partner.retry.max, 2.0},
      store_(store),
      clock_(clock),
      client_(std::move(client)),
      check_(std::move(check)),
      random_(std::random_device{}()) {}

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

Status PartnerWorker::attempt(const store::OutboxItem& item) {
  // The consent decision is taken again right before each send (docs/privacy.md §8.1): a
  // consent revoked, narrowed or expired since the item was queued stops it here.
  // Under the send gate, the re-check and the claim are one step: a consent change either came
  // before (this check sees it) or waits for this send to finish and its outcome to be recorded
  // (docs/privacy.md §8.3). The claim is held until this function returns.
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
    GW_LOG(Info, Delivery, "cancelled").kv("partner", partner_.id).kv("item", item.id).kv("reason", check.reason);
    stats_.cancelled.inc();
    return store_.markCancelled(item.id, "no longer permitted: " + check.reason, clock_.now(), check.cancellations);
  }
  const auto started = std::chrono::steady_clock::now();
  const auto response = client_->postBundle(item.bundle);
  stats_.attempts.inc();
  stats_.attempt_us.recordMicros(std::chrono::steady_clock::now() - started);
  const SystemTime now = clock_.now();
  const AttemptOutcome outcome = classify(response, now, static_cast<std::size_t>(item.entry_count));
  const int attempts = item.attempts + 1;
  const auto elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();

  switch (outcome.kind) {
    case AttemptOutcome::Kind::Delivered: {
      stats_.delivered.inc();
      std::vector<store::DeliveredEntry> entries;
      entries.reserve(outcome.entries.size());
      for (const auto& e : outcome.entries) entries.push_back({e.status, e.location, e.etag});
      GW_LOG(Info, Delivery, "delivered")
          .kv("partner", partner_.id)
          .kv("item", item.id)
          .kv("attempt", attempts)
          .kv("status", outcome.http_status)
          .kv("ms", elapsed_ms);
      return store_.markDelivered(item.id, entries, now,
                                  disclosureEntries(item, store::AuditOutcome::Delivered, "",
                                                    deliveryDetail(item, outcome.http_status, entries), now,
                                                    check_.policy_version));
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
        return store_.markDead(item.id, attempts, error, outcome.operation_outcome_json, now,
                               disclosureEntries(item, store::AuditOutcome::Failed, error,
                                                 deliveryDetail(item, outcome.http_status, {}), now, check_.policy_version));
      }
      stats_.retries.inc();
      const double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(random_);
      const auto delay = backoffDelay(attempts, policy_, jitter, outcome.retry_after);
      GW_LOG(Warn, Delivery, "retry")
          .kv("partner", partner_.id)
          .kv("item", item.id)
          .kv("attempt", attempts)
          .kv("status", outcome.http_status)
          .kv("error", outcome.error_summary)
          .kv("retry_in_ms", delay.count());
      return store_.markRetry(item.id, attempts, now + delay, outcome.error_summary, now);
    }
    case AttemptOutcome::Kind::Dead:
      stats_.dead.inc();
      GW_LOG(Warn, Delivery, "dead_letter")
          .kv("partner", partner_.id)
          .kv("item", item.id)
          .kv("attempt", attempts)
          .kv("status", outcome.http_status)
          .kv("error", outcome.error_summary);
      return store_.markDead(item.id, attempts, outcome.error_summary, outcome.operation_outcome_json, now,
                             disclosureEntries(item, store::AuditOutcome::Failed, outcome.error_summary,
                                               deliveryDetail(item, outcome.http_status, {}), now, check_.policy_version));
  }
  return ok();
}

Result<int> PartnerWorker::runOnce() {
  auto due = store_.dueItems(partner_.id, clock_.now(), settings_.batch_size);
  if (!due) return due.error();
  int attempts = 0;
  for (const auto& item : due.value()) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    GW_TRY(attempt(item));
    ++attempts;
  }
  return attempts;
}

void PartnerWorker::run() {
  GW_LOG(Info, Delivery, "worker_started").kv("partner", partner_.id);
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      woken_ = false;
    }
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
    std::unique_lock lock(mutex_);
    wake_cv_.wait_for(lock, wait, [this] { return stopping_ || woken_; });
  }
  GW_LOG(Info, Delivery, "worker_stopped").kv("partner", partner_.id);
}

}  // namespace gw::delivery

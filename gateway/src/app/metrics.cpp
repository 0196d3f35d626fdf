#include "app/metrics.hpp"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <vector>

#include "app/runtime.hpp"
#include "common/log.hpp"

namespace gw::app {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// The states gw_partner_state reports, one-hot per partner; "up" is none of them. A new state
// (the circuit breaker's) is one line here.
const std::pair<std::string_view, bool (*)(const delivery::PartnerWorker&)> kPartnerStates[] = {
    {"failing", [](const delivery::PartnerWorker& w) { return w.stats().consecutive_failures.value() > 0; }},
    {"circuit_open",
     [](const delivery::PartnerWorker& w) { return w.circuitReport().state != delivery::CircuitState::Closed; }},
};

// The methods a route can have; anything else a client sends counts as "other" (a label must
// not take whatever text a client sends).
std::string_view methodLabel(std::string_view method) {
  for (std::string_view known : {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"}) {
    if (method == known) return known;
  }
  return "other";
}

// The families of one scrape; a deque, so the reference add() returns stays valid while more
// families are added.
class Families {
 public:
  MetricFamily& add(std::string name, std::string help, MetricType type) {
    families_.push_back({std::move(name), std::move(help), type, {}});
    return families_.back();
  }
  std::vector<MetricFamily> take() {
    return {std::make_move_iterator(families_.begin()), std::make_move_iterator(families_.end())};
  }

 private:
  std::deque<MetricFamily> families_;
};

ClientMetric counter(double value, Labels labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  return m;
}

ClientMetric gauge(double value, Labels labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  return m;
}

// A stats::Histogram (non-cumulative fixed buckets, in the stat's unit) in base units: `scale`
// turns the unit into the metric's (microseconds -> seconds: 1e-6).
ClientMetric histogram(const stats::Histogram& h, double scale, Labels labels = {}) {
  ClientMetric m;
  m.label = std::move(labels);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < stats::Histogram::kBounds.size(); ++i) {
    cumulative += h.bucket(i);
    m.histogram.bucket.push_back({cumulative, stats::Histogram::kBounds[i] * scale});
  }
  cumulative += h.bucket(stats::Histogram::kBounds.size());
  m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = cumulative;  // the buckets' total, so the page is consistent within itself
  m.histogram.sample_sum = h.sum() * scale;
  return m;
}

// A WorkPoolStats-like struct, every stat as gw_<prefix>_<name>: counters get _total, histograms
// of microseconds become _seconds.
template <class Stats>
void addVisited(Families& out, std::string_view prefix, const Stats& stats) {
  stats.visit([&](std::string_view name, std::string_view help, const auto& stat) {
    using Stat = std::decay_t<decltype(stat)>;
    std::string base = "gw_" + std::string(prefix) + "_" + std::string(name);
    if constexpr (std::is_same_v<Stat, stats::Counter>) {
      out.add(base + "_total", std::string(help), MetricType::Counter)
          .metric.push_back(counter(static_cast<double>(stat.value())));
    } else if constexpr (std::is_same_v<Stat, stats::Gauge>) {
      out.add(base, std::string(help), MetricType::Gauge).metric.push_back(gauge(static_cast<double>(stat.value())));
    } else {
      const bool micros = base.ends_with("_us");
      if (micros) base = base.substr(0, base.size() - 3) + "_seconds";
      out.add(base, std::string(help), MetricType::Histogram).metric.push_back(histogram(stat, micros ? 1e-6 : 1.0));
    }
  });
}

// notAfter of the first certificate of a PEM file, as Unix seconds.
std::optional<double> notAfter(const std::filesystem::path& file) {
  BIO* bio = BIO_new_file(file.c_str(), "r");
  if (bio == nullptr) return std::nullopt;
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return std::nullopt;
  std::tm tm{};
  const bool ok = ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1;
  X509_free(cert);
  if (!ok) return std::nullopt;
  return static_cast<double>(timegm(&tm));
}

double fileSize(const std::filesystem::path& file) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  return ec ? 0.0 : static_cast<double>(size);
}

}  // namespace

Metrics::Metrics(Runtime& runtime) : runtime_(runtime), registry_(std::make_shared<prometheus::Registry>()) {
  http_requests_ = &prometheus::BuildCounter()
                        .Name("gw_http_requests_total")
                        .Help("Requests answered, by route pattern (never the path), method and status code")
                        .Register(*registry_);
  http_duration_ = &prometheus::BuildHistogram()
                        .Name("gw_http_request_duration_seconds")
                        .Help("Time from a request's first byte to its answer being written, by route pattern")
                        .Register(*registry_);
  handshake_failures_ = &prometheus::BuildCounter()
                             .Name("gw_tls_handshake_failures_total")
                             .Help("TLS handshakes that failed on the main listener, by reason class")
                             .Register(*registry_);
}

Metrics::~Metrics() = default;

void Metrics::requestAnswered(std::string_view method, std::string_view route, unsigned status,
                              std::chrono::steady_clock::duration took) {
  const std::string route_label = route.empty() ? std::string("unmatched") : std::string(route);
  http_requests_
      ->Add({{"route", route_label}, {"method", std::string(methodLabel(method))}, {"code", std::to_string(status)}})
      .Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                   0.25,  0.5,    1,     2.5,  5,     10,   30};
  http_duration_->Add({{"route", route_label}}, kBuckets).Observe(std::chrono::duration<double>(took).count());
}

void Metrics::handshakeFailed(std::string_view reason) {
  handshake_failures_->Add({{"reason", std::string(reason)}}).Increment();
}

std::string Metrics::scrape() const {
  Families out;
  const auto& config = runtime_.config();
  const double now_s = std::chrono::duration<double>(runtime_.clock().now().time_since_epoch()).count();

  // --- ingest -----------------------------------------------------------------------------------
  const auto& ingest = runtime_.ingestStats();
  {
    auto& f = out.add("gw_ingest_requests_total", "Request bodies given to ingest, by outcome", MetricType::Counter);
    const auto unreadable = ingest.requests_unreadable.value(), failed = ingest.requests_storage_failed.value();
    const auto all = ingest.requests.value();
    f.metric.push_back(counter(static_cast<double>(all >= unreadable + failed ? all - unreadable - failed : 0),
                               {{"outcome", "processed"}}));
    f.metric.push_back(counter(static_cast<double>(unreadable), {{"outcome", "unreadable"}}));
    f.metric.push_back(counter(static_cast<double>(failed), {{"outcome", "storage_failed"}}));
  }
  const auto records = runtime_.ingestBreakdown().records();
  {
    auto& received = out.add("gw_ingest_records_received_total", "Records read from request bodies, by record type",
                             MetricType::Counter);
    auto& outcomes = out.add("gw_ingest_records_total",
                             "Records by type and outcome: accepted with their state (mapped, unmapped, invalid), "
                             "or rejected with the stage that refused them (schema, clinic, consent, mapping, ...)",
                             MetricType::Counter);
    auto& mapping = out.add("gw_ingest_mapping_total",
                            "Mapping outcomes by record type: mapped, unmapped (no mapper for the type), failed",
                            MetricType::Counter);
    auto& validation = out.add("gw_ingest_validation_total",
                               "Profile validation of mapped records by record type: valid, invalid", MetricType::Counter);
    std::map<std::string, double> by_type;
    std::map<std::pair<std::string, std::string>, double> mapped, validated;
    for (const auto& [key, n] : records) {
      const double v = static_cast<double>(n);
      by_type[key.record_type] += v;
      outcomes.metric.push_back(
          counter(v, {{"outcome", key.outcome}, {"reason_class", key.reason_class}, {"record_type", key.record_type}}));
      if (key.outcome == "accepted") {
        if (key.reason_class == "unmapped") {
          mapped[{key.record_type, "unmapped"}] += v;
        } else {
          mapped[{key.record_type, "mapped"}] += v;
          validated[{key.record_type, key.reason_class == "invalid" ? "invalid" : "valid"}] += v;
        }
      } else if (key.reason_class == "mapping") {
        mapped[{key.record_type, "failed"}] += v;
      }
    }
    for (const auto& [type, v] : by_type) received.metric.push_back(counter(v, {{"record_type", type}}));
    for (const auto& [k, v] : mapped)
      mapping.metric.push_back(counter(v, {{"outcome", k.second}, {"record_type", k.first}}));
    for (const auto& [k, v] : validated) {
      validation.metric.push_back(counter(v, {{"outcome", k.second}, {"record_type", k.first}}));
    }
  }
  out.add("gw_ingest_records_unchanged_total", "Accepted records resent with the same content", MetricType::Counter)
      .metric.push_back(counter(static_cast<double>(ingest.records_unchanged.value())));
  {
    auto& f = out.add("gw_consent_decisions_total", "Consent decisions taken at ingest, by outcome and reason",
                      MetricType::Counter);
    const auto& breakdown = runtime_.ingestBreakdown();
    for (auto outcome : {consent::Outcome::Permit, consent::Outcome::Redact, consent::Outcome::Deny}) {
      for (std::size_t r = 0; r < ingest::IngestBreakdown::kReasons; ++r) {
        const auto reason = static_cast<consent::Reason>(r);
        const auto n = breakdown.decisions(outcome, reason);
        if (n == 0) continue;
        f.metric.push_back(counter(static_cast<double>(n), {{"outcome", std::string(consent::outcomeName(outcome))},
                                                            {"reason", std::string(consent::reasonName(reason))}}));
      }
    }
  }

  // --- group commits ---------------------------------------------------------------------------
  if (const auto* commits = runtime_.groupCommitStats()) {
    out.add("gw_group_commits_total", "Group commits (one transaction and one fsync each)", MetricType::Counter)
        .metric.push_back(counter(static_cast<double>(commits->commits.value())));
    out.add("gw_group_commit_failures_total", "Group commits the database refused", MetricType::Counter)
        .metric.push_back(counter(static_cast<double>(commits->commit_failures.value())));
    out.add("gw_group_commit_records_total", "Records written by group commits", MetricType::Counter)
        .metric.push_back(counter(static_cast<double>(commits->records_committed.value())));
    out.add("gw_group_commit_waiting_requests", "Requests waiting for the next group commit", MetricType::Gauge)
        .metric.push_back(gauge(static_cast<double>(commits->requests_waiting.value())));
    out.add("gw_group_commit_duration_seconds", "Time of one group commit, its fsync included", MetricType::Histogram)
        .metric.push_back(histogram(commits->commit_us, 1e-6));
    out.add("gw_group_commit_size_requests", "Requests that shared one group commit", MetricType::Histogram)
        .metric.push_back(histogram(commits->commit_requests, 1.0));
  }

  // --- outbox and delivery, per partner ----------------------------------------------------------
  auto& items = out.add("gw_outbox_items", "Outbox items by partner and state (read from the database)", MetricType::Gauge);
  auto& oldest = out.add("gw_outbox_oldest_pending_age_seconds",
                         "Age of the oldest queued or retrying item per partner; 0 when none waits", MetricType::Gauge);
  auto& attempts = out.add("gw_delivery_posts_total",
                           "Bundles posted to the partner (batch and per-resource modes post "
                           "several per item)",
                           MetricType::Counter);
  auto& answers = out.add("gw_delivery_attempts_total",
                          "Item delivery attempts by partner and the class of its answer (2xx..5xx, none: no answer)",
                          MetricType::Counter);
  auto& outcomes = out.add("gw_delivery_outcomes_total",
                           "What came of item attempts, by partner: delivered, retry, dead, cancelled (consent re-check)",
                           MetricType::Counter);
  auto& post_time = out.add("gw_delivery_post_duration_seconds", "Time of one item attempt's posts to the partner",
                            MetricType::Histogram);
  auto& latency = out.add("gw_delivery_latency_seconds",
                          "Time from an item being queued (its record received) to the partner accepting it",
                          MetricType::Histogram);
  auto& state = out.add("gw_partner_state",
                        "Partner health, one-hot: up, failing (its attempts fail without an answer "
                        "or with 5xx/429/408)",
                        MetricType::Gauge);
  auto& failures = out.add("gw_partner_consecutive_failures",
                           "Item attempts failed in a row since the partner last "
                           "accepted or answered one",
                           MetricType::Gauge);
  auto& since = out.add("gw_partner_failing_since_timestamp_seconds",
                        "When the partner's current run of failures began (Unix seconds); 0 when up", MetricType::Gauge);
  auto& capability = out.add("gw_partner_capability_statement_read",
                             "1 when the partner's CapabilityStatement was read and understood at the last try",
                             MetricType::Gauge);
  bool store_ok = true;
  for (const auto& worker : runtime_.workers()) {
    const std::string& id = worker->partnerId();
    const Labels partner{{"partner", id}};
    const auto& s = worker->stats();
    if (auto counts = runtime_.store().outboxCounts(id)) {
      const auto& c = counts.value();
      for (const auto& [name, n] : std::initializer_list<std::pair<const char*, std::int64_t>>{{"queued", c.queued},
                                                                                               {"retrying", c.retrying},
                                                                                               {"delivered", c.delivered},
                                                                                               {"dead", c.dead},
                                                                                               {"superseded", c.superseded},
                                                                                               {"cancelled", c.cancelled}}) {
        items.metric.push_back(gauge(static_cast<double>(n), {{"partner", id}, {"state", name}}));
      }
      const double age = c.oldest_pending_created_ms > 0
                             ? std::max(0.0, now_s - static_cast<double>(c.oldest_pending_created_ms) / 1000.0)
                             : 0.0;
      oldest.metric.push_back(gauge(age, partner));
    } else {
      store_ok = false;
      GW_LOG(Warn, Store, "metrics_outbox_unreadable").kv("partner", id).kv("error", counts.error().describe());
    }
    attempts.metric.push_back(counter(static_cast<double>(s.attempts.value()), partner));
    for (const auto& [name, stat] :
         std::initializer_list<std::pair<const char*, const stats::Counter*>>{{"2xx", &s.answers_2xx},
                                                                              {"3xx", &s.answers_3xx},
                                                                              {"4xx", &s.answers_4xx},
                                                                              {"5xx", &s.answers_5xx},
                                                                              {"none", &s.answers_none}}) {
      answers.metric.push_back(counter(static_cast<double>(stat->value()), {{"partner", id}, {"status_class", name}}));
    }
    for (const auto& [name, stat] : std::initializer_list<std::pair<const char*, const stats::Counter*>>{
             {"delivered", &s.delivered}, {"retry", &s.retries}, {"dead", &s.dead}, {"cancelled", &s.cancelled}}) {
      outcomes.metric.push_back(counter(static_cast<double>(stat->value()), {{"outcome", name}, {"partner", id}}));
    }
    post_time.metric.push_back(histogram(s.attempt_us, 1e-6, partner));
    latency.metric.push_back(histogram(s.delivery_latency_ms, 1e-3, partner));
    bool any = false;
    for (const auto& [name, holds] : kPartnerStates) {
      const bool on = holds(*worker);
      any = any || on;
      state.metric.push_back(gauge(on ? 1 : 0, {{"partner", id}, {"state", std::string(name)}}));
    }
    state.metric.push_back(gauge(any ? 0 : 1, {{"partner", id}, {"state", "up"}}));
    failures.metric.push_back(gauge(static_cast<double>(s.consecutive_failures.value()), partner));
    since.metric.push_back(gauge(static_cast<double>(s.failing_since_ms.value()) / 1000.0, partner));
    capability.metric.push_back(gauge(worker->capabilityReport().statement_read ? 1 : 0, partner));
  }

  // --- audit, reloads, the blocking pool ----------------------------------------------------------
  if (auto head = runtime_.store().auditHead()) {
    out.add("gw_audit_rows_appended_total", "Rows ever appended to the audit chain (its head's sequence number)",
            MetricType::Counter)
        .metric.push_back(counter(static_cast<double>(head.value().seq)));
  } else {
    store_ok = false;
  }
  const auto& rs = runtime_.stats();
  out.add("gw_audit_chain_verify_result",
          "The last audit chain verification (GET /v1/audit/verify): 1 intact, 0 broken, -1 none since start",
          MetricType::Gauge)
      .metric.push_back(gauge(static_cast<double>(rs.audit_verify_result.value())));
  out.add("gw_audit_chain_verify_timestamp_seconds", "When the audit chain was last verified (Unix seconds); 0: never",
          MetricType::Gauge)
      .metric.push_back(gauge(static_cast<double>(rs.audit_verify_at_ms.value()) / 1000.0));
  {
    auto& f = out.add("gw_reloads_total", "Rule set reloads by result: ok (put in place), failed (the running set stayed)",
                      MetricType::Counter);
    f.metric.push_back(counter(static_cast<double>(rs.reloads.value()), {{"result", "ok"}}));
    f.metric.push_back(counter(static_cast<double>(rs.reload_failures.value()), {{"result", "failed"}}));
  }
  addVisited(out, "blocking_pool", runtime_.blockingPool().stats());

  // --- database, disk and certificates ------------------------------------------------------------
  const auto& db = config.storage.sqlite_path;
  if (!db.empty()) {
    out.add("gw_database_size_bytes", "Size of the database files (main, WAL and shared memory)", MetricType::Gauge)
        .metric.push_back(gauge(fileSize(db) + fileSize(db.string() + "-wal") + fileSize(db.string() + "-shm")));
    struct statvfs fs {};
    if (statvfs(db.parent_path().c_str(), &fs) == 0) {
      out.add("gw_database_filesystem_avail_bytes", "Bytes free for the gateway on the database's filesystem",
              MetricType::Gauge)
          .metric.push_back(gauge(static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize)));
      out.add("gw_database_filesystem_size_bytes", "Size of the database's filesystem", MetricType::Gauge)
          .metric.push_back(gauge(static_cast<double>(fs.f_blocks) * static_cast<double>(fs.f_frsize)));
    }
  }
  {
    auto& f = out.add("gw_certificate_not_after_timestamp_seconds",
                      "When a certificate the gateway presents expires (Unix seconds): the server's, each partner's "
                      "client certificate",
                      MetricType::Gauge);
    if (auto t = notAfter(config.server.tls.cert_file)) f.metric.push_back(gauge(*t, {{"use", "server"}}));
    for (const auto& p : config.partners) {
      if (p.client_cert_file.empty()) continue;
      if (auto t = notAfter(p.client_cert_file)) {
        f.metric.push_back(gauge(*t, {{"partner", p.id}, {"use", "partner_client"}}));
      }
    }
  }
  out.add("gw_metrics_store_read_ok", "1 when this scrape read the outbox and the audit head from the database",
          MetricType::Gauge)
      .metric.push_back(gauge(store_ok ? 1 : 0));

  // --- this instance (docs/operations.md §8.2) ---------------------------------------------------
  const auto instance = runtime_.instanceRow();
  out.add("gw_instance_info",
          "Always 1: the versions this instance runs (build, configuration, mapping set), as in "
          "GET /v1/admin/instances",
          MetricType::Gauge)
      .metric.push_back(gauge(1, {{"binary_version", instance.binary_version},
                                  {"config_version", instance.config_version},
                                  {"mappers_version", instance.mappers_version}}));

  auto families = registry_->Collect();
  auto ours = out.take();
  families.insert(families.end(), std::make_move_iterator(ours.begin()), std::make_move_iterator(ours.end()));
  // An empty family would be a HELP and TYPE with no sample: leave it out.
  std::erase_if(families, [](const MetricFamily& f) { return f.metric.empty(); });
  // Every series names the instance it comes from: the scrape target's `instance` label is an
  // address, which behind a shared address or after a restart does not tell which process (and
  // which log lines and log rows) a series belongs to. `instance_id` does not collide with it.
  // Labels stay in name order, as every family here writes them.
  const ClientMetric::Label instance_label{"instance_id", runtime_.instanceId()};
  for (auto& f : families) {
    for (auto& m : f.metric) {
      const auto at = std::find_if(m.label.begin(), m.label.end(),
                                   [&](const ClientMetric::Label& l) { return l.name > instance_label.name; });
      m.label.insert(at, instance_label);
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace gw::app

#pragma once
// Counters, gauges and histograms that a module fills as it works, declared Envoy-style: each
// module lists its stats once in an X-macro,
//
//   #define ALL_INGEST_STATS(COUNTER, GAUGE, HISTOGRAM)  (one stat per line, each ending in a backslash)
//     COUNTER(records_received, "Records read from request bodies")
//     GAUGE(commits_in_flight, "Group commits waiting for the database")
//     HISTOGRAM(commit_us, "Time of one group commit, fsync included, in microseconds")
//   GW_DECLARE_STATS_STRUCT(IngestStats, ALL_INGEST_STATS);
//
// which makes a struct with one member per stat and a visit() that names each with its kind and
// help text, so an exporter (Prometheus text, a status page) needs no second list. Updates are
// relaxed atomics: cheap enough for every record, and a reader sees each value whole.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace gw::stats {

class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  void sub(std::int64_t n) { value_.fetch_sub(n, std::memory_order_relaxed); }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

/// Observations in fixed buckets: upper bounds 1, 2.5, 5, 10, 25, ... up to 1e6 units (the
/// unit is the stat's: seconds for latencies are recorded as microseconds, sizes as counts),
/// plus +Inf. Fixed bounds keep recording lock-free and the export shape stable.
class Histogram {
 public:
  static constexpr std::array<double, 19> kBounds = {1,    2.5,  5,     10,    25,    50,     100,    250,    500,    1000,
                                                     2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};
  void record(double value) {
    std::size_t i = 0;
    while (i < kBounds.size() && value > kBounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    // The sum is kept in thousandths so it stays an integer atomic.
    sum_milli_.fetch_add(static_cast<std::uint64_t>(value * 1000.0), std::memory_order_relaxed);
  }
  void recordMicros(std::chrono::steady_clock::duration d) {
    record(static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()));
  }
  /// Observations in bucket i alone (kBounds.size() is the +Inf bucket).
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return static_cast<double>(sum_milli_.load(std::memory_order_relaxed)) / 1000.0; }

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_milli_{0};
};

enum class Kind { Counter, Gauge, Histogram };

}  // namespace gw::stats

#define GW_STATS_MEMBER_COUNTER(name, help) ::gw::stats::Counter name;
#define GW_STATS_MEMBER_GAUGE(name, help) ::gw::stats::Gauge name;
#define GW_STATS_MEMBER_HISTOGRAM(name, help) ::gw::stats::Histogram name;
#define GW_STATS_VISIT_COUNTER(name, help) visitor(std::string_view(#name), std::string_view(help), name);
#define GW_STATS_VISIT_GAUGE(name, help) visitor(std::string_view(#name), std::string_view(help), name);
#define GW_STATS_VISIT_HISTOGRAM(name, help) visitor(std::string_view(#name), std::string_view(help), name);

/// Declares `struct StructName` with one member per stat of ALL_X and
/// `template <class V> void visit(V&& visitor) const` calling visitor(name, help, stat) for each
/// (stat is a const Counter&, Gauge& or Histogram&).
#define GW_DECLARE_STATS_STRUCT(StructName, ALL_X)                                   \
  struct StructName {                                                                \
    ALL_X(GW_STATS_MEMBER_COUNTER, GW_STATS_MEMBER_GAUGE, GW_STATS_MEMBER_HISTOGRAM) \
    template <class Visitor>                                                         \
    void visit(Visitor&& visitor) const {                                            \
      ALL_X(GW_STATS_VISIT_COUNTER, GW_STATS_VISIT_GAUGE, GW_STATS_VISIT_HISTOGRAM)  \
    }                                                                                \
  }

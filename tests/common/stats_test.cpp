#include "common/stats.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gw::stats {
namespace {

#define ALL_SAMPLE_STATS(COUNTER, GAUGE, HISTOGRAM) \
  COUNTER(things_done, "Things done")               \
  GAUGE(things_waiting, "Things waiting")           \
  HISTOGRAM(thing_us, "Time of one thing")
GW_DECLARE_STATS_STRUCT(SampleStats, ALL_SAMPLE_STATS);

struct Seen {
  std::string name, help;
  Kind kind;
  double value;
};

struct Collector {
  std::vector<Seen>& out;
  void operator()(std::string_view name, std::string_view help, const Counter& c) const {
    out.push_back({std::string(name), std::string(help), Kind::Counter, static_cast<double>(c.value())});
  }
  void operator()(std::string_view name, std::string_view help, const Gauge& g) const {
    out.push_back({std::string(name), std::string(help), Kind::Gauge, static_cast<double>(g.value())});
  }
  void operator()(std::string_view name, std::string_view help, const Histogram& h) const {
    out.push_back({std::string(name), std::string(help), Kind::Histogram, static_cast<double>(h.count())});
  }
};

TEST(Stats, OneListNamesEveryStatWithItsKindHelpAndValue) {
  SampleStats stats;
  stats.things_done.inc();
  stats.things_done.inc(2);
  stats.things_waiting.set(5);
  stats.things_waiting.sub(2);
  stats.thing_us.record(3);
  std::vector<Seen> seen;
  stats.visit(Collector{seen});
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].name, "things_done");
  EXPECT_EQ(seen[0].help, "Things done");
  EXPECT_EQ(seen[0].kind, Kind::Counter);
  EXPECT_EQ(seen[0].value, 3);
  EXPECT_EQ(seen[1].name, "things_waiting");
  EXPECT_EQ(seen[1].kind, Kind::Gauge);
  EXPECT_EQ(seen[1].value, 3);
  EXPECT_EQ(seen[2].name, "thing_us");
  EXPECT_EQ(seen[2].kind, Kind::Histogram);
  EXPECT_EQ(seen[2].value, 1);
}

TEST(Stats, HistogramBucketsByUpperBoundWithAnInfiniteLast) {
  Histogram h;
  h.record(1);    // <= 1
  h.record(1.5);  // <= 2.5
  h.record(2.5);  // <= 2.5 (bounds are inclusive)
  h.record(2e6);  // above every bound
  EXPECT_EQ(h.bucket(0), 1u);
  EXPECT_EQ(h.bucket(1), 2u);
  EXPECT_EQ(h.bucket(Histogram::kBounds.size()), 1u);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 1 + 1.5 + 2.5 + 2e6);
}

}  // namespace
}  // namespace gw::stats

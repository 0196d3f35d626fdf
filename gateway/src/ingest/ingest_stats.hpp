#pragma once
// What ingest and the group committer count (common/stats.hpp): one place names each stat, its
// kind and its help text. Owned by the Runtime, so the counts outlive a reload.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "common/stats.hpp"
#include "consent/decision.hpp"

namespace gw::ingest {

#define ALL_INGEST_STATS(COUNTER, GAUGE, HISTOGRAM)                                                    \
  COUNTER(requests, "Request bodies ingest was given")                                                 \
  COUNTER(requests_unreadable, "Bodies refused whole: unreadable, unsupported type, too many records") \
  COUNTER(requests_storage_failed, "Requests whose commit failed, so nothing of them was stored")      \
  COUNTER(records_received, "Records read from request bodies")                                        \
  COUNTER(records_accepted, "Records stored (created, new version or unchanged)")                      \
  COUNTER(records_rejected, "Records rejected: schema, clinic, mapping, consent rules")                \
  COUNTER(records_unchanged, "Records resent with the same content")                                   \
  COUNTER(records_unmapped, "Records kept without a mapper for their type")                            \
  COUNTER(records_invalid, "Records kept because a mapped resource fails its profile")                 \
  COUNTER(decisions_permit, "Consent decisions that permit a resource for a partner")                  \
  COUNTER(decisions_redact, "Consent decisions that permit a redacted CarePlan")                       \
  COUNTER(decisions_deny, "Consent decisions that deny a resource to a partner")
GW_DECLARE_STATS_STRUCT(IngestStats, ALL_INGEST_STATS);

#define ALL_GROUP_COMMIT_STATS(COUNTER, GAUGE, HISTOGRAM)                           \
  COUNTER(commits, "Group commits (one transaction and one fsync each)")            \
  COUNTER(commit_failures, "Group commits the database refused")                    \
  COUNTER(records_committed, "Records written by group commits")                    \
  GAUGE(requests_waiting, "Requests waiting for the next group commit")             \
  HISTOGRAM(commit_us, "Time of one group commit, fsync included, in microseconds") \
  HISTOGRAM(commit_requests, "Requests that shared one group commit")
GW_DECLARE_STATS_STRUCT(GroupCommitStats, ALL_GROUP_COMMIT_STATS);

/// What the flat counters above cannot say: records by type, outcome and reason class, and
/// consent decisions by outcome and reason (Prometheus labels). Labels are bounded sets and never
/// PHI: record types the rule set knows ("other" for anything else), the pipeline stage that
/// rejected a record, a record's state, the decision reason's name.
/// A request adds all its records in one locked step (not one per record); decisions are a fixed
/// table of atomics.
class IngestBreakdown {
 public:
  struct RecordKey {
    std::string record_type;   // a type of the rule set, or "other"
    std::string outcome;       // "accepted" | "rejected"
    std::string reason_class;  // accepted: the record's state (mapped, unmapped, invalid); rejected: the stage
    bool operator<(const RecordKey& o) const {
      return std::tie(record_type, outcome, reason_class) < std::tie(o.record_type, o.outcome, o.reason_class);
    }
  };
  using RecordCounts = std::map<RecordKey, std::uint64_t>;

  void addRecords(const RecordCounts& counts) {
    if (counts.empty()) return;
    std::lock_guard lock(mutex_);
    for (const auto& [key, n] : counts) records_[key] += n;
  }
  RecordCounts records() const {
    std::lock_guard lock(mutex_);
    return records_;
  }

  static constexpr std::size_t kOutcomes = 3;  // consent::Outcome
  static constexpr std::size_t kReasons = static_cast<std::size_t>(consent::Reason::InternalError) + 1;
  /// `reason` as the audit log writes it ("class-not-covered:mh" counts as class-not-covered).
  void addDecision(consent::Outcome outcome, std::string_view reason) {
    reason = reason.substr(0, reason.find(':'));
    std::size_t r = kReasons - 1;  // unknown text: internal-error
    for (std::size_t i = 0; i < kReasons; ++i) {
      if (consent::reasonName(static_cast<consent::Reason>(i)) == reason) r = i;
    }
    decisions_[static_cast<std::size_t>(outcome)][r].fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t decisions(consent::Outcome outcome, consent::Reason reason) const {
    return decisions_[static_cast<std::size_t>(outcome)][static_cast<std::size_t>(reason)].load(std::memory_order_relaxed);
  }

 private:
  mutable std::mutex mutex_;
  RecordCounts records_;  // guarded by mutex_
  std::array<std::array<std::atomic<std::uint64_t>, kReasons>, kOutcomes> decisions_{};
};

}  // namespace gw::ingest

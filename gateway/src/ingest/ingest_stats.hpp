#pragma once
// What ingest and the group committer count (common/stats.hpp): one place names each stat, its
// kind and its help text. Owned by the Runtime, so the counts outlive a reload.
#include "common/stats.hpp"

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

}  // namespace gw::ingest

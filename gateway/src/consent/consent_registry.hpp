#pragma once
// The consent registry: the current version of every consent, in memory, indexed by patient then
// partner, and the decision engine over it (docs/privacy.md §5).
//
// Concurrency: decisions are frequent and writes (a consent record arriving) are rare. The index
// is split into shards by patient key, each behind its own std::shared_mutex: a decision takes one
// shared lock on one shard, so readers on different patients never share a lock's cache line, and
// a write blocks only the readers of its shard for an O(consents of one patient) update. (A
// copy-on-write snapshot would make every write O(all consents), too slow for a batch of consent
// records against 50,000 loaded.) Writers are serialised among themselves. A decision hashes the
// patient key once, scans that patient's few consents (compact copies of the decision facts,
// bounds as instants) and allocates nothing, except a redaction's list of removed activities.
//
// Time (docs/privacy.md §5.6): a consent's date-only bounds are placed in its clinic's time zone
// once, when the version enters the registry: a start at the start of that local day, an end at
// the start of the next one (inclusive end), a date-only revocation at the start of its day.
// Date-time bounds are instants already. A decision then compares its instant with three numbers.
//
// Versions: each (clinic, consent_id) keeps only its newest version for decisions. A version at or
// below the newest known is ignored (a replay cannot bring back an older state). Revocation is
// final: once a version of a consent is revoked, an active version of the same consent is refused
// (a new authorisation must come as a new consent id).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "consent/consent_version.hpp"
#include "consent/decision.hpp"

namespace gw::consent {

/// The time zone of a clinic (config clinics[].time_zone); null for a clinic not configured.
using ClinicZones = std::function<std::shared_ptr<const tz::TimeZone>(std::string_view clinic)>;

class ConsentRegistry {
 public:
  /// Every clinic's local day is the UTC day (tests and tools).
  ConsentRegistry();
  /// A consent with a date-only bound whose clinic has no zone is refused (default deny).
  explicit ConsentRegistry(ClinicZones zones);
  ~ConsentRegistry();
  ConsentRegistry(const ConsentRegistry&) = delete;
  ConsentRegistry& operator=(const ConsentRegistry&) = delete;

  struct UpsertResult {
    /// false: this version, or a newer one, was already known; nothing changed.
    bool applied = false;
    /// The version replaced, when there was one.
    std::shared_ptr<const ConsentVersion> previous;
    /// An active consent became revoked: cancel what is queued for previous->patient_key and
    /// previous->partner_id (and log each cancellation).
    bool revoked = false;
  };

  /// Whether `v` can be recorded (call before persisting it): a sound row (see rowProblem) whose
  /// date-only bounds have a clinic time zone, and that does not reactivate a revoked consent. A stale version is admissible
  /// (upsert ignores it).
  Status admissible(const ConsentVersion& v) const;

  /// Records `v` if it is newer than what is known. Errors: an unsound row (the consent's older
  /// version is withdrawn from decisions all the same when `v` is newer, so a damaged revocation
  /// cannot leave the old permission in force) or a reactivation of a revoked consent.
  Result<UpsertResult> upsert(ConsentVersion v);

  /// Replaces the whole content with `rows` (every stored version, any order), as at start-up.
  /// Returns one error per row refused (same rules as upsert); the others are loaded.
  std::vector<Error> load(std::vector<ConsentVersion> rows);

  /// Emergency disclosures (docs/privacy.md §7.1). A grant is consulted only where no consent
  /// permits: a deny or a redaction for the grant's patient and partner, at an instant inside it,
  /// of classified data with a known purpose, becomes a permit with reason BreakGlass. Opening
  /// replaces a grant of the same id (ending one early: open it again with expires_ms = now).
  void openBreakGlass(BreakGlassGrant grant);
  /// Replaces every grant (start-up).
  void loadBreakGlass(std::vector<BreakGlassGrant> grants);
  /// The grant of that id as the registry holds it (nullptr: none).
  std::shared_ptr<const BreakGlassGrant> breakGlass(std::string_view id) const;

  /// The decision for one resource. Never throws; anything unexpected is a deny.
  Decision decide(const DecisionRequest& request) const noexcept;

  /// The current version of a consent, or null.
  std::shared_ptr<const ConsentVersion> current(std::string_view clinic, std::string_view consent_id) const;
  /// The highest version seen for a consent, 0 if none: the next one is this + 1.
  std::int64_t latestVersion(std::string_view clinic, std::string_view consent_id) const;
  /// Number of consents with a current version.
  std::size_t size() const;
  /// The current versions of a patient's consents, every partner: to build a scratch registry
  /// that adds consents not committed yet (IngestService decides a request's records under the
  /// consents of the same request).
  std::vector<ConsentVersion> currentOf(std::string_view patient_key) const;
  /// The clinics' time zones this registry places date-only bounds in.
  const ClinicZones& zones() const;
  /// Changes with every upsert and load: a decision taken under an older generation may be stale.
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  struct State;
  std::shared_ptr<const BreakGlassGrant> activeBreakGlass(const DecisionRequest& request) const;

  std::unique_ptr<State> state_;
  std::atomic<std::uint64_t> generation_{0};
  // Emergency grants: few, and read only when a consent does not permit; a grant that expired
  // stays until replaced or reloaded (it no longer matches any instant inside it).
  mutable std::shared_mutex break_glass_mutex_;
  std::vector<std::shared_ptr<const BreakGlassGrant>> break_glass_;
  std::atomic<std::size_t> break_glass_count_{0};
};

}  // namespace gw::consent

#include "consent/consent_registry.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <functional>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <unordered_map>

namespace gw::consent {
namespace {

constexpr std::size_t kShards = 64;

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// Why a consent is not a candidate (docs/privacy.md §5.1), one bit each. A lower bit is the more
// telling reason when one consent fails several ways: a revoked or lapsed consent says more than
// the scope it would have had.
enum Failure : std::uint8_t { kRevoked = 1, kExpired = 2, kNotYetValid = 4, kPurpose = 8, kClass = 16 };

Reason reasonOf(std::uint8_t mask) {
  switch (mask & static_cast<std::uint8_t>(-mask)) {  // lowest set bit
    case kRevoked: return Reason::Revoked;
    case kExpired: return Reason::Expired;
    case kNotYetValid: return Reason::NotYetValid;
    case kPurpose: return Reason::PurposeNotCovered;
    case kClass: return Reason::ClassNotCovered;
    default: return Reason::InternalError;
  }
}

std::uint64_t hashOf(std::string_view s) { return std::hash<std::string_view>{}(s); }

// The decision facts of one current consent version, copied out of it so that a decision reads
// one small array and touches the version only to hand it out: bounds as instants (Unix ms), the
// partner as a hash and a copy (partner ids are short, so the copy sits in the slot and comparing
// it reads no other memory).
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kAlways = std::numeric_limits<std::int64_t>::min();

struct Slot {
  std::uint64_t partner_hash = 0;
  std::string partner;
  std::int64_t start_ms = 0;          // first instant in force
  std::int64_t end_ms = kNever;       // first instant no longer in force
  std::int64_t revoked_ms = kAlways;  // the revocation takes effect from here; kNever = not revoked
  std::int32_t signed_on = 0;         // min() when absent
  std::uint8_t purposes = 0;
  std::uint8_t classes = 0;
  std::string_view start_form, end_form, revoked_form;  // "start:local-day", ... (static text)
  std::shared_ptr<const ConsentVersion> consent;
  std::shared_ptr<const tz::TimeZone> zone;
};

// General means "nothing sensitive": a set with sud or mh does not also need a general consent.
privacy::ClassSet withoutImpliedGeneral(privacy::ClassSet s) {
  return s.sensitive() ? privacy::ClassSet(
                             static_cast<std::uint8_t>(s.bits() & ~static_cast<std::uint8_t>(privacy::DataClass::General)))
                       : s;
}

// Days since 1970-01-01; parseDate keeps years within 1..9999, far inside int32.
std::int32_t dayNumber(Date d) { return static_cast<std::int32_t>(d.time_since_epoch().count()); }

// The first instant (Unix ms) of a local day.
std::int64_t dayStartMs(const tz::TimeZone& zone, Date d) {
  return zone.startOfLocalDay(d.time_since_epoch().count()) * 1000;
}

bool needsZone(const ConsentVersion& c) {
  return c.period_start.dateOnly() || (c.period_end && c.period_end->dateOnly()) ||
         (c.revoked_on && c.revoked_on->dateOnly());
}

// Places the consent's bounds in time; `zone` may be null only when every bound is an instant.
Slot makeSlot(std::shared_ptr<const ConsentVersion> c, std::shared_ptr<const tz::TimeZone> zone) {
  Slot s;
  s.partner_hash = hashOf(c->partner_id);
  s.partner = c->partner_id;
  const auto& start = c->period_start;
  s.start_ms = start.dateOnly() ? dayStartMs(*zone, start.day) : *start.at_ms;
  s.start_form = start.dateOnly() ? "start:local-day" : "start:instant";
  if (c->period_end) {
    const auto& end = *c->period_end;
    // Inclusive either way: a day to its last instant, a date-time to that very instant.
    s.end_ms = end.dateOnly() ? dayStartMs(*zone, end.day + std::chrono::days(1)) : *end.at_ms + 1;
    s.end_form = end.dateOnly() ? "end:local-day" : "end:instant";
  }
  if (c->status == ConsentStatus::Active && !c->revoked_on) {
    s.revoked_ms = kNever;
  } else if (c->status == ConsentStatus::Revoked && c->revoked_on) {
    // From the start of the named local day, or the instant; a future one is a scheduled end.
    const auto& r = *c->revoked_on;
    s.revoked_ms = r.dateOnly() ? dayStartMs(*zone, r.day) : *r.at_ms;
    s.revoked_form = r.dateOnly() ? "revoked:local-day" : "revoked:instant";
  } else {
    // Revoked without a date (a tombstone), or active with a revocation date: contradictions deny.
    s.revoked_ms = kAlways;
    s.revoked_form = "revoked:status";
  }
  s.signed_on = c->signed_on ? dayNumber(*c->signed_on) : std::numeric_limits<std::int32_t>::min();
  s.purposes = c->purposes.bits();
  s.classes = c->classes.bits();
  s.consent = std::move(c);
  s.zone = std::move(zone);
  return s;
}

// Grouped by partner; within a partner the consent to prefer comes first: latest signature, then
// latest recorded, then highest version, then (clinic, consent id) so the order is total.
bool slotBefore(const Slot& a, const Slot& b) {
  const ConsentVersion& x = *a.consent;
  const ConsentVersion& y = *b.consent;
  if (x.partner_id != y.partner_id) return x.partner_id < y.partner_id;
  return std::tie(b.signed_on, y.recorded_at, y.version, x.clinic, x.consent_id) <
         std::tie(a.signed_on, x.recorded_at, x.version, y.clinic, y.consent_id);
}

struct Patient {
  std::string key;
  std::vector<Slot> slots;
};

// Patients by the hash of their key (computed once per decision, for the shard and the lookup);
// a multimap so that two keys with the same hash still both work.
using PatientIndex = std::unordered_multimap<std::uint64_t, Patient>;

struct alignas(64) Shard {
  mutable std::shared_mutex mutex;
  PatientIndex patients;

  PatientIndex::iterator find(std::uint64_t hash, std::string_view key) {
    auto [it, end] = patients.equal_range(hash);
    for (; it != end; ++it) {
      if (it->second.key == key) return it;
    }
    return patients.end();
  }
  const Patient* find(std::uint64_t hash, std::string_view key) const {
    auto [it, end] = patients.equal_range(hash);
    for (; it != end; ++it) {
      if (it->second.key == key) return &it->second;
    }
    return nullptr;
  }
};

struct KeyEntry {
  std::int64_t latest = 0;                        // highest version seen, applied or refused as unsound
  bool revoked_once = false;                      // some version was revoked: the consent can never be active again
  std::shared_ptr<const ConsentVersion> current;  // null when withdrawn by an unsound newer version
};

// Length-prefixed, so no pair of ids can spell another pair's key.
std::string keyOf(std::string_view clinic, std::string_view consent_id) {
  std::string k = std::to_string(clinic.size());
  k.reserve(k.size() + clinic.size() + consent_id.size() + 1);
  k.append(1, ':').append(clinic).append(consent_id);
  return k;
}

Decision deny(Reason reason) {
  Decision d;
  d.reason = reason;
  return d;
}

Error refusal(const ConsentVersion& v, std::string why, std::string hint) {
  return makeError(ErrorCode::InvalidInput,
                   "consent " + v.consent_id + " version " + std::to_string(v.version) + " of clinic " + v.clinic +
                       " was refused: " + std::move(why),
                   "consent", std::move(hint));
}

}  // namespace

struct ConsentRegistry::State {
  explicit State(ClinicZones z) : zones(std::move(z)) {}

  ClinicZones zones;
  std::array<Shard, kShards> shards;
  std::mutex write_mutex;  // one writer at a time; readers never take it
  mutable std::shared_mutex keys_mutex;
  StringMap<KeyEntry> keys;  // by keyOf(clinic, consent_id)
  std::size_t current_count = 0;

  // High bits of a multiplicative hash pick the shard; the index's buckets use the hash modulo a
  // prime, so the two stay independent.
  static std::size_t shardIndex(std::uint64_t hash) { return (hash * 0x9E3779B97F4A7C15ULL) >> 58; }
  static_assert(kShards == 64);
  Shard& shardFor(std::string_view patient_key) { return shards[shardIndex(hashOf(patient_key))]; }

  static void eraseSlot(Shard& shard, const ConsentVersion* c) {
    auto it = shard.find(hashOf(c->patient_key), c->patient_key);
    if (it == shard.patients.end()) return;
    auto& slots = it->second.slots;
    slots.erase(std::remove_if(slots.begin(), slots.end(), [&](const Slot& s) { return s.consent.get() == c; }),
                slots.end());
    if (slots.empty()) shard.patients.erase(it);
  }

  static void insertSlot(Shard& shard, Slot slot) {
    const std::string& key = slot.consent->patient_key;
    const std::uint64_t hash = hashOf(key);
    auto it = shard.find(hash, key);
    if (it == shard.patients.end()) it = shard.patients.emplace(hash, Patient{key, {}});
    auto& slots = it->second.slots;
    slots.insert(std::upper_bound(slots.begin(), slots.end(), slot, slotBefore), std::move(slot));
  }

  // Why the version's bounds cannot be placed in time, or empty: a date-only bound needs the
  // clinic's zone, and the placed period must not end before it starts.
  std::string timeProblem(const ConsentVersion& v, std::shared_ptr<const tz::TimeZone>& zone) const {
    zone = zones(v.clinic);
    if (zone == nullptr && needsZone(v)) {
      return "clinic '" + v.clinic + "' has no time zone, and the consent's date-only bounds are local days";
    }
    if (v.period_end) {
      const Slot placed = makeSlot(std::make_shared<const ConsentVersion>(v), zone);
      if (placed.end_ms <= placed.start_ms) return "the period ends before it starts";
    }
    return {};
  }

  // Swaps `previous` for `next` in the index (either may be null). Same patient: one exclusive
  // lock, so a reader sees the old version or the new one, never neither.
  void replace(const std::shared_ptr<const ConsentVersion>& previous, std::shared_ptr<const ConsentVersion> next,
               std::shared_ptr<const tz::TimeZone> zone = nullptr) {
    Shard* from = previous ? &shardFor(previous->patient_key) : nullptr;
    Shard* to = next ? &shardFor(next->patient_key) : nullptr;
    if (from != nullptr && from == to) {
      Slot slot = makeSlot(std::move(next), std::move(zone));
      std::unique_lock lock(from->mutex);
      eraseSlot(*from, previous.get());
      insertSlot(*to, std::move(slot));
      return;
    }
    // Different patients: remove first, so a reader may briefly see neither (a deny), never both.
    if (from != nullptr) {
      std::unique_lock lock(from->mutex);
      eraseSlot(*from, previous.get());
    }
    if (to != nullptr) {
      Slot slot = makeSlot(std::move(next), std::move(zone));
      std::unique_lock lock(to->mutex);
      insertSlot(*to, std::move(slot));
    }
  }

  const KeyEntry* entry(std::string_view clinic, std::string_view consent_id) const {
    auto it = keys.find(keyOf(clinic, consent_id));
    return it == keys.end() ? nullptr : &it->second;
  }

  Decision decide(const DecisionRequest& r) const;

  // Caller holds write_mutex (or owns the state alone).
  Result<UpsertResult> apply(ConsentVersion v) {
    if (v.clinic.empty() || v.consent_id.empty() || v.version < 1) {
      return refusal(v, "it has no clinic, consent id or version >= 1",
                     "record consent versions through readConsentRecord and number them from 1");
    }
    const std::string key = keyOf(v.clinic, v.consent_id);
    auto it = keys.find(key);
    UpsertResult result;
    if (it != keys.end() && v.version <= it->second.latest) return result;  // stale or repeated: keep
    if (it == keys.end()) {
      std::unique_lock lock(keys_mutex);
      it = keys.emplace(key, KeyEntry{}).first;
    }
    KeyEntry& e = it->second;
    std::shared_ptr<const tz::TimeZone> zone;
    std::string problem = rowProblem(v);
    if (problem.empty()) problem = timeProblem(v, zone);
    if (!problem.empty()) {
      // Withdraw the older version: this one was meant to replace it, perhaps to revoke it.
      auto previous = e.current;
      replace(previous, nullptr);
      std::unique_lock lock(keys_mutex);
      e.latest = v.version;
      if (previous) {
        e.current.reset();
        --current_count;
      }
      return refusal(v, problem + "; the consent permits nothing until a sound newer version arrives",
                     "re-send the consent record with the field corrected (or give the clinic a time_zone)");
    }
    if (v.status == ConsentStatus::Active && e.revoked_once) {
      return refusal(v, "an earlier version was revoked, and a revoked consent cannot become active again",
                     "record the patient's new authorisation as a new consent with its own id");
    }
    auto next = std::make_shared<const ConsentVersion>(std::move(v));
    auto previous = e.current;
    replace(previous, next, std::move(zone));
    {
      std::unique_lock lock(keys_mutex);
      if (!previous) ++current_count;
      e.latest = next->version;
      e.revoked_once = e.revoked_once || next->status == ConsentStatus::Revoked;
      e.current = next;
    }
    result.applied = true;
    result.revoked = previous && previous->status == ConsentStatus::Active && !previous->revoked_on &&
                     next->status == ConsentStatus::Revoked;
    result.previous = std::move(previous);
    return result;
  }
};

namespace {
ClinicZones utcEverywhere() {
  auto utc = tz::TimeZone::fixed("UTC", 0);
  return [utc](std::string_view) { return utc; };
}
}  // namespace

ConsentRegistry::ConsentRegistry() : ConsentRegistry(utcEverywhere()) {}
ConsentRegistry::ConsentRegistry(ClinicZones zones) : state_(std::make_unique<State>(std::move(zones))) {}
ConsentRegistry::~ConsentRegistry() = default;

Status ConsentRegistry::admissible(const ConsentVersion& v) const {
  if (const std::string problem = rowProblem(v); !problem.empty()) {
    return refusal(v, problem, "correct the consent record and send it again");
  }
  std::shared_ptr<const tz::TimeZone> zone;
  if (const std::string problem = state_->timeProblem(v, zone); !problem.empty()) {
    return refusal(v, problem,
                   zone == nullptr ? "set clinics[].time_zone for clinic '" + v.clinic + "' in the gateway configuration"
                                   : "correct the consent record and send it again");
  }
  std::shared_lock lock(state_->keys_mutex);
  const KeyEntry* e = state_->entry(v.clinic, v.consent_id);
  if (e != nullptr && v.version > e->latest && v.status == ConsentStatus::Active && e->revoked_once) {
    return refusal(v, "an earlier version was revoked, and a revoked consent cannot become active again",
                   "record the patient's new authorisation as a new consent with its own id");
  }
  return ok();
}

Result<ConsentRegistry::UpsertResult> ConsentRegistry::upsert(ConsentVersion v) {
  std::lock_guard lock(state_->write_mutex);
  auto result = state_->apply(std::move(v));
  generation_.fetch_add(1, std::memory_order_release);
  return result;
}

std::vector<Error> ConsentRegistry::load(std::vector<ConsentVersion> rows) {
  // Built apart, then swapped in shard by shard: a patient's consents are all in one shard, so a
  // reader sees either the old or the new set for a patient, never a mix. Writers wait meanwhile
  // (an upsert made to the old state during the build would be lost).
  std::lock_guard write(state_->write_mutex);
  std::sort(rows.begin(), rows.end(), [](const ConsentVersion& a, const ConsentVersion& b) {
    return std::tie(a.clinic, a.consent_id, a.version) < std::tie(b.clinic, b.consent_id, b.version);
  });
  auto fresh = std::make_unique<State>(state_->zones);
  std::vector<Error> errors;
  for (auto& row : rows) {
    auto r = fresh->apply(std::move(row));
    if (!r) errors.push_back(std::move(r).error());
  }
  for (std::size_t i = 0; i < kShards; ++i) {
    std::unique_lock lock(state_->shards[i].mutex);
    state_->shards[i].patients.swap(fresh->shards[i].patients);
  }
  {
    std::unique_lock lock(state_->keys_mutex);
    state_->keys.swap(fresh->keys);
    state_->current_count = fresh->current_count;
  }
  generation_.fetch_add(1, std::memory_order_release);
  return errors;
}

std::shared_ptr<const ConsentVersion> ConsentRegistry::current(std::string_view clinic, std::string_view consent_id) const {
  std::shared_lock lock(state_->keys_mutex);
  const KeyEntry* e = state_->entry(clinic, consent_id);
  return e == nullptr ? nullptr : e->current;
}

std::int64_t ConsentRegistry::latestVersion(std::string_view clinic, std::string_view consent_id) const {
  std::shared_lock lock(state_->keys_mutex);
  const KeyEntry* e = state_->entry(clinic, consent_id);
  return e == nullptr ? 0 : e->latest;
}

std::vector<ConsentVersion> ConsentRegistry::currentOf(std::string_view patient_key) const {
  std::vector<ConsentVersion> out;
  const std::uint64_t hash = hashOf(patient_key);
  const Shard& shard = state_->shards[State::shardIndex(hash)];
  std::shared_lock lock(shard.mutex);
  if (const Patient* patient = shard.find(hash, patient_key); patient != nullptr) {
    for (const Slot& s : patient->slots) out.push_back(*s.consent);
  }
  return out;
}

const ClinicZones& ConsentRegistry::zones() const { return state_->zones; }

std::size_t ConsentRegistry::size() const {
  std::shared_lock lock(state_->keys_mutex);
  return state_->current_count;
}

void ConsentRegistry::openBreakGlass(BreakGlassGrant grant) {
  {
    std::unique_lock lock(break_glass_mutex_);
    std::erase_if(break_glass_, [&](const auto& g) { return g->id == grant.id; });
    break_glass_.push_back(std::make_shared<const BreakGlassGrant>(std::move(grant)));
    break_glass_count_.store(break_glass_.size(), std::memory_order_release);
  }
  generation_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const BreakGlassGrant> ConsentRegistry::breakGlass(std::string_view id) const {
  std::shared_lock lock(break_glass_mutex_);
  for (const auto& g : break_glass_) {
    if (g->id == id) return g;
  }
  return nullptr;
}

void ConsentRegistry::loadBreakGlass(std::vector<BreakGlassGrant> grants) {
  {
    std::unique_lock lock(break_glass_mutex_);
    break_glass_.clear();
    for (auto& g : grants) break_glass_.push_back(std::make_shared<const BreakGlassGrant>(std::move(g)));
    break_glass_count_.store(break_glass_.size(), std::memory_order_release);
  }
  generation_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const BreakGlassGrant> ConsentRegistry::activeBreakGlass(const DecisionRequest& r) const {
  if (break_glass_count_.load(std::memory_order_acquire) == 0) return nullptr;
  const std::int64_t at = toUnixMillis(r.at);
  std::shared_lock lock(break_glass_mutex_);
  for (const auto& g : break_glass_) {
    if (g->patient_key == r.patient_key && g->partner_id == r.partner_id && at >= g->opened_ms && at < g->expires_ms) {
      return g;
    }
  }
  return nullptr;
}

Decision ConsentRegistry::decide(const DecisionRequest& request) const noexcept {
  try {
    Decision d = state_->decide(request);
    if (d.permitted()) return d;
    // An emergency overrides what consents hold back, never a request that cannot be decided
    // (unclassified data, an unknown purpose, an internal error stay denied).
    switch (d.reason) {
      case Reason::Unclassified:
      case Reason::InvalidRequest:
      case Reason::InternalError: return d;
      default: break;
    }
    if (auto grant = activeBreakGlass(request)) {
      Decision e;
      e.outcome = Outcome::Permit;
      e.reason = Reason::BreakGlass;
      e.disclosed = request.classes;
      e.break_glass = std::move(grant);
      return e;
    }
    return d;
  } catch (...) {
    return Decision{};  // default deny (internal-error)
  }
}

Decision ConsentRegistry::State::decide(const DecisionRequest& r) const {
  using privacy::ClassSet;
  if (r.patient_key.empty() || r.partner_id.empty()) return deny(Reason::InvalidRequest);
  const auto purpose = parsePurpose(r.purpose);
  if (!purpose) return deny(Reason::InvalidRequest);
  if (r.classes.empty()) return deny(Reason::Unclassified);

  // A CarePlan's parts must agree with its labels, else something upstream is wrong: deny. The
  // labels may follow either convention: the union of the parts' classes, or (as the classifier
  // does) general only when nothing is sensitive.
  const auto acts = r.activity_classes;
  const ClassSet plan = r.plan_classes.empty() ? r.classes : r.plan_classes;
  ClassSet parts = plan;
  for (ClassSet a : acts) {
    if (a.empty()) return deny(Reason::Unclassified);
    parts.add(a);
  }
  if (!parts.covers(r.classes) || !r.classes.covers(withoutImpliedGeneral(parts))) return deny(Reason::InvalidRequest);

  // The classes a redacted plan will be labelled with, in the caller's convention.
  const bool union_labels = r.classes.has(privacy::DataClass::General) && r.classes.sensitive();
  const auto label = [union_labels](ClassSet kept) { return union_labels ? kept : withoutImpliedGeneral(kept); };

  const std::int64_t at = toUnixMillis(r.at);
  const auto wanted_purpose = static_cast<std::uint8_t>(*purpose);
  const std::uint8_t wanted_classes = r.classes.bits();
  const std::uint64_t partner_hash = hashOf(r.partner_id);
  const std::uint64_t patient_hash = hashOf(r.patient_key);

  const Shard& shard = shards[shardIndex(patient_hash)];
  std::shared_lock lock(shard.mutex);
  const Patient* patient = shard.find(patient_hash, r.patient_key);
  if (patient == nullptr) return deny(Reason::NoConsent);

  const Slot* redact = nullptr;
  std::size_t redact_removed = 0;
  const Slot* closest = nullptr;
  int closest_failures = 0;
  std::uint8_t closest_mask = 0;
  for (const Slot& s : patient->slots) {
    if (s.partner_hash != partner_hash || s.partner != r.partner_id) continue;
    std::uint8_t mask = 0;
    if (at >= s.revoked_ms) mask |= kRevoked;
    if (at >= s.end_ms) mask |= kExpired;
    if (at < s.start_ms) mask |= kNotYetValid;
    if ((s.purposes & wanted_purpose) == 0) mask |= kPurpose;
    if ((wanted_classes & ~s.classes) != 0) mask |= kClass;

    if (mask == 0) {  // a candidate covering every class; slots are ordered newest first
      Decision d;
      d.outcome = Outcome::Permit;
      d.reason = Reason::None;
      d.disclosed = r.classes;
      d.consent = s.consent;
      d.zone = s.zone;
      return d;
    }
    if (mask == kClass && !acts.empty() && (redact == nullptr || redact_removed > 1)) {
      // A candidate except for classes: if it covers some activities, and the plan without the
      // others, the plan goes out without them (fewest removed wins, then the newest consent).
      const ClassSet consent_classes(s.classes);
      ClassSet kept = plan;
      std::size_t removed = 0;
      for (ClassSet a : acts) {
        if (consent_classes.covers(a)) {
          kept.add(a);
        } else {
          ++removed;
        }
      }
      if (removed > 0 && removed < acts.size() && consent_classes.covers(label(kept)) &&
          (redact == nullptr || removed < redact_removed)) {
        redact = &s;
        redact_removed = removed;
      }
    }
    const int failures = std::popcount(mask);
    const auto lowest = [](std::uint8_t m) { return m & static_cast<std::uint8_t>(-m); };
    if (closest == nullptr || failures < closest_failures ||
        (failures == closest_failures && lowest(mask) < lowest(closest_mask))) {
      closest = &s;
      closest_failures = failures;
      closest_mask = mask;
    }
  }

  if (redact != nullptr) {
    Decision d;
    d.outcome = Outcome::Redact;
    d.reason = Reason::ClassNotCovered;
    ClassSet kept = plan;
    const ClassSet covered(redact->classes);
    d.removed_activities.reserve(redact_removed);
    for (std::size_t i = 0; i < acts.size(); ++i) {
      if (covered.covers(acts[i])) {
        kept.add(acts[i]);
      } else {
        d.removed_activities.push_back(static_cast<std::uint32_t>(i));
        d.missing.add(acts[i]);
      }
    }
    d.disclosed = label(kept);
    d.consent = redact->consent;
    d.zone = redact->zone;
    return d;
  }
  if (closest == nullptr) return deny(Reason::NoConsent);
  Decision d = deny(reasonOf(closest_mask));
  if (d.reason == Reason::ClassNotCovered)
    d.missing = ClassSet(static_cast<std::uint8_t>(wanted_classes & ~closest->classes));
  d.consent = closest->consent;
  d.zone = closest->zone;
  switch (d.reason) {
    case Reason::Revoked: d.time_bound = closest->revoked_form; break;
    case Reason::Expired: d.time_bound = closest->end_form; break;
    case Reason::NotYetValid: d.time_bound = closest->start_form; break;
    default: break;
  }
  return d;
}

}  // namespace gw::consent

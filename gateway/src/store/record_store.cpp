#include "store/record_store.hpp"

#include <algorithm>
#include <set>
#include <thread>
#include <utility>

#include <rapidjson/document.h>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "store/audit_chain.hpp"
#include "store/keyring.hpp"
#include "store/legacy_identifiers.hpp"
#include "store/store_payloads.hpp"

namespace gw::store {
namespace {

using privacy::DataClass;

// Rows of each kind per purge transaction: ingest waits one batch at most.
constexpr int kPurgeBatch = 500;

// The stored class name of a row as a set (an unknown name reads as unclassified: sud).
privacy::ClassSet classOf(const std::string& name) {
  const auto c = privacy::parseClass(name);
  return c ? privacy::ClassSet(*c) : privacy::ClassSet();
}

std::string classNameOf(DataClass c) { return std::string(privacy::className(c)); }

OutboxItem itemOf(OutboxRow&& row) {
  OutboxItem item;
  item.id = row.id;
  item.partner_id = std::move(row.partner_id);
  item.clinic = std::move(row.clinic);
  item.record_key = std::move(row.record_key);
  item.record_version = row.record_version;
  item.patient_key = std::move(row.patient_key);
  item.entry_count = row.entry_count;
  item.state = row.state;
  item.attempts = row.attempts;
  item.next_attempt_at_ms = row.next_attempt_at_ms;
  item.last_error = std::move(row.last_error);
  item.updated_at_ms = row.updated_at_ms;
  item.created_at_ms = row.created_at_ms;
  return item;
}

std::string removedText(const std::vector<std::uint32_t>& removed) {
  std::string text;
  for (auto i : removed) text += (text.empty() ? "" : ",") + std::to_string(i);
  return text;
}

std::vector<std::uint32_t> removedOf(std::string_view text) {
  std::vector<std::uint32_t> removed;
  std::uint32_t n = 0;
  bool digits = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      n = n * 10 + static_cast<std::uint32_t>(c - '0');
      digits = true;
    } else if (digits) {
      removed.push_back(n);
      n = 0;
      digits = false;
    }
  }
  if (digits) removed.push_back(n);
  return removed;
}

ResourceDecision decisionOf(DecisionRow&& row) {
  ResourceDecision d;
  d.partner_id = std::move(row.partner_id);
  d.resource_type = std::move(row.resource_type);
  d.resource_id = std::move(row.resource_key);
  // An outcome this build does not know reads as a permit: nothing is re-sent on its account.
  d.outcome = parseAuditOutcome(row.outcome).value_or(AuditOutcome::Permit);
  d.removed_activities = removedOf(row.removed_activities);
  d.reason = std::move(row.reason);
  d.record_version = row.record_version;
  d.updated_at_ms = row.updated_at_ms;
  return d;
}

class RecordStore final : public Store {
 public:
  RecordStore(std::unique_ptr<StoreBackend> backend, Keyring keyring)
      : backend_(std::move(backend)),
        instance_id_(backend_->instanceId()),
        chain_key_(keyring.hashKey(HashKeyPurpose::AuditChain)),
        keys_(keyring.hashKey(HashKeyPurpose::Lookup)),
        payloads_(std::move(keyring)) {}

  /// Converts what an older schema left in clear (once; nothing afterwards).
  Status convertLegacyRows() {
    GW_TRY(auto converted, backend_->convertLegacyIdentifiers(LegacyIdentifiers(payloads_, keys_)));
    if (converted > 0) {
      GW_LOG(Info, Store, "identifiers_keyed").kv("rows", converted);
    }
    return ok();
  }

  const LookupKeys& lookupKeys() const override { return keys_; }

  // --- writes ---------------------------------------------------------------------------------

  Result<std::vector<IngestOutcome>> ingest(const std::vector<IngestWrite>& writes, SystemTime now) override {
    const std::int64_t now_ms = toUnixMillis(now);
    std::vector<IngestOutcome> outcomes;
    outcomes.reserve(writes.size());
    std::vector<AuditEntry> audit;
    // Consent versions in the group: on a database several instances share, the transaction
    // first waits for their patients' sends in flight on any instance (beginConsentWrite).
    std::vector<PatientPartner> consent_changes;
    for (const auto& w : writes) {
      if (w.consent) consent_changes.push_back({w.consent->patient_key, w.consent->partner_id});
    }
    GW_TRY(auto tx, beginSealing(nullptr, consent_changes));
    for (const auto& w : writes) {
      GW_TRY(auto outcome, ingestOne(*tx, w, now_ms));
      for (auto e : w.audit) {
        // An unchanged record logs only the decisions of the partners it was queued for again.
        if (outcome.disposition == IngestDisposition::Unchanged &&
            std::find(outcome.requeued_for.begin(), outcome.requeued_for.end(), e.partner_id) ==
                outcome.requeued_for.end()) {
          continue;
        }
        if (e.kind == AuditKind::Consent) e.consent_version = outcome.consent_version;
        audit.push_back(std::move(e));
      }
      outcomes.push_back(outcome);
    }
    GW_TRY(appendChained(*tx, std::move(audit)));
    GW_TRY(tx.commit());
    return outcomes;
  }

  Status markDelivered(std::int64_t item_id, const std::vector<DeliveredEntry>& entries, SystemTime now,
                       std::vector<AuditEntry> audit) override {
    return recordOutcome(OutboxOutcome::delivered(item_id, entries, now, std::move(audit)));
  }

  Status markRetry(std::int64_t item_id, int attempts, SystemTime next_attempt, std::string_view error,
                   SystemTime now) override {
    return recordOutcome(OutboxOutcome::retry(item_id, attempts, next_attempt, std::string(error), now));
  }

  Status markDead(std::int64_t item_id, int attempts, std::string_view error, std::string_view outcome, SystemTime now,
                  std::vector<AuditEntry> audit) override {
    return recordOutcome(
        OutboxOutcome::dead(item_id, attempts, std::string(error), std::string(outcome), now, std::move(audit)));
  }

  Status markCancelled(std::int64_t item_id, std::string_view reason, SystemTime now,
                       std::vector<AuditEntry> audit) override {
    return recordOutcome(OutboxOutcome::cancelled(item_id, std::string(reason), now, std::move(audit)));
  }

  Status recordOutcomes(std::vector<OutboxOutcome> outcomes) override {
    if (outcomes.empty()) return ok();
    // A partner's OperationOutcome may quote the resources sent: it is sealed like the Bundle,
    // so the transaction starts as a sealing one.
    const bool seals = std::any_of(outcomes.begin(), outcomes.end(), [](const OutboxOutcome& o) {
      return o.kind == OutboxOutcome::Kind::Dead && !o.outcome.empty();
    });
    GW_TRY(auto tx, seals ? beginSealing() : WriteTransaction::begin(*backend_));
    for (auto& o : outcomes) {
      GW_TRY(applyOutcome(*tx, o));
    }
    return tx.commit();
  }

  Result<int> enqueue(const EnqueueWrite& w, SystemTime now) override {
    const std::int64_t now_ms = toUnixMillis(now);
    const std::string record_key = keys_.record(w.clinic, w.record_id);
    GW_TRY(auto tx, beginSealing());
    GW_TRY(auto head, tx->recordHead(w.clinic, record_key));
    if (!head || head->version != w.record_version) return 0;  // moved on: its newer version was decided on arrival
    const RecordAt record{w.clinic, record_key, w.record_version, w.patient_key};
    GW_TRY(auto queued, queueWhereMoreDisclosed(*tx, record, w.outbox, w.audit, w.decisions, now_ms, false));
    GW_TRY(tx.commit());
    return queued.items;
  }

  Status markConsentReconciled(std::string_view clinic, std::string_view consent_id, std::int64_t version) override {
    GW_TRY(auto tx, WriteTransaction::begin(*backend_));
    GW_TRY(tx->markConsentReconciled(clinic, keys_.consent(clinic, consent_id), version));
    return tx.commit();
  }

  Status appendAudit(std::vector<AuditEntry> entries) override {
    if (entries.empty()) return ok();
    GW_TRY(auto tx, WriteTransaction::begin(*backend_));
    GW_TRY(appendChained(*tx, std::move(entries)));
    return tx.commit();
  }

  Result<std::string> deploymentSecret(std::string_view name) override {
    GW_TRY(auto tx, beginSealing());  // sealed inside: under the version data_keys has now
    std::string candidate = ids::randomHex(32);
    auto sealed = payloads_.sealSecret(candidate, name);
    crypto::wipe(candidate);
    if (!sealed) return sealed.error();
    GW_TRY(auto stored, tx->deploymentSecret(name, sealed.value()));
    GW_TRY(tx.commit());
    return payloads_.openSecret(stored, name);
  }

  Result<PurgeCounts> purgeExpired(SystemTime now, const Retention& retention) override {
    PurgeCounts total;
    const std::int64_t now_ms = toUnixMillis(now);
    for (DataClass c : {DataClass::General, DataClass::Sud, DataClass::Mh}) {
      const int days = retention.daysFor(c);
      if (days <= 0) continue;  // kept forever
      const std::int64_t cutoff = now_ms - static_cast<std::int64_t>(days) * 86'400'000;
      // Short transactions, the write lock released between them.
      for (;;) {
        GW_TRY(auto batch, purgeBatch(classNameOf(c), cutoff));
        total.record_versions += batch.record_versions;
        total.resources += batch.resources;
        total.outbox_items += batch.outbox_items;
        total.records += batch.records;
        if (batch.record_versions + batch.resources + batch.outbox_items == 0) break;
      }
    }
    GW_LOG(Info, Store, "purged")
        .kv("record_versions", total.record_versions)
        .kv("resources", total.resources)
        .kv("outbox_items", total.outbox_items)
        .kv("records", total.records);
    return total;
  }

  Result<KeyRotation> rotateMasterKey(const crypto::SecretKey& current_master,
                                      const crypto::SecretKey& next_master) override {
    auto rotation = Keyring::rotateMaster(*backend_, current_master, next_master);
    if (!rotation) {
      Error e = rotation.error();
      e.where = backend_->location() + (e.where.empty() ? "" : " (" + e.where + ")");
      return e;
    }
    return rotation;
  }

  Result<DataKeyRotation> rotateDataKey(DataClass c, const crypto::SecretKey& master,
                                        const DataKeyRotationOptions& options) override {
    auto rotation = rotateDataKeyOf(c, master, options);
    if (!rotation) {
      Error e = rotation.error();
      e.where = backend_->location() + (e.where.empty() ? "" : " (" + e.where + ")");
      return e;
    }
    return rotation;
  }

  // --- reads ----------------------------------------------------------------------------------

  Result<std::optional<RecordStatus>> recordStatus(std::string_view clinic, std::string_view record_id) override {
    const std::string record_key = keys_.record(clinic, record_id);
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto record, reader->record(clinic, record_key));
    if (!record) return std::optional<RecordStatus>();
    RecordStatus st;
    st.clinic = std::move(record->clinic);
    st.record_id = std::string(record_id);
    st.patient_key = std::move(record->patient_key);
    st.record_type = std::move(record->record_type);
    st.version = record->version;
    st.state = record->state;
    st.error = std::move(record->error);
    st.received_at_ms = record->received_at_ms;
    st.updated_at_ms = record->updated_at_ms;
    GW_TRY(auto resources, reader->resources(clinic, record_key));
    for (auto& r : resources) {
      GW_TRY(auto key, openResourceKey(r));
      st.resources.push_back({std::move(key.resource_type),
                              std::move(key.resource_id),
                              std::move(key.identifier_system),
                              std::move(key.identifier_value),
                              {},
                              key.classes});
    }
    GW_TRY(auto items, reader->recordItems(clinic, record_key));
    for (auto& row : items) {
      std::string sealed_outcome = std::move(row.outcome_sealed);
      OutboxItem item = itemOf(std::move(row));
      if (!sealed_outcome.empty()) {
        GW_TRY(item.outcome, payloads_.openOutcome(sealed_outcome, item.id));
      }
      GW_TRY(item.entries, reader->deliveries(item.id));
      st.deliveries.push_back(std::move(item));
    }
    return std::optional<RecordStatus>(std::move(st));
  }

  Result<std::vector<OutboxItem>> dueItems(std::string_view partner, SystemTime now, int limit) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->dueItems(partner, toUnixMillis(now), limit));
    std::vector<OutboxItem> items;
    items.reserve(rows.size());
    for (auto& row : rows) {
      std::string sealed_bundle = std::move(row.bundle_sealed);
      std::string sealed_disclosure = std::move(row.disclosure_sealed);
      OutboxItem item = itemOf(std::move(row));
      item.partner_id = std::string(partner);
      GW_TRY(item.bundle,
             payloads_.openBundle(sealed_bundle, partner, item.clinic, item.record_key, item.record_version, item.id));
      GW_TRY(item.disclosure, payloads_.openDisclosure(sealed_disclosure, partner, item.clinic, item.record_key,
                                                       item.record_version, item.id));
      items.push_back(std::move(item));
    }
    return items;
  }

  Status watchConsents(std::function<void(const std::string& patient_key)> changed) override {
    return backend_->watchConsents(std::move(changed));
  }

  // --- several instances ---
  std::string instanceId() const override { return instance_id_; }

  Status putInstance(const InstanceRow& row) override {
    GW_TRY(auto tx, WriteTransaction::begin(*backend_));
    GW_TRY(tx->putInstance(row));
    GW_TRY(tx->deleteInstancesSeenBefore(row.last_seen_at_ms - kForgetInstanceAfterMs));
    return tx.commit();
  }

  Result<std::vector<InstanceRow>> instances() override {
    GW_TRY(auto reader, backend_->read());
    return reader->instances();
  }

  Status watchReloads(std::function<void(const std::string& origin)> requested) override {
    return backend_->watchReloads(std::move(requested));
  }

  Status announceReload(std::string_view origin) override { return backend_->announceReload(origin); }

  Result<SendHold> holdSend(std::string_view patient_key, std::string_view partner_id) override {
    return backend_->holdSend(patient_key, partner_id);
  }

  Result<std::optional<SystemTime>> nextDueTime(std::string_view partner) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto at, reader->nextDueAt(partner));
    if (!at) return std::optional<SystemTime>();
    return std::optional<SystemTime>(fromUnixMillis(*at));
  }

  void sealAhead(IngestWrite& w) override {
    const std::string record_key = keys_.record(w.clinic, w.record_id);
    auto reader = backend_->read();
    if (!reader) return;
    auto head = reader.value()->record(w.clinic, record_key);
    reader.value().reset();  // the connection goes back before the sealing
    if (!head) return;
    if (head.value() && head.value()->content_hash == w.content_hash && head.value()->state == w.state) return;
    auto sealed = sealFor(w, record_key, head.value() ? head.value()->version + 1 : 1);
    if (!sealed) return;
    w.sealed = std::move(sealed).value();
    // The plaintexts the committer would only seal are let go: a batch in flight holds one copy
    // (the committer opens them again in the rare case it must seal anew).
    for (auto& r : w.resources) std::string().swap(r.body);
    for (auto& o : w.outbox) {
      std::string().swap(o.bundle);
      std::string().swap(o.disclosure);
    }
  }

  Result<std::vector<ResourceKey>> resourceKeys(std::string_view clinic, std::string_view record_id) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->resources(clinic, keys_.record(clinic, record_id)));
    std::vector<ResourceKey> keys;
    for (auto& r : rows) {
      GW_TRY(auto key, openResourceKey(r));
      keys.push_back(std::move(key));
    }
    return keys;
  }

  Result<std::vector<OutboxItem>> pendingItems(std::string_view partner, std::string_view patient_key) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->pendingItems(partner, patient_key));
    std::vector<OutboxItem> items;
    for (auto& row : rows) {
      std::string sealed_disclosure = std::move(row.disclosure_sealed);
      OutboxItem item = itemOf(std::move(row));
      item.partner_id = std::string(partner);
      GW_TRY(item.disclosure, payloads_.openDisclosure(sealed_disclosure, partner, item.clinic, item.record_key,
                                                       item.record_version, item.id));
      items.push_back(std::move(item));
    }
    return items;
  }

  Result<std::vector<OutboxItem>> deliveredItems(std::string_view partner, std::string_view patient_key) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->deliveredItems(partner, patient_key));
    std::vector<OutboxItem> items;
    for (auto& row : rows) {
      std::string sealed_disclosure = std::move(row.disclosure_sealed);
      std::string sealed_bundle = std::move(row.bundle_sealed);
      OutboxItem item = itemOf(std::move(row));
      item.partner_id = std::string(partner);
      GW_TRY(item.disclosure, payloads_.openDisclosure(sealed_disclosure, partner, item.clinic, item.record_key,
                                                       item.record_version, item.id));
      GW_TRY(item.bundle,
             payloads_.openBundle(sealed_bundle, partner, item.clinic, item.record_key, item.record_version, item.id));
      GW_TRY(item.entries, reader->deliveries(item.id));
      items.push_back(std::move(item));
    }
    return items;
  }

  Result<bool> queueConsentUpdate(const ConsentUpdateWrite& w, SystemTime now) override {
    const std::int64_t now_ms = toUnixMillis(now);
    const std::string consent_key = keys_.consent(w.clinic, w.consent_id);
    const int version = static_cast<int>(w.consent_version);
    GW_TRY(auto tx, beginSealing());
    GW_TRY(auto live, tx->hasLiveItem(w.item.partner_id, w.clinic, consent_key, version));
    if (live) return false;  // passed on already (or on its way)
    GW_TRY(queueItem(*tx, w.item, w.clinic, consent_key, version, w.patient_key, now_ms));
    GW_TRY(appendChained(*tx, w.audit));
    GW_TRY(tx.commit());
    return true;
  }

  Result<std::vector<ResourceDecision>> lastDecisions(std::string_view clinic, std::string_view record_id) override {
    const std::string record_key = keys_.record(clinic, record_id);
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto record, reader->record(clinic, record_key));
    std::vector<ResourceDecision> decisions;
    if (!record) return decisions;
    GW_TRY(auto rows, reader->decisionRows(clinic, record_key, record->version));
    for (auto& row : rows) decisions.push_back(decisionOf(std::move(row)));
    return decisions;
  }

  Result<std::vector<HeldRecord>> heldRecords(std::string_view partner, std::string_view patient_key) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto held, reader->heldRecords(partner, patient_key));
    for (auto& h : held) {
      GW_TRY(h.payload, payloads_.openRecord(h.payload, h.clinic, h.record_key, h.version));
    }
    return held;
  }

  Result<std::vector<StoredConsent>> consents(std::string_view patient_key) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->consents(patient_key));
    std::vector<StoredConsent> out;
    out.reserve(rows.size());
    for (auto& r : rows) {
      StoredConsent c{std::move(r.facts), r.reconciled, std::move(r.consent_key)};
      GW_TRY(c.row.consent_id, payloads_.openConsentId(r.consent_id_sealed, c.row.clinic, c.consent_key, c.row.version));
      GW_TRY(c.row.resource_id,
             payloads_.openConsentResourceId(r.resource_id_sealed, c.row.clinic, c.consent_key, c.row.version));
      out.push_back(std::move(c));
    }
    return out;
  }

  Result<VerifyReport> verifyAudit(const std::optional<ChainAnchor>& anchor) override {
    GW_TRY(auto reader, backend_->read());
    return verifyAuditChain(*reader, &chain_key_, anchor);
  }

  Result<ChainTail> auditHead() override {
    GW_TRY(auto reader, backend_->read());
    return reader->auditTail();
  }

  AnchorSealer anchorSealer() const override { return AnchorSealer(chain_key_); }

  Result<AuditPage> queryAudit(const AuditQuery& query) override {
    const int limit = std::clamp(query.limit, 1, kMaxAuditPageSize);
    GW_TRY(auto reader, backend_->read());
    // One more than asked: tells whether there is a next page.
    GW_TRY(auto rows, reader->queryAudit(query, limit + 1));
    return auditPage(std::move(rows), limit);
  }

  // The first `limit` rows as entries; a row beyond them says there is a next page.
  Result<AuditPage> auditPage(std::vector<AuditRow> rows, int limit) {
    AuditPage page;
    const std::size_t n = std::min(rows.size(), static_cast<std::size_t>(limit));
    for (std::size_t i = 0; i < n; ++i) {
      GW_TRY(auto entry, fromAuditRow(std::move(rows[i])));
      page.entries.push_back(std::move(entry));
    }
    if (rows.size() > n) page.next_after_seq = page.entries.back().seq;
    return page;
  }

  Result<OutboxCounts> outboxCounts(std::string_view partner) override {
    GW_TRY(auto reader, backend_->read());
    return reader->outboxCounts(partner);
  }

  Result<std::optional<std::string>> recordPayload(std::string_view clinic, std::string_view record_id,
                                                   int version) override {
    const std::string record_key = keys_.record(clinic, record_id);
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto sealed, reader->recordPayload(clinic, record_key, version));
    if (!sealed) return std::optional<std::string>();
    GW_TRY(auto plain, payloads_.openRecord(*sealed, clinic, record_key, version));
    return std::optional<std::string>(std::move(plain));
  }

  Result<std::optional<std::string>> resourceBody(std::string_view type, std::string_view id) override {
    const std::string resource_key = keys_.resource(type, id);
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto sealed, reader->resourceBody(type, resource_key));
    if (!sealed) return std::optional<std::string>();
    GW_TRY(auto plain, payloads_.openBody(*sealed, type, resource_key));
    return std::optional<std::string>(std::move(plain));
  }

  // --- operations ---------------------------------------------------------------------------

  Result<OutboxPage> listOutbox(const OutboxQuery& query) override {
    const int limit = std::clamp(query.limit, 1, 1000);
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->listOutbox(query, limit + 1));
    OutboxPage page;
    if (rows.size() > static_cast<std::size_t>(limit)) {
      rows.resize(static_cast<std::size_t>(limit));
      page.next_after_id = rows.back().id;
    }
    for (auto& row : rows) {
      OutboxListItem item;
      item.id = row.id;
      item.partner_id = row.partner_id;
      item.clinic = row.clinic;
      item.record_version = row.record_version;
      item.state = row.state;
      item.attempts = row.attempts;
      item.last_error = row.last_error;
      item.next_attempt_at_ms = row.next_attempt_at_ms;
      item.created_at_ms = row.created_at_ms;
      item.updated_at_ms = row.updated_at_ms;
      // The clinic's own record id is not stored in clear: it is read from the record version
      // (a consent's update has none; a purged version shows none).
      GW_TRY(auto record, reader->record(row.clinic, row.record_key));
      if (record) {
        item.record_type = record->record_type;
        GW_TRY(auto sealed, reader->recordPayload(row.clinic, row.record_key, row.record_version));
        if (sealed) {
          GW_TRY(auto plain, payloads_.openRecord(*sealed, row.clinic, row.record_key, row.record_version));
          rapidjson::Document doc;
          doc.Parse(plain.data(), plain.size());
          if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("record_id") && doc["record_id"].IsString()) {
            item.record_id = doc["record_id"].GetString();
          }
        }
      }
      page.items.push_back(std::move(item));
    }
    return page;
  }

  Result<std::optional<OutboxItem>> outboxItem(std::int64_t item_id) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto row, reader->outboxItem(item_id));
    if (!row) return std::optional<OutboxItem>();
    std::string sealed_disclosure = std::move(row->disclosure_sealed);
    OutboxItem item = itemOf(std::move(*row));
    if (!sealed_disclosure.empty()) {
      GW_TRY(item.disclosure, payloads_.openDisclosure(sealed_disclosure, item.partner_id, item.clinic, item.record_key,
                                                       item.record_version, item.id));
    }
    return std::optional<OutboxItem>(std::move(item));
  }

  Result<bool> requeueDead(std::int64_t item_id, std::string_view note, SystemTime now,
                           std::vector<AuditEntry> audit) override {
    GW_TRY(auto tx, WriteTransaction::begin(*backend_));
    GW_TRY(auto changed, tx->requeueDeadItem(item_id, note, toUnixMillis(now)));
    if (changed == 0) return false;
    GW_TRY(appendChained(*tx, std::move(audit)));
    GW_TRY(tx.commit());
    return true;
  }

  Status setPartnerPaused(const PartnerPause& pause, bool paused, std::vector<AuditEntry> audit) override {
    GW_TRY(auto tx, WriteTransaction::begin(*backend_));
    if (paused) {
      GW_TRY(tx->putPartnerPause(pause));
    } else {
      GW_TRY(tx->deletePartnerPause(pause.partner_id));
    }
    GW_TRY(appendChained(*tx, std::move(audit)));
    return tx.commit();
  }

  Result<std::vector<PartnerPause>> partnerPauses() override {
    GW_TRY(auto reader, backend_->read());
    return reader->partnerPauses();
  }

  // --- compliance console ---
  // The console's free text (staff names, the nature of an emergency, an officer's note) is
  // sealed like every payload; the backends keep it in TEXT columns in StorePayloads' text form.
  Status putBreakGlass(const BreakGlass& row, std::vector<AuditEntry> audit) override {
    BreakGlass sealed = row;
    GW_TRY(sealed.recipient, payloads_.sealText(SealedColumn::BreakGlassRecipient, row.recipient, row.id));
    GW_TRY(sealed.authorised_by, payloads_.sealText(SealedColumn::BreakGlassAuthorisedBy, row.authorised_by, row.id));
    GW_TRY(sealed.nature, payloads_.sealText(SealedColumn::BreakGlassNature, row.nature, row.id));
    // A grant opened or ended changes what the partner may receive, as a consent version does.
    GW_TRY(auto tx, WriteTransaction::begin(*backend_, {{row.patient_key, row.partner_id}}));
    GW_TRY(tx->putBreakGlass(sealed));
    GW_TRY(appendChained(*tx, std::move(audit)));
    return tx.commit();
  }

  Result<bool> endBreakGlass(const BreakGlass& ended, std::vector<AuditEntry> audit) override {
    GW_TRY(auto tx, WriteTransaction::begin(*backend_, {{ended.patient_key, ended.partner_id}}));
    GW_TRY(auto changed, tx->endBreakGlassIfOpen(ended.id, ended.ended_at_ms, ended.ended_by));
    if (changed == 0) return false;
    GW_TRY(appendChained(*tx, std::move(audit)));
    GW_TRY(tx.commit());
    return true;
  }

  Result<std::vector<BreakGlass>> breakGlasses(std::string_view clinic) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->breakGlasses(clinic));
    return openBreakGlassText(std::move(rows));
  }

  Result<std::vector<BreakGlass>> breakGlassesOfPatient(std::string_view patient_key) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->breakGlassesOfPatient(patient_key));
    return openBreakGlassText(std::move(rows));
  }

  Result<std::vector<BreakGlass>> openBreakGlassText(std::vector<BreakGlass> rows) const {
    for (auto& b : rows) {
      GW_TRY(b.recipient, payloads_.openText(SealedColumn::BreakGlassRecipient, b.recipient, b.id));
      GW_TRY(b.authorised_by, payloads_.openText(SealedColumn::BreakGlassAuthorisedBy, b.authorised_by, b.id));
      GW_TRY(b.nature, payloads_.openText(SealedColumn::BreakGlassNature, b.nature, b.id));
    }
    return rows;
  }

  Status putAccountingRequest(const AccountingRequest& row, std::vector<AuditEntry> audit) override {
    AccountingRequest sealed = row;
    GW_TRY(sealed.note, payloads_.sealText(SealedColumn::AccountingRequestNote, row.note, row.id));
    GW_TRY(auto tx, WriteTransaction::begin(*backend_));
    GW_TRY(tx->putAccountingRequest(sealed));
    GW_TRY(appendChained(*tx, std::move(audit)));
    return tx.commit();
  }

  Result<std::vector<AccountingRequest>> accountingRequests(std::string_view clinic) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->accountingRequests(clinic));
    for (auto& r : rows) {
      GW_TRY(r.note, payloads_.openText(SealedColumn::AccountingRequestNote, r.note, r.id));
    }
    return rows;
  }

  Result<AuditPage> partnerLog(const PartnerLogQuery& query) override {
    const int limit = std::clamp(query.limit, 1, kMaxAuditPageSize);
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->partnerLogRows(query, limit + 1));
    return auditPage(std::move(rows), limit);
  }

  Result<std::vector<PartnerLogCount>> partnerLogCounts(const PartnerLogQuery& query) override {
    GW_TRY(auto reader, backend_->read());
    return reader->partnerLogCounts(query);
  }

  Result<std::vector<StoredRecord>> recordsInState(RecordState state, std::string_view record_type,
                                                   std::string_view after_clinic, std::string_view after_record_key,
                                                   int limit) override {
    GW_TRY(auto reader, backend_->read());
    GW_TRY(auto rows, reader->recordsInState(recordStateName(state), record_type, after_clinic, after_record_key,
                                             std::clamp(limit, 1, 10000)));
    std::vector<StoredRecord> out;
    out.reserve(rows.size());
    for (auto& [row, sealed] : rows) {
      GW_TRY(auto plain, payloads_.openRecord(sealed, row.clinic, row.record_key, row.version));
      out.push_back({row.clinic, row.record_key, row.record_type, row.version, row.state, std::move(plain)});
    }
    return out;
  }

  Status probeWrite(SystemTime now) override {
    GW_TRY(auto tx, WriteTransaction::begin(*backend_));
    GW_TRY(tx->writeProbe(toUnixMillis(now)));
    return tx.commit();
  }

  Status ping() override {
    GW_TRY(auto reader, backend_->read());
    return reader->ping();
  }

 private:
  // Same content hash and same state as the current version: unchanged, nothing written. Same
  // content with another state (a record kept as unmapped or invalid, resent after its mapper or
  // profile was fixed and reloaded) is a new version, so it is not stuck forever.
  // The clear ids of a record's resources row (type, id, identifier) and its class.
  Result<ResourceKey> openResourceKey(const ResourceRow& r) const {
    ResourceKey key{r.resource_type, {}, r.identifier_system, {}, classOf(r.data_class)};
    GW_TRY(key.resource_id, payloads_.openResourceId(r.resource_id_sealed, r.resource_type, r.resource_key));
    GW_TRY(key.identifier_value, payloads_.openIdentifier(r.identifier_value_sealed, r.resource_type, r.resource_key));
    return key;
  }

  Result<IngestOutcome> ingestOne(StoreWriter& tx, const IngestWrite& w, std::int64_t now_ms) {
    // The lookup keys sealAhead made are the same HMACs: not computed again on the committer.
    const std::string record_key = w.sealed ? w.sealed->record_key : keys_.record(w.clinic, w.record_id);
    GW_TRY(auto head, tx.recordHead(w.clinic, record_key));
    const int current = head ? head->version : 0;
    if (head && head->content_hash == w.content_hash && head->state == w.state) {
      IngestOutcome unchanged{IngestDisposition::Unchanged, current};
      // Resent after a consent widened: what it now discloses beyond the last decisions goes
      // (once: the decisions are replaced with the items), instead of an answer of unchanged alone.
      const RecordAt record{w.clinic, record_key, current, w.patient_key};
      GW_TRY(auto queued, queueWhereMoreDisclosed(tx, record, w.outbox, {}, w.decisions, now_ms, true));
      unchanged.requeued_for = std::move(queued.partners);
      return unchanged;
    }
    const int version = current + 1;
    const DataClass record_class = privacy::storageClass(w.classes);
    std::optional<SealedWrite> sealed_here;
    if (!sealedAheadFits(w, record_key, version)) {
      if (w.sealed) {
        GW_TRY(auto plain, plaintextsSealedAhead(w));
        GW_TRY(sealed_here, sealFor(plain, record_key, version));
      } else {
        GW_TRY(sealed_here, sealFor(w, record_key, version));
      }
    }
    const SealedWrite& sealed = sealed_here ? *sealed_here : *w.sealed;
    GW_TRY(tx.insertRecordVersion(
        {w.clinic, record_key, version, w.content_hash, sealed.payload, now_ms, classNameOf(record_class)}));
    const RecordRow row{w.clinic, record_key,    w.record_type, version, w.content_hash,           w.state,
                        w.error,  w.patient_key, now_ms,        now_ms,  classNameOf(record_class)};
    if (current == 0) {
      GW_TRY(tx.insertRecord(row));
    } else {
      GW_TRY(tx.updateRecord(row));
      // A newer version replaces what is still waiting; what was delivered stays as history.
      GW_TRY(tx.supersedePending(w.clinic, record_key, now_ms));
      GW_TRY(tx.deleteResources(w.clinic, record_key));
      GW_TRY(tx.deleteDecisionRows(w.clinic, record_key));
    }
    GW_TRY(tx.putDecisionRows(
        decisionRows(w.decisions, {w.clinic, record_key, version, w.patient_key}, now_ms, {&w.resources, &sealed})));
    for (std::size_t i = 0; i < w.resources.size(); ++i) {
      const auto& r = w.resources[i];
      const auto& sealed_resource = sealed.resources[i];
      ResourceRow resource;
      resource.resource_type = r.resource_type;
      resource.resource_key = sealed_resource.resource_key;
      resource.resource_id_sealed = sealed_resource.resource_id;
      resource.clinic = w.clinic;
      resource.record_key = record_key;
      resource.record_version = version;
      resource.identifier_system = r.identifier_system;
      resource.identifier_value_sealed = sealed_resource.identifier_value;
      resource.body_sealed = sealed_resource.body;
      resource.data_class = classNameOf(privacy::storageClass(r.classes));
      resource.stored_at_ms = now_ms;
      GW_TRY(tx.putResource(resource));
    }
    for (std::size_t i = 0; i < w.outbox.size(); ++i) {
      GW_TRY(insertItem(tx, w.outbox[i], sealed.outbox[i], w.clinic, record_key, version, w.patient_key, now_ms));
    }
    IngestOutcome outcome{current == 0 ? IngestDisposition::Created : IngestDisposition::NewVersion, version};
    if (w.consent) {
      // Versions count per consent id from 1, whatever version the caller put in the row.
      ConsentKeyedRow consent;
      consent.facts = *w.consent;
      consent.facts.consent_id.clear();
      consent.facts.resource_id.clear();
      consent.consent_key = keys_.consent(w.consent->clinic, w.consent->consent_id);
      GW_TRY(auto highest, tx.highestConsentVersion(consent.facts.clinic, consent.consent_key));
      consent.facts.version = highest + 1;
      GW_TRY(consent.consent_id_sealed, payloads_.sealConsentId(w.consent->consent_id, consent.facts.clinic,
                                                                consent.consent_key, consent.facts.version));
      GW_TRY(consent.resource_id_sealed, payloads_.sealConsentResourceId(w.consent->resource_id, consent.facts.clinic,
                                                                         consent.consent_key, consent.facts.version));
      GW_TRY(tx.insertConsent(consent));
      outcome.consent_version = consent.facts.version;
    }
    return outcome;
  }

  // A record version the rules below write for.
  struct RecordAt {
    const std::string& clinic;
    const std::string& record_key;
    int version;
    const std::string& patient_key;
  };

  // A write's resources and their sealed rows (one per resource, in order), whose lookup keys
  // were computed when they were sealed: not computed again on the committer.
  // (No member initialisers: a default argument of the enclosing class cannot use them. `{}` is both null.)
  struct KeyedResources {
    const std::vector<MappedResourceRow>* resources;
    const SealedWrite* sealed;
  };

  std::vector<DecisionRow> decisionRows(const std::vector<ResourceDecision>& decisions, const RecordAt& record,
                                        std::int64_t now_ms, KeyedResources keyed = {}) const {
    const auto resource_key = [&](const ResourceDecision& d) {
      for (std::size_t i = 0; keyed.resources != nullptr && i < keyed.resources->size(); ++i) {
        const auto& r = (*keyed.resources)[i];
        if (r.resource_type == d.resource_type && r.resource_id == d.resource_id)
          return keyed.sealed->resources[i].resource_key;
      }
      return keys_.resource(d.resource_type, d.resource_id);
    };
    std::vector<DecisionRow> rows;
    rows.reserve(decisions.size());
    for (const auto& d : decisions) {
      rows.push_back({d.partner_id, record.clinic, record.record_key, d.resource_type, resource_key(d), record.patient_key,
                      record.version, std::string(auditOutcomeName(d.outcome)), removedText(d.removed_activities), d.reason,
                      now_ms});
    }
    return rows;
  }

  struct Queued {
    std::vector<std::string> partners;
    int items = 0;
  };

  // Per partner of `decisions` (and `outbox`), in their order: when the partner has a live item of the record at
  // this version (queued, retrying, delivered, dead), its items go only if some decision now
  // discloses more than the stored one; without a live item they go as decided (records posted
  // before their consent, items cancelled). What goes is written with its decisions (replacing
  // the stored ones) and its log entries; for the other partners nothing is written, so a held
  // resource is sent once. `needs_items`: a partner with nothing to send is skipped (a resend
  // does not log its denies again).
  Result<Queued> queueWhereMoreDisclosed(StoreWriter& tx, const RecordAt& record, const std::vector<NewOutboxItem>& outbox,
                                         const std::vector<AuditEntry>& audit,
                                         const std::vector<ResourceDecision>& decisions, std::int64_t now_ms,
                                         bool needs_items) {
    Queued queued;
    std::vector<std::string> partners;
    const auto add = [&](const std::string& partner) {
      if (std::find(partners.begin(), partners.end(), partner) == partners.end()) partners.push_back(partner);
    };
    for (const auto& d : decisions) add(d.partner_id);
    for (const auto& o : outbox) add(o.partner_id);
    std::vector<std::string> skipped;  // partners of which nothing is written
    for (const auto& partner : partners) {
      const bool has_items = std::any_of(outbox.begin(), outbox.end(),
                                         [&](const auto& o) { return o.partner_id == partner; });
      if (needs_items && !has_items) {
        skipped.push_back(partner);
        continue;
      }
      std::vector<ResourceDecision> now_decisions;
      for (const auto& d : decisions) {
        if (d.partner_id == partner) now_decisions.push_back(d);
      }
      const auto rows = decisionRows(now_decisions, record, now_ms);
      GW_TRY(auto live, tx.hasLiveItem(partner, record.clinic, record.record_key, record.version));
      if (!live && !has_items) {
        // Nothing to send either way: a decision taken again with the same result is not a new
        // decision event, so it is not logged again (docs/privacy.md §11.1).
        GW_TRY(auto stored, tx.decisionRows(partner, record.clinic, record.record_key, record.version));
        if (sameDecisions(stored, rows)) {
          skipped.push_back(partner);
          continue;
        }
      }
      if (live) {
        GW_TRY(auto stored, tx.decisionRows(partner, record.clinic, record.record_key, record.version));
        bool more = false;
        for (std::size_t i = 0; i < rows.size() && !more; ++i) {
          // No stored row (a record delivered before decisions were kept): unknown, so nothing
          // is sent again on its account.
          for (auto& row : stored) {
            if (row.resource_type == rows[i].resource_type && row.resource_key == rows[i].resource_key) {
              more = disclosesMore(decisionOf(DecisionRow(row)), now_decisions[i]);
              break;
            }
          }
        }
        if (!more) {
          skipped.push_back(partner);
          continue;
        }
      }
      for (const auto& o : outbox) {
        if (o.partner_id != partner) continue;
        GW_TRY(queueItem(tx, o, record.clinic, record.record_key, record.version, record.patient_key, now_ms));
        ++queued.items;
      }
      GW_TRY(tx.putDecisionRows(rows));
      if (has_items) queued.partners.push_back(partner);
    }
    std::vector<AuditEntry> logged;
    for (const auto& e : audit) {
      if (std::find(skipped.begin(), skipped.end(), e.partner_id) == skipped.end()) logged.push_back(e);
    }
    GW_TRY(appendChained(tx, std::move(logged)));
    return queued;
  }

  // Every decision in `now` is already stored, with the same outcome, reason and redaction.
  static bool sameDecisions(const std::vector<DecisionRow>& stored, const std::vector<DecisionRow>& now) {
    if (now.empty()) return false;
    return std::all_of(now.begin(), now.end(), [&](const DecisionRow& d) {
      return std::any_of(stored.begin(), stored.end(), [&](const DecisionRow& s) {
        return s.resource_type == d.resource_type && s.resource_key == d.resource_key && s.outcome == d.outcome &&
               s.reason == d.reason && s.removed_activities == d.removed_activities;
      });
    });
  }

  Status queueItem(StoreWriter& tx, const NewOutboxItem& o, const std::string& clinic, const std::string& record_key,
                   int version, const std::string& patient_key, std::int64_t now_ms) {
    GW_TRY(auto sealed, sealItem(o, clinic, record_key, version));
    return insertItem(tx, o, sealed, clinic, record_key, version, patient_key, now_ms);
  }

  Result<SealedWrite::Item> sealItem(const NewOutboxItem& o, const std::string& clinic, const std::string& record_key,
                                     int version) const {
    const DataClass c = privacy::storageClass(o.classes);
    SealedWrite::Item sealed;
    GW_TRY(sealed.bundle, payloads_.sealBundle(c, o.bundle, o.partner_id, clinic, record_key, version));
    // The disclosure names every resource and consent the item carries: as sensitive as the ids.
    GW_TRY(sealed.disclosure, payloads_.sealDisclosure(c, o.disclosure, o.partner_id, clinic, record_key, version));
    return sealed;
  }

  Status insertItem(StoreWriter& tx, const NewOutboxItem& o, const SealedWrite::Item& sealed, const std::string& clinic,
                    const std::string& record_key, int version, const std::string& patient_key, std::int64_t now_ms) {
    OutboxRow row;
    row.bundle_sealed = sealed.bundle;
    row.disclosure_sealed = sealed.disclosure;
    row.partner_id = o.partner_id;
    row.clinic = clinic;
    row.record_key = record_key;
    row.record_version = version;
    row.patient_key = patient_key;
    row.entry_count = o.entry_count;
    row.created_at_ms = now_ms;
    row.data_class = classNameOf(privacy::storageClass(o.classes));
    return tx.insertOutboxItem(row);
  }

  // Every payload of a record version sealed, bound to its row as the store reads it back.
  Result<SealedWrite> sealFor(const IngestWrite& w, const std::string& record_key, int version) const {
    SealedWrite sealed;
    sealed.version = version;
    sealed.record_key = record_key;
    GW_TRY(sealed.payload, payloads_.sealRecord(privacy::storageClass(w.classes), w.payload, w.clinic, record_key, version));
    sealed.resources.reserve(w.resources.size());
    for (const auto& r : w.resources) {
      const DataClass c = privacy::storageClass(r.classes);
      SealedWrite::Resource resource;
      resource.resource_key = keys_.resource(r.resource_type, r.resource_id);
      GW_TRY(resource.resource_id, payloads_.sealResourceId(c, r.resource_id, r.resource_type, resource.resource_key));
      // The identifier value is often the MRN: as sensitive as the body.
      GW_TRY(resource.identifier_value,
             payloads_.sealIdentifier(c, r.identifier_value, r.resource_type, resource.resource_key));
      GW_TRY(resource.body, payloads_.sealBody(c, r.body, r.resource_type, resource.resource_key));
      sealed.resources.push_back(std::move(resource));
    }
    sealed.outbox.reserve(w.outbox.size());
    for (const auto& o : w.outbox) {
      GW_TRY(auto item, sealItem(o, w.clinic, record_key, version));
      sealed.outbox.push_back(std::move(item));
    }
    return sealed;
  }

  // `w` with the plaintexts sealAhead let go opened again from its envelopes.
  Result<IngestWrite> plaintextsSealedAhead(const IngestWrite& w) const {
    IngestWrite plain = w;
    const SealedWrite& sealed = *w.sealed;
    for (std::size_t i = 0; i < plain.resources.size() && i < sealed.resources.size(); ++i) {
      GW_TRY(plain.resources[i].body, payloads_.openBody(sealed.resources[i].body, plain.resources[i].resource_type,
                                                         sealed.resources[i].resource_key));
    }
    for (std::size_t i = 0; i < plain.outbox.size() && i < sealed.outbox.size(); ++i) {
      const auto& partner = plain.outbox[i].partner_id;
      GW_TRY(plain.outbox[i].bundle,
             payloads_.openBundle(sealed.outbox[i].bundle, partner, w.clinic, sealed.record_key, sealed.version, 0));
      GW_TRY(plain.outbox[i].disclosure,
             payloads_.openDisclosure(sealed.outbox[i].disclosure, partner, w.clinic, sealed.record_key, sealed.version, 0));
    }
    return plain;
  }

  // w.sealed is for this version and every envelope in it is under the data key version this
  // transaction sees as the newest of its class (a rotation that began after it was sealed
  // would otherwise miss it and destroy the key it needs).
  bool sealedAheadFits(const IngestWrite& w, const std::string& record_key, int version) const {
    if (!w.sealed || w.sealed->version != version || w.sealed->record_key != record_key ||
        w.sealed->resources.size() != w.resources.size() || w.sealed->outbox.size() != w.outbox.size()) {
      return false;
    }
    const auto newest = [&](std::string_view envelope) {
      const auto parsed = parseEnvelope(envelope);
      return parsed && parsed->key_version == payloads_.keyring().currentVersion(parsed->data_class);
    };
    if (!newest(w.sealed->payload)) return false;
    for (const auto& r : w.sealed->resources) {
      if (!newest(r.resource_id) || !newest(r.identifier_value) || !newest(r.body)) return false;
    }
    for (const auto& o : w.sealed->outbox) {
      if (!newest(o.bundle) || !newest(o.disclosure)) return false;
    }
    return true;
  }

  // Chains the entries onto the log's tail as read inside this transaction (which excludes other
  // writers), so the chain never rests on a cached tail or on a failed statement being undone.
  // Resource and consent ids are logged as their lookup keys (patient_key is one already); the
  // chain covers the keys, as stored.
  Status appendChained(StoreWriter& tx, std::vector<AuditEntry> entries) {
    if (entries.empty()) return ok();
    for (auto& e : entries) {
      if (!e.resource_id.empty()) e.resource_id = keys_.resource(e.resource_type, e.resource_id);
      if (!e.consent_id.empty()) e.consent_id = keys_.consentReference(e.consent_id);
      // Which instance wrote the row (covered by its v3 hash): the one this store belongs to.
      if (e.instance_id.empty()) e.instance_id = instance_id_;
    }
    GW_TRY(auto tail, tx.auditTail());
    GW_TRY(chainEntries(chain_key_, std::move(tail), entries));
    std::vector<AuditRow> rows;
    rows.reserve(entries.size());
    for (auto& e : entries) rows.push_back(toAuditRow(std::move(e)));
    GW_TRY(tx.appendAudit(rows));
    return tx.addPartnerLogCounts(partnerLogBuckets(rows));
  }

  // The partner view's hourly counters of these rows (decisions, cancels and disclosures about a
  // partner), one per distinct (partner, clinic, hour, kind, outcome, classes, reason).
  static std::vector<PartnerLogBucket> partnerLogBuckets(const std::vector<AuditRow>& rows) {
    std::map<std::tuple<std::string_view, std::string_view, std::int64_t, std::string_view, std::string_view,
                        std::string_view, std::string_view>,
             std::int64_t>
        counts;
    for (const auto& r : rows) {
      if (r.partner_id.empty() || (r.kind != "decision" && r.kind != "cancel" && r.kind != "disclosure")) continue;
      ++counts[{r.partner_id, r.clinic, r.at_ms / kPartnerLogBucketMs, r.kind, r.outcome, r.classes, r.reason}];
    }
    std::vector<PartnerLogBucket> buckets;
    buckets.reserve(counts.size());
    for (const auto& [k, n] : counts) {
      const auto& [partner, clinic, hour, kind, outcome, classes, reason] = k;
      buckets.push_back({std::string(partner), std::string(clinic), hour, std::string(kind), std::string(outcome),
                         std::string(classes), std::string(reason), n});
    }
    return buckets;
  }

  // The state change and its log entries commit together, and only when the item was still
  // pending: a newer version may have superseded it while it was in flight (and a superseded
  // item's cancellation is not logged as one).
  Status recordOutcome(OutboxOutcome outcome) {
    std::vector<OutboxOutcome> one;
    one.push_back(std::move(outcome));
    return recordOutcomes(std::move(one));
  }

  Status applyOutcome(StoreWriter& tx, OutboxOutcome& o) {
    const std::int64_t now_ms = toUnixMillis(o.now);
    if (o.kind == OutboxOutcome::Kind::Delivered) {
      GW_TRY(tx.markDelivered(o.item_id, now_ms, o.entries));
      return appendChained(tx, std::move(o.audit));
    }
    OutboxStateChange change{o.item_id, OutboxState::Retrying, o.attempts, toUnixMillis(o.next_attempt), o.error, {},
                             now_ms};
    if (o.kind == OutboxOutcome::Kind::Dead) {
      change.state = OutboxState::Dead;
      change.next_attempt_at_ms = 0;
    } else if (o.kind == OutboxOutcome::Kind::Cancelled) {
      change.state = OutboxState::Cancelled;
      change.attempts = -1;
      change.next_attempt_at_ms = 0;
    }
    if (o.kind == OutboxOutcome::Kind::Dead && !o.outcome.empty()) {
      GW_TRY(auto item_class, tx.outboxItemClass(change.id));
      if (!item_class) return ok();  // no such item: nothing to update
      GW_TRY(change.outcome_sealed, payloads_.sealOutcome(classOf(*item_class), o.outcome, change.id));
    }
    GW_TRY(auto changed, tx.updatePendingItem(change));
    if (changed > 0) {
      GW_TRY(appendChained(tx, std::move(o.audit)));
    }
    return ok();
  }

  // Every write transaction that seals starts here: data_keys is read inside the transaction
  // (which excludes other writers, also other processes) and any version added since is loaded,
  // so what this transaction seals is under the newest version that exists. A rotation (another
  // process) destroys a version only after a full pass found nothing under it; from the new
  // version's commit on, no transaction seals under the old one.
  Result<WriteTransaction> beginSealing(const crypto::SecretKey* master = nullptr,
                                        const std::vector<PatientPartner>& consent_changes = {}) {
    GW_TRY(auto tx, WriteTransaction::begin(*backend_, consent_changes));
    GW_TRY(auto rows, tx->dataKeys());
    GW_TRY(master == nullptr ? payloads_.keyring().adopt(rows) : payloads_.keyring().adopt(rows, *master));
    return tx;
  }

  // An audit row of a rotation step: versions and counts only.
  static AuditEntry rotationEntry(const DataKeyRotationOptions& options, std::string reason, std::string detail) {
    return AuditEntryBuilder(AuditKind::KeyRotation, AuditOutcome::Ok, options.actor,
                             toUnixMillis(std::chrono::system_clock::now()))
        .reason(std::move(reason))
        .detail(std::move(detail))
        .build();
  }

  static std::string versionList(const std::vector<std::uint32_t>& versions) {
    std::string out = "[";
    for (std::size_t i = 0; i < versions.size(); ++i) out += (i == 0 ? "" : ",") + std::to_string(versions[i]);
    return out + "]";
  }

  Result<DataKeyRotation> rotateDataKeyOf(DataClass c, const crypto::SecretKey& master,
                                          const DataKeyRotationOptions& options) {
    using Clock = std::chrono::steady_clock;
    const auto started = Clock::now();
    const std::string cls = classNameOf(c);
    const int batch_rows = std::max(1, options.batch_rows);
    DataKeyRotation r;
    r.data_class = c;
    // 1. The new version (or the interrupted rotation's), committed with its audit row.
    DataKeyVersionStep step;
    {
      GW_TRY(auto tx, WriteTransaction::begin(*backend_));
      GW_TRY(step, Keyring::addVersion(*tx, master, c, toUnixMillis(std::chrono::system_clock::now())));
      GW_TRY(appendChained(*tx,
                           {rotationEntry(options, step.created ? "data-key-created" : "data-key-resumed",
                                          R"({"data_class":")" + cls + R"(","key_version":)" + std::to_string(step.version) +
                                              R"(,"older_versions":)" + versionList(step.older) + "}")}));
      GW_TRY(tx.commit());
    }
    r.key_version = step.version;
    r.resumed = !step.created;
    GW_LOG(Info, Store, step.created ? "data_key_version_created" : "data_key_rotation_resumed")
        .kv("data_class", cls)
        .kv("key_version", static_cast<std::int64_t>(step.version))
        .kv("older_versions", versionList(step.older));
    // 2. Re-seal, table by table in short transactions, until a whole pass finds nothing left
    //    under an older version (normally the second pass: writers seal under the new version).
    constexpr int kMaxPasses = 4;
    for (int pass = 1;; ++pass) {
      std::int64_t pass_resealed = 0;
      for (SealedTable table : kSealedTables) {
        std::int64_t after = 0, table_rows = 0, table_resealed = 0;
        // A pass ends at the last row there is when it starts: rows inserted later are sealed
        // under the new version (their writers loaded it), so the pass ends under ingest too.
        std::int64_t end = 0;
        {
          GW_TRY(auto tx, WriteTransaction::begin(*backend_));
          GW_TRY(end, tx->lastSealedRow(table));
        }
        while (after < end) {
          const auto batch_started = Clock::now();
          GW_TRY(auto tx, beginSealing(&master));
          if (payloads_.keyring().currentVersion(c) != step.version) {
            return makeError(ErrorCode::Storage,
                             "another data key rotation of " + cls + " added version " +
                                 std::to_string(payloads_.keyring().currentVersion(c)) + " while this one ran",
                             "data_keys", "run `fhir-gateway keys rotate-data` again (one at a time): it finishes both");
          }
          GW_TRY(auto batch, tx->sealedCells(table, after, batch_rows));
          if (batch.rows == 0) break;  // the transaction rolls back: it changed nothing
          for (auto& cell : batch.cells) {
            if (cell.row > end) break;  // inserted after the pass began
            GW_TRY(auto resealed, payloads_.resealUnderNewest(cell, c));
            if (!resealed) continue;
            cell.sealed = std::move(*resealed);
            GW_TRY(tx->replaceSealed(cell));
            ++table_resealed;
          }
          GW_TRY(tx.commit());
          after = batch.last_row;
          table_rows += batch.rows;
          ++r.batches;
          const auto held = Clock::now() - batch_started;
          std::this_thread::sleep_for(std::max<Clock::duration>(
              options.min_pause, std::chrono::duration_cast<Clock::duration>(held * options.pause_ratio)));
        }
        r.rows_scanned += table_rows;
        r.payloads_resealed += table_resealed;
        pass_resealed += table_resealed;
        GW_LOG(Info, Store, "data_key_resealed")
            .kv("data_class", cls)
            .kv("key_version", static_cast<std::int64_t>(step.version))
            .kv("pass", pass)
            .kv("table", sealedTableName(table))
            .kv("rows", table_rows)
            .kv("resealed", table_resealed);
      }
      r.passes = pass;
      if (pass_resealed == 0) break;
      if (pass == kMaxPasses) {
        return makeError(ErrorCode::Storage,
                         "payloads kept appearing under an older " + cls + " key version after " + std::to_string(pass) +
                             " passes",
                         "data_keys",
                         "a process that does not check data_keys before sealing (a fhir-gateway older than this one) "
                         "is writing to the database: stop or upgrade it and run the rotation again");
      }
    }
    // 3. Destroy the older versions: a full pass found nothing under them, and every writer
    //    seals under the new one.
    {
      GW_TRY(auto tx, WriteTransaction::begin(*backend_));
      GW_TRY(auto rows, tx->dataKeys());
      for (const auto& row : rows) {
        if (row.data_class != cls) continue;
        if (row.key_version > static_cast<int>(step.version)) {
          return makeError(ErrorCode::Storage,
                           "another data key rotation of " + cls + " added version " + std::to_string(row.key_version) +
                               " while this one ran",
                           "data_keys", "run `fhir-gateway keys rotate-data` again (one at a time): it finishes both");
        }
        if (row.key_version < static_cast<int>(step.version)) {
          GW_TRY(tx->deleteDataKey(cls, row.key_version));
          r.destroyed.push_back(static_cast<std::uint32_t>(row.key_version));
        }
      }
      GW_TRY(appendChained(
          *tx, {rotationEntry(options, "data-key-destroyed",
                              R"({"data_class":")" + cls + R"(","key_version":)" + std::to_string(step.version) +
                                  R"(,"destroyed_versions":)" + versionList(r.destroyed) + R"(,"rows_scanned":)" +
                                  std::to_string(r.rows_scanned) + R"(,"payloads_resealed":)" +
                                  std::to_string(r.payloads_resealed) + R"(,"passes":)" + std::to_string(r.passes) + "}")}));
      GW_TRY(tx.commit());
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    GW_LOG(Info, Store, "data_key_versions_destroyed")
        .kv("data_class", cls)
        .kv("key_version", static_cast<std::int64_t>(step.version))
        .kv("destroyed_versions", versionList(r.destroyed))
        .kv("rows_scanned", r.rows_scanned)
        .kv("payloads_resealed", r.payloads_resealed)
        .kv("seconds", r.seconds);
    return r;
  }

  // One purge transaction: up to kPurgeBatch expired rows of each kind for one class, then the
  // records left with nothing (their ids may embed an MRN; resent later, they are stored as new).
  Result<PurgeCounts> purgeBatch(const std::string& cls, std::int64_t cutoff) {
    GW_TRY(auto tx, WriteTransaction::begin(*backend_));
    PurgeCounts n;
    std::set<RecordKey> touched;
    const auto remember = [&](PurgedRows& rows) {
      for (auto& r : rows.records) touched.insert(std::move(r));
      return rows.count;
    };
    GW_TRY(auto versions, tx->purgeRecordVersions(cls, cutoff, kPurgeBatch));
    n.record_versions = remember(versions);
    GW_TRY(auto resources, tx->purgeResources(cls, cutoff, kPurgeBatch));
    n.resources = remember(resources);
    GW_TRY(auto items, tx->purgeFinishedItems(cls, cutoff, kPurgeBatch));
    n.outbox_items = remember(items);
    GW_TRY(n.records, tx->deleteRecordsIfEmpty(std::vector<RecordKey>(touched.begin(), touched.end())));
    GW_TRY(tx.commit());
    return n;
  }

  std::unique_ptr<StoreBackend> backend_;
  std::string instance_id_;            // written into every log row this store appends
  const crypto::SecretKey chain_key_;  // seals each audit row (v2) and each published anchor
  LookupKeys keys_;                    // immutable (the keyring only adds data key versions)
  StorePayloads payloads_;
};

}  // namespace

bool disclosesMore(const ResourceDecision& last, const ResourceDecision& now) {
  if (now.outcome == AuditOutcome::Deny) return false;
  if (last.outcome == AuditOutcome::Deny) return true;
  if (last.outcome != AuditOutcome::Redact) return false;  // a permit held nothing back
  if (now.outcome == AuditOutcome::Permit) return true;
  // Both redacted: more is disclosed when an activity left out before is kept now.
  return std::any_of(last.removed_activities.begin(), last.removed_activities.end(), [&](std::uint32_t i) {
    return std::find(now.removed_activities.begin(), now.removed_activities.end(), i) == now.removed_activities.end();
  });
}

Result<std::unique_ptr<Store>> openStore(std::unique_ptr<StoreBackend> backend, const crypto::SecretKey& master_key,
                                         MasterKeySource master_key_source) {
  const auto now = std::chrono::system_clock::now();
  // Without a master key the keyring refuses below, saying which setting is missing.
  if (auto keyed = master_key.empty() ? ok() : ensureKeyedChainStart(*backend, master_key, now); !keyed) {
    Error e = keyed.error();
    e.where = backend->location() + " (" + e.where + ")";
    return e;
  }
  auto keyring = Keyring::open(*backend, master_key, now, std::move(master_key_source));
  if (!keyring) {
    Error e = keyring.error();
    e.where = backend->location() + " (" + e.where + ")";
    return e;
  }
  const std::string location = backend->location();
  auto store = std::make_unique<RecordStore>(std::move(backend), std::move(keyring).value());
  if (auto converted = store->convertLegacyRows(); !converted) {
    Error e = converted.error();
    e.where = location + (e.where.empty() ? "" : " (" + e.where + ")");
    return e;
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace gw::store

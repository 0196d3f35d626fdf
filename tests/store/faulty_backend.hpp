#pragma once
// A StoreBackend that forwards to a real one and fails one chosen write primitive on its Nth
// call: how the contract suite shows that a failure anywhere in a write leaves nothing behind,
// on any backend, without knowing how that backend could be made to fail.
#include <functional>
#include <memory>
#include <string>

#include "store/store_backend.hpp"

namespace gw::store::test {

struct Faults {
  /// Called before every write primitive (its name) and every read session: lets a test hold
  /// one (a commit stuck in a long fsync, a slow read). Set before use; called from any thread.
  std::function<void(std::string_view)> before_write;
  std::function<void()> before_read;

  std::string primitive;  // StoreWriter method name, e.g. "appendAudit" or "commit"; empty: none
  int pass = 0;           // calls of it that succeed before the one that fails
  int failed = 0;         // failures injected so far

  void arm(std::string name, int pass_first = 0) {
    primitive = std::move(name);
    pass = pass_first;
  }
  void disarm() { primitive.clear(); }
};

class FaultyWriter final : public StoreWriter {
 public:
  FaultyWriter(std::unique_ptr<StoreWriter> inner, std::shared_ptr<Faults> faults)
      : inner_(std::move(inner)), faults_(std::move(faults)) {}

  Status commit() override {
    GW_TRY(check("commit"));
    return inner_->commit();
  }
  void rollback() noexcept override { inner_->rollback(); }

  Result<std::optional<RecordHead>> recordHead(std::string_view c, std::string_view r) override {
    GW_TRY(check("recordHead"));
    return inner_->recordHead(c, r);
  }
  Status insertRecordVersion(const RecordVersionRow& row) override {
    GW_TRY(check("insertRecordVersion"));
    return inner_->insertRecordVersion(row);
  }
  Status insertRecord(const RecordRow& row) override {
    GW_TRY(check("insertRecord"));
    return inner_->insertRecord(row);
  }
  Status updateRecord(const RecordRow& row) override {
    GW_TRY(check("updateRecord"));
    return inner_->updateRecord(row);
  }
  Status deleteResources(std::string_view c, std::string_view r) override {
    GW_TRY(check("deleteResources"));
    return inner_->deleteResources(c, r);
  }
  Status putResource(const ResourceRow& row) override {
    GW_TRY(check("putResource"));
    return inner_->putResource(row);
  }
  Status supersedePending(std::string_view c, std::string_view r, std::int64_t now_ms) override {
    GW_TRY(check("supersedePending"));
    return inner_->supersedePending(c, r, now_ms);
  }
  Status insertOutboxItem(const OutboxRow& row) override {
    GW_TRY(check("insertOutboxItem"));
    return inner_->insertOutboxItem(row);
  }
  Result<std::optional<std::string>> outboxItemClass(std::int64_t id) override {
    GW_TRY(check("outboxItemClass"));
    return inner_->outboxItemClass(id);
  }
  Result<int> updatePendingItem(const OutboxStateChange& change) override {
    GW_TRY(check("updatePendingItem"));
    return inner_->updatePendingItem(change);
  }
  Status markDelivered(std::int64_t id, std::int64_t now_ms, const std::vector<DeliveredEntry>& entries) override {
    GW_TRY(check("markDelivered"));
    return inner_->markDelivered(id, now_ms, entries);
  }
  Result<std::int64_t> highestConsentVersion(std::string_view c, std::string_view id) override {
    GW_TRY(check("highestConsentVersion"));
    return inner_->highestConsentVersion(c, id);
  }
  Status insertConsent(const ConsentKeyedRow& row) override {
    GW_TRY(check("insertConsent"));
    return inner_->insertConsent(row);
  }
  Status markConsentReconciled(std::string_view c, std::string_view id, std::int64_t version) override {
    GW_TRY(check("markConsentReconciled"));
    return inner_->markConsentReconciled(c, id, version);
  }
  Result<ChainTail> auditTail() override {
    GW_TRY(check("auditTail"));
    return inner_->auditTail();
  }
  Status appendAudit(const std::vector<AuditRow>& rows) override {
    GW_TRY(check("appendAudit"));
    return inner_->appendAudit(rows);
  }
  Result<std::vector<DataKeyRow>> dataKeys() override {
    GW_TRY(check("dataKeys"));
    return inner_->dataKeys();
  }
  Status insertDataKeyIfAbsent(const DataKeyRow& row) override {
    GW_TRY(check("insertDataKeyIfAbsent"));
    return inner_->insertDataKeyIfAbsent(row);
  }
  Status updateDataKey(const DataKeyRow& row) override {
    GW_TRY(check("updateDataKey"));
    return inner_->updateDataKey(row);
  }
  Result<std::string> deploymentSecret(std::string_view name, std::string_view candidate) override {
    GW_TRY(check("deploymentSecret"));
    return inner_->deploymentSecret(name, candidate);
  }
  Result<SealedBatch> sealedCells(SealedTable table, std::int64_t after_row, int limit) override {
    GW_TRY(check("sealedCells"));
    return inner_->sealedCells(table, after_row, limit);
  }
  Result<std::int64_t> lastSealedRow(SealedTable table) override {
    GW_TRY(check("lastSealedRow"));
    return inner_->lastSealedRow(table);
  }
  Status replaceSealed(const SealedCell& cell) override {
    GW_TRY(check("replaceSealed"));
    return inner_->replaceSealed(cell);
  }
  Status insertCopiedRows(const CopyTable& table, const std::vector<CopyRow>& rows) override {
    GW_TRY(check("insertCopiedRows"));
    return inner_->insertCopiedRows(table, rows);
  }
  Status deleteDataKey(std::string_view data_class, int key_version) override {
    GW_TRY(check("deleteDataKey"));
    return inner_->deleteDataKey(data_class, key_version);
  }
  Result<int> requeueDeadItem(std::int64_t id, std::string_view note, std::int64_t now_ms) override {
    GW_TRY(check("requeueDeadItem"));
    return inner_->requeueDeadItem(id, note, now_ms);
  }
  Status putPartnerPause(const PartnerPause& pause) override {
    GW_TRY(check("putPartnerPause"));
    return inner_->putPartnerPause(pause);
  }
  Status deletePartnerPause(std::string_view partner) override {
    GW_TRY(check("deletePartnerPause"));
    return inner_->deletePartnerPause(partner);
  }
  Status putInstance(const InstanceRow& row) override {
    GW_TRY(check("putInstance"));
    return inner_->putInstance(row);
  }
  Status deleteInstancesSeenBefore(std::int64_t cutoff_ms) override {
    GW_TRY(check("deleteInstancesSeenBefore"));
    return inner_->deleteInstancesSeenBefore(cutoff_ms);
  }
  Status writeProbe(std::int64_t now_ms) override {
    GW_TRY(check("writeProbe"));
    return inner_->writeProbe(now_ms);
  }
  Result<PurgedRows> purgeRecordVersions(std::string_view cls, std::int64_t cutoff, int limit) override {
    GW_TRY(check("purgeRecordVersions"));
    return inner_->purgeRecordVersions(cls, cutoff, limit);
  }
  Result<PurgedRows> purgeResources(std::string_view cls, std::int64_t cutoff, int limit) override {
    GW_TRY(check("purgeResources"));
    return inner_->purgeResources(cls, cutoff, limit);
  }
  Result<PurgedRows> purgeFinishedItems(std::string_view cls, std::int64_t cutoff, int limit) override {
    GW_TRY(check("purgeFinishedItems"));
    return inner_->purgeFinishedItems(cls, cutoff, limit);
  }
  Result<std::int64_t> deleteRecordsIfEmpty(const std::vector<RecordKey>& records) override {
    GW_TRY(check("deleteRecordsIfEmpty"));
    return inner_->deleteRecordsIfEmpty(records);
  }
  Status addPartnerLogCounts(const std::vector<PartnerLogBucket>& buckets) override {
    GW_TRY(check("addPartnerLogCounts"));
    return inner_->addPartnerLogCounts(buckets);
  }
  Status putBreakGlass(const BreakGlass& row) override {
    GW_TRY(check("putBreakGlass"));
    return inner_->putBreakGlass(row);
  }
  Result<int> endBreakGlassIfOpen(std::string_view id, std::int64_t ended_at_ms, std::string_view ended_by) override {
    GW_TRY(check("endBreakGlassIfOpen"));
    return inner_->endBreakGlassIfOpen(id, ended_at_ms, ended_by);
  }
  Status putAccountingRequest(const AccountingRequest& row) override {
    GW_TRY(check("putAccountingRequest"));
    return inner_->putAccountingRequest(row);
  }
  Result<std::vector<DecisionRow>> decisionRows(std::string_view partner, std::string_view clinic,
                                                std::string_view record_key, int version) override {
    GW_TRY(check("decisionRows"));
    return inner_->decisionRows(partner, clinic, record_key, version);
  }
  Status putDecisionRows(const std::vector<DecisionRow>& rows) override {
    GW_TRY(check("putDecisionRows"));
    return inner_->putDecisionRows(rows);
  }
  Status deleteDecisionRows(std::string_view clinic, std::string_view record_key) override {
    GW_TRY(check("deleteDecisionRows"));
    return inner_->deleteDecisionRows(clinic, record_key);
  }
  Result<bool> hasLiveItem(std::string_view partner, std::string_view clinic, std::string_view record_key,
                           int version) override {
    GW_TRY(check("hasLiveItem"));
    return inner_->hasLiveItem(partner, clinic, record_key, version);
  }

 private:
  Status check(std::string_view name) {
    if (faults_->before_write) faults_->before_write(name);
    if (faults_->primitive != name) return ok();
    if (faults_->pass > 0) {
      --faults_->pass;
      return ok();
    }
    faults_->disarm();  // one failure per arm
    ++faults_->failed;
    return makeError(ErrorCode::Storage, "injected failure in " + std::string(name), "faulty backend");
  }

  std::unique_ptr<StoreWriter> inner_;
  std::shared_ptr<Faults> faults_;
};

class FaultyBackend final : public StoreBackend {
 public:
  FaultyBackend(std::unique_ptr<StoreBackend> inner, std::shared_ptr<Faults> faults)
      : inner_(std::move(inner)), faults_(std::move(faults)) {}

  std::string_view name() const override { return inner_->name(); }
  std::string location() const override { return inner_->location(); }
  Result<std::unique_ptr<StoreReader>> read() override {
    if (faults_->before_read) faults_->before_read();
    return inner_->read();
  }
  Result<std::int64_t> convertLegacyIdentifiers(const LegacyIdentifiers& convert) override {
    return inner_->convertLegacyIdentifiers(convert);
  }
  Result<std::unique_ptr<StoreWriter>> beginWrite() override {
    GW_TRY(auto writer, inner_->beginWrite());
    return std::unique_ptr<StoreWriter>(std::make_unique<FaultyWriter>(std::move(writer), faults_));
  }
  std::string instanceId() const override { return inner_->instanceId(); }
  Status watchReloads(std::function<void(const std::string& origin)> requested) override {
    return inner_->watchReloads(std::move(requested));
  }
  Status announceReload(std::string_view origin) override { return inner_->announceReload(origin); }

 private:
  std::unique_ptr<StoreBackend> inner_;
  std::shared_ptr<Faults> faults_;
};

}  // namespace gw::store::test

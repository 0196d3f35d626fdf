#include "store/store_backend.hpp"

namespace gw::store {

Result<WriteTransaction> WriteTransaction::begin(StoreBackend& backend) {
  GW_TRY(auto writer, backend.beginWrite());
  return WriteTransaction(std::move(writer));
}

Result<WriteTransaction> WriteTransaction::begin(StoreBackend& backend, const std::vector<PatientPartner>& changes) {
  if (changes.empty()) return begin(backend);
  GW_TRY(auto writer, backend.beginConsentWrite(changes));
  return WriteTransaction(std::move(writer));
}

WriteTransaction::~WriteTransaction() {
  if (writer_) writer_->rollback();
}

Status WriteTransaction::commit() {
  if (!writer_) {
    return makeError(ErrorCode::Internal, "commit of a write transaction that is already over", "store",
                     "this is a bug: a transaction commits once");
  }
  auto committed = writer_->commit();
  if (!committed) writer_->rollback();
  writer_.reset();  // over either way; releases the backend's write lock
  return committed;
}

const std::vector<CopyTable>& copiedTables() {
  using K = CopyKind;
  static const std::vector<CopyTable> tables = {
      {"records",
       {{"clinic", K::Text},
        {"record_key", K::Text},
        {"record_type", K::Text},
        {"version", K::Int},
        {"content_hash", K::Text},
        {"state", K::Text},
        {"error", K::Text},
        {"patient_key", K::Text},
        {"received_at", K::Int},
        {"updated_at", K::Int},
        {"data_class", K::Text}},
       2},
      {"record_versions",
       {{"clinic", K::Text},
        {"record_key", K::Text},
        {"version", K::Int},
        {"content_hash", K::Text},
        {"payload", K::Bytes},
        {"received_at", K::Int},
        {"data_class", K::Text}},
       3},
      {"resources",
       {{"resource_type", K::Text},
        {"resource_key", K::Text},
        {"resource_id", K::Bytes},
        {"clinic", K::Text},
        {"record_key", K::Text},
        {"record_version", K::Int},
        {"identifier_system", K::Text},
        {"identifier_value", K::Bytes},
        {"body", K::Bytes},
        {"data_class", K::Text},
        {"stored_at", K::Int}},
       2},
      {"outbox",
       {{"id", K::Int},
        {"partner_id", K::Text},
        {"clinic", K::Text},
        {"record_key", K::Text},
        {"record_version", K::Int},
        {"patient_key", K::Text},
        {"bundle", K::Bytes},
        {"entry_count", K::Int},
        {"state", K::Text},
        {"attempts", K::Int},
        {"next_attempt_at", K::Int},
        {"last_error", K::Text},
        {"outcome", K::Bytes},
        {"created_at", K::Int},
        {"updated_at", K::Int},
        {"delivered_at", K::Int, true},
        {"data_class", K::Text},
        {"disclosure", K::Bytes}},
       1},
      {"deliveries",
       {{"outbox_id", K::Int}, {"entry_index", K::Int}, {"status", K::Text}, {"location", K::Text}, {"etag", K::Text}},
       2},
      {"deployment_secrets", {{"name", K::Text}, {"value", K::Bytes}}, 1},
      {"data_keys",
       {{"data_class", K::Text},
        {"key_version", K::Int},
        {"wrapped", K::Bytes},
        {"master_key_id", K::Text},
        {"created_at", K::Int}},
       2},
      {"consents",
       {{"clinic", K::Text},
        {"consent_key", K::Text},
        {"version", K::Int},
        {"consent_id", K::Bytes},
        {"patient_key", K::Text},
        {"partner_id", K::Text},
        {"status", K::Text},
        {"purposes", K::Text},
        {"classes", K::Text},
        {"period_start", K::Text},
        {"period_end", K::Text},
        {"revoked_on", K::Text},
        {"signed_on", K::Text},
        {"resource_id", K::Bytes},
        {"recorded_at", K::Int},
        {"reconciled", K::Int}},
       3},
      // instance_id: schema 9.
      {"audit_log",
       {{"seq", K::Int},          {"at_ms", K::Int},           {"kind", K::Text},
        {"actor", K::Text},       {"clinic", K::Text},         {"patient_key", K::Text},
        {"partner_id", K::Text},  {"purpose", K::Text},        {"resource_type", K::Text},
        {"resource_id", K::Text}, {"classes", K::Text},        {"labels", K::Text},
        {"consent_id", K::Text},  {"consent_version", K::Int}, {"outcome", K::Text},
        {"reason", K::Text},      {"policy_version", K::Text}, {"detail", K::Text},
        {"prev_hash", K::Text},   {"hash", K::Text},           {"instance_id", K::Text}},
       1},
      {"resource_decisions",
       {{"partner_id", K::Text},
        {"clinic", K::Text},
        {"record_key", K::Text},
        {"resource_type", K::Text},
        {"resource_key", K::Text},
        {"patient_key", K::Text},
        {"record_version", K::Int},
        {"outcome", K::Text},
        {"removed_activities", K::Text},
        {"reason", K::Text},
        {"updated_at", K::Int}},
       5},
      {"partner_pauses", {{"partner_id", K::Text}, {"paused_at", K::Int}, {"actor", K::Text}, {"reason", K::Text}}, 1},
      // Schema 8: the compliance console's rows and the partner view's hourly counters.
      {"break_glass",
       {{"id", K::Text},
        {"clinic", K::Text},
        {"patient_key", K::Text},
        {"partner_id", K::Text},
        {"recipient", K::Text},
        {"authorised_by", K::Text},
        {"nature", K::Text},
        {"opened_by", K::Text},
        {"opened_at", K::Int},
        {"expires_at", K::Int},
        {"ended_at", K::Int},
        {"ended_by", K::Text}},
       1},
      {"accounting_requests",
       {{"id", K::Text},
        {"clinic", K::Text},
        {"patient_key", K::Text},
        {"received_on", K::Text},
        {"due_on", K::Text},
        {"note", K::Text},
        {"state", K::Text},
        {"delivered_on", K::Text},
        {"created_by", K::Text},
        {"delivered_by", K::Text},
        {"created_at", K::Int},
        {"updated_at", K::Int}},
       1},
      {"audit_hourly_counts",
       {{"partner_id", K::Text},
        {"clinic", K::Text},
        {"hour", K::Int},
        {"kind", K::Text},
        {"outcome", K::Text},
        {"classes", K::Text},
        {"reason", K::Text},
        {"count", K::Int}},
       7},
  };
  return tables;
}

std::string_view sealedTableName(SealedTable t) {
  switch (t) {
    case SealedTable::RecordVersions: return "record_versions";
    case SealedTable::Resources: return "resources";
    case SealedTable::Outbox: return "outbox";
    case SealedTable::Consents: return "consents";
    case SealedTable::DeploymentSecrets: return "deployment_secrets";
    case SealedTable::BreakGlass: return "break_glass";
    case SealedTable::AccountingRequests: return "accounting_requests";
  }
  return "unknown";
}

}  // namespace gw::store

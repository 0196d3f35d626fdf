#include "store/store_backend.hpp"

namespace gw::store {

Result<WriteTransaction> WriteTransaction::begin(StoreBackend& backend) {
  GW_TRY(auto writer, backend.beginWrite());
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

std::string_view sealedTableName(SealedTable t) {
  switch (t) {
    case SealedTable::RecordVersions: return "record_versions";
    case SealedTable::Resources: return "resources";
    case SealedTable::Outbox: return "outbox";
    case SealedTable::Consents: return "consents";
    case SealedTable::DeploymentSecrets: return "deployment_secrets";
  }
  return "unknown";
}

}  // namespace gw::store

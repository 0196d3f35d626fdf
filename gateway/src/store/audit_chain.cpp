#include "store/audit_chain.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "store/keyring.hpp"

namespace gw::store {
namespace {

// Rows per verify read: large enough that the per-read cost vanishes, small enough that memory
// does not grow with the table.
constexpr int kVerifyChunk = 2048;

const std::string kChainKeyName(hashKeyPurposeName(HashKeyPurpose::AuditChain));

const DataKeyRow* chainKeyRow(const std::vector<DataKeyRow>& rows) {
  const auto it = std::find_if(rows.begin(), rows.end(),
                               [](const DataKeyRow& r) { return r.data_class == kChainKeyName && r.key_version == 1; });
  return it == rows.end() ? nullptr : &*it;
}

Result<crypto::SecretKey> unwrapChainKey(const crypto::SecretKey& master, const DataKeyRow& row) {
  if (row.master_key_id != master.id()) {
    return makeError(ErrorCode::Config,
                     "the master key does not match the one that wrapped the data keys (id " + master.id() + ", expected " +
                         row.master_key_id + ")",
                     "privacy.master_key_file / privacy.master_key_env",
                     "verify with the master key this database was created with (after `fhir-gateway keys rotate`, the "
                     "new one)");
  }
  auto raw = crypto::open(master, row.wrapped, dataKeyAad(kChainKeyName, 1));
  if (!raw) {
    return makeError(ErrorCode::Storage, "the audit-chain key does not unwrap with the master key that wrapped it",
                     "data_keys", "the row was altered: restore the database from a backup");
  }
  return crypto::SecretKey::fromBytes(raw.value());
}

Status ensureWith(StoreBackend& backend, const crypto::SecretKey& master, SystemTime now) {
  {
    GW_TRY(auto reader, backend.read());
    GW_TRY(auto rows, reader->dataKeys());
    if (chainKeyRow(rows) != nullptr) return ok();
    if (std::any_of(rows.begin(), rows.end(), [&](const DataKeyRow& r) { return r.master_key_id != master.id(); })) {
      return ok();  // another master key: Keyring::open says so
    }
  }
  GW_TRY(auto key, crypto::SecretKey::generate());
  GW_TRY(auto wrapped, crypto::seal(master, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()),
                                    dataKeyAad(kChainKeyName, 1)));
  GW_TRY(auto tx, WriteTransaction::begin(backend));
  GW_TRY(tx->insertDataKeyIfAbsent({kChainKeyName, 1, wrapped, master.id(), toUnixMillis(now)}));
  GW_TRY(auto rows, tx->dataKeys());
  const DataKeyRow* stored = chainKeyRow(rows);
  if (stored == nullptr || stored->wrapped != wrapped) return ok();  // another process made it, with its marker
  // Every row up to the tail as it is now was written before the chain was keyed.
  GW_TRY(auto tail, tx->auditTail());
  GW_TRY(tx->deploymentSecret(kChainStartSecretName, chainStartMarker(key, tail.seq)));
  GW_TRY(tx.commit());
  GW_LOG(Info, Audit, "audit_chain_keyed").kv("from_seq", tail.seq + 1).kv("master_key_id", master.id());
  return ok();
}

}  // namespace

Status ensureKeyedChainStart(StoreBackend& backend, const crypto::SecretKey& master, SystemTime now) {
  auto st = ensureWith(backend, master, now);
  crypto::forgetThreadKey();  // the master key's schedule must not stay in this thread's context
  return st;
}

Result<VerifyReport> verifyAuditChain(StoreReader& reader, const crypto::SecretKey* chain_key,
                                      const std::optional<ChainAnchor>& anchor) {
  ChainKeying keying;
  if (chain_key != nullptr && !chain_key->empty()) {
    keying.key = chain_key;
    GW_TRY(keying.start_marker, reader.deploymentSecret(kChainStartSecretName));
  }
  // Chunks until a read comes back empty: rows appended while it runs are checked too.
  ChainVerifier verifier(std::move(keying), anchor);
  for (;;) {
    GW_TRY(auto rows, reader.auditRows(verifier.lastSeq(), kVerifyChunk));
    if (rows.empty()) break;
    for (const auto& row : rows) verifier.add(row);
  }
  return verifier.finish();
}

Result<ReadOnlyAuditLog> ReadOnlyAuditLog::open(std::unique_ptr<StoreBackend> backend, const crypto::SecretKey& master) {
  crypto::SecretKey chain_key;
  {
    GW_TRY(auto reader, backend->read());
    GW_TRY(auto rows, reader->dataKeys());
    if (const DataKeyRow* row = chainKeyRow(rows)) {
      auto key = unwrapChainKey(master, *row);
      crypto::forgetThreadKey();
      if (!key) {
        Error e = key.error();
        e.where = backend->location() + " (" + e.where + ")";
        return e;
      }
      chain_key = std::move(key).value();
    }
  }
  return ReadOnlyAuditLog(std::move(backend), std::move(chain_key));
}

Result<VerifyReport> ReadOnlyAuditLog::verify(const std::optional<ChainAnchor>& anchor) {
  GW_TRY(auto reader, backend_->read());
  return verifyAuditChain(*reader, chain_key_.empty() ? nullptr : &chain_key_, anchor);
}

Result<ChainTail> ReadOnlyAuditLog::head() {
  GW_TRY(auto reader, backend_->read());
  return reader->auditTail();
}

}  // namespace gw::store

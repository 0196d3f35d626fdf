#pragma once
// The audit chain over the backend primitives (store/store_backend.hpp), shared by the store
// (store/record_store.cpp) and by the read-only view of a database that `audit verify
// --read-only` opens: where the keyed chain begins, the audit-chain secret read without making
// anything, and the whole-table check. Backend-neutral.
#include <memory>
#include <optional>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/error.hpp"
#include "store/audit_anchor.hpp"
#include "store/audit_log.hpp"
#include "store/store_backend.hpp"

namespace gw::store {

/// Called when a store opens, before its keyring: a database without an audit-chain secret gets
/// one (wrapped by `master`, as Keyring would make it) together with the keyed chain's start
/// marker at the log's current tail, in one transaction, so there is never a secret without its
/// marker. Does nothing when the secret exists, or when the data keys belong to another master
/// key (the keyring then reports that).
Status ensureKeyedChainStart(StoreBackend& backend, const crypto::SecretKey& master, SystemTime now);

/// Reads every row in chunks and checks the chain (ChainVerifier) with `chain_key` (null: the
/// database has none) and the start marker as stored.
Result<VerifyReport> verifyAuditChain(StoreReader& reader, const crypto::SecretKey* chain_key,
                                      const std::optional<ChainAnchor>& anchor);

/// The audit log of a database opened without writing to it (`audit verify --read-only`, a copy
/// of a database): the audit-chain secret is read with the master key but never made, no row is
/// appended. Open the backend read-only too (SqliteOptions::read_only).
class ReadOnlyAuditLog {
 public:
  static Result<ReadOnlyAuditLog> open(std::unique_ptr<StoreBackend> backend, const crypto::SecretKey& master);

  Result<VerifyReport> verify(const std::optional<ChainAnchor>& anchor);
  Result<ChainTail> head();
  /// Cannot check any line when the database has no audit-chain secret (canCheck() false).
  AnchorSealer anchorSealer() const { return AnchorSealer(chain_key_); }

 private:
  ReadOnlyAuditLog(std::unique_ptr<StoreBackend> backend, crypto::SecretKey chain_key)
      : backend_(std::move(backend)), chain_key_(std::move(chain_key)) {}
  std::unique_ptr<StoreBackend> backend_;
  crypto::SecretKey chain_key_;  // empty: none stored
};

}  // namespace gw::store

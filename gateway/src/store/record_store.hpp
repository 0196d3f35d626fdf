#pragma once
// The store's rules, written once over the backend primitives (store/store_backend.hpp):
// unchanged detection, superseding older outbox items, consent version numbers, the audit chain
// (seq and hashes computed inside the write transaction), payload encryption (store/keyring.hpp)
// and retention batching. A backend only moves rows; everything Store promises is decided here.
#include <memory>

#include "common/crypto.hpp"
#include "common/error.hpp"
#include "store/keyring.hpp"
#include "store/store.hpp"
#include "store/store_backend.hpp"

namespace gw::store {

/// The Store over `backend`. Opens the data keys with `master_key` (making them on a new
/// database); a master key other than the one that wrapped them is a Config error naming both
/// key ids. The master key is not kept: `master_key_source` gives it again when a data key
/// version added by `keys rotate-data` (another process) must be loaded; without one, writes
/// fail from then on, saying to restart.
Result<std::unique_ptr<Store>> openStore(std::unique_ptr<StoreBackend> backend, const crypto::SecretKey& master_key,
                                         MasterKeySource master_key_source = {});

}  // namespace gw::store

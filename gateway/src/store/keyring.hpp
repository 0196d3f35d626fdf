#pragma once
// Encryption of stored payloads, a data key per privacy class (general, sud, mh). Each data key
// is random (made the first time a database is opened) and stored in data_keys wrapped by the
// master key (AES-256-GCM, AAD "gw-data-key|<class>|<version>"), with the master key's id so a
// wrong master key is named as such rather than as damaged data. The master key itself is never
// stored: it comes from privacy.master_key_file or privacy.master_key_env at start.
//
// Payload envelope (version 1), stored as a BLOB:
//   "GW1" | class (1 byte: 1 general, 2 sud, 4 mh) | key version (4 bytes, big-endian)
//   | nonce (12) | ciphertext | tag (16)
// The AAD is the 8-byte header followed by the payload's context: the table, column and row
// identity it was written for (payloadContext), so an envelope copied into another row or
// column, or with its class byte changed, does not open. A sud or mh payload is sealed under its
// own class's key: the general key cannot open it.
#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/error.hpp"
#include "privacy/data_class.hpp"
#include "store/store.hpp"
#include "store/store_backend.hpp"

namespace gw::store {

inline constexpr std::string_view kEnvelopeMagic = "GW1";
inline constexpr std::size_t kEnvelopeHeaderSize = 8;
inline constexpr std::size_t kEnvelopeOverhead = kEnvelopeHeaderSize + crypto::kSealOverhead;

/// The parts of an envelope, pointing into it.
struct EnvelopeView {
  privacy::DataClass data_class = privacy::DataClass::Sud;
  std::uint32_t key_version = 0;
  std::string_view header;  // the first kEnvelopeHeaderSize bytes (part of the AAD)
  std::string_view sealed;  // nonce | ciphertext | tag, as crypto::open takes it
};
/// nullopt when `envelope` is not a version-1 envelope of a known class.
std::optional<EnvelopeView> parseEnvelope(std::string_view envelope);

/// The row identity a payload is bound to: the parts, each length-prefixed (4 bytes big-endian)
/// so no two part lists give the same bytes. E.g. {"record_versions.payload", clinic, record_id,
/// content_hash}.
std::string payloadContext(std::initializer_list<std::string_view> parts);

/// AAD of the data key wrap: "gw-data-key|<class>|<version>".
std::string dataKeyAad(privacy::DataClass c, std::uint32_t version);
/// The same for a keyed-hash secret: "gw-data-key|<purpose name>|<version>".
std::string dataKeyAad(std::string_view key_name, std::uint32_t version);

/// Secrets for keyed hashes (HMAC-SHA256), not for encryption. Like the data keys they are random,
/// made at first open, and stored in data_keys wrapped by the master key (the data_class column
/// holds the purpose's name), so whoever reads or writes the database without the master key can
/// neither recompute a lookup key from a guessed MRN nor re-seal a rewritten audit chain.
enum class HashKeyPurpose {
  Lookup,      // patient, record and resource lookup keys stored instead of clear identifiers
  AuditChain,  // the audit log's chain: each row's HMAC covers the previous row's
};
inline constexpr std::array<HashKeyPurpose, 2> kHashKeyPurposes = {HashKeyPurpose::Lookup, HashKeyPurpose::AuditChain};
/// "lookup" | "audit-chain": the name in data_keys and in the wrap's AAD.
std::string_view hashKeyPurposeName(HashKeyPurpose purpose);

/// Where a running process gets the master key again when `fhir-gateway keys rotate-data` (another
/// process) has added a data key version: the same source it was started with (the key file or
/// environment variable of privacy.*), read when needed and forgotten after, like at start.
using MasterKeySource = std::function<Result<crypto::SecretKey>()>;

/// What the first step of a data key rotation found or made.
struct DataKeyVersionStep {
  std::uint32_t version = 0;         // the version payloads of the class are re-sealed under
  bool created = false;              // false: an interrupted rotation's version, resumed
  std::vector<std::uint32_t> older;  // versions still to be destroyed once nothing uses them
};

/// The unwrapped data keys of one database. The keyed-hash secrets are immutable once opened;
/// the data key versions only grow (another process may add one: adopt, below). Any number of
/// threads may seal and open at once.
class Keyring {
 public:
  /// Reads data_keys, checks they were wrapped by `master` (else a Config error naming both key
  /// ids), unwraps them, and makes and stores (wrapped) the key of any class that has none yet.
  /// `backend` must outlive the keyring (it is re-read when an envelope names a key version not
  /// yet loaded); `source` gives the master key again to unwrap such a version (none: refused).
  static Result<Keyring> open(StoreBackend& backend, const crypto::SecretKey& master, SystemTime now,
                              MasterKeySource source = {});

  /// Step one of `keys rotate-data`, in the caller's write transaction: a new random version of
  /// class `c`'s data key, wrapped by `master` (which must be the one that wrapped the others),
  /// unless the class already has more than one version (an interrupted rotation: its newest
  /// version is the one to finish).
  static Result<DataKeyVersionStep> addVersion(StoreWriter& tx, const crypto::SecretKey& master, privacy::DataClass c,
                                               std::int64_t now_ms);

  /// Loads the data key versions of `rows` (data_keys as a transaction read it) that are not
  /// loaded yet, with the master key from the source. Called at the start of every write
  /// transaction that seals, so that from the commit of a new version on nothing is sealed under
  /// an older one (which the rotation then destroys). Versions are never unloaded while running.
  Status adopt(const std::vector<DataKeyRow>& rows) const;
  /// The same with the master key given (the rotation's own process holds it).
  Status adopt(const std::vector<DataKeyRow>& rows, const crypto::SecretKey& master) const;

  /// Re-wraps every data key under `new_master` in one write transaction (a gateway writing at
  /// the same time just waits). The data keys, and so every stored payload, stay as they are.
  /// Fails, changing nothing, when `old_master` did not wrap them or both master keys are the
  /// same.
  static Result<KeyRotation> rotateMaster(StoreBackend& backend, const crypto::SecretKey& old_master,
                                          const crypto::SecretKey& new_master);

  /// Seals `plaintext` under the newest key of `c`, appending the envelope to `out`.
  Status sealAppend(privacy::DataClass c, std::string_view plaintext, std::string_view context, std::string& out) const;
  /// Seals under the key of storageClass(classes) (sud for an empty, unclassified set).
  Result<std::string> seal(privacy::ClassSet classes, std::string_view plaintext, std::string_view context) const;
  /// The plaintext of an envelope sealed with the same context. Errors (ErrorCode::Storage) name
  /// the class and say whether the key is missing or the envelope does not authenticate.
  Result<std::string> open(std::string_view envelope, std::string_view context) const;

  /// Newest key version of each class loaded (1 until data keys themselves are rotated).
  std::uint32_t currentVersion(privacy::DataClass c) const;

  /// The secret for keyed hashes of `purpose` (always present once opened).
  const crypto::SecretKey& hashKey(HashKeyPurpose purpose) const;

 private:
  struct Entry {
    privacy::DataClass data_class;
    std::uint32_t version;
    crypto::SecretKey key;
  };
  using Entries = std::vector<std::shared_ptr<const Entry>>;
  // The loaded versions: replaced whole (copy, add, swap) under the mutex, so a seal or open
  // works on a snapshot without holding it.
  struct Versions {
    std::mutex mutex;
    std::shared_ptr<const Entries> entries = std::make_shared<Entries>();
    StoreBackend* backend = nullptr;
    MasterKeySource source;
  };
  static Result<Keyring> openWith(StoreBackend& backend, const crypto::SecretKey& master, SystemTime now);
  static Result<KeyRotation> rotateWith(StoreBackend& backend, const crypto::SecretKey& old_master,
                                        const crypto::SecretKey& new_master);
  Status adoptWith(const std::vector<DataKeyRow>& rows, const crypto::SecretKey* given) const;
  // Called with the mutex held.
  Status adoptRows(const std::vector<const DataKeyRow*>& missing, const crypto::SecretKey& master) const;
  std::shared_ptr<const Entries> snapshot() const;
  static const Entry* find(const Entries& entries, privacy::DataClass c, std::uint32_t version);
  static const Entry* newest(const Entries& entries, privacy::DataClass c);
  std::shared_ptr<Versions> versions_ = std::make_shared<Versions>();
  std::array<crypto::SecretKey, kHashKeyPurposes.size()> hash_keys_;
};

}  // namespace gw::store

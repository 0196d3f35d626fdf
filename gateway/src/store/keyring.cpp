#include "store/keyring.hpp"

#include <algorithm>
#include <optional>

#include "common/log.hpp"

namespace gw::store {
namespace {

using privacy::DataClass;

constexpr std::array<DataClass, 3> kClasses = {DataClass::General, DataClass::Sud, DataClass::Mh};

// One row of data_keys: a data key (a privacy class) or a keyed-hash secret (a purpose).
struct KeyRow {
  std::string name;  // the data_class column: a class name or a purpose name
  std::optional<DataClass> data_class;
  std::optional<HashKeyPurpose> purpose;
  std::uint32_t version;
  std::string wrapped;
  std::string master_key_id;
};

std::optional<HashKeyPurpose> parsePurpose(std::string_view name) {
  for (HashKeyPurpose p : kHashKeyPurposes) {
    if (hashKeyPurposeName(p) == name) return p;
  }
  return std::nullopt;
}

Result<std::vector<KeyRow>> keyRows(Result<std::vector<DataKeyRow>> stored) {
  GW_TRY(auto rows, std::move(stored));
  std::vector<KeyRow> keys;
  for (auto& row : rows) {
    const auto c = privacy::parseClass(row.data_class);
    const auto purpose = parsePurpose(row.data_class);
    if ((!c && !purpose) || row.key_version <= 0) {
      return makeError(ErrorCode::Storage,
                       "the data_keys table holds an unknown key '" + row.data_class + "' version " +
                           std::to_string(row.key_version),
                       "data_keys", "restore the database from a backup made by fhir-gateway");
    }
    keys.push_back({row.data_class, c, purpose, static_cast<std::uint32_t>(row.key_version), std::move(row.wrapped),
                    std::move(row.master_key_id)});
  }
  return keys;
}

Error wrongMaster(const crypto::SecretKey& given, const std::string& expected) {
  return makeError(ErrorCode::Config,
                   "the master key does not match the one that wrapped the data keys (id " + given.id() + ", expected " +
                       expected + ")",
                   "privacy.master_key_file / privacy.master_key_env",
                   "start with the master key this database was created with (after `fhir-gateway keys rotate`, the "
                   "new one); without it the stored payloads cannot be read");
}

Result<crypto::SecretKey> unwrap(const crypto::SecretKey& master, const KeyRow& row) {
  auto raw = crypto::open(master, row.wrapped, dataKeyAad(row.name, row.version));
  if (!raw) {
    return makeError(ErrorCode::Storage,
                     "the " + row.name + " data key version " + std::to_string(row.version) +
                         " does not unwrap with the master key that wrapped it",
                     "data_keys", "the row was altered: restore the database from a backup");
  }
  auto key = crypto::SecretKey::fromBytes(raw.value());
  crypto::wipe(raw.value());
  return key;
}

void putU32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

}  // namespace

std::optional<EnvelopeView> parseEnvelope(std::string_view envelope) {
  if (envelope.size() < kEnvelopeOverhead || envelope.substr(0, 3) != kEnvelopeMagic) return std::nullopt;
  const auto class_byte = static_cast<std::uint8_t>(envelope[3]);
  std::optional<DataClass> c;
  for (DataClass k : kClasses) {
    if (static_cast<std::uint8_t>(k) == class_byte) c = k;
  }
  if (!c) return std::nullopt;
  std::uint32_t version = 0;
  for (std::size_t i = 4; i < 8; ++i) version = (version << 8) | static_cast<std::uint8_t>(envelope[i]);
  return EnvelopeView{*c, version, envelope.substr(0, kEnvelopeHeaderSize), envelope.substr(kEnvelopeHeaderSize)};
}

std::string payloadContext(std::initializer_list<std::string_view> parts) {
  std::string out;
  std::size_t size = 0;
  for (auto p : parts) size += 4 + p.size();
  out.reserve(size);
  for (auto p : parts) {
    putU32(out, static_cast<std::uint32_t>(p.size()));
    out.append(p);
  }
  return out;
}

std::string dataKeyAad(DataClass c, std::uint32_t version) { return dataKeyAad(privacy::className(c), version); }

std::string dataKeyAad(std::string_view key_name, std::uint32_t version) {
  return "gw-data-key|" + std::string(key_name) + "|" + std::to_string(version);
}

std::string_view hashKeyPurposeName(HashKeyPurpose purpose) {
  switch (purpose) {
    case HashKeyPurpose::Lookup: return "lookup";
    case HashKeyPurpose::AuditChain: return "audit-chain";
  }
  return "unknown";
}

Result<Keyring> Keyring::open(StoreBackend& backend, const crypto::SecretKey& master, SystemTime now_time,
                              MasterKeySource source) {
  auto ring = openWith(backend, master, now_time);
  crypto::forgetThreadKey();  // the master key's schedule must not stay in this thread's context
  if (ring) {
    ring.value().versions_->backend = &backend;
    ring.value().versions_->source = std::move(source);
  }
  return ring;
}

Result<Keyring> Keyring::openWith(StoreBackend& backend, const crypto::SecretKey& master, SystemTime now_time) {
  if (master.empty()) {
    return makeError(ErrorCode::Config, "no master key was given to open the encrypted store",
                     "privacy.master_key_file / privacy.master_key_env", "set one of the two in the config");
  }
  std::vector<KeyRow> rows;
  {
    GW_TRY(auto reader, backend.read());
    GW_TRY(rows, keyRows(reader->dataKeys()));
  }
  for (const auto& row : rows) {
    if (row.master_key_id != master.id()) return wrongMaster(master, row.master_key_id);
  }
  // First start, or a class or purpose added by a later version: make the missing keys.
  std::vector<std::string> missing;
  const auto absent = [&rows](std::string_view name) {
    return std::none_of(rows.begin(), rows.end(), [&](const KeyRow& r) { return r.name == name; });
  };
  for (DataClass c : kClasses) {
    if (absent(privacy::className(c))) missing.emplace_back(privacy::className(c));
  }
  for (HashKeyPurpose p : kHashKeyPurposes) {
    if (absent(hashKeyPurposeName(p))) missing.emplace_back(hashKeyPurposeName(p));
  }
  if (!missing.empty()) {
    // Insert-if-absent and read back, so two processes opening a new database at once end up
    // with the same keys.
    const std::int64_t now_ms = toUnixMillis(now_time);
    const std::string master_id = master.id();
    GW_TRY(auto tx, WriteTransaction::begin(backend));
    for (const std::string& name : missing) {
      GW_TRY(auto key, crypto::SecretKey::generate());
      GW_TRY(auto wrapped, crypto::seal(master, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()),
                                        dataKeyAad(name, 1)));
      GW_TRY(tx->insertDataKeyIfAbsent({name, 1, std::move(wrapped), master_id, now_ms}));
    }
    GW_TRY(rows, keyRows(tx->dataKeys()));
    GW_TRY(tx.commit());
    GW_LOG(Info, Store, "data_keys_created").kv("keys", static_cast<int>(missing.size())).kv("master_key_id", master_id);
    for (const auto& row : rows) {
      if (row.master_key_id != master.id()) return wrongMaster(master, row.master_key_id);
    }
  }
  Keyring ring;
  Entries entries;
  for (const auto& row : rows) {
    GW_TRY(auto key, unwrap(master, row));
    if (row.data_class) {
      entries.push_back(std::make_shared<const Entry>(Entry{*row.data_class, row.version, std::move(key)}));
    } else if (row.version == 1) {  // keyed-hash secrets are not versioned: a new one would orphan every lookup key
      ring.hash_keys_[static_cast<std::size_t>(*row.purpose)] = std::move(key);
    }
  }
  ring.versions_->entries = std::make_shared<const Entries>(std::move(entries));
  for (HashKeyPurpose p : kHashKeyPurposes) {
    if (ring.hashKey(p).empty()) {
      return makeError(ErrorCode::Storage,
                       "the data_keys table has no version 1 of the " + std::string(hashKeyPurposeName(p)) + " key",
                       "data_keys", "restore the database from a backup made by fhir-gateway");
    }
  }
  return ring;
}

Result<KeyRotation> Keyring::rotateMaster(StoreBackend& backend, const crypto::SecretKey& old_master,
                                          const crypto::SecretKey& new_master) {
  auto rotation = rotateWith(backend, old_master, new_master);
  crypto::forgetThreadKey();
  return rotation;
}

Result<KeyRotation> Keyring::rotateWith(StoreBackend& backend, const crypto::SecretKey& old_master,
                                        const crypto::SecretKey& new_master) {
  if (old_master.empty() || new_master.empty()) {
    return makeError(ErrorCode::Config, "key rotation needs the current and the new master key");
  }
  if (old_master.id() == new_master.id()) {
    return makeError(ErrorCode::Config, "the new master key is the same as the current one (id " + old_master.id() + ")",
                     "--new-master-key-file", "make a new key: openssl rand -hex 32 > FILE; chmod 600 FILE");
  }
  KeyRotation rotation;
  rotation.old_master_id = old_master.id();
  rotation.new_master_id = new_master.id();
  // The write transaction excludes other writers from its start, so nobody changes a key between
  // our read and our update (a running gateway's writes just wait). Any error below returns
  // before commit: nothing changes.
  GW_TRY(auto tx, WriteTransaction::begin(backend));
  GW_TRY(auto rows, keyRows(tx->dataKeys()));
  if (rows.empty()) {
    return makeError(ErrorCode::Config, "the database holds no data keys yet: nothing to rotate", "data_keys",
                     "start the gateway once (it makes them), or just configure the new key for a new database");
  }
  const std::string new_id = new_master.id();
  for (const auto& row : rows) {
    if (row.master_key_id != old_master.id()) return wrongMaster(old_master, row.master_key_id);
    GW_TRY(auto key, unwrap(old_master, row));
    GW_TRY(auto wrapped, crypto::seal(new_master, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()),
                                      dataKeyAad(row.name, row.version)));
    GW_TRY(tx->updateDataKey({row.name, static_cast<int>(row.version), std::move(wrapped), new_id, 0}));
    ++rotation.data_keys;
    rotation.keys.push_back(row.name + " v" + std::to_string(row.version));
  }
  // Check before committing that every key now unwraps with the new master key.
  GW_TRY(auto again, keyRows(tx->dataKeys()));
  for (const auto& row : again) {
    if (row.master_key_id != new_id || !unwrap(new_master, row)) {
      return makeError(ErrorCode::Internal, "a re-wrapped data key did not unwrap with the new master key", "data_keys",
                       "nothing was changed; report this as a bug");
    }
  }
  GW_TRY(tx.commit());
  GW_LOG(Info, Store, "master_key_rotated")
      .kv("data_keys", rotation.data_keys)
      .kv("old_master_key_id", rotation.old_master_id)
      .kv("new_master_key_id", rotation.new_master_id);
  return rotation;
}

Result<DataKeyVersionStep> Keyring::addVersion(StoreWriter& tx, const crypto::SecretKey& master, DataClass c,
                                               std::int64_t now_ms) {
  GW_TRY(auto rows, keyRows(tx.dataKeys()));
  DataKeyVersionStep step;
  for (const auto& row : rows) {
    if (row.master_key_id != master.id()) return wrongMaster(master, row.master_key_id);
    if (row.data_class == c) {
      step.older.push_back(row.version);
      step.version = std::max(step.version, row.version);
    }
  }
  if (step.version == 0) {
    return makeError(ErrorCode::Config, "the database holds no " + std::string(privacy::className(c)) + " data key yet",
                     "data_keys", "start the gateway once (it makes the keys); there is nothing to rotate before");
  }
  if (step.older.size() > 1) {
    // An interrupted rotation: finish re-sealing under its version rather than adding another.
    std::erase(step.older, step.version);
    return step;
  }
  step.version += 1;
  step.created = true;
  GW_TRY(auto key, crypto::SecretKey::generate());
  auto wrapped = crypto::seal(master, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()),
                              dataKeyAad(c, step.version));
  crypto::forgetThreadKey();
  if (!wrapped) return wrapped.error();
  GW_TRY(tx.insertDataKeyIfAbsent({std::string(privacy::className(c)), static_cast<int>(step.version),
                                   std::move(wrapped).value(), master.id(), now_ms}));
  return step;
}

Status Keyring::adopt(const std::vector<DataKeyRow>& rows) const {
  auto adopted = adoptWith(rows, nullptr);
  crypto::forgetThreadKey();
  return adopted;
}

Status Keyring::adopt(const std::vector<DataKeyRow>& rows, const crypto::SecretKey& master) const {
  auto adopted = adoptWith(rows, &master);
  crypto::forgetThreadKey();
  return adopted;
}

Status Keyring::adoptWith(const std::vector<DataKeyRow>& stored, const crypto::SecretKey* given) const {
  std::lock_guard lock(versions_->mutex);
  const Entries& loaded = *versions_->entries;
  std::vector<const DataKeyRow*> missing;
  for (const auto& row : stored) {
    const auto c = privacy::parseClass(row.data_class);
    if (c && row.key_version > 0 && find(loaded, *c, static_cast<std::uint32_t>(row.key_version)) == nullptr) {
      missing.push_back(&row);
    }
  }
  if (missing.empty()) return ok();
  const auto& first = *missing.front();
  if (given != nullptr) {
    return adoptRows(missing, *given);
  }
  if (!versions_->source) {
    return makeError(ErrorCode::Storage,
                     "data key " + first.data_class + " version " + std::to_string(first.key_version) +
                         " was added by another process and this one has no master key to unwrap it",
                     "data_keys", "restart this process so that it opens the new key version");
  }
  auto master = versions_->source();
  if (!master) {
    Error e = master.error();
    e.message = "cannot load data key " + first.data_class + " version " + std::to_string(first.key_version) +
                " (made by `fhir-gateway keys rotate-data`): " + e.message;
    return e;
  }
  return adoptRows(missing, master.value());
}

Status Keyring::adoptRows(const std::vector<const DataKeyRow*>& missing, const crypto::SecretKey& master) const {
  auto entries = std::make_shared<Entries>(*versions_->entries);
  for (const DataKeyRow* row : missing) {
    KeyRow key_row{row->data_class, privacy::parseClass(row->data_class),
                   std::nullopt,    static_cast<std::uint32_t>(row->key_version),
                   row->wrapped,    row->master_key_id};
    if (key_row.master_key_id != master.id()) {
      Error e = wrongMaster(master, key_row.master_key_id);
      e.message = "cannot load data key " + key_row.name + " version " + std::to_string(key_row.version) + ": " + e.message;
      return e;
    }
    GW_TRY(auto key, unwrap(master, key_row));
    entries->push_back(std::make_shared<const Entry>(Entry{*key_row.data_class, key_row.version, std::move(key)}));
    GW_LOG(Info, Store, "data_key_version_loaded")
        .kv("data_class", key_row.name)
        .kv("key_version", static_cast<std::int64_t>(key_row.version));
  }
  versions_->entries = std::move(entries);
  return ok();
}

std::shared_ptr<const Keyring::Entries> Keyring::snapshot() const {
  std::lock_guard lock(versions_->mutex);
  return versions_->entries;
}

const Keyring::Entry* Keyring::find(const Entries& entries, DataClass c, std::uint32_t version) {
  for (const auto& e : entries) {
    if (e->data_class == c && e->version == version) return e.get();
  }
  return nullptr;
}

const Keyring::Entry* Keyring::newest(const Entries& entries, DataClass c) {
  const Entry* best = nullptr;
  for (const auto& e : entries) {
    if (e->data_class == c && (best == nullptr || e->version > best->version)) best = e.get();
  }
  return best;
}

const crypto::SecretKey& Keyring::hashKey(HashKeyPurpose purpose) const {
  return hash_keys_[static_cast<std::size_t>(purpose)];
}

std::uint32_t Keyring::currentVersion(DataClass c) const {
  const auto entries = snapshot();
  const Entry* e = newest(*entries, c);
  return e == nullptr ? 0 : e->version;
}

Status Keyring::sealAppend(DataClass c, std::string_view plaintext, std::string_view context, std::string& out) const {
  const auto entries = snapshot();
  const Entry* e = newest(*entries, c);
  if (e == nullptr) {
    return makeError(ErrorCode::Internal, "no " + std::string(privacy::className(c)) + " data key is loaded", "data_keys",
                     "this is a bug: the store opens every class's key at start");
  }
  const std::size_t start = out.size();
  out.append(kEnvelopeMagic);
  out.push_back(static_cast<char>(static_cast<std::uint8_t>(c)));
  putU32(out, e->version);
  // The AAD is the header and the row's context; small, so one short-lived string.
  std::string aad;
  aad.reserve(kEnvelopeHeaderSize + context.size());
  aad.append(out, start, kEnvelopeHeaderSize);
  aad.append(context);
  if (auto sealed = crypto::sealAppend(e->key, plaintext, aad, out); !sealed) {
    out.resize(start);
    return sealed.error();
  }
  return ok();
}

Result<std::string> Keyring::seal(privacy::ClassSet classes, std::string_view plaintext, std::string_view context) const {
  std::string out;
  out.reserve(kEnvelopeOverhead + plaintext.size());
  GW_TRY(sealAppend(privacy::storageClass(classes), plaintext, context, out));
  return out;
}

Result<std::string> Keyring::open(std::string_view envelope, std::string_view context) const {
  const auto view = parseEnvelope(envelope);
  if (!view) {
    return makeError(ErrorCode::Storage, "a stored payload is not an encrypted envelope (GW1)", {},
                     "it was written before encryption at rest, or is damaged: restore from a backup or re-send the "
                     "record");
  }
  const std::string name(privacy::className(view->data_class));
  auto entries = snapshot();
  const Entry* e = find(*entries, view->data_class, view->key_version);
  if (e == nullptr && view->key_version > currentVersion(view->data_class) && versions_->backend != nullptr) {
    // A version newer than any loaded: `keys rotate-data` (another process) re-sealed this row
    // under the key it added. Read data_keys again and load it.
    GW_TRY(auto reader, versions_->backend->read());
    GW_TRY(auto rows, reader->dataKeys());
    GW_TRY(adopt(rows));
    entries = snapshot();
    e = find(*entries, view->data_class, view->key_version);
  }
  if (e == nullptr) {
    return makeError(ErrorCode::Storage,
                     "no " + name + " data key version " + std::to_string(view->key_version) + " in this database", {},
                     "the payload was written with a key this database does not hold: restore data_keys from a backup");
  }
  std::string aad;
  aad.reserve(kEnvelopeHeaderSize + context.size());
  aad.append(view->header);
  aad.append(context);
  auto plain = crypto::open(e->key, view->sealed, aad);
  if (!plain) {
    return makeError(ErrorCode::Storage,
                     "a " + name + " payload does not authenticate with the " + name +
                         " data key: it was altered, or copied from another row",
                     {}, "restore the database from a backup");
  }
  return std::move(plain).value();
}

}  // namespace gw::store

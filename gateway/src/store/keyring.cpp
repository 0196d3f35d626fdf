#include "store/keyring.hpp"

#include <Poco/Data/LOB.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>

#include <algorithm>

#include "common/log.hpp"

namespace gw::store {
namespace {

using namespace Poco::Data::Keywords;
using privacy::DataClass;

constexpr std::array<DataClass, 3> kClasses = {DataClass::General, DataClass::Sud, DataClass::Mh};

std::string toString(const Poco::Data::BLOB& blob) {
  if (blob.size() == 0) return {};
  return std::string(reinterpret_cast<const char*>(blob.rawContent()), blob.size());
}

Poco::Data::BLOB toBlob(std::string_view bytes) {
  return Poco::Data::BLOB(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

Error storageError(std::string what, const Poco::Exception& e) {
  return makeError(ErrorCode::Storage, what + ": " + e.displayText(), "sqlite",
                   "check the disk and the database file, then try again");
}

struct KeyRow {
  DataClass data_class;
  std::uint32_t version;
  std::string wrapped;
  std::string master_key_id;
};

Result<std::vector<KeyRow>> readKeyRows(Poco::Data::Session& s) {
  std::vector<std::string> classes, master_ids;
  std::vector<int> versions;
  std::vector<Poco::Data::BLOB> wrapped;
  s << "SELECT data_class, key_version, wrapped, master_key_id FROM data_keys ORDER BY data_class, key_version",
      into(classes), into(versions), into(wrapped), into(master_ids), now;
  std::vector<KeyRow> rows;
  for (std::size_t i = 0; i < classes.size(); ++i) {
    const auto c = privacy::parseClass(classes[i]);
    if (!c || versions[i] <= 0) {
      return makeError(ErrorCode::Storage, "the data_keys table holds an unknown key '" + classes[i] + "' version " +
                                               std::to_string(versions[i]),
                       "data_keys", "restore the database from a backup made by fhir-gateway");
    }
    rows.push_back({*c, static_cast<std::uint32_t>(versions[i]), toString(wrapped[i]), master_ids[i]});
  }
  return rows;
}

Error wrongMaster(const crypto::SecretKey& given, const std::string& expected) {
  return makeError(ErrorCode::Config,
                   "the master key does not match the one that wrapped the data keys (id " + given.id() +
                       ", expected " + expected + ")",
                   "privacy.master_key_file / privacy.master_key_env",
                   "start with the master key this database was created with (after `fhir-gateway keys rotate`, the "
                   "new one); without it the stored payloads cannot be read");
}

Result<crypto::SecretKey> unwrap(const crypto::SecretKey& master, const KeyRow& row) {
  auto raw = crypto::open(master, row.wrapped, dataKeyAad(row.data_class, row.version));
  if (!raw) {
    return makeError(ErrorCode::Storage,
                     "the " + std::string(privacy::className(row.data_class)) + " data key version " +
                         std::to_string(row.version) + " does not unwrap with the master key that wrapped it",
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

std::string dataKeyAad(DataClass c, std::uint32_t version) {
  return "gw-data-key|" + std::string(privacy::className(c)) + "|" + std::to_string(version);
}

Result<Keyring> Keyring::open(Poco::Data::Session& s, const crypto::SecretKey& master, SystemTime now_time) {
  auto ring = openWith(s, master, now_time);
  crypto::forgetThreadKey();  // the master key's schedule must not stay in this thread's context
  return ring;
}

Result<Keyring> Keyring::openWith(Poco::Data::Session& s, const crypto::SecretKey& master, SystemTime now_time) {
  if (master.empty()) {
    return makeError(ErrorCode::Config, "no master key was given to open the encrypted store",
                     "privacy.master_key_file / privacy.master_key_env", "set one of the two in the config");
  }
  try {
    GW_TRY(auto rows, readKeyRows(s));
    for (const auto& row : rows) {
      if (row.master_key_id != master.id()) return wrongMaster(master, row.master_key_id);
    }
    std::vector<DataClass> missing;
    for (DataClass c : kClasses) {
      if (std::none_of(rows.begin(), rows.end(), [&](const KeyRow& r) { return r.data_class == c; })) missing.push_back(c);
    }
    if (!missing.empty()) {
      // First start (or a class added later): make the key. INSERT OR IGNORE and read back, so
      // two processes opening a new database at once end up with the same keys.
      Poco::Int64 now_ms = toUnixMillis(now_time);
      std::string master_id = master.id();
      std::vector<std::pair<std::string, Poco::Data::BLOB>> made;
      for (DataClass c : missing) {
        GW_TRY(auto key, crypto::SecretKey::generate());
        GW_TRY(auto wrapped, crypto::seal(master, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()),
                                          dataKeyAad(c, 1)));
        made.emplace_back(std::string(privacy::className(c)), toBlob(wrapped));
      }
      s.begin();
      for (auto& [name, blob] : made) {
        s << "INSERT OR IGNORE INTO data_keys(data_class, key_version, wrapped, master_key_id, created_at) "
             "VALUES(?, 1, ?, ?, ?)",
            use(name), use(blob), use(master_id), use(now_ms), now;
      }
      s.commit();
      GW_LOG(Info, Store, "data_keys_created").kv("classes", static_cast<int>(missing.size())).kv("master_key_id", master_id);
      GW_TRY(rows, readKeyRows(s));
      for (const auto& row : rows) {
        if (row.master_key_id != master.id()) return wrongMaster(master, row.master_key_id);
      }
    }
    Keyring ring;
    for (const auto& row : rows) {
      GW_TRY(auto key, unwrap(master, row));
      ring.keys_.push_back({row.data_class, row.version, std::move(key)});
    }
    return ring;
  } catch (const Poco::Exception& e) {
    try {
      if (s.isTransaction()) s.rollback();
    } catch (const Poco::Exception&) {
      // Reported below; the connection is discarded by the caller.
    }
    return storageError("reading the data keys", e);
  }
}

Result<KeyRotation> Keyring::rotateMaster(Poco::Data::Session& s, const crypto::SecretKey& old_master,
                                          const crypto::SecretKey& new_master) {
  auto rotation = rotateWith(s, old_master, new_master);
  crypto::forgetThreadKey();
  return rotation;
}

Result<KeyRotation> Keyring::rotateWith(Poco::Data::Session& s, const crypto::SecretKey& old_master,
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
  const auto rollback = [&] {
    try {
      if (s.isTransaction()) s << "ROLLBACK", now;
    } catch (const Poco::Exception&) {
      // Nothing was committed; the caller closes the connection.
    }
  };
  try {
    // IMMEDIATE: take the write lock before reading, so nobody changes a key between our read
    // and our update (a running gateway's writes just wait for the busy timeout).
    s << "BEGIN IMMEDIATE", now;
    auto rows = readKeyRows(s);
    if (!rows) {
      rollback();
      return rows.error();
    }
    if (rows.value().empty()) {
      rollback();
      return makeError(ErrorCode::Config, "the database holds no data keys yet: nothing to rotate", "data_keys",
                       "start the gateway once (it makes them), or just configure the new key for a new database");
    }
    std::string new_id = new_master.id();
    for (const auto& row : rows.value()) {
      if (row.master_key_id != old_master.id()) {
        rollback();
        return wrongMaster(old_master, row.master_key_id);
      }
      auto key = unwrap(old_master, row);
      if (!key) {
        rollback();
        return key.error();
      }
      auto wrapped = crypto::seal(new_master,
                                  std::string_view(reinterpret_cast<const char*>(key.value().data()), key.value().size()),
                                  dataKeyAad(row.data_class, row.version));
      if (!wrapped) {
        rollback();
        return wrapped.error();
      }
      Poco::Data::BLOB blob = toBlob(wrapped.value());
      std::string name(privacy::className(row.data_class));
      int version = static_cast<int>(row.version);
      s << "UPDATE data_keys SET wrapped=?, master_key_id=? WHERE data_class=? AND key_version=?", use(blob),
          use(new_id), use(name), use(version), now;
      ++rotation.data_keys;
      rotation.keys.push_back(name + " v" + std::to_string(row.version));
    }
    // Check before committing that every key now unwraps with the new master key.
    auto again = readKeyRows(s);
    if (!again) {
      rollback();
      return again.error();
    }
    for (const auto& row : again.value()) {
      if (row.master_key_id != new_id || !unwrap(new_master, row)) {
        rollback();
        return makeError(ErrorCode::Internal, "a re-wrapped data key did not unwrap with the new master key",
                         "data_keys", "nothing was changed; report this as a bug");
      }
    }
    s << "COMMIT", now;
    GW_LOG(Info, Store, "master_key_rotated")
        .kv("data_keys", rotation.data_keys)
        .kv("old_master_key_id", rotation.old_master_id)
        .kv("new_master_key_id", rotation.new_master_id);
    return rotation;
  } catch (const Poco::Exception& e) {
    rollback();
    return storageError("re-wrapping the data keys", e);
  }
}

const Keyring::Entry* Keyring::find(DataClass c, std::uint32_t version) const {
  for (const auto& e : keys_) {
    if (e.data_class == c && e.version == version) return &e;
  }
  return nullptr;
}

const Keyring::Entry* Keyring::newest(DataClass c) const {
  const Entry* best = nullptr;
  for (const auto& e : keys_) {
    if (e.data_class == c && (best == nullptr || e.version > best->version)) best = &e;
  }
  return best;
}

std::uint32_t Keyring::currentVersion(DataClass c) const {
  const Entry* e = newest(c);
  return e == nullptr ? 0 : e->version;
}

Status Keyring::sealAppend(DataClass c, std::string_view plaintext, std::string_view context, std::string& out) const {
  const Entry* e = newest(c);
  if (e == nullptr) {
    return makeError(ErrorCode::Internal, "no " + std::string(privacy::className(c)) + " data key is loaded",
                     "data_keys", "this is a bug: the store opens every class's key at start");
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
  const Entry* e = find(view->data_class, view->key_version);
  if (e == nullptr) {
    return makeError(ErrorCode::Storage,
                     "no " + name + " data key version " + std::to_string(view->key_version) + " in this database",
                     {}, "the payload was written with a key this database does not hold: restore data_keys from a backup");
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

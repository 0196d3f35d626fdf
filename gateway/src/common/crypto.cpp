#include "common/crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <ostream>
#include <stdexcept>

#include "common/ids.hpp"

namespace gw::crypto {
namespace {

// Fetched once: the implicit fetch behind EVP_aes_256_gcm() costs a lookup on every init.
const EVP_CIPHER* aesGcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

// One cipher context per thread, re-initialised per message: allocating one per call was a
// third of the cost of sealing a small payload. It holds the expanded key of the last message.
struct ContextHolder {
  EVP_CIPHER_CTX* ctx = nullptr;
  ~ContextHolder() { EVP_CIPHER_CTX_free(ctx); }  // also cleanses the expanded key
};
thread_local ContextHolder thread_context;

EVP_CIPHER_CTX* threadContext() {
  if (thread_context.ctx == nullptr) thread_context.ctx = EVP_CIPHER_CTX_new();
  return thread_context.ctx;
}

// Nonces come from the DRBG in blocks: one RAND_bytes call costs about 2 us whatever its size,
// which was two thirds of sealing a 2 KB payload. A forked child must never reuse its parent's
// block (the same nonce under the same key breaks GCM), so fork() marks every block stale.
std::atomic<std::uint64_t> fork_generation{0};

bool nextNonce(std::uint8_t* nonce) {
  static std::once_flag registered;
  std::call_once(registered, [] { pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); }); });
  struct Pool {
    std::array<std::uint8_t, kNonceSize * 256> bytes{};
    std::size_t used = kNonceSize * 256;  // empty: filled on first use
    std::uint64_t generation = 0;
  };
  thread_local Pool pool;
  const std::uint64_t generation = fork_generation.load(std::memory_order_relaxed);
  if (pool.used == pool.bytes.size() || pool.generation != generation) {
    if (RAND_bytes(pool.bytes.data(), static_cast<int>(pool.bytes.size())) != 1) return false;
    pool.used = 0;
    pool.generation = generation;
  }
  std::copy_n(pool.bytes.data() + pool.used, kNonceSize, nonce);
  pool.used += kNonceSize;
  return true;
}

const std::uint8_t* bytes(std::string_view s) { return reinterpret_cast<const std::uint8_t*>(s.data()); }

Error cryptoError(std::string message) {
  return makeError(ErrorCode::Internal, std::move(message), "openssl",
                   "this is a bug or a broken OpenSSL installation; the operation can be retried");
}

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

SecretKey::~SecretKey() { wipe(bytes_.data(), bytes_.size()); }

SecretKey::SecretKey(const SecretKey& other) = default;

SecretKey& SecretKey::operator=(const SecretKey& other) = default;

SecretKey::SecretKey(SecretKey&& other) noexcept : bytes_(other.bytes_), set_(other.set_) {
  wipe(other.bytes_.data(), other.bytes_.size());
  other.set_ = false;
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    set_ = other.set_;
    wipe(other.bytes_.data(), other.bytes_.size());
    other.set_ = false;
  }
  return *this;
}

Result<SecretKey> SecretKey::fromBytes(std::string_view raw) {
  if (raw.size() != kKeySize) {
    return makeError(ErrorCode::InvalidInput,
                     "a key must be " + std::to_string(kKeySize) + " bytes, got " + std::to_string(raw.size()));
  }
  SecretKey key;
  std::copy(raw.begin(), raw.end(), key.bytes_.begin());
  key.set_ = true;
  return key;
}

Result<SecretKey> SecretKey::generate() {
  SecretKey key;
  if (RAND_bytes(key.bytes_.data(), static_cast<int>(key.bytes_.size())) != 1) {
    return cryptoError("the random generator failed to make a key");
  }
  key.set_ = true;
  return key;
}

std::string SecretKey::id() const {
  if (!set_) return "(none)";
  return ids::sha256Hex(std::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size())).substr(0, 16);
}

std::ostream& operator<<(std::ostream& out, const SecretKey&) { return out << "SecretKey(<redacted>)"; }

void forgetThreadKey() {
  EVP_CIPHER_CTX_free(thread_context.ctx);
  thread_context.ctx = nullptr;
}

void wipe(void* data, std::size_t size) {
  if (size > 0) OPENSSL_cleanse(data, size);
}

void wipe(std::string& text) {
  wipe(text.data(), text.size());
  text.clear();
}

Status sealAppend(const SecretKey& key, std::string_view plaintext, std::string_view aad, std::string& out) {
  if (key.empty()) return cryptoError("sealing with an empty key");
  if (plaintext.size() > static_cast<std::size_t>(INT_MAX) - kSealOverhead || aad.size() > INT_MAX) {
    return makeError(ErrorCode::PayloadTooLarge, "a payload to encrypt is larger than 2 GiB");
  }
  const std::size_t start = out.size();
  out.resize(start + kSealOverhead + plaintext.size());
  auto* nonce = reinterpret_cast<std::uint8_t*>(out.data() + start);
  auto* cipher_text = nonce + kNonceSize;
  auto* tag = cipher_text + plaintext.size();
  EVP_CIPHER_CTX* ctx = threadContext();
  int len = 0;
  const bool sealed = ctx != nullptr && aesGcm() != nullptr && nextNonce(nonce) &&
                      EVP_EncryptInit_ex2(ctx, aesGcm(), key.data(), nonce, nullptr) == 1 &&
                      (aad.empty() ||
                       EVP_EncryptUpdate(ctx, nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1) &&
                      (plaintext.empty() || EVP_EncryptUpdate(ctx, cipher_text, &len, bytes(plaintext),
                                                              static_cast<int>(plaintext.size())) == 1) &&
                      EVP_EncryptFinal_ex(ctx, tag, &len) == 1 &&
                      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize), tag) == 1;
  if (!sealed) {
    out.resize(start);
    return cryptoError("AES-256-GCM encryption failed");
  }
  return ok();
}

Result<std::string> seal(const SecretKey& key, std::string_view plaintext, std::string_view aad) {
  std::string out;
  GW_TRY(sealAppend(key, plaintext, aad, out));
  return out;
}

Status openAppend(const SecretKey& key, std::string_view sealed, std::string_view aad, std::string& out) {
  if (key.empty()) return cryptoError("opening with an empty key");
  if (sealed.size() < kSealOverhead) {
    return makeError(ErrorCode::InvalidInput,
                     "the encrypted message is " + std::to_string(sealed.size()) + " bytes, shorter than nonce and tag");
  }
  if (sealed.size() > INT_MAX || aad.size() > INT_MAX) {
    return makeError(ErrorCode::PayloadTooLarge, "an encrypted payload is larger than 2 GiB");
  }
  const std::size_t text_size = sealed.size() - kSealOverhead;
  const std::uint8_t* nonce = bytes(sealed);
  const std::uint8_t* cipher_text = nonce + kNonceSize;
  // GCM wants the expected tag in a writable buffer.
  std::array<std::uint8_t, kTagSize> tag{};
  std::copy(cipher_text + text_size, cipher_text + text_size + kTagSize, tag.begin());
  const std::size_t start = out.size();
  out.resize(start + text_size);
  auto* plain = reinterpret_cast<std::uint8_t*>(out.data() + start);
  EVP_CIPHER_CTX* ctx = threadContext();
  int len = 0;
  const bool ready = ctx != nullptr && aesGcm() != nullptr &&
                     EVP_DecryptInit_ex2(ctx, aesGcm(), key.data(), nonce, nullptr) == 1 &&
                     (aad.empty() || EVP_DecryptUpdate(ctx, nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1) &&
                     (text_size == 0 ||
                      EVP_DecryptUpdate(ctx, plain, &len, cipher_text, static_cast<int>(text_size)) == 1) &&
                     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), tag.data()) == 1;
  if (!ready) {
    wipe(plain, text_size);
    out.resize(start);
    return cryptoError("AES-256-GCM decryption failed to start");
  }
  if (EVP_DecryptFinal_ex(ctx, plain + text_size, &len) != 1) {
    // Not authentic: drop what was decrypted so no caller can use it by mistake.
    wipe(plain, text_size);
    out.resize(start);
    return makeError(ErrorCode::InvalidInput,
                     "the encrypted message does not authenticate: wrong key, wrong associated data, or altered bytes");
  }
  return ok();
}

Result<std::string> open(const SecretKey& key, std::string_view sealed, std::string_view aad) {
  std::string out;
  GW_TRY(openAppend(key, sealed, aad, out));
  return out;
}

Result<SecretKey> parseKeyText(std::string_view text, std::string_view where) {
  const std::string_view t = trim(text);
  std::string raw;
  const auto fail = [&]() -> Result<SecretKey> {
    wipe(raw);
    return makeError(ErrorCode::Config,
                     "not a 256-bit key: expected 64 hex digits or base64 of 32 bytes (" + std::to_string(t.size()) +
                         " characters found)",
                     std::string(where), "make one with: openssl rand -hex 32");
  };
  if (t.size() == 2 * kKeySize) {
    raw.resize(kKeySize);
    for (std::size_t i = 0; i < kKeySize; ++i) {
      const int hi = hexValue(t[2 * i]), lo = hexValue(t[2 * i + 1]);
      if (hi < 0 || lo < 0) return fail();
      raw[i] = static_cast<char>(hi * 16 + lo);
    }
  } else if (t.size() == 44 && t[43] == '=' && t[42] != '=') {
    // base64 of 32 bytes is 44 characters ending in exactly one '='.
    raw.resize(33);
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()), bytes(t), static_cast<int>(t.size()));
    if (n != 33) return fail();
    raw.resize(kKeySize);
  } else {
    return fail();
  }
  auto key = SecretKey::fromBytes(raw);
  wipe(raw);
  if (!key) return fail();
  return key;
}

std::string base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(data), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(text), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes: drop one per '='.
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '=' && size > 0; --i) --size;
  out.resize(size);
  return out;
}

Status checkPrivateFile(const std::filesystem::path& file, std::string_view what, std::string_view setting) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return makeError(ErrorCode::Config, "cannot read " + std::string(what) + " (" + std::strerror(errno) + ")",
                     file.string(),
                     "check the path (" + std::string(setting) + ") and that the gateway's user owns the file");
  }
  if (!S_ISREG(st.st_mode)) {
    return makeError(ErrorCode::Config, std::string(what) + " is not a regular file", file.string(),
                     "point " + std::string(setting) + " at a file holding the key");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return makeError(ErrorCode::Config,
                     std::string(what) + " may be read or changed by other users (mode " + mode + "): refusing to use it",
                     file.string(), "chmod 600 '" + file.string() + "' (owned by the gateway's user)");
  }
  return ok();
}

Result<SecretKey> loadKeyFile(const std::filesystem::path& file) {
  GW_TRY(checkPrivateFile(file, "the key file", "privacy.master_key_file"));
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return makeError(ErrorCode::Config, "cannot open the key file", file.string(),
                     "check that the gateway's user owns the file");
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto key = parseKeyText(text, file.string());
  wipe(text);
  return key;
}

Result<SecretKey> loadKeyFromEnv(std::string_view variable) {
  const std::string name(variable);
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0') {
    return makeError(ErrorCode::Config, "the environment variable " + name + " is not set or empty",
                     "privacy.master_key_env", "set it to the master key (64 hex digits), e.g. from a secret store");
  }
  return parseKeyText(value, "environment variable " + name);
}

std::array<std::uint8_t, 32> hmacSha256(const SecretKey& key, std::string_view message) {
  std::array<std::uint8_t, 32> mac{};
  unsigned len = 0;
  // One-shot HMAC(): no context to keep, so no key schedule lingers after the call.
  if (key.empty() ||
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), mac.data(), &len) == nullptr) {
    throw std::runtime_error("OpenSSL HMAC-SHA256 failed (or an empty key was given)");
  }
  return mac;
}

namespace {
std::string lowerHex(const std::array<std::uint8_t, 32>& mac, std::size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  bytes = std::min(bytes, mac.size());
  std::string out(bytes * 2, '0');
  for (std::size_t i = 0; i < bytes; ++i) {
    out[2 * i] = kHex[mac[i] >> 4];
    out[2 * i + 1] = kHex[mac[i] & 0x0f];
  }
  return out;
}
}  // namespace

std::string hmacSha256Hex(const SecretKey& key, std::string_view message, std::size_t bytes) {
  return lowerHex(hmacSha256(key, message), bytes);
}

KeyedHmacSha256::KeyedHmacSha256(const SecretKey& key) {
  static EVP_MAC* const hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  keyed_ = hmac == nullptr || key.empty() ? nullptr : EVP_MAC_CTX_new(hmac);
  if (keyed_ == nullptr || EVP_MAC_init(keyed_, key.data(), key.size(), params) != 1) {
    EVP_MAC_CTX_free(keyed_);
    throw std::runtime_error("OpenSSL HMAC-SHA256 is not available (or an empty key was given)");
  }
}

KeyedHmacSha256::~KeyedHmacSha256() { EVP_MAC_CTX_free(keyed_); }

std::array<std::uint8_t, 32> KeyedHmacSha256::mac(std::string_view message) const {
  std::array<std::uint8_t, 32> out{};
  std::size_t len = 0;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(keyed_);
  const bool done = ctx != nullptr &&
                    EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1 &&
                    EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1 && len == out.size();
  EVP_MAC_CTX_free(ctx);
  if (!done) throw std::runtime_error("OpenSSL HMAC-SHA256 failed");  // allocation failure: not an input error
  return out;
}

std::string KeyedHmacSha256::macHex(std::string_view message, std::size_t bytes) const {
  return lowerHex(mac(message), bytes);
}

}  // namespace gw::crypto

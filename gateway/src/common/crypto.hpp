#pragma once
// Authenticated encryption for data at rest (AES-256-GCM, OpenSSL EVP) and key material that
// wipes itself. A sealed message is nonce (12 bytes, random per message) | ciphertext | tag
// (16 bytes); the caller's associated data (AAD) is authenticated but not stored, so a message
// opens only with the same key and the same AAD, and any flipped bit makes open() fail.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

struct evp_mac_ctx_st;  // OpenSSL's EVP_MAC_CTX, kept out of this header

namespace gw::crypto {

inline constexpr std::size_t kKeySize = 32;    // AES-256
inline constexpr std::size_t kNonceSize = 12;  // 96-bit GCM nonce
inline constexpr std::size_t kTagSize = 16;    // 128-bit GCM tag
inline constexpr std::size_t kSealOverhead = kNonceSize + kTagSize;

/// 32 bytes of key material. Wiped with OPENSSL_cleanse when destroyed or overwritten; streams
/// as "SecretKey(<redacted>)", so a log line or a test failure message never shows the bytes.
class SecretKey {
 public:
  SecretKey() = default;  // holds no key (empty())
  ~SecretKey();
  SecretKey(const SecretKey& other);
  SecretKey& operator=(const SecretKey& other);
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;

  /// Exactly kKeySize raw bytes.
  static Result<SecretKey> fromBytes(std::string_view raw);
  /// Fresh random key from the OpenSSL DRBG (RAND_bytes).
  static Result<SecretKey> generate();

  bool empty() const { return !set_; }
  const std::uint8_t* data() const { return bytes_.data(); }
  static constexpr std::size_t size() { return kKeySize; }
  /// First 16 hex digits of the SHA-256 of the key: names a key (in the database, in errors)
  /// without revealing it.
  std::string id() const;

 private:
  std::array<std::uint8_t, kKeySize> bytes_{};
  bool set_ = false;
};

std::ostream& operator<<(std::ostream& out, const SecretKey& key);

/// Frees this thread's cipher context, which keeps the expanded key of the last message sealed
/// or opened on the thread. Call after using a key that must not linger (the master key).
void forgetThreadKey();

/// Overwrites the bytes (OPENSSL_cleanse, which the compiler may not drop).
void wipe(void* data, std::size_t size);
/// Overwrites the string's bytes, then clears it.
void wipe(std::string& text);

/// Appends nonce | ciphertext | tag of `plaintext` to `out`. On failure `out` is as before.
Status sealAppend(const SecretKey& key, std::string_view plaintext, std::string_view aad, std::string& out);
Result<std::string> seal(const SecretKey& key, std::string_view plaintext, std::string_view aad);

/// Appends the plaintext of a sealAppend message to `out`. Fails (ErrorCode::InvalidInput) when
/// the message is shorter than kSealOverhead or its tag does not verify: wrong key, wrong AAD, or
/// altered bytes; `out` is then as before (no unauthenticated plaintext is left behind).
Status openAppend(const SecretKey& key, std::string_view sealed, std::string_view aad, std::string& out);
Result<std::string> open(const SecretKey& key, std::string_view sealed, std::string_view aad);

/// HMAC-SHA256 of `message` under `key`: keyed lookup identifiers and the audit chain, where
/// a plain hash of a guessable input (an MRN) or a recomputed chain must not verify.
std::array<std::uint8_t, 32> hmacSha256(const SecretKey& key, std::string_view message);
/// The first `bytes` bytes (at most 32) of hmacSha256, lowercase hex.
std::string hmacSha256Hex(const SecretKey& key, std::string_view message, std::size_t bytes = 32);

/// HMAC-SHA256 keyed once, for many messages under one key (lookup keys: several per record
/// inside the commit, where keying per call costs several times the hash). Each MAC works on a
/// copy of the keyed context, so any thread may use one instance at once. Same MAC as hmacSha256.
class KeyedHmacSha256 {
 public:
  /// Throws std::runtime_error when OpenSSL has no HMAC or the key is empty (start-up only).
  explicit KeyedHmacSha256(const SecretKey& key);
  ~KeyedHmacSha256();
  KeyedHmacSha256(const KeyedHmacSha256&) = delete;
  KeyedHmacSha256& operator=(const KeyedHmacSha256&) = delete;

  std::array<std::uint8_t, 32> mac(std::string_view message) const;
  /// The first `bytes` bytes (at most 32) of mac, lowercase hex.
  std::string macHex(std::string_view message, std::size_t bytes = 32) const;

 private:
  ::evp_mac_ctx_st* keyed_;  // EVP_MAC_CTX holding the key schedule; freed (and cleansed) with it
};

/// Standard base64 (with padding) of `data`: sealed bytes kept in a text column.
std::string base64Encode(std::string_view data);
/// The bytes of standard base64 text; nullopt when it is not base64 (wrong length or alphabet).
std::optional<std::string> base64Decode(std::string_view text);

/// A key written as text: 64 hex digits (`openssl rand -hex 32`) or base64 of 32 bytes
/// (`openssl rand -base64 32`), surrounding whitespace ignored. `where` names the source in errors
/// (the text itself never appears in an error).
Result<SecretKey> parseKeyText(std::string_view text, std::string_view where);
/// Refuses a file holding a secret (a key) unless it is a regular file that neither group nor
/// others may access (none of the 077 mode bits): a key others can read protects nothing. `what`
/// names the file in the message ("the key file"), `setting` the config key pointing at it. The
/// error names the file and its mode and says `chmod 600 <file>`.
Status checkPrivateFile(const std::filesystem::path& file, std::string_view what, std::string_view setting);
/// Reads a key file (parseKeyText form). Refuses it as checkPrivateFile does.
Result<SecretKey> loadKeyFile(const std::filesystem::path& file);
/// Reads a key from an environment variable (parseKeyText form).
Result<SecretKey> loadKeyFromEnv(std::string_view variable);

}  // namespace gw::crypto

#include "common/ids.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>
#include <vector>

namespace gw::ids {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string toHex(const std::uint8_t* data, std::size_t size) {
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 0xf];
  }
  return out;
}

constexpr int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// EVP_sha1()/EVP_sha256() make OpenSSL 3 fetch the implementation (a locked lookup) on every
// digest; ids are made several times per resource, so fetch each once.
const EVP_MD* fetched(const char* name, const EVP_MD* fallback) {
  const EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  return md != nullptr ? md : fallback;
}

const EVP_MD* sha1Md() {
  static const EVP_MD* const md = fetched("SHA1", EVP_sha1());
  return md;
}

const EVP_MD* sha256Md() {
  static const EVP_MD* const md = fetched("SHA256", EVP_sha256());
  return md;
}

// One digest context per thread, reused: resource ids are made several times per resource, and
// a context allocated and freed for each was a measurable part of mapping.
struct DigestContext {
  DigestContext() : ctx(EVP_MD_CTX_new()) {}
  ~DigestContext() { EVP_MD_CTX_free(ctx); }
  DigestContext(const DigestContext&) = delete;
  DigestContext& operator=(const DigestContext&) = delete;
  EVP_MD_CTX* ctx;
};

void digest(const EVP_MD* md, std::string_view a, std::string_view b, std::uint8_t* out, unsigned* len) {
  thread_local DigestContext context;
  EVP_MD_CTX* ctx = context.ctx;
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, md, nullptr) != 1 || EVP_DigestUpdate(ctx, a.data(), a.size()) != 1 ||
      EVP_DigestUpdate(ctx, b.data(), b.size()) != 1 || EVP_DigestFinal_ex(ctx, out, len) != 1) {
    // Only an OpenSSL build without SHA (or out of memory) would get here; nothing sensible can continue.
    throw std::runtime_error("OpenSSL digest failed");
  }
}

// The bytes of a namespace UUID (its hex digits in pairs; dashes skipped).
struct NamespaceBytes {
  std::array<char, 16> bytes{};
  std::size_t size = 0;
};

constexpr NamespaceBytes namespaceBytes(std::string_view namespace_uuid) {
  NamespaceBytes out;
  int high = -1;
  for (char c : namespace_uuid) {
    const int v = hexValue(c);
    if (v < 0) continue;  // skip dashes
    if (high < 0) {
      high = v;
    } else {
      if (out.size == out.bytes.size()) break;  // a namespace is 16 bytes; ignore anything after
      out.bytes[out.size++] = static_cast<char>(high << 4 | v);
      high = -1;
    }
  }
  return out;
}

// Every resource id is made in this one namespace: parsed once, at compile time.
constexpr NamespaceBytes kGatewayNamespaceBytes = namespaceBytes(kGatewayNamespace);

}  // namespace

std::string uuidV5(std::string_view namespace_uuid, std::string_view name) {
  const NamespaceBytes ns = namespace_uuid == kGatewayNamespace ? kGatewayNamespaceBytes : namespaceBytes(namespace_uuid);
  std::uint8_t hash[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  digest(sha1Md(), std::string_view(ns.bytes.data(), ns.size), name, hash, &len);
  hash[6] = static_cast<std::uint8_t>((hash[6] & 0x0f) | 0x50);
  hash[8] = static_cast<std::uint8_t>((hash[8] & 0x3f) | 0x80);
  // 8-4-4-4-12 hex digits.
  std::string out(36, '-');
  std::size_t pos = 0;
  for (std::size_t i = 0; i < 16; ++i) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
    out[pos++] = kHex[hash[i] >> 4];
    out[pos++] = kHex[hash[i] & 0xf];
  }
  return out;
}

std::string resourceId(std::string_view clinic, std::string_view type, std::string_view source_id) {
  // The name is built on the stack when it fits (it nearly always does): ids are made for every
  // resource and reference.
  char buffer[256];
  const std::size_t size = clinic.size() + type.size() + source_id.size() + 2;
  if (size > sizeof(buffer)) {
    std::string name;
    name.reserve(size);
    name.append(clinic).append("|").append(type).append("|").append(source_id);
    return uuidV5(kGatewayNamespace, name);
  }
  char* p = buffer;
  const auto put = [&p](std::string_view part) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
  };
  put(clinic);
  put("|");
  put(type);
  put("|");
  put(source_id);
  return uuidV5(kGatewayNamespace, std::string_view(buffer, size));
}

std::string recordKey(std::string_view secret, std::string_view clinic, std::string_view record_id) {
  std::string message;
  message.reserve(clinic.size() + record_id.size() + 1);
  message.append(clinic).append("|").append(record_id);
  std::uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len) == nullptr) {
    throw std::runtime_error("OpenSSL HMAC failed");
  }
  return toHex(mac, 16);  // 128 bits: plenty to tell records apart in logs
}

std::array<std::uint8_t, 32> sha256(std::string_view data) {
  std::array<std::uint8_t, 32> out{};
  unsigned len = 0;
  digest(sha256Md(), data, {}, out.data(), &len);
  return out;
}

std::string sha256Hex(std::string_view data) {
  const auto d = sha256(data);
  return toHex(d.data(), d.size());
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string randomHex(std::size_t bytes) {
  std::vector<std::uint8_t> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(bytes)) != 1) throw std::runtime_error("OpenSSL RAND_bytes failed");
  return toHex(buf.data(), buf.size());
}

}  // namespace gw::ids

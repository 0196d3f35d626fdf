#pragma once
// A published anchor of the audit chain (docs/privacy.md §11.4): the head of the log (seq and
// hash) at a time, as one line of text sealed with an HMAC under the audit-chain secret, so a
// line altered in the sink, or written by someone without the master key, is told apart from
// one the gateway wrote. Backend-neutral and free of I/O: audit/anchor_file.hpp appends and reads
// the lines, app/audit_anchors.hpp publishes them on a schedule.
//
//   {"anchor":"gw-audit-anchor-v1","seq":1042,"hash":"v2:9f86...","at":"2026-12-07T06:20:08.125Z","at_ms":1796624408125,"mac":"<64
//   hex>"}
//
// mac = hex HMAC-SHA256 over the line's bytes up to (not including) `,"mac":`.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/crypto.hpp"
#include "store/audit_log.hpp"

namespace gw::store {

struct PublishedAnchor {
  std::int64_t seq = 0;
  std::string hash;
  std::int64_t at_ms = 0;  // when it was published
  ChainAnchor anchor() const { return {seq, hash}; }
};

/// Writes and checks anchor lines with the audit-chain secret of one database.
class AnchorSealer {
 public:
  /// `chain_key` empty: a database with no chain key (read-only, written before the chain was
  /// keyed): no line checks.
  explicit AnchorSealer(crypto::SecretKey chain_key) : key_(std::move(chain_key)) {}

  bool canCheck() const { return !key_.empty(); }
  /// The line for `a`, without a newline.
  std::string line(const PublishedAnchor& a) const;
  /// The anchor a line holds when it is well formed and its MAC checks; nullopt otherwise.
  std::optional<PublishedAnchor> read(std::string_view line) const;

 private:
  crypto::SecretKey key_;
};

}  // namespace gw::store

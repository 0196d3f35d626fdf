#pragma once
// Publishing the audit chain's head (docs/privacy.md §11.4): the head (last seq and hash) is
// sealed with the database's audit-chain secret (store/audit_anchor.hpp) and appended to
// audit.anchor.file and/or sent to syslog, on the jobs thread every audit.anchor.interval_seconds
// and once more at a clean shutdown, and only when it moved since the last publish. The
// Runtime owns the publisher; it is used by one thread at a time (the jobs thread, then the
// thread that stops the runtime).
#include <memory>
#include <optional>

#include "audit/anchor_file.hpp"
#include "common/clock.hpp"
#include "config/gateway_config.hpp"
#include "store/store.hpp"

namespace gw::app {

class AnchorPublisher {
 public:
  /// Opens the configured sinks: the file for appending (refused when unusable or writable by
  /// others: the gateway does not start), syslog. Reads the file's last authentic line, so a
  /// restart does not publish the same head again. Warns when the file is not append-only.
  static Result<std::unique_ptr<AnchorPublisher>> create(const config::AuditAnchor& config, store::Store& store,
                                                         const Clock& clock);
  ~AnchorPublisher();
  AnchorPublisher(const AnchorPublisher&) = delete;
  AnchorPublisher& operator=(const AnchorPublisher&) = delete;

  /// Publishes the head when it moved; true when it did. A failure is logged and returned, and
  /// the next call tries again.
  Result<bool> publishIfMoved();

 private:
  AnchorPublisher(store::Store& store, const Clock& clock, std::optional<audit::AnchorFileSink> file, bool syslog);

  store::Store& store_;
  const Clock& clock_;
  const store::AnchorSealer sealer_;
  std::optional<audit::AnchorFileSink> file_;
  const bool syslog_;
  std::optional<store::ChainTail> published_;  // the head published last
};

}  // namespace gw::app

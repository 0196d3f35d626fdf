#include "app/audit_anchors.hpp"

#include <syslog.h>

#include "common/log.hpp"

namespace gw::app {

AnchorPublisher::AnchorPublisher(store::Store& store, const Clock& clock, std::optional<audit::AnchorFileSink> file,
                                 bool syslog)
    : store_(store), clock_(clock), sealer_(store.anchorSealer()), file_(std::move(file)), syslog_(syslog) {
  if (syslog_) ::openlog("fhir-gateway", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

AnchorPublisher::~AnchorPublisher() {
  if (syslog_) ::closelog();
}

Result<std::unique_ptr<AnchorPublisher>> AnchorPublisher::create(const config::AuditAnchor& config, store::Store& store,
                                                                 const Clock& clock) {
  std::optional<audit::AnchorFileSink> file;
  std::optional<store::ChainTail> published;
  if (!config.file.empty()) {
    auto sink = audit::AnchorFileSink::open(config.file);
    if (!sink) {
      Error e = sink.error();
      e.where = "audit.anchor.file " + e.where;
      return e;
    }
    if (sink.value().appendOnly() != true) {
      // Without the flag, whoever runs as the gateway's user can rewrite the file; root sets it.
      GW_LOG(Warn, Audit, "audit_anchor_file_not_append_only")
          .kv("file", config.file.string())
          .kv("fix", "chattr +a " + config.file.string());
    }
    GW_TRY(auto scan, audit::scanAnchorFile(config.file, store.anchorSealer()));
    if (scan.forged > 0) {
      GW_LOG(Error, Audit, "audit_anchor_file_has_forged_lines")
          .kv("file", config.file.string())
          .kv("forged_lines", scan.forged)
          .kv("first_line", scan.forged_lines.front());
    }
    if (scan.latest) published = store::ChainTail{scan.latest->seq, scan.latest->hash};
    file = std::move(sink).value();
  }
  auto publisher = std::unique_ptr<AnchorPublisher>(new AnchorPublisher(store, clock, std::move(file), config.syslog));
  publisher->published_ = std::move(published);
  GW_LOG(Info, Audit, "audit_anchor_publishing")
      .kv("file", config.file.string())
      .kv("syslog", config.syslog ? "yes" : "no")
      .kv("interval_seconds", static_cast<std::int64_t>(config.interval.count()));
  return publisher;
}

Result<bool> AnchorPublisher::publishIfMoved() {
  auto head = store_.auditHead();
  if (!head) {
    GW_LOG(Error, Audit, "audit_anchor_not_published").kv("error", head.error().describe());
    return head.error();
  }
  if (published_ && published_->seq == head.value().seq && published_->hash == head.value().hash) return false;
  const store::PublishedAnchor anchor{head.value().seq, head.value().hash, toUnixMillis(clock_.now())};
  const std::string line = sealer_.line(anchor);
  if (file_) {
    if (auto appended = file_->append(line); !appended) {
      GW_LOG(Error, Audit, "audit_anchor_not_published").kv("error", appended.error().describe());
      return appended.error();
    }
  }
  if (syslog_) ::syslog(LOG_NOTICE, "audit-anchor %s", line.c_str());
  published_ = head.value();
  GW_LOG(Info, Audit, "audit_anchor_published").kv("seq", anchor.seq);
  return true;
}

}  // namespace gw::app

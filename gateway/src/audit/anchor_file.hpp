#pragma once
// Published anchors of the audit chain in an append-only file (docs/privacy.md §11.4): the sink
// the gateway appends its chain head to (one line per publish, store/audit_anchor.hpp), and the
// reading of such a file by `audit verify` and GET /v1/audit/verify, which check the log against
// the last line that is authentic.
//
// The file must be out of reach of whoever can write the database: another path (never the
// database folder: the config refuses it), and append-only for the gateway's user (`chattr +a
// FILE`, the operator's job; the gateway warns when the flag is not set).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "store/audit_anchor.hpp"
#include "store/audit_log.hpp"

namespace gw::audit {

/// An anchor file opened for appending: O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode 0600 when
/// made. Refuses a path that is not a regular file, and a file others may write.
class AnchorFileSink {
 public:
  static Result<AnchorFileSink> open(const std::filesystem::path& file);
  AnchorFileSink(AnchorFileSink&& other) noexcept;
  AnchorFileSink& operator=(AnchorFileSink&& other) noexcept;
  AnchorFileSink(const AnchorFileSink&) = delete;
  AnchorFileSink& operator=(const AnchorFileSink&) = delete;
  ~AnchorFileSink();

  /// Appends `line` and a newline in one write(2), then fsync(2)s.
  Status append(std::string_view line);
  /// Whether the file has the append-only attribute (chattr +a); nullopt when the file system
  /// cannot tell.
  std::optional<bool> appendOnly() const;
  const std::filesystem::path& path() const { return path_; }

 private:
  AnchorFileSink(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

/// What reading an anchor file found.
struct AnchorFileScan {
  std::optional<store::PublishedAnchor> latest;  // the last line that checks
  std::int64_t lines = 0;                        // non-empty lines
  std::int64_t forged = 0;                       // lines that do not check
  std::vector<std::int64_t> forged_lines;        // their line numbers (the first kMaxReportedBreaks)
};

/// Reads every line of `file` and checks it with `sealer`. An unreadable file is an error naming
/// it (ErrorCode::NotFound when it does not exist).
Result<AnchorFileScan> scanAnchorFile(const std::filesystem::path& file, const store::AnchorSealer& sealer);

/// Where the anchor to check against comes from.
struct AnchorSource {
  /// Given by the caller (--anchor, ?anchor=): used as is, no file is read.
  std::optional<store::ChainAnchor> given;
  /// Otherwise the last authentic line of this file (--anchor-file, or audit.anchor.file).
  std::filesystem::path file;
  /// A missing file is an error (--anchor-file) rather than "nothing published yet" (the sink).
  bool file_required = false;
};

/// Verifies the chain (`verify`, e.g. Store::verifyAudit) against the anchor `source` names and
/// fills report.anchor: where the anchor came from, when it was published, and one anchor-forged
/// break per line of the file that does not check with `sealer` (an altered line, or one written
/// without the master key).
Result<store::VerifyReport> verifyWithAnchors(
    const std::function<Result<store::VerifyReport>(const std::optional<store::ChainAnchor>&)>& verify,
    const store::AnchorSealer& sealer, const AnchorSource& source);

}  // namespace gw::audit

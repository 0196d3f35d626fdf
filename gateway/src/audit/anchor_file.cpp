#include "audit/anchor_file.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

namespace gw::audit {
namespace {

namespace fs = std::filesystem;

Error fileError(const fs::path& file, std::string what, int err, std::string hint) {
  return makeError(err == ENOENT ? ErrorCode::NotFound : ErrorCode::Storage, std::move(what) + ": " + std::strerror(err),
                   file.string(), std::move(hint));
}

}  // namespace

Result<AnchorFileSink> AnchorFileSink::open(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return fileError(file, "cannot open the audit anchor file for appending", errno,
                     "create its folder and let the gateway's user append to the file (audit.anchor.file)");
  }
  AnchorFileSink sink(file, fd);  // closes on every return below
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return makeError(ErrorCode::Config, "the audit anchor file is not a regular file", file.string(),
                     "point audit.anchor.file at a file");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return makeError(ErrorCode::Config, "the audit anchor file may be written by other users", file.string(),
                     "chmod 600 " + file.string() + " (and chattr +a, so that even its owner can only append)");
  }
  return sink;
}

AnchorFileSink::AnchorFileSink(AnchorFileSink&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

AnchorFileSink& AnchorFileSink::operator=(AnchorFileSink&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

AnchorFileSink::~AnchorFileSink() {
  if (fd_ >= 0) ::close(fd_);
}

Status AnchorFileSink::append(std::string_view line) {
  // One write of the whole line: with O_APPEND it lands at the end in one piece.
  std::string text(line);
  text.push_back('\n');
  const ssize_t written = ::write(fd_, text.data(), text.size());
  if (written != static_cast<ssize_t>(text.size())) {
    return fileError(path_, "cannot append to the audit anchor file", written < 0 ? errno : EIO,
                     "check the disk and the file's permissions; the next publish retries");
  }
  if (::fsync(fd_) != 0) {
    return fileError(path_, "cannot sync the audit anchor file", errno, "check the disk; the next publish retries");
  }
  return ok();
}

std::optional<bool> AnchorFileSink::appendOnly() const {
  int flags = 0;
  if (::ioctl(fd_, FS_IOC_GETFLAGS, &flags) != 0) return std::nullopt;
  return (flags & FS_APPEND_FL) != 0;
}

Result<AnchorFileScan> scanAnchorFile(const fs::path& file, const store::AnchorSealer& sealer) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return fileError(file, "cannot read the audit anchor file", errno == 0 ? ENOENT : errno,
                     "check the path (audit.anchor.file, or --anchor-file) and that you may read it");
  }
  AnchorFileScan scan;
  std::string line;
  std::int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line == "\r") continue;
    ++scan.lines;
    if (auto a = sealer.read(line)) {
      scan.latest = std::move(*a);
    } else {
      ++scan.forged;
      if (scan.forged_lines.size() < store::kMaxReportedBreaks) scan.forged_lines.push_back(number);
    }
  }
  if (in.bad()) return fileError(file, "cannot read the audit anchor file", errno, "check the disk");
  return scan;
}

Result<store::VerifyReport> verifyWithAnchors(
    const std::function<Result<store::VerifyReport>(const std::optional<store::ChainAnchor>&)>& verify,
    const store::AnchorSealer& sealer, const AnchorSource& source) {
  if (source.given || source.file.empty()) {
    GW_TRY(auto report, verify(source.given));
    if (source.given) report.anchor.source = "argument";
    return report;
  }
  const std::string where = "file " + source.file.string();
  if (!sealer.canCheck()) {
    // A database written entirely before the chain was keyed has no secret the lines were
    // sealed with: nothing in the file can be trusted.
    GW_TRY(auto report, verify(std::nullopt));
    report.anchor.source = where + " (not read: the database has no audit-chain secret)";
    return report;
  }
  auto scan = scanAnchorFile(source.file, sealer);
  if (!scan && (source.file_required || scan.error().code != ErrorCode::NotFound)) return scan.error();
  const bool file_exists = static_cast<bool>(scan);
  const AnchorFileScan found = file_exists ? std::move(scan).value() : AnchorFileScan{};
  std::optional<store::ChainAnchor> anchor;
  if (found.latest) anchor = found.latest->anchor();
  GW_TRY(auto report, verify(anchor));
  report.anchor.source = file_exists ? where : where + " (none published yet)";
  report.anchor.lines = found.lines;
  report.anchor.forged_lines = found.forged;
  if (found.latest) report.anchor.published_at_ms = found.latest->at_ms;
  for (std::int64_t number : found.forged_lines) {
    store::addReportBreak(report, {0, store::ChainProblem::AnchorForged,
                                   "line " + std::to_string(number) + " of " + source.file.string() +
                                       " does not check with this database's audit-chain secret: it was altered, "
                                       "or written by someone without the master key"});
  }
  report.break_count += found.forged - static_cast<std::int64_t>(found.forged_lines.size());
  return report;
}

}  // namespace gw::audit

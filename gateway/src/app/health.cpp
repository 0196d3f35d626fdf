#include "app/health.hpp"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "common/log.hpp"

namespace gw::app {

StorageProbe::StorageProbe(store::Store& store, std::filesystem::path database_file, const Clock& clock,
                           std::chrono::milliseconds interval)
    : store_(store),
      // No file (a PostgreSQL server): no free space to watch here, the commit probe tells.
      folder_(database_file.empty()                 ? std::filesystem::path()
              : database_file.parent_path().empty() ? "."
                                                    : database_file.parent_path()),
      clock_(clock),
      interval_(interval) {}

StorageHealth StorageProbe::lastKnown() {
  std::lock_guard lock(mutex_);
  return last_;
}

StorageHealth StorageProbe::check(bool write) {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  // While failing, every check commits: that is how recovery is seen.
  write = write || !last_.writable;
  if (checked_ && now - at_ < interval_ && (wrote_ || !write)) return last_;
  StorageHealth h;
  struct statvfs fs {};
  if (!folder_.empty() && ::statvfs(folder_.c_str(), &fs) == 0) {
    h.free_bytes = static_cast<std::int64_t>(fs.f_bavail) * static_cast<std::int64_t>(fs.f_frsize);
    if ((fs.f_flag & ST_RDONLY) != 0) {
      h.writable = false;
      h.reason = "read-only";
      h.error = "the file system of " + folder_.string() + " is mounted read-only";
    } else if (h.free_bytes < kMinFreeBytes) {
      h.writable = false;
      h.reason = "disk-full";
      h.error = std::to_string(h.free_bytes) + " bytes free in " + folder_.string() + " (at least " +
                std::to_string(kMinFreeBytes) + " needed)";
    }
  }
  if (h.writable && write) {
    // The commit itself: a file made read-only, a database locked by a broken process, I/O errors.
    if (auto probed = store_.probeWrite(clock_.now()); !probed) {
      h.writable = false;
      const auto& m = probed.error().message;
      h.reason = (m.find("full") != std::string::npos || m.find("space") != std::string::npos)           ? "disk-full"
                 : (m.find("readonly") != std::string::npos || m.find("read-only") != std::string::npos) ? "read-only"
                                                                                                         : "database";
      h.error = m;
    }
  }
  if (!h.writable) {
    h.failing_since = last_.writable || !checked_ ? clock_.now() : last_.failing_since;
    if (last_.writable || !checked_) {
      GW_LOG(Error, Store, "database_not_writable").kv("reason", h.reason).kv("error", h.error);
    }
  } else if (checked_ && !last_.writable) {
    GW_LOG(Info, Store, "database_writable_again").kv("free_bytes", h.free_bytes);
  }
  last_ = h;
  at_ = now;
  wrote_ = write;
  checked_ = true;
  return h;
}

std::string errorClass(std::string_view e) {
  const auto has = [&](std::string_view s) { return e.find(s) != std::string_view::npos; };
  if (e.empty()) return "";
  if (has("HTTP 429")) return "http-429";
  if (has("HTTP 5")) return "http-5xx";
  if (has("HTTP 4")) return "http-4xx";
  if (has("timed out") || has("timeout")) return "timeout";
  if (has("TLS") || has("tls") || has("certificate") || has("handshake")) return "tls";
  if (has("connect") || has("refused") || has("resolve") || has("reset") || has("closed")) return "connection";
  if (has("waiting:")) return "capability";
  return "other";
}

void PartnerHealthTracker::observe(const std::string& partner_id, const Counters& c, SystemTime now) {
  std::lock_guard lock(mutex_);
  auto [it, fresh] = seen_.try_emplace(partner_id);
  Seen& s = it->second;
  if (fresh) {
    s.counters = c;
    return;
  }
  if (c.delivered > s.counters.delivered) {
    s.failing_since = {};
  } else if ((c.retries > s.counters.retries || c.dead > s.counters.dead) && s.failing_since == SystemTime{}) {
    s.failing_since = now;
  }
  s.counters = c;
}

SystemTime PartnerHealthTracker::failingSince(const std::string& partner_id) const {
  std::lock_guard lock(mutex_);
  const auto it = seen_.find(partner_id);
  return it == seen_.end() ? SystemTime{} : it->second.failing_since;
}

}  // namespace gw::app

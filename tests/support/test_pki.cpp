#include "support/test_pki.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace gw::test {
namespace {

namespace fs = std::filesystem;

std::string makePki() {
  const fs::path base = fs::read_symlink("/proc/self/exe").parent_path();
  const fs::path final_dir = base / "test-pki";
  const fs::path stamp = final_dir / "complete";
  const auto fresh = [&] {
    std::error_code ec;
    const auto written = fs::last_write_time(stamp, ec);
    // dev-master.key, client-c2 and the CRL came later than the first certificates: a PKI made
    // before them is made again.
    return !ec && fs::file_time_type::clock::now() - written < std::chrono::hours(24 * 30) &&
           fs::exists(final_dir / "dev-master.key", ec) && fs::exists(final_dir / "ca-crl.pem", ec) &&
           fs::exists(final_dir / "client-c2.crt", ec);
  };
  if (fresh()) return final_dir.string();
  std::string tmpl = (base / "test-pki.XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed in " + base.string());
  const std::string command = "bash '" + std::string(GW_REPO_DIR) + "/certs/make-dev-certs.sh' '" + tmpl +
                              "' >/dev/null && touch '" + tmpl + "/complete'";
  if (std::system(command.c_str()) != 0) {
    throw std::runtime_error("certs/make-dev-certs.sh failed (is openssl on PATH?): " + command);
  }
  std::error_code ec;
  if (!fresh()) fs::remove_all(final_dir, ec);  // stale or half-made, not a racing process's fresh one
  fs::rename(tmpl, final_dir, ec);
  if (ec) {
    fs::remove_all(tmpl, ec);  // another test process won the race: use its PKI
    if (!fs::exists(stamp)) throw std::runtime_error("test PKI missing in " + final_dir.string());
  }
  return final_dir.string();
}

}  // namespace

const std::string& devPkiDir() {
  static const std::string dir = makePki();
  return dir;
}

std::string devPkiFile(std::string_view name) { return devPkiDir() + "/" + std::string(name); }

}  // namespace gw::test

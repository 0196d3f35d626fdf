#pragma once
// Development PKI for the delivery tests, made by certs/make-dev-certs.sh plus two server
// certificates the script does not make:
//   rogue-server.crt/.key  SAN localhost + 127.0.0.1, signed by the rogue CA (untrusted)
//   other-host.crt/.key    SAN other.example + 10.0.0.1, signed by the dev CA (wrong identity)
// ctest starts the test binary once per test, so the PKI lives beside the binary
// (<build>/tests/delivery-test-pki, under the git-ignored build dir) and is reused for 30 days.
// It is made in a temp dir and renamed into place, so parallel test processes never see half.
#include <stdlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace gw::delivery::fakes {

inline void makeTestPki(const std::string& dir) {
  const std::string script = std::string(GW_REPO_DIR) + "/certs/make-dev-certs.sh";
  const std::string extra = R"(set -e
server_cert() { # name ca san
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -sha256 -days 825 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext" ./*.srl
}
server_cert rogue-server rogue-ca DNS:localhost,IP:127.0.0.1
server_cert other-host ca DNS:other.example,IP:10.0.0.1
touch complete
)";
  std::string quoted;  // single-quoted for bash -c
  for (char c : extra) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  const std::string cmd = "set -e; bash '" + script + "' '" + dir + "' >/dev/null; cd '" + dir + "'; bash -c '" + quoted + "'";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("making the test PKI failed in " + dir);
}

inline const std::string& testPkiDir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    const fs::path base = fs::read_symlink("/proc/self/exe").parent_path();
    const fs::path final_dir = base / "delivery-test-pki";
    const fs::path stamp = final_dir / "complete";
    const auto fresh = [&] {
      std::error_code ec;
      const auto written = fs::last_write_time(stamp, ec);
      return !ec && fs::file_time_type::clock::now() - written < std::chrono::hours(24 * 30);
    };
    if (fresh()) return final_dir.string();
    std::string tmpl = (base / "delivery-test-pki.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed in " + base.string());
    makeTestPki(tmpl);
    std::error_code ec;
    if (!fresh()) fs::remove_all(final_dir, ec);  // stale or half-made, not a racing process's fresh one
    fs::rename(tmpl, final_dir, ec);
    if (ec) {
      fs::remove_all(tmpl, ec);  // another test process won the race: use its PKI
      if (!fs::exists(stamp)) throw std::runtime_error("test PKI missing in " + final_dir.string());
    }
    return final_dir.string();
  }();
  return dir;
}

}  // namespace gw::delivery::fakes

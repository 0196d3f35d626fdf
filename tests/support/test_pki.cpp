#include "support/test_pki.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <type_traits>

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
    // dev-master.key, the marker, client-c2 and the CRL came later than the first certificates:
    // an older PKI is made again.
    return !ec && fs::file_time_type::clock::now() - written < std::chrono::hours(24 * 30) &&
           fs::exists(final_dir / "dev-master.key", ec) && fs::exists(final_dir / "DEVELOPMENT-ONLY", ec) &&
           fs::exists(final_dir / "ca-crl.pem", ec) && fs::exists(final_dir / "client-c2.crt", ec);
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

namespace {

template <class T, void (*Free)(T*)>
using OsslPtr = std::unique_ptr<T, std::integral_constant<decltype(Free), Free>>;

OsslPtr<X509, X509_free> readCert(const std::string& file) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "r"), &std::fclose);
  if (!f) throw std::runtime_error("cannot open " + file);
  OsslPtr<X509, X509_free> cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!cert) throw std::runtime_error("not a PEM certificate: " + file);
  return cert;
}

}  // namespace

void writeDevCrl(const std::string& path, std::string_view ca, const std::vector<std::string>& revoked,
                 std::chrono::seconds next_update) {
  auto ca_cert = readCert(devPkiFile(std::string(ca) + ".crt"));
  std::unique_ptr<FILE, int (*)(FILE*)> key_file(std::fopen(devPkiFile(std::string(ca) + ".key").c_str(), "r"),
                                                 &std::fclose);
  if (!key_file) throw std::runtime_error("cannot open the key of " + std::string(ca));
  OsslPtr<EVP_PKEY, EVP_PKEY_free> ca_key(PEM_read_PrivateKey(key_file.get(), nullptr, nullptr, nullptr));
  if (!ca_key) throw std::runtime_error("not a PEM key: " + std::string(ca));

  OsslPtr<X509_CRL, X509_CRL_free> crl(X509_CRL_new());
  OsslPtr<ASN1_TIME, ASN1_TIME_free> last(X509_time_adj_ex(nullptr, 0, -3600, nullptr));
  OsslPtr<ASN1_TIME, ASN1_TIME_free> next(X509_time_adj_ex(nullptr, 0, static_cast<long>(next_update.count()), nullptr));
  bool fine = crl && last && next && X509_CRL_set_version(crl.get(), 1) == 1 &&
              X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert.get())) == 1 &&
              X509_CRL_set1_lastUpdate(crl.get(), last.get()) == 1 && X509_CRL_set1_nextUpdate(crl.get(), next.get()) == 1;
  for (const auto& name : revoked) {
    auto cert = readCert(devPkiFile(name + ".crt"));
    X509_REVOKED* entry = X509_REVOKED_new();
    fine = fine && entry != nullptr && X509_REVOKED_set_serialNumber(entry, X509_get_serialNumber(cert.get())) == 1 &&
           X509_REVOKED_set_revocationDate(entry, last.get()) == 1 && X509_CRL_add0_revoked(crl.get(), entry) == 1;
    if (!fine) X509_REVOKED_free(entry);
  }
  fine = fine && X509_CRL_sort(crl.get()) == 1 && X509_CRL_sign(crl.get(), ca_key.get(), EVP_sha256()) > 0;
  std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(path.c_str(), "w"), &std::fclose);
  fine = fine && out && PEM_write_X509_CRL(out.get(), crl.get()) == 1;
  if (!fine) throw std::runtime_error("could not write a CRL to " + path);
}

std::string devCertFingerprint(std::string_view name) {
  auto cert = readCert(devPkiFile(std::string(name) + ".crt"));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &size) != 1) throw std::runtime_error("X509_digest failed");
  std::string out;
  char byte[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", md[i]);
    out += byte;
  }
  return out;
}

}  // namespace gw::test

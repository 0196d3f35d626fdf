#include "support/test_pki.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace gw::test {
namespace {

class TempPki {
 public:
  TempPki() {
    std::string pattern = (std::filesystem::temp_directory_path() / "gw-test-pki-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("cannot create a temporary directory for test certificates");
    dir_ = pattern;
    const std::string command =
        "bash '" + std::string(GW_REPO_DIR) + "/certs/make-dev-certs.sh' '" + dir_ + "' >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) {
      throw std::runtime_error("certs/make-dev-certs.sh failed (is openssl on PATH?): " + command);
    }
  }
  ~TempPki() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TempPki(const TempPki&) = delete;
  TempPki& operator=(const TempPki&) = delete;

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace

const std::string& devPkiDir() {
  static const TempPki pki;  // thread-safe, once per process; removed at exit
  return pki.dir();
}

std::string devPkiFile(std::string_view name) { return devPkiDir() + "/" + std::string(name); }

}  // namespace gw::test

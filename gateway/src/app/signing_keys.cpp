#include "app/signing_keys.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/crypto.hpp"
#include "delivery/partner_auth.hpp"

namespace gw::app {

Result<delivery::SigningKey> newSigningKey(delivery::JwsAlg alg, const std::filesystem::path& out, std::string kid) {
  GW_TRY(auto key, delivery::SigningKey::generate(alg));
  if (kid.empty()) kid = key.kid();
  GW_TRY(auto pem, key.privatePem());
  // O_EXCL: a key in use is never replaced by accident; 0600 from the first byte.
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const std::string reason = std::strerror(errno);
    crypto::wipe(pem);
    return makeError(ErrorCode::Config, "cannot create the key file (" + reason + ")", out.string(),
                     errno == EEXIST ? "choose a new file name: an existing key is never overwritten"
                                     : "check that the folder exists and the gateway's user may write there");
  }
  std::size_t written = 0;
  while (written < pem.size()) {
    const auto n = ::write(fd, pem.data() + written, pem.size() - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  const bool complete = written == pem.size() && ::fsync(fd) == 0;
  ::close(fd);
  crypto::wipe(pem);
  if (!complete) {
    ::unlink(out.c_str());
    return makeError(ErrorCode::Internal, "cannot write the key file", out.string(), "check the disk");
  }
  // Read back as the gateway will, under the chosen kid.
  return delivery::SigningKey::load(out, alg, std::move(kid), "--out");
}

Result<std::string> configuredJwks(const config::GatewayConfig& config) {
  GW_TRY(auto keys, delivery::publishedSigningKeys(config));
  return delivery::jwksJson(keys);
}

}  // namespace gw::app

#include "delivery/credential_source.hpp"

#include <algorithm>

namespace gw::delivery {
namespace {

class NoCredential final : public CredentialSource {
 public:
  Result<std::optional<std::string>> authorization() override { return std::optional<std::string>(); }
  std::string_view kind() const override { return "none"; }
};

class StaticBearerToken final : public CredentialSource {
 public:
  explicit StaticBearerToken(std::string token) : header_("Bearer " + std::move(token)) {}
  Result<std::optional<std::string>> authorization() override { return std::optional<std::string>(header_); }
  std::string_view kind() const override { return "static-token"; }

 private:
  std::string header_;
};

// RFC 6750 b64token characters; anything else (CR/LF above all) could split the header.
bool validBearerToken(std::string_view token) {
  return !token.empty() && std::all_of(token.begin(), token.end(), [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~' || c == '+' || c == '/' || c == '=';
  });
}

}  // namespace

std::unique_ptr<CredentialSource> noCredential() { return std::make_unique<NoCredential>(); }

Result<std::unique_ptr<CredentialSource>> staticBearerToken(std::string token, std::string where) {
  if (!validBearerToken(token)) {
    return makeError(ErrorCode::Config, "the bearer token contains characters not allowed in a bearer token",
                     std::move(where), "use the token exactly as issued (letters, digits and -._~+/=)");
  }
  return std::unique_ptr<CredentialSource>(std::make_unique<StaticBearerToken>(std::move(token)));
}

}  // namespace gw::delivery

#include "delivery/credential_source.hpp"

#include <algorithm>
#include <mutex>

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

struct SharedSource {
  std::mutex mutex;
  std::unique_ptr<CredentialSource> source;  // guarded by mutex
  std::optional<std::string> last_issued;    // guarded by mutex: the header authorization() last gave
};

class SharedCredentialView final : public CredentialSource {
 public:
  explicit SharedCredentialView(std::shared_ptr<SharedSource> shared) : shared_(std::move(shared)) {}
  Result<std::optional<std::string>> authorization() override {
    std::lock_guard lock(shared_->mutex);
    auto header = shared_->source->authorization();
    if (header) {
      shared_->last_issued = header.value();
      mine_ = header.value();
    }
    return header;
  }
  void rejected() override {
    std::lock_guard lock(shared_->mutex);
    if (mine_ == shared_->last_issued) shared_->source->rejected();
  }
  bool renewable() const override {
    std::lock_guard lock(shared_->mutex);
    return shared_->source->renewable();
  }
  std::string_view kind() const override {
    std::lock_guard lock(shared_->mutex);
    return shared_->source->kind();
  }

 private:
  std::shared_ptr<SharedSource> shared_;
  std::optional<std::string> mine_;  // what this view's sender presented last (one sender per view)
};

}  // namespace

std::vector<std::unique_ptr<CredentialSource>> sharedCredentials(std::unique_ptr<CredentialSource> source,
                                                                 std::size_t count) {
  auto shared = std::make_shared<SharedSource>();
  shared->source = std::move(source);
  std::vector<std::unique_ptr<CredentialSource>> views;
  for (std::size_t i = 0; i < count; ++i) views.push_back(std::make_unique<SharedCredentialView>(shared));
  return views;
}

std::unique_ptr<CredentialSource> noCredential() { return std::make_unique<NoCredential>(); }

Result<std::unique_ptr<CredentialSource>> staticBearerToken(std::string token, std::string where) {
  if (!validBearerToken(token)) {
    return makeError(ErrorCode::Config, "the bearer token contains characters not allowed in a bearer token",
                     std::move(where), "use the token exactly as issued (letters, digits and -._~+/=)");
  }
  return std::unique_ptr<CredentialSource>(std::make_unique<StaticBearerToken>(std::move(token)));
}

}  // namespace gw::delivery

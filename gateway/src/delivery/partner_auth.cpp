#include "delivery/partner_auth.hpp"

#include <cstdlib>
#include <fstream>
#include <set>

#include "common/crypto.hpp"
#include "delivery/oauth_token_source.hpp"

namespace gw::delivery {
namespace {

Result<SigningKey> loadConfiguredKey(const std::string& kid, const std::string& alg_name, const std::filesystem::path& file,
                                     const std::string& setting) {
  const auto alg = parseJwsAlg(alg_name);
  if (!alg) {
    return makeError(ErrorCode::Config, "'" + alg_name + "' is not a signing algorithm", setting, "use RS384 or ES384");
  }
  return SigningKey::load(file, *alg, kid, setting);
}

// The client secret from its file (private, trailing newline dropped) or environment variable.
Result<std::string> clientSecret(const config::Partner& partner) {
  const auto& auth = partner.auth;
  const std::string where = "partners." + partner.id + ".auth";
  std::string secret;
  if (!auth.client_secret_file.empty()) {
    GW_TRY(crypto::checkPrivateFile(auth.client_secret_file, "the client secret file", where + ".client_secret_file"));
    std::ifstream in(auth.client_secret_file, std::ios::binary);
    secret.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (secret.empty()) {
      return makeError(ErrorCode::Config, "the client secret file is empty", auth.client_secret_file.string(),
                       "write the secret the partner issued into it (chmod 600)");
    }
  } else {
    const char* value = std::getenv(auth.client_secret_env.c_str());
    if (value == nullptr || *value == '\0') {
      return makeError(ErrorCode::Config, "environment variable " + auth.client_secret_env + " is not set",
                       where + ".client_secret_env", "export the partner's client secret in that variable before starting");
    }
    secret = value;
  }
  if (secret.find_first_of("\r\n") != std::string::npos) {
    crypto::wipe(secret);
    return makeError(ErrorCode::Config, "the client secret holds a line break", where,
                     "store the secret on one line, exactly as issued");
  }
  return secret;
}

}  // namespace

Result<std::unique_ptr<CredentialSource>> oauthCredentialsFor(const config::Partner& partner,
                                                              const PartnerEndpoint& endpoint, const Clock* clock) {
  const auto& auth = partner.auth;
  OAuthSettings settings;
  settings.partner = endpoint;
  settings.token_url = auth.token_url;
  settings.client_id = auth.client_id;
  settings.scope = auth.scope;
  settings.clock = clock;
  if (auth.type == "smart-backend") {
    GW_TRY(auto key, loadConfiguredKey(auth.kid, auth.alg, auth.private_key_file,
                                       "partners." + partner.id + ".auth.private_key_file"));
    settings.signing_key = std::move(key);
  } else if (auth.type == "client-credentials") {
    GW_TRY(settings.client_secret, clientSecret(partner));
    settings.secret_in_body = auth.client_auth_method == "client_secret_post";
  } else {
    return makeError(ErrorCode::Config, "unknown auth type '" + auth.type + "'", "partners." + partner.id + ".auth.type",
                     "use smart-backend or client-credentials");
  }
  return oauthTokenSource(std::move(settings));
}

Result<std::vector<SigningKey>> publishedSigningKeys(const config::GatewayConfig& config) {
  std::vector<SigningKey> keys;
  std::set<std::string> kids;
  for (const auto& partner : config.partners) {
    const auto& auth = partner.auth;
    if (auth.type != "smart-backend" || !kids.insert(auth.kid).second) continue;
    GW_TRY(auto key, loadConfiguredKey(auth.kid, auth.alg, auth.private_key_file,
                                       "partners." + partner.id + ".auth.private_key_file"));
    keys.push_back(std::move(key));
  }
  for (std::size_t i = 0; i < config.signing_keys.size(); ++i) {
    const auto& entry = config.signing_keys[i];
    if (!kids.insert(entry.kid).second) continue;
    GW_TRY(auto key, loadConfiguredKey(entry.kid, entry.alg, entry.private_key_file,
                                       "signing_keys[" + std::to_string(i) + "].private_key_file"));
    keys.push_back(std::move(key));
  }
  return keys;
}

}  // namespace gw::delivery

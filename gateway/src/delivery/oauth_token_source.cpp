#include "delivery/oauth_token_source.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>

#include "common/crypto.hpp"
#include "common/json.hpp"
#include "common/log.hpp"

namespace gw::delivery {
namespace {

constexpr std::string_view kFormType = "application/x-www-form-urlencoded";
constexpr std::string_view kAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr std::chrono::seconds kAssumedLifetime{300};  // when expires_in is absent (SMART's recommendation)
constexpr std::int64_t kMaxLifetimeSeconds = 24 * 3600;

const Clock& systemClock() {
  static const SystemClock clock;
  return clock;
}

Error invalid(std::string message, std::string where = {}) {
  return makeError(ErrorCode::InvalidInput, std::move(message), std::move(where));
}

// RFC 6750 b64token: what may follow "Bearer " in a header.
bool validBearerToken(std::string_view token) {
  return !token.empty() && token.size() <= 16 * 1024 && std::all_of(token.begin(), token.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
  });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

// Printable ASCII only, at most `max` characters: partner text going into logs and messages.
std::string printable(std::string_view text, std::size_t max = 200) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  return out;
}

Result<std::vector<std::string>> stringList(const rapidjson::Value& object, const char* key) {
  std::vector<std::string> out;
  const auto* v = json::find(object, key);
  if (v == nullptr) return out;
  if (!v->IsArray()) return invalid(std::string(key) + " is not a list of strings", key);
  for (const auto& item : v->GetArray()) {
    if (!item.IsString()) return invalid(std::string(key) + " is not a list of strings", key);
    out.emplace_back(json::view(item));
  }
  return out;
}

std::string base64(std::string_view bytes) {
  std::string out = base64url(bytes);
  for (char& c : out) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
  }
  while (out.size() % 4 != 0) out += '=';
  return out;
}

class OAuthTokenSource final : public CredentialSource {
 public:
  OAuthTokenSource(OAuthSettings settings, std::unique_ptr<FhirClient> token_client)
      : settings_(std::move(settings)),
        clock_(settings_.clock != nullptr ? *settings_.clock : systemClock()),
        token_client_(std::move(token_client)) {}
  ~OAuthTokenSource() override {
    crypto::wipe(settings_.client_secret);
    if (token_) crypto::wipe(token_->header);
  }

  Result<std::optional<std::string>> authorization() override {
    const SystemTime now = clock_.now();
    if (token_ && now < token_->refresh_at) return std::optional<std::string>(token_->header);
    GW_TRY(fetch(now));
    return std::optional<std::string>(token_->header);
  }

  void rejected() override {
    if (token_) crypto::wipe(token_->header);
    token_.reset();
  }
  bool renewable() const override { return true; }
  std::string_view kind() const override { return settings_.signing_key ? "smart-backend" : "client-credentials"; }

 private:
  struct CachedToken {
    std::string header;  // "Bearer <token>"
    SystemTime refresh_at;
  };

  Error unavailable(std::string message, std::string hint) const {
    return makeError(ErrorCode::Unavailable, "partner " + settings_.partner.id + ": " + message,
                     "partners." + settings_.partner.id + ".auth", std::move(hint));
  }

  // {base}/.well-known/smart-configuration, once: its token endpoint becomes the token URL.
  Status discover() {
    PartnerEndpoint ep = settings_.partner;
    GW_TRY(auto client, FhirClient::create(ep));
    OutgoingRequest request;
    request.path_suffix = "/.well-known/smart-configuration";
    auto response = client->request(request);
    if (!response) {
      return unavailable("cannot read the SMART configuration: " + response.error().message,
                         "set auth.token_url, or check that the partner serves {fhir_base_url}/.well-known/"
                         "smart-configuration; the delivery is retried");
    }
    if (response.value().status != 200) {
      return unavailable("the SMART configuration answered HTTP " + std::to_string(response.value().status),
                         "set auth.token_url to the partner's token endpoint; the delivery is retried");
    }
    auto parsed = parseSmartConfiguration(response.value().body);
    if (!parsed) {
      return unavailable("the SMART configuration is not usable: " + parsed.error().describe(),
                         "set auth.token_url to the partner's token endpoint; the delivery is retried");
    }
    const auto& methods = parsed.value().token_endpoint_auth_methods;
    const std::string method = settings_.signing_key      ? "private_key_jwt"
                               : settings_.secret_in_body ? "client_secret_post"
                                                          : "client_secret_basic";
    if (!methods.empty() && std::find(methods.begin(), methods.end(), method) == methods.end()) {
      return unavailable("the partner's SMART configuration does not list " + method +
                             " in token_endpoint_auth_methods_supported",
                         "ask the partner which client authentication it takes, and set auth.type accordingly");
    }
    const auto& algs = parsed.value().token_endpoint_auth_signing_algs;
    if (settings_.signing_key && !algs.empty() &&
        std::find(algs.begin(), algs.end(), jwsAlgName(settings_.signing_key->alg())) == algs.end()) {
      return unavailable("the partner's SMART configuration does not list " +
                             std::string(jwsAlgName(settings_.signing_key->alg())) +
                             " in token_endpoint_auth_signing_alg_values_supported",
                         "sign with an algorithm the partner takes (auth.alg: RS384 or ES384)");
    }
    settings_.token_url = parsed.value().token_endpoint;
    ep.base_url = settings_.token_url;
    auto token_client = FhirClient::create(ep);
    if (!token_client) {
      return unavailable("the discovered token endpoint is not usable: " + token_client.error().message,
                         "set auth.token_url; the delivery is retried");
    }
    token_client_ = std::move(token_client).value();
    GW_LOG(Info, Delivery, "token_endpoint_discovered").kv("partner", settings_.partner.id).kv("url", settings_.token_url);
    return ok();
  }

  Status fetch(SystemTime now) {
    if (token_) crypto::wipe(token_->header);
    token_.reset();
    if (!token_client_) {
      GW_TRY(discover());
    }

    OutgoingRequest request;
    request.method = "POST";
    request.content_type = std::string(kFormType);
    std::string& form = request.body;
    form = "grant_type=client_credentials&scope=" + formEncode(settings_.scope);
    if (settings_.signing_key) {
      GW_TRY(auto assertion, clientAssertion(*settings_.signing_key, settings_.client_id, settings_.token_url, now));
      form += "&client_assertion_type=" + formEncode(kAssertionType) + "&client_assertion=" + assertion;
    } else if (settings_.secret_in_body) {
      form += "&client_id=" + formEncode(settings_.client_id) + "&client_secret=" + formEncode(settings_.client_secret);
    } else {
      // RFC 6749 §2.3.1: both parts form-encoded before Basic's base64.
      std::string pair = formEncode(settings_.client_id) + ":" + formEncode(settings_.client_secret);
      request.authorization = "Basic " + base64(pair);
      crypto::wipe(pair);
    }
    auto response = token_client_->request(request);
    crypto::wipe(form);
    crypto::wipe(request.authorization);
    const std::string hint = settings_.signing_key
                                 ? "check auth.client_id and that the partner has the gateway's public key (kid " +
                                       settings_.signing_key->kid() +
                                       ", see fhir-gateway keys jwks); the delivery is retried"
                                 : "check auth.client_id and the client secret; the delivery is retried";
    if (!response) return unavailable("token request failed: " + response.error().message, hint);
    if (response.value().status != 200) {
      GW_LOG(Warn, Delivery, "token_refused")
          .kv("partner", settings_.partner.id)
          .kv("status", response.value().status)
          .kv("error", tokenErrorSummary(response.value().status, response.value().body));
      return unavailable("the token endpoint refused the request: " +
                             tokenErrorSummary(response.value().status, response.value().body),
                         hint);
    }
    auto parsed = parseTokenResponse(response.value().body);
    crypto::wipe(response.value().body);
    if (!parsed) {
      return unavailable("the token endpoint's answer is not usable: " + parsed.error().describe(),
                         "the partner's token endpoint must answer RFC 6749 JSON; the delivery is retried");
    }
    auto& token = parsed.value();
    token_ = CachedToken{"Bearer " + token.access_token, now + token.expires_in - tokenRefreshMargin(token.expires_in)};
    crypto::wipe(token.access_token);
    GW_LOG(Info, Delivery, "token_obtained")
        .kv("partner", settings_.partner.id)
        .kv("credential", kind())
        .kv("expires_in_s", static_cast<std::int64_t>(token.expires_in.count()))
        .kv("scope", printable(token.scope));
    return ok();
  }

  OAuthSettings settings_;
  const Clock& clock_;
  std::unique_ptr<FhirClient> token_client_;  // null until the token URL is known
  std::optional<CachedToken> token_;
};

}  // namespace

std::chrono::seconds tokenRefreshMargin(std::chrono::seconds expires_in) {
  return std::min(std::chrono::seconds(30), expires_in / 5);
}

std::string formEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<TokenResponse> parseTokenResponse(std::string_view body) {
  rapidjson::Document doc;
  GW_TRY(json::parseStrict(body, doc));
  if (!doc.IsObject()) return invalid("the token response is not a JSON object");
  const auto* token = json::find(doc, "access_token");
  if (token == nullptr || !token->IsString() || !validBearerToken(json::view(*token))) {
    return invalid("access_token is missing or holds characters a bearer token may not", "access_token");
  }
  const auto* type = json::find(doc, "token_type");
  if (type == nullptr || !type->IsString() || !iequals(json::view(*type), "bearer")) {
    return invalid("token_type is not \"bearer\"", "token_type");
  }
  TokenResponse out;
  out.expires_in = kAssumedLifetime;
  if (const auto* expires = json::find(doc, "expires_in")) {
    if (!expires->IsInt64() || expires->GetInt64() <= 0 || expires->GetInt64() > kMaxLifetimeSeconds) {
      return invalid("expires_in is not a positive number of seconds (at most a day)", "expires_in");
    }
    out.expires_in = std::chrono::seconds(expires->GetInt64());
  }
  if (const auto* scope = json::find(doc, "scope")) {
    if (!scope->IsString()) return invalid("scope is not a string", "scope");
    out.scope = std::string(json::view(*scope));
  }
  out.access_token = std::string(json::view(*token));
  return out;
}

std::string tokenErrorSummary(int status, std::string_view body) {
  std::string out = "HTTP " + std::to_string(status);
  rapidjson::Document doc;
  if (!json::parseStrict(body, doc) || !doc.IsObject()) return out;
  if (const auto* error = json::find(doc, "error"); error != nullptr && error->IsString()) {
    out += " " + printable(json::view(*error), 64);
  }
  if (const auto* text = json::find(doc, "error_description"); text != nullptr && text->IsString()) {
    out += ": " + printable(json::view(*text));
  }
  return out;
}

Result<SmartConfiguration> parseSmartConfiguration(std::string_view body) {
  rapidjson::Document doc;
  GW_TRY(json::parseStrict(body, doc));
  if (!doc.IsObject()) return invalid("the SMART configuration is not a JSON object");
  const auto* endpoint = json::find(doc, "token_endpoint");
  if (endpoint == nullptr || !endpoint->IsString()) return invalid("token_endpoint is missing", "token_endpoint");
  SmartConfiguration out;
  out.token_endpoint = std::string(json::view(*endpoint));
  if (out.token_endpoint.rfind("https://", 0) != 0 || out.token_endpoint.size() > 2000) {
    return invalid("token_endpoint is not an https:// URL", "token_endpoint");
  }
  GW_TRY(out.token_endpoint_auth_methods, stringList(doc, "token_endpoint_auth_methods_supported"));
  GW_TRY(out.token_endpoint_auth_signing_algs, stringList(doc, "token_endpoint_auth_signing_alg_values_supported"));
  return out;
}

Result<std::unique_ptr<CredentialSource>> oauthTokenSource(OAuthSettings settings) {
  if (settings.client_id.empty() || settings.scope.empty()) {
    return makeError(ErrorCode::Config, "partner " + settings.partner.id + ": auth needs client_id and scope",
                     "partners." + settings.partner.id + ".auth", "set both as the partner registered the gateway");
  }
  std::unique_ptr<FhirClient> token_client;
  if (!settings.token_url.empty()) {
    PartnerEndpoint ep = settings.partner;
    ep.base_url = settings.token_url;
    auto created = FhirClient::create(ep);
    if (!created) {
      Error e = created.error();
      e.message += " (in auth.token_url)";
      e.where = "partners." + settings.partner.id + ".auth.token_url";
      return e;
    }
    token_client = std::move(created).value();
  }
  return std::unique_ptr<CredentialSource>(std::make_unique<OAuthTokenSource>(std::move(settings), std::move(token_client)));
}

}  // namespace gw::delivery

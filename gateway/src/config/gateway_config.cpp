#include "config/gateway_config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/crypto.hpp"
#include "common/json.hpp"
#include "common/json_locations.hpp"
#include "common/roles.hpp"
#include "config/insecure_settings.hpp"

namespace gw::config {
namespace {

namespace fs = std::filesystem;

// Walks one JSON object, remembering which keys were read so the rest can be reported as unknown.
class Reader {
 public:
  Reader(const json::JsonLocations& locator, std::string_view text, std::string_view label, fs::path base_dir,
         bool check_files, std::vector<Error>& errors)
      : locator_(locator),
        text_(text),
        label_(label),
        base_dir_(std::move(base_dir)),
        check_files_(check_files),
        errors_(errors) {}

  void fail(const std::string& pointer, std::string message, std::string hint = {}) {
    errors_.push_back(makeError(
        ErrorCode::Config, std::move(message),
        json::JsonLocations::position(label_, text_, locator_.keyOffset(pointer)) + " " + pathOf(pointer), std::move(hint)));
  }

  static std::string pathOf(const std::string& pointer) {
    const std::string p = json::pointerToPath(pointer);
    return p.empty() ? "(top level)" : p;
  }

  // Reports members of `object` not in `known`.
  void checkKeys(const rapidjson::Value& object, const std::string& pointer, std::initializer_list<const char*> known) {
    std::set<std::string_view> allowed(known.begin(), known.end());
    for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it) {
      std::string_view key(it->name.GetString(), it->name.GetStringLength());
      if (allowed.count(key) == 0) {
        std::string list;
        for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
        fail(pointer + "/" + std::string(key), "unknown key '" + std::string(key) + "'", "allowed here: " + list);
      }
    }
  }

  bool checkingFiles() const { return check_files_; }

  const rapidjson::Value* object(const rapidjson::Value& parent, const std::string& pointer, const char* key,
                                 bool required) {
    const auto* v = json::find(parent, key);
    const std::string p = pointer + "/" + key;
    if (v == nullptr) {
      if (required) fail(p, std::string("missing required section '") + key + "'");
      return nullptr;
    }
    if (!v->IsObject()) {
      fail(p, "expected an object");
      return nullptr;
    }
    return v;
  }

  const rapidjson::Value* array(const rapidjson::Value& parent, const std::string& pointer, const char* key, bool required) {
    const auto* v = json::find(parent, key);
    if (v == nullptr) {
      if (required) fail(pointer + "/" + key, std::string("missing required list '") + key + "'");
      return nullptr;
    }
    if (!v->IsArray()) {
      fail(pointer + "/" + key, "expected a list");
      return nullptr;
    }
    return v;
  }

  void string(const rapidjson::Value& parent, const std::string& pointer, const char* key, std::string& out, bool required,
              std::size_t max_len = 4096) {
    const auto* v = json::find(parent, key);
    const std::string p = pointer + "/" + key;
    if (v == nullptr || (!required && v->IsString() && v->GetStringLength() == 0)) {  // "" = not set
      if (required) fail(p, std::string("missing required key '") + key + "'");
      return;
    }
    if (!v->IsString() || v->GetStringLength() == 0 || v->GetStringLength() > max_len) {
      fail(p, "expected a non-empty string of at most " + std::to_string(max_len) + " characters");
      return;
    }
    out.assign(v->GetString(), v->GetStringLength());
  }

  void choice(const rapidjson::Value& parent, const std::string& pointer, const char* key, std::string& out,
              std::initializer_list<const char*> allowed) {
    std::string value;
    string(parent, pointer, key, value, false);
    if (value.empty()) return;
    for (const char* a : allowed) {
      if (value == a) {
        out = value;
        return;
      }
    }
    std::string list;
    for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    fail(pointer + "/" + key, "'" + value + "' is not allowed", "allowed: " + list);
  }

  template <class Int>
  void integer(const rapidjson::Value& parent, const std::string& pointer, const char* key, Int& out, std::int64_t min,
               std::int64_t max) {
    const auto* v = json::find(parent, key);
    if (v == nullptr) return;  // every integer has a default
    if (!v->IsInt64() || v->GetInt64() < min || v->GetInt64() > max) {
      fail(pointer + "/" + key, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return;
    }
    out = static_cast<Int>(v->GetInt64());
  }

  void millis(const rapidjson::Value& parent, const std::string& pointer, const char* key, std::chrono::milliseconds& out,
              std::int64_t min, std::int64_t max) {
    std::int64_t ms = out.count();
    integer(parent, pointer, key, ms, min, max);
    out = std::chrono::milliseconds(ms);
  }

  void boolean(const rapidjson::Value& parent, const std::string& pointer, const char* key, bool& out) {
    const auto* v = json::find(parent, key);
    if (v == nullptr) return;
    if (!v->IsBool()) {
      fail(pointer + "/" + key, "expected true or false");
      return;
    }
    out = v->GetBool();
  }

  void strings(const rapidjson::Value& parent, const std::string& pointer, const char* key, std::vector<std::string>& out,
               bool required) {
    const auto* list = array(parent, pointer, key, required);
    if (list == nullptr) return;
    for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
      const auto& item = (*list)[i];
      if (!item.IsString() || item.GetStringLength() == 0) {
        fail(pointer + "/" + key + "/" + std::to_string(i), "expected a non-empty string");
        continue;
      }
      out.emplace_back(item.GetString(), item.GetStringLength());
    }
  }

  // A path to a file; relative paths resolve against the config file's folder.
  void path(const rapidjson::Value& parent, const std::string& pointer, const char* key, fs::path& out, bool required,
            bool must_exist) {
    std::string text;
    string(parent, pointer, key, text, required);
    if (text.empty()) return;
    fs::path p(text);
    if (p.is_relative()) p = base_dir_ / p;
    out = p.lexically_normal();
    if (must_exist && check_files_) {
      std::error_code ec;
      if (!fs::exists(out, ec)) {
        fail(pointer + "/" + key, "file or folder '" + out.string() + "' does not exist",
             "create it (development certificates: certs/make-dev-certs.sh) or fix the path");
      }
    }
  }

 private:
  const json::JsonLocations& locator_;
  std::string_view text_;
  std::string label_;
  fs::path base_dir_;
  bool check_files_;
  std::vector<Error>& errors_;
};

bool isHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool isSimpleId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

// A token's client certificate in the one form the authenticator compares ("sha256:<64 lowercase
// hex>" or "subject:<RFC 2253>"), or an error message saying how to write it.
constexpr const char* kCertBindingHint =
    "write \"sha256:<hex>\" with the fingerprint from `openssl x509 -in CERT -noout -fingerprint -sha256`, or "
    "\"subject:<subject>\" as `openssl x509 -in CERT -noout -subject -nameopt RFC2253` prints it";

Result<std::string> normalizeCertBinding(std::string_view text) {
  constexpr std::string_view kSha256 = "sha256:";
  constexpr std::string_view kSubject = "subject:";
  if (text.substr(0, kSha256.size()) == kSha256) {
    std::string hex;
    for (char c : text.substr(kSha256.size())) {
      if (c == ':') continue;  // openssl prints the fingerprint as AB:CD:...
      hex.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (!isHex64(hex)) {
      return makeError(ErrorCode::Config, "a SHA-256 fingerprint has 64 hex digits (colons allowed)");
    }
    return "sha256:" + hex;
  }
  if (text.substr(0, kSubject.size()) == kSubject) {
    const std::string_view subject = text.substr(kSubject.size());
    if (subject.empty() || subject.find('=') == std::string_view::npos) {
      return makeError(ErrorCode::Config, "expected a subject such as subject:CN=clinic-c1,O=Example Clinic");
    }
    // OpenSSL's other forms ("/O=x/CN=y", "O = x, CN = y") never match the RFC 2253 form compared.
    if (subject.front() == '/' || subject.find(" = ") != std::string_view::npos ||
        subject.find(", ") != std::string_view::npos || subject.front() == ' ' || subject.back() == ' ') {
      return makeError(ErrorCode::Config, "the subject is not in RFC 2253 form (no spaces around '=' or after ',')");
    }
    return std::string(text);
  }
  return makeError(ErrorCode::Config, "expected \"sha256:<fingerprint>\" or \"subject:<subject>\"");
}

// "127.0.0.1:9464" or "[::1]:9464" -> (address, port); nullopt when it is not a loopback address
// (127.0.0.0/8 or ::1, as numbers: names are not resolved) with a port from 1 to 65535.
std::optional<std::pair<std::string, std::uint16_t>> parseLoopbackEndpoint(const std::string& text) {
  std::string host, port;
  if (text.starts_with("[")) {
    const auto close = text.find("]:");
    if (close == std::string::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host != "::1") return std::nullopt;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    int octets = 0;
    std::size_t at = 0;
    while (at <= host.size()) {
      const auto dot = std::min(host.find('.', at), host.size());
      const std::string part = host.substr(at, dot - at);
      if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(part) > 255)
        return std::nullopt;
      if (octets == 0 && part != "127") return std::nullopt;
      ++octets;
      at = dot + 1;
    }
    if (octets != 4) return std::nullopt;
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const int number = std::stoi(port);
  if (number < 1 || number > 65535) return std::nullopt;
  return std::pair<std::string, std::uint16_t>{host, static_cast<std::uint16_t>(number)};
}

void readServer(Reader& r, const rapidjson::Value& root, Server& server) {
  const std::string p = "/server";
  const auto* s = r.object(root, "", "server", true);
  if (s == nullptr) return;
  r.checkKeys(*s, p,
              {"address", "port", "threads", "blocking_threads", "blocking_queue", "tls", "max_body_bytes",
               "max_inflight_body_bytes", "handshake_timeout_ms", "read_timeout_ms", "write_timeout_ms", "idle_timeout_ms",
               "max_connections", "max_connections_per_address", "metrics_listen"});
  r.string(*s, p, "address", server.address, false, 255);
  r.integer(*s, p, "port", server.port, 0, 65535);
  r.integer(*s, p, "threads", server.threads, 1, 256);
  r.integer(*s, p, "blocking_threads", server.blocking_threads, 1, 256);
  r.integer(*s, p, "blocking_queue", server.blocking_queue, 1, 100000);
  r.integer(*s, p, "max_body_bytes", server.max_body_bytes, 1024, std::int64_t{1} << 30);
  server.max_inflight_body_bytes = std::max<std::size_t>(64 * 1024 * 1024, 4 * server.max_body_bytes);
  r.integer(*s, p, "max_inflight_body_bytes", server.max_inflight_body_bytes, 1024, std::int64_t{1} << 40);
  if (server.max_inflight_body_bytes < server.max_body_bytes) {
    r.fail(p + "/max_inflight_body_bytes",
           "max_inflight_body_bytes (" + std::to_string(server.max_inflight_body_bytes) + ") is less than max_body_bytes (" +
               std::to_string(server.max_body_bytes) + "), so a body of the allowed size could never be received",
           "raise it to a few times max_body_bytes, or leave it out (default: 64 MiB or 4 x max_body_bytes)");
  }
  r.millis(*s, p, "handshake_timeout_ms", server.handshake_timeout, 100, 60000);
  r.millis(*s, p, "read_timeout_ms", server.read_timeout, 100, 3600000);
  r.millis(*s, p, "write_timeout_ms", server.write_timeout, 100, 3600000);
  r.millis(*s, p, "idle_timeout_ms", server.idle_timeout, 100, 3600000);
  r.integer(*s, p, "max_connections", server.max_connections, 1, 1000000);
  r.integer(*s, p, "max_connections_per_address", server.max_connections_per_address, 1, 1000000);
  std::string metrics_listen;
  r.string(*s, p, "metrics_listen", metrics_listen, false, 64);
  if (!metrics_listen.empty()) {
    if (auto endpoint = parseLoopbackEndpoint(metrics_listen)) {
      server.metrics_address = endpoint->first;
      server.metrics_port = endpoint->second;
    } else {
      r.fail(p + "/metrics_listen",
             "'" + metrics_listen +
                 "' is not a loopback address and port: this listener is plain HTTP without client "
                 "certificates or tokens, so it may not be reachable from other hosts",
             "use \"127.0.0.1:9464\" (or \"[::1]:9464\") and scrape from this host; from other hosts, scrape GET "
             "/metrics on the main listener with a token of the metrics role");
    }
  }
  const auto* tls = r.object(*s, p, "tls", true);
  if (tls == nullptr) return;
  const std::string tp = p + "/tls";
  r.checkKeys(*tls, tp, {"cert_file", "key_file", "client_ca_file", "client_cert", "client_crl_file"});
  r.path(*tls, tp, "cert_file", server.tls.cert_file, true, true);
  r.path(*tls, tp, "key_file", server.tls.key_file, true, true);
  std::string mode = "required";
  r.choice(*tls, tp, "client_cert", mode, {"required", "optional", "none"});
  server.tls.client_cert = mode == "required"   ? ClientCertMode::Required
                           : mode == "optional" ? ClientCertMode::Optional
                                                : ClientCertMode::None;
  r.path(*tls, tp, "client_ca_file", server.tls.client_ca_file, server.tls.client_cert != ClientCertMode::None, true);
  r.path(*tls, tp, "client_crl_file", server.tls.client_crl_file, false, true);
  if (!server.tls.client_crl_file.empty() && server.tls.client_cert == ClientCertMode::None) {
    r.fail(tp + "/client_crl_file", "a CRL checks client certificates, but client_cert is \"none\"",
           "set client_cert to \"required\" (or \"optional\"), or remove client_crl_file");
  }
}

void readTokens(Reader& r, const rapidjson::Value& root, std::vector<Token>& tokens) {
  const auto* auth = r.object(root, "", "auth", true);
  if (auth == nullptr) return;
  r.checkKeys(*auth, "/auth", {"tokens"});
  const auto* list = r.array(*auth, "/auth", "tokens", true);
  if (list == nullptr) return;
  std::set<std::string> ids;
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    const std::string p = "/auth/tokens/" + std::to_string(i);
    const auto& t = (*list)[i];
    if (!t.IsObject()) {
      r.fail(p, "expected an object");
      continue;
    }
    r.checkKeys(t, p, {"id", "sha256", "roles", "clinics", "client_certs"});
    Token token;
    r.string(t, p, "id", token.id, true, 64);
    r.string(t, p, "sha256", token.sha256, true, 64);
    if (!token.sha256.empty() && !isHex64(token.sha256)) {
      r.fail(p + "/sha256", "expected 64 lowercase hex characters (the SHA-256 of the token)",
             "make one with: fhir-gateway hash-token (reads the token on stdin)");
    }
    r.strings(t, p, "roles", token.roles, true);
    for (std::size_t k = 0; k < token.roles.size(); ++k) {
      const auto& role = token.roles[k];
      if (!parseRole(role)) {
        r.fail(p + "/roles/" + std::to_string(k), "'" + role + "' is not a role", "allowed: " + std::string(kRoleList));
      }
    }
    r.strings(t, p, "clinics", token.clinics, false);
    // Every route that touches a clinic's data is scoped by the token's clinics (minimum
    // necessary); ingest and compliance tokens exist only to do that, so they must say which.
    const auto holds = [&](std::string_view role) {
      return std::find(token.roles.begin(), token.roles.end(), role) != token.roles.end();
    };
    if ((holds("ingest") || holds("compliance")) && token.clinics.empty()) {
      r.fail(p + "/clinics", "a token with the ingest or compliance role must list the clinics it acts for",
             "list clinic ids, or \"*\" for any clinic");
    }
    if (const auto* certs = r.array(t, p, "client_certs", false)) {
      if (certs->Empty()) {
        r.fail(p + "/client_certs", "an empty list would make the token unusable",
               "list the client certificates the token may be used with, or remove client_certs");
      }
      for (rapidjson::SizeType k = 0; k < certs->Size(); ++k) {
        const std::string cp = p + "/client_certs/" + std::to_string(k);
        const auto& item = (*certs)[k];
        auto binding = item.IsString() ? normalizeCertBinding(std::string_view(item.GetString(), item.GetStringLength()))
                                       : Result<std::string>(makeError(ErrorCode::Config, "expected a string"));
        if (!binding) {
          r.fail(cp, binding.error().message, kCertBindingHint);
          continue;
        }
        token.client_certs.push_back(std::move(binding).value());
      }
    }
    if (!token.id.empty() && !ids.insert(token.id).second) r.fail(p + "/id", "duplicate token id '" + token.id + "'");
    tokens.push_back(std::move(token));
  }
}

void readClinics(Reader& r, const rapidjson::Value& root, std::vector<Clinic>& clinics) {
  const auto* list = r.array(root, "", "clinics", true);
  if (list == nullptr) return;
  std::set<std::string> ids;
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    const std::string p = "/clinics/" + std::to_string(i);
    const auto& c = (*list)[i];
    if (!c.IsObject()) {
      r.fail(p, "expected an object");
      continue;
    }
    r.checkKeys(c, p, {"id", "name", "identifier_system_base", "programs", "time_zone"});
    Clinic clinic;
    r.string(c, p, "id", clinic.id, true, 64);
    if (!clinic.id.empty() && !isSimpleId(clinic.id)) {
      r.fail(p + "/id", "ids may hold letters, digits, '-', '_' and '.' only");
    }
    r.string(c, p, "name", clinic.name, false, 200);
    r.string(c, p, "identifier_system_base", clinic.identifier_system_base, true, 400);
    const auto& base = clinic.identifier_system_base;
    if (!base.empty() && !(base.rfind("https://", 0) == 0 || base.rfind("http://", 0) == 0 || base.rfind("urn:", 0) == 0)) {
      r.fail(p + "/identifier_system_base", "expected an absolute URI (https://..., http://... or urn:...)");
    }
    // Required for every clinic: its consents' date-only bounds are its local days, and a clinic
    // without consents discloses nothing, so every working clinic needs one (docs/privacy.md §5.6).
    r.string(c, p, "time_zone", clinic.time_zone, true, 128);
    if (!clinic.time_zone.empty()) {
      auto zone = clinic.time_zone.front() == '+' || clinic.time_zone.front() == '-'
                      ? Result<std::shared_ptr<const tz::TimeZone>>(
                            makeError(ErrorCode::Config, "a fixed offset does not follow daylight saving time", "",
                                      "use the clinic's IANA zone name, e.g. America/New_York"))
                      : tz::TimeZone::load(clinic.time_zone);
      if (zone) {
        clinic.zone = std::move(zone).value();
      } else {
        r.fail(p + "/time_zone",
               "'" + clinic.time_zone + "' is not a time zone this gateway can read: " + zone.error().message,
               zone.error().hint + " (the zone in which the clinic's consent dates are local days)");
      }
    }
    if (const auto* programs = r.array(c, p, "programs", false)) {
      for (rapidjson::SizeType k = 0; k < programs->Size(); ++k) {
        const std::string pp = p + "/programs/" + std::to_string(k);
        const auto& pr = (*programs)[k];
        if (!pr.IsObject()) {
          r.fail(pp, "expected an object");
          continue;
        }
        r.checkKeys(pr, pp, {"id", "part2", "setting"});
        Program program;
        r.string(pr, pp, "id", program.id, true, 64);
        r.boolean(pr, pp, "part2", program.part2);
        r.choice(pr, pp, "setting", program.setting,
                 {kProgramSettings[0], kProgramSettings[1], kProgramSettings[2], kProgramSettings[3]});
        static_assert(std::size(kProgramSettings) == 4, "offer every program setting above");
        clinic.programs.push_back(std::move(program));
      }
    }
    if (!clinic.id.empty() && !ids.insert(clinic.id).second) r.fail(p + "/id", "duplicate clinic id '" + clinic.id + "'");
    clinics.push_back(std::move(clinic));
  }
}

bool isKid(std::string_view s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

bool isEnvName(std::string_view s);

// A signing key's kid, alg and file (partners[].auth of type smart-backend, and signing_keys[]).
void readSigningKeyFields(Reader& r, const rapidjson::Value& v, const std::string& p, std::string& kid, std::string& alg,
                          fs::path& file) {
  r.string(v, p, "kid", kid, true, 128);
  if (!kid.empty() && !isKid(kid)) {
    r.fail(p + "/kid", "a kid may hold letters, digits, '-', '_' and '.' only (at most 128)",
           "use the kid fhir-gateway keys new-signing-key printed");
  }
  r.string(v, p, "alg", alg, true, 16);
  if (!alg.empty() && alg != "RS384" && alg != "ES384") {
    r.fail(p + "/alg", "'" + alg + "' is not allowed",
           "allowed: RS384, ES384 (the algorithms SMART Backend Services names)");
  }
  r.path(v, p, "private_key_file", file, true, true);
  if (!file.empty() && r.checkingFiles() && fs::exists(file)) {
    if (auto mode = crypto::checkPrivateFile(file, "the signing key file", json::pointerToPath(p + "/private_key_file"));
        !mode) {
      r.fail(p + "/private_key_file", mode.error().message, mode.error().hint);
    }
  }
}

// partners[].auth: an OAuth 2.0 token source. Each type takes its own keys; the others are refused.
void readPartnerAuth(Reader& r, const rapidjson::Value& partner_value, const std::string& partner_pointer,
                     Partner& partner) {
  const auto* v = r.object(partner_value, partner_pointer, "auth", false);
  if (v == nullptr) return;
  const std::string p = partner_pointer + "/auth";
  auto& auth = partner.auth;
  r.string(*v, p, "type", auth.type, true, 32);
  const bool smart = auth.type == "smart-backend";
  const bool secret = auth.type == "client-credentials";
  if (!auth.type.empty() && !smart && !secret) {
    r.fail(p + "/type", "'" + auth.type + "' is not allowed",
           "allowed: smart-backend (signed JWT assertion, RFC 7523), client-credentials (client secret)");
    return;
  }
  if (smart) {
    r.checkKeys(*v, p, {"type", "token_url", "client_id", "scope", "private_key_file", "alg", "kid"});
  } else if (secret) {
    r.checkKeys(
        *v, p, {"type", "token_url", "client_id", "scope", "client_secret_file", "client_secret_env", "client_auth_method"});
  }
  r.string(*v, p, "token_url", auth.token_url, false, 2000);
  if (!auth.token_url.empty() && auth.token_url.rfind("https://", 0) != 0) {
    r.fail(p + "/token_url", "the token endpoint is reached over TLS only: the URL must start with https://",
           "use the partner's https token URL, or leave token_url out to read it from "
           "{fhir_base_url}/.well-known/smart-configuration");
  }
  r.string(*v, p, "client_id", auth.client_id, true, 400);
  r.string(*v, p, "scope", auth.scope, true, 4000);
  if (smart) {
    readSigningKeyFields(r, *v, p, auth.kid, auth.alg, auth.private_key_file);
  } else if (secret) {
    r.path(*v, p, "client_secret_file", auth.client_secret_file, false, true);
    r.string(*v, p, "client_secret_env", auth.client_secret_env, false, 200);
    if (auth.client_secret_file.empty() == auth.client_secret_env.empty()) {
      r.fail(p, "client-credentials needs exactly one of client_secret_file and client_secret_env",
             "put the client secret in a file (chmod 600) or an environment variable; never in the config");
    }
    if (!auth.client_secret_env.empty() && !isEnvName(auth.client_secret_env)) {
      r.fail(p + "/client_secret_env", "expected the name of an environment variable (letters, digits, '_')");
    }
    if (!auth.client_secret_file.empty() && r.checkingFiles() && fs::exists(auth.client_secret_file)) {
      if (auto mode = crypto::checkPrivateFile(auth.client_secret_file, "the client secret file",
                                               json::pointerToPath(p + "/client_secret_file"));
          !mode) {
        r.fail(p + "/client_secret_file", mode.error().message, mode.error().hint);
      }
    }
    r.choice(*v, p, "client_auth_method", auth.client_auth_method, {"client_secret_basic", "client_secret_post"});
  }
  if (!partner.bearer_token_env.empty()) {
    r.fail(p, "a partner takes either a static token (bearer_token_env) or an OAuth token source (auth), not both",
           "remove bearer_token_env or auth");
  }
}

// signing_keys[]: keys published in the JWKS besides those partners sign with (rotation).
void readSigningKeys(Reader& r, const rapidjson::Value& root, std::vector<SigningKeyEntry>& keys) {
  const auto* list = r.array(root, "", "signing_keys", false);
  if (list == nullptr) return;
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    const std::string p = "/signing_keys/" + std::to_string(i);
    const auto& v = (*list)[i];
    if (!v.IsObject()) {
      r.fail(p, "expected an object");
      continue;
    }
    r.checkKeys(v, p, {"kid", "alg", "private_key_file", "status"});
    SigningKeyEntry key;
    readSigningKeyFields(r, v, p, key.kid, key.alg, key.private_key_file);
    std::string status = "active";
    r.choice(v, p, "status", status, {"active", "retired"});
    key.retired = status == "retired";
    keys.push_back(std::move(key));
  }
}

// An HTTP CONNECT proxy: http://host:port, with an optional user:password file (private).
void readProxy(Reader& r, const rapidjson::Value& v, const std::string& p, std::string& url, fs::path& auth_file) {
  r.string(v, p, "proxy_url", url, false, 2000);
  if (!url.empty() && url.rfind("http://", 0) != 0) {
    r.fail(p + "/proxy_url",
           "a proxy is reached with HTTP CONNECT: the URL must start with http:// (TLS to the "
           "partner runs end to end inside the tunnel)",
           "e.g. \"proxy_url\": \"http://proxy.example.org:3128\"");
  }
  r.path(v, p, "proxy_auth_file", auth_file, false, true);
  if (!auth_file.empty() && url.empty()) r.fail(p + "/proxy_auth_file", "proxy_auth_file needs proxy_url");
  if (!auth_file.empty() && r.checkingFiles() && fs::exists(auth_file)) {
    if (auto mode = crypto::checkPrivateFile(auth_file, "the proxy credentials file",
                                             json::pointerToPath(p + "/proxy_auth_file"));
        !mode) {
      r.fail(p + "/proxy_auth_file", mode.error().message, mode.error().hint);
    }
  }
}

void readPartners(Reader& r, const rapidjson::Value& root, std::vector<Partner>& partners) {
  const auto* list = r.array(root, "", "partners", true);
  if (list == nullptr) return;
  std::set<std::string> ids;
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    const std::string p = "/partners/" + std::to_string(i);
    const auto& v = (*list)[i];
    if (!v.IsObject()) {
      r.fail(p, "expected an object");
      continue;
    }
    r.checkKeys(v, p,
                {"id",
                 "name",
                 "fhir_base_url",
                 "ca_file",
                 "client_cert_file",
                 "client_key_file",
                 "bearer_token_env",
                 "auth",
                 "purpose_of_use",
                 "max_bundle_entries",
                 "write_mode",
                 "capability_refresh_hours",
                 "connect_timeout_ms",
                 "request_timeout_ms",
                 "retry",
                 "proxy_url",
                 "proxy_auth_file",
                 "max_concurrent_requests",
                 "max_requests_per_second",
                 "circuit_breaker"});
    Partner partner;
    r.string(v, p, "id", partner.id, true, 64);
    if (!partner.id.empty() && !isSimpleId(partner.id)) {
      r.fail(p + "/id", "ids may hold letters, digits, '-', '_' and '.' only");
    }
    r.string(v, p, "name", partner.name, false, 200);
    r.string(v, p, "fhir_base_url", partner.fhir_base_url, true, 2000);
    if (!partner.fhir_base_url.empty() && partner.fhir_base_url.rfind("https://", 0) != 0) {
      r.fail(p + "/fhir_base_url", "partners are reached over TLS only: the URL must start with https://");
    }
    r.path(v, p, "ca_file", partner.ca_file, true, true);
    r.path(v, p, "client_cert_file", partner.client_cert_file, false, true);
    r.path(v, p, "client_key_file", partner.client_key_file, false, true);
    if (partner.client_cert_file.empty() != partner.client_key_file.empty()) {
      r.fail(p, "client_cert_file and client_key_file go together", "set both for mutual TLS, or neither");
    }
    r.string(v, p, "bearer_token_env", partner.bearer_token_env, false, 200);
    readPartnerAuth(r, v, p, partner);
    r.choice(v, p, "purpose_of_use", partner.purpose_of_use, {"TREAT", "HPAYMT", "HOPERAT"});
    r.integer(v, p, "max_bundle_entries", partner.max_bundle_entries, 2, 1000);
    r.choice(v, p, "write_mode", partner.write_mode, {"auto", "transaction", "batch", "per-resource"});
    int refresh_hours = static_cast<int>(partner.capability_refresh.count());
    r.integer(v, p, "capability_refresh_hours", refresh_hours, 1, 720);
    partner.capability_refresh = std::chrono::hours(refresh_hours);
    r.millis(v, p, "connect_timeout_ms", partner.connect_timeout, 100, 600000);
    r.millis(v, p, "request_timeout_ms", partner.request_timeout, 100, 3600000);
    if (const auto* retry = r.object(v, p, "retry", false)) {
      const std::string rp = p + "/retry";
      r.checkKeys(*retry, rp, {"initial_ms", "max_ms", "max_attempts"});
      r.millis(*retry, rp, "initial_ms", partner.retry.initial, 10, 3600000);
      r.millis(*retry, rp, "max_ms", partner.retry.max, 10, 86400000);
      r.integer(*retry, rp, "max_attempts", partner.retry.max_attempts, 0, 1000000);
      if (partner.retry.max < partner.retry.initial) r.fail(rp + "/max_ms", "max_ms must be at least initial_ms");
    }
    readProxy(r, v, p, partner.proxy_url, partner.proxy_auth_file);
    r.integer(v, p, "max_concurrent_requests", partner.max_concurrent_requests, 1, 64);
    r.integer(v, p, "max_requests_per_second", partner.max_requests_per_second, 0, 100000);
    if (const auto* breaker = r.object(v, p, "circuit_breaker", false)) {
      const std::string bp = p + "/circuit_breaker";
      r.checkKeys(*breaker, bp, {"failure_threshold", "open_seconds", "max_open_seconds"});
      auto& cb = partner.circuit_breaker;
      r.integer(*breaker, bp, "failure_threshold", cb.failure_threshold, 1, 1000);
      int open_seconds = static_cast<int>(cb.open.count()), max_open_seconds = static_cast<int>(cb.max_open.count());
      r.integer(*breaker, bp, "open_seconds", open_seconds, 1, 86400);
      r.integer(*breaker, bp, "max_open_seconds", max_open_seconds, 1, 86400);
      cb.open = std::chrono::seconds(open_seconds);
      cb.max_open = std::chrono::seconds(max_open_seconds);
      if (cb.max_open < cb.open) r.fail(bp + "/max_open_seconds", "max_open_seconds must be at least open_seconds");
    }
    if (!partner.id.empty() && !ids.insert(partner.id).second) {
      r.fail(p + "/id", "duplicate partner id '" + partner.id + "'");
    }
    partners.push_back(std::move(partner));
  }
}

bool isEnvName(std::string_view s) {
  if (s.empty() || s.size() > 200 || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

void readPrivacy(Reader& r, const rapidjson::Value& root, Privacy& privacy) {
  const std::string p = "/privacy";
  const auto* v = json::find(root, "privacy");
  if (v == nullptr) {
    r.fail(p, "missing required section 'privacy': stored records are encrypted under a master key it names",
           "add \"privacy\": {\"master_key_file\": \"FILE\"}; make the key with: "
           "openssl rand -hex 32 > FILE && chmod 600 FILE");
    return;
  }
  if (!v->IsObject()) {
    r.fail(p, "expected an object");
    return;
  }
  r.checkKeys(*v, p,
              {"master_key_file", "master_key_env", "retention_days", "purge_interval_minutes", "part2_notice",
               "policy_version"});
  r.path(*v, p, "master_key_file", privacy.master_key_file, false, true);
  r.string(*v, p, "master_key_env", privacy.master_key_env, false, 200);
  if (!privacy.master_key_env.empty() && !isEnvName(privacy.master_key_env)) {
    r.fail(p + "/master_key_env", "expected the name of an environment variable (letters, digits, '_'), not a key",
           "put the key in the variable, e.g. GW_MASTER_KEY, and its name here");
  }
  if (privacy.master_key_file.empty() == privacy.master_key_env.empty()) {
    r.fail(p,
           privacy.master_key_file.empty() ? "no master key source: set master_key_file or master_key_env"
                                           : "master_key_file and master_key_env are both set: set exactly one",
           "make a key with: openssl rand -hex 32 > FILE && chmod 600 FILE");
  }
  if (const auto* days = r.object(*v, p, "retention_days", false)) {
    const std::string dp = p + "/retention_days";
    r.checkKeys(*days, dp, {"general", "sud", "mh"});
    r.integer(*days, dp, "general", privacy.retention_days.general, 0, 36500);
    r.integer(*days, dp, "sud", privacy.retention_days.sud, 0, 36500);
    r.integer(*days, dp, "mh", privacy.retention_days.mh, 0, 36500);
  }
  std::int64_t minutes = privacy.purge_interval.count();
  r.integer(*v, p, "purge_interval_minutes", minutes, 1, 10080);
  privacy.purge_interval = std::chrono::minutes(minutes);
  if (v->HasMember("part2_notice")) {
    r.string(*v, p, "part2_notice", privacy.part2_notice, true, 4000);
  }
  if (v->HasMember("policy_version")) {
    r.string(*v, p, "policy_version", privacy.policy_version, true, 64);
  }
}

// Whether `path` is inside `folder` (or is it), after resolving the parts of both that exist,
// so a symlink or a "../" does not hide the database folder.
bool insideFolder(const fs::path& path, const fs::path& folder) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(path, ec);
  const fs::path f = fs::weakly_canonical(folder.empty() ? fs::path(".") : folder, ec);
  const fs::path rel = p.lexically_relative(f);
  return !rel.empty() && *rel.begin() != "..";
}

// storage: the SQLite file, or a PostgreSQL server (exactly one).
void readStorage(Reader& r, const rapidjson::Value& v, Storage& storage) {
  const std::string p = "/storage";
  r.checkKeys(v, p, {"sqlite_path", "synchronous", "postgres"});
  r.path(v, p, "sqlite_path", storage.sqlite_path, false, false);
  std::string sync = "full";
  r.choice(v, p, "synchronous", sync, {"full", "normal"});
  storage.synchronous_full = sync == "full";
  if (const auto* pg = r.object(v, p, "postgres", false)) {
    const std::string q = p + "/postgres";
    auto& out = storage.postgres.emplace();
    r.checkKeys(*pg, q,
                {"dsn_file", "dsn_env", "pool_size", "connect_timeout_seconds", "sslmode", "sslrootcert", "sslcert",
                 "sslkey"});
    r.path(*pg, q, "dsn_file", out.dsn_file, false, true);
    r.string(*pg, q, "dsn_env", out.dsn_env, false, 200);
    if (!out.dsn_env.empty() && !isEnvName(out.dsn_env)) {
      r.fail(q + "/dsn_env", "expected the name of an environment variable (letters, digits, '_'), not a connection string",
             "put the connection string in that variable, e.g. GATEWAY_POSTGRES_DSN");
    }
    if (out.dsn_file.empty() == out.dsn_env.empty()) {
      r.fail(q,
             out.dsn_file.empty() ? "no connection string source: set dsn_file or dsn_env"
                                  : "dsn_file and dsn_env are both set: set exactly one",
             "dsn_file names a file (mode 0600) holding e.g. \"host=db.example port=5432 dbname=gateway user=gateway "
             "password=...\"");
    }
    r.integer(*pg, q, "pool_size", out.pool_size, 1, 1000);
    r.integer(*pg, q, "connect_timeout_seconds", out.connect_timeout_seconds, 1, 600);
    r.choice(*pg, q, "sslmode", out.sslmode, {"verify-full", "verify-ca", "require", "disable"});
    r.path(*pg, q, "sslrootcert", out.sslrootcert, false, true);
    r.path(*pg, q, "sslcert", out.sslcert, false, true);
    r.path(*pg, q, "sslkey", out.sslkey, false, true);
    if ((out.sslmode == "verify-full" || out.sslmode == "verify-ca") && out.sslrootcert.empty()) {
      r.fail(q + "/sslrootcert",
             "sslmode " + out.sslmode + " checks the server's certificate, but no CA file is given to check it with",
             "set sslrootcert to the CA certificate(s) that signed the server's certificate (or sslmode \"disable\" for "
             "a server on this host's loopback)");
    }
    if (out.sslcert.empty() != out.sslkey.empty()) {
      r.fail(q, "sslcert and sslkey go together: one is set without the other", "set both, or neither");
    }
  }
  if (storage.sqlite_path.empty() == !storage.postgres.has_value()) {
    r.fail(p,
           storage.postgres ? "both sqlite_path and postgres are set: the gateway uses one database"
                            : "no database: set sqlite_path (an SQLite file) or postgres (a PostgreSQL server)",
           "keep exactly one of the two (docs/architecture.md §5.3 says when PostgreSQL is the better choice)");
  }
}

void readAudit(Reader& r, const rapidjson::Value& root, const Storage& storage, Audit& audit) {
  const auto* v = r.object(root, "", "audit", false);
  if (v == nullptr) return;
  r.checkKeys(*v, "/audit", {"anchor", "verify_interval_minutes", "accounting_years"});
  std::int64_t verify_minutes = audit.verify_interval.count();
  r.integer(*v, "/audit", "verify_interval_minutes", verify_minutes, 0, 10080);
  audit.verify_interval = std::chrono::minutes(verify_minutes);
  std::int64_t years = audit.accounting_years;
  r.integer(*v, "/audit", "accounting_years", years, 1, 10);
  audit.accounting_years = static_cast<int>(years);
  const auto* anchor = r.object(*v, "/audit", "anchor", false);
  if (anchor == nullptr) return;
  const std::string p = "/audit/anchor";
  r.checkKeys(*anchor, p, {"file", "syslog", "interval_seconds"});
  r.path(*anchor, p, "file", audit.anchor.file, false, false);
  r.boolean(*anchor, p, "syslog", audit.anchor.syslog);
  std::int64_t seconds = audit.anchor.interval.count();
  r.integer(*anchor, p, "interval_seconds", seconds, 1, 86400);
  audit.anchor.interval = std::chrono::seconds(seconds);
  const auto& file = audit.anchor.file;
  if (!file.empty() && !storage.sqlite_path.empty() && insideFolder(file, storage.sqlite_path.parent_path())) {
    r.fail(p + "/file",
           "'" + file.string() + "' is inside the database folder '" + storage.sqlite_path.parent_path().string() +
               "': whoever can write the database could rewrite the anchors too",
           "put it on another path owned by the gateway's user, e.g. /var/log/fhir-gateway/audit-anchors.log, and "
           "make it append-only (chattr +a FILE)");
  }
}

void readConsole(Reader& r, const rapidjson::Value& root, Console& console) {
  const auto* v = r.object(root, "", "console", false);
  if (v == nullptr) return;
  const std::string p = "/console";
  r.checkKeys(*v, p, {"directory", "listen", "session_idle_timeout_seconds", "session_absolute_timeout_seconds"});
  r.path(*v, p, "directory", console.directory, true, true);
  std::int64_t idle = console.session_idle.count();
  r.integer(*v, p, "session_idle_timeout_seconds", idle, 1, 86400);
  console.session_idle = std::chrono::seconds(idle);
  std::int64_t absolute = console.session_absolute.count();
  r.integer(*v, p, "session_absolute_timeout_seconds", absolute, 1, 7 * 86400);
  console.session_absolute = std::chrono::seconds(absolute);
  if (absolute < idle) {
    r.fail(p + "/session_absolute_timeout_seconds", "the absolute session timeout is shorter than the idle timeout",
           "make it at least session_idle_timeout_seconds (defaults: 28800 and 900)");
  }
  const std::string lp = p + "/listen";
  const auto* listen = r.object(*v, p, "listen", true);
  if (listen == nullptr) return;
  r.checkKeys(*listen, lp, {"address", "port", "tls"});
  r.string(*listen, lp, "address", console.address, false, 255);
  r.integer(*listen, lp, "port", console.port, 0, 65535);
  const auto* tls = r.object(*listen, lp, "tls", true);
  if (tls == nullptr) return;
  const std::string tp = lp + "/tls";
  r.checkKeys(*tls, tp, {"cert_file", "key_file", "client_ca_file", "client_cert"});
  r.path(*tls, tp, "cert_file", console.tls.cert_file, true, true);
  r.path(*tls, tp, "key_file", console.tls.key_file, true, true);
  std::string mode = "none";
  r.choice(*tls, tp, "client_cert", mode, {"required", "optional", "none"});
  console.tls.client_cert = mode == "required"   ? ClientCertMode::Required
                            : mode == "optional" ? ClientCertMode::Optional
                                                 : ClientCertMode::None;
  r.path(*tls, tp, "client_ca_file", console.tls.client_ca_file, console.tls.client_cert != ClientCertMode::None, true);
}

// References between sections: a token or partner naming a clinic that is not configured; a
// token bound to client certificates on a server that asks for none.
// One kid names one key: the JWKS a partner verifies with must not hold two keys under one kid,
// and a retired key no longer signs.
void checkSigningKids(Reader& r, const GatewayConfig& c) {
  std::map<std::string, fs::path> files;
  const auto claim = [&](const std::string& pointer, const std::string& kid, const fs::path& file) {
    if (kid.empty()) return;
    auto [it, inserted] = files.emplace(kid, file);
    if (!inserted && it->second != file) {
      r.fail(pointer + "/kid", "kid '" + kid + "' already names another key file ('" + it->second.string() + "')",
             "give every signing key its own kid (fhir-gateway keys new-signing-key prints one)");
    }
  };
  for (std::size_t i = 0; i < c.partners.size(); ++i) {
    const auto& auth = c.partners[i].auth;
    if (auth.type == "smart-backend") claim("/partners/" + std::to_string(i) + "/auth", auth.kid, auth.private_key_file);
  }
  for (std::size_t i = 0; i < c.signing_keys.size(); ++i) {
    const auto& key = c.signing_keys[i];
    claim("/signing_keys/" + std::to_string(i), key.kid, key.private_key_file);
    if (!key.retired) continue;
    for (const auto& partner : c.partners) {
      if (partner.auth.type == "smart-backend" && partner.auth.kid == key.kid) {
        r.fail("/signing_keys/" + std::to_string(i) + "/status",
               "key '" + key.kid + "' is retired but partner '" + partner.id + "' still signs with it",
               "switch the partner's auth to the new key first, or set the status to \"active\"");
      }
    }
  }
}

void checkReferences(Reader& r, const GatewayConfig& c) {
  checkSigningKids(r, c);
  for (std::size_t i = 0; i < c.tokens.size(); ++i) {
    if (!c.tokens[i].client_certs.empty() && c.server.tls.client_cert == ClientCertMode::None) {
      r.fail("/auth/tokens/" + std::to_string(i) + "/client_certs",
             "the token is bound to client certificates, but server.tls.client_cert is \"none\" (no request could use it)",
             "set server.tls.client_cert to \"required\" (or \"optional\"), or remove client_certs");
    }
    for (std::size_t k = 0; k < c.tokens[i].clinics.size(); ++k) {
      const auto& id = c.tokens[i].clinics[k];
      if (id != "*" && c.findClinic(id) == nullptr) {
        r.fail("/auth/tokens/" + std::to_string(i) + "/clinics/" + std::to_string(k),
               "clinic '" + id + "' is not configured", "add it under clinics, or use \"*\" for any clinic");
      }
    }
  }
}

// Development material whose secret is public (README tokens) or throw-away (the development
// master key) never protects real data: only a config that says it is a development deployment
// may use it.
void refuseDevelopmentMaterial(Reader& r, const GatewayConfig& c) {
  if (c.development) return;
  const std::string fix = " or, for a throw-away test setup only, add \"deployment\": \"development\"";
  for (std::size_t i = 0; i < c.tokens.size(); ++i) {
    if (isPublishedDevelopmentToken(c.tokens[i].sha256)) {
      r.fail("/auth/tokens/" + std::to_string(i) + "/sha256",
             "token '" + c.tokens[i].id + "' is a published development token (its text is in the README)",
             "make a new token: head -c 32 /dev/urandom | base64 | tee token.txt | fhir-gateway hash-token;" + fix);
    }
  }
  if (isDevelopmentFile(c.privacy.master_key_file)) {
    r.fail("/privacy/master_key_file", "the master key is the development key (certs/make-dev-certs.sh)",
           "make a key apart from the development PKI: openssl rand -hex 32 > FILE && chmod 600 FILE;" + fix);
  }
}

}  // namespace

const Clinic* GatewayConfig::findClinic(std::string_view id) const {
  for (const auto& c : clinics) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

const Partner* GatewayConfig::findPartner(std::string_view id) const {
  for (const auto& p : partners) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

LoadResult loadText(std::string_view text, const fs::path& base_dir, std::string_view label, bool check_files) {
  LoadResult result;
  rapidjson::Document doc;
  if (auto parsed = json::parseStrictFile(std::string(label), text, doc, true); !parsed) {
    Error e = parsed.error();
    e.code = ErrorCode::Config;
    result.errors.push_back(std::move(e));
    return result;
  }
  if (!doc.IsObject()) {
    result.errors.push_back(makeError(ErrorCode::Config, "the config must be a JSON object", std::string(label) + ":1:1"));
    return result;
  }
  const auto locator = json::JsonLocations::build(text, true);
  Reader r(locator, text, label, base_dir, check_files, result.errors);
  GatewayConfig c;
  r.checkKeys(doc, "",
              {"deployment", "instance_id", "server", "auth", "storage", "mapping", "clinics", "partners", "signing_keys",
               "delivery", "privacy", "audit", "console", "logging"});
  std::string deployment = "production";
  r.choice(doc, "", "deployment", deployment, {"production", "development"});
  c.development = deployment == "development";
  r.string(doc, "", "instance_id", c.instance_id, false, 64);
  if (!std::all_of(c.instance_id.begin(), c.instance_id.end(),
                   [](unsigned char ch) { return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.'; })) {
    r.fail("/instance_id", "expected letters, digits, '-', '_' and '.' only", "e.g. \"gw-east-1\"");
  }
  readServer(r, doc, c.server);
  readTokens(r, doc, c.tokens);
  if (const auto* storage = r.object(doc, "", "storage", true)) readStorage(r, *storage, c.storage);
  if (const auto* mapping = r.object(doc, "", "mapping", true)) {
    r.checkKeys(*mapping, "/mapping", {"format_dir", "profiles_dir", "csv_mappers_dir"});
    r.path(*mapping, "/mapping", "format_dir", c.mapping.format_dir, true, true);
    r.path(*mapping, "/mapping", "profiles_dir", c.mapping.profiles_dir, true, true);
    r.path(*mapping, "/mapping", "csv_mappers_dir", c.mapping.csv_mappers_dir, false, true);
  }
  readClinics(r, doc, c.clinics);
  readPartners(r, doc, c.partners);
  readSigningKeys(r, doc, c.signing_keys);
  if (const auto* delivery = r.object(doc, "", "delivery", false)) {
    r.checkKeys(*delivery, "/delivery", {"poll_interval_ms", "batch_size", "proxy_url", "proxy_auth_file"});
    r.millis(*delivery, "/delivery", "poll_interval_ms", c.delivery.poll_interval, 10, 60000);
    r.integer(*delivery, "/delivery", "batch_size", c.delivery.batch_size, 1, 10000);
    readProxy(r, *delivery, "/delivery", c.delivery.proxy_url, c.delivery.proxy_auth_file);
  }
  // The global proxy serves every partner that names none of its own.
  for (auto& partner : c.partners) {
    if (!partner.proxy_url.empty()) continue;
    partner.proxy_url = c.delivery.proxy_url;
    partner.proxy_auth_file = c.delivery.proxy_auth_file;
  }
  readPrivacy(r, doc, c.privacy);
  readAudit(r, doc, c.storage, c.audit);
  readConsole(r, doc, c.console);
  if (c.console.enabled() && c.console.address == c.server.address && c.console.port == c.server.port &&
      c.console.port != 0) {
    r.fail("/console/listen/port", "the console listener has the main listener's address and port",
           "give the console a port of its own, e.g. 8444");
  }
  if (const auto* logging = r.object(doc, "", "logging", false)) {
    r.checkKeys(*logging, "/logging", {"level", "format"});
    std::string level = "info";
    r.choice(*logging, "/logging", "level", level, {"debug", "info", "warn", "error"});
    log::parseLevel(level, c.log_level);
    std::string format = "text";
    r.choice(*logging, "/logging", "format", format, {"text", "json"});
    log::parseFormat(format, c.log_format);
  }
  checkReferences(r, c);
  refuseDevelopmentMaterial(r, c);
  if (result.errors.empty()) result.config = std::move(c);
  return result;
}

LoadResult loadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back(makeError(ErrorCode::Config, "cannot read the config file", file.string(),
                                      "check the path given to --config and its permissions"));
    return result;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto result = loadText(buffer.str(), fs::absolute(file).parent_path(), file.string());
  if (result.config) result.config->source_file = fs::absolute(file);
  return result;
}

std::string instanceId(const GatewayConfig& config) {
  if (!config.instance_id.empty()) return config.instance_id;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(*host ? host : "gateway") + "-" + std::to_string(::getpid());
}

Result<std::string> loadPostgresDsn(const PostgresStorage& postgres) {
  std::string dsn;
  if (!postgres.dsn_file.empty()) {
    GW_TRY(
        crypto::checkPrivateFile(postgres.dsn_file, "the PostgreSQL connection string file", "storage.postgres.dsn_file"));
    std::ifstream in(postgres.dsn_file, std::ios::binary);
    if (!in) {
      return makeError(ErrorCode::Config, "cannot open the PostgreSQL connection string file", postgres.dsn_file.string(),
                       "check that the gateway's user owns the file");
    }
    dsn.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else if (const char* value = std::getenv(postgres.dsn_env.c_str()); value && *value) {
    dsn = value;
  } else {
    return makeError(ErrorCode::Config, "the environment variable " + postgres.dsn_env + " is not set or empty",
                     "storage.postgres.dsn_env", "set it to the libpq connection string, e.g. from a secret store");
  }
  while (!dsn.empty() && std::isspace(static_cast<unsigned char>(dsn.back()))) dsn.pop_back();
  if (dsn.empty()) {
    return makeError(ErrorCode::Config, "the PostgreSQL connection string is empty", "storage.postgres",
                     "put e.g. \"host=db.example port=5432 dbname=gateway user=gateway password=...\" there");
  }
  return dsn;
}

Result<crypto::SecretKey> loadMasterKey(const Privacy& privacy) {
  if (!privacy.master_key_file.empty()) return crypto::loadKeyFile(privacy.master_key_file);
  if (!privacy.master_key_env.empty()) return crypto::loadKeyFromEnv(privacy.master_key_env);
  return makeError(ErrorCode::Config, "no master key source is configured", "privacy",
                   "set privacy.master_key_file or privacy.master_key_env");
}

std::string redactedJson(const GatewayConfig& c) {
  // Same shape and keys as the config file, so the output can be read back; token hashes are
  // the only secrets a config holds (partner tokens live in environment variables).
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  auto num = [&](const char* key, std::int64_t value) {
    w.Key(key);
    w.Int64(value);
  };
  auto list = [&](const char* key, const std::vector<std::string>& values) {
    w.Key(key);
    w.StartArray();
    for (const auto& v : values) w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
    w.EndArray();
  };
  auto optional_path = [&](const char* key, const fs::path& p) {
    if (!p.empty()) str(key, p.string());
  };
  w.StartObject();
  str("deployment", c.development ? "development" : "production");
  if (!c.instance_id.empty()) str("instance_id", c.instance_id);
  w.Key("server");
  w.StartObject();
  str("address", c.server.address);
  num("port", c.server.port);
  num("threads", c.server.threads);
  num("blocking_threads", c.server.blocking_threads);
  num("blocking_queue", c.server.blocking_queue);
  num("max_body_bytes", static_cast<std::int64_t>(c.server.max_body_bytes));
  num("max_inflight_body_bytes", static_cast<std::int64_t>(c.server.max_inflight_body_bytes));
  num("handshake_timeout_ms", c.server.handshake_timeout.count());
  num("read_timeout_ms", c.server.read_timeout.count());
  num("write_timeout_ms", c.server.write_timeout.count());
  num("idle_timeout_ms", c.server.idle_timeout.count());
  num("max_connections", static_cast<std::int64_t>(c.server.max_connections));
  num("max_connections_per_address", static_cast<std::int64_t>(c.server.max_connections_per_address));
  if (!c.server.metrics_address.empty()) {
    const bool v6 = c.server.metrics_address.find(':') != std::string::npos;
    str("metrics_listen", (v6 ? "[" + c.server.metrics_address + "]" : c.server.metrics_address) + ":" +
                              std::to_string(c.server.metrics_port));
  }
  w.Key("tls");
  w.StartObject();
  str("cert_file", c.server.tls.cert_file.string());
  str("key_file", c.server.tls.key_file.string());
  optional_path("client_ca_file", c.server.tls.client_ca_file);
  optional_path("client_crl_file", c.server.tls.client_crl_file);
  str("client_cert", c.server.tls.client_cert == ClientCertMode::Required   ? "required"
                     : c.server.tls.client_cert == ClientCertMode::Optional ? "optional"
                                                                            : "none");
  w.EndObject();
  w.EndObject();

  w.Key("auth");
  w.StartObject();
  w.Key("tokens");
  w.StartArray();
  for (const auto& t : c.tokens) {
    w.StartObject();
    str("id", t.id);
    str("sha256", "<redacted>");
    list("roles", t.roles);
    list("clinics", t.clinics);
    if (!t.client_certs.empty()) list("client_certs", t.client_certs);  // fingerprints and subjects: not secret
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  w.Key("storage");
  w.StartObject();
  optional_path("sqlite_path", c.storage.sqlite_path);
  str("synchronous", c.storage.synchronous_full ? "full" : "normal");
  if (const auto& pg = c.storage.postgres) {
    w.Key("postgres");
    w.StartObject();
    optional_path("dsn_file", pg->dsn_file);  // where the connection string is, never the string
    if (!pg->dsn_env.empty()) str("dsn_env", pg->dsn_env);
    num("pool_size", pg->pool_size);
    num("connect_timeout_seconds", pg->connect_timeout_seconds);
    str("sslmode", pg->sslmode);
    optional_path("sslrootcert", pg->sslrootcert);
    optional_path("sslcert", pg->sslcert);
    optional_path("sslkey", pg->sslkey);
    w.EndObject();
  }
  w.EndObject();
  w.Key("mapping");
  w.StartObject();
  str("format_dir", c.mapping.format_dir.string());
  str("profiles_dir", c.mapping.profiles_dir.string());
  if (!c.mapping.csv_mappers_dir.empty()) str("csv_mappers_dir", c.mapping.csv_mappers_dir.string());
  w.EndObject();

  w.Key("clinics");
  w.StartArray();
  for (const auto& cl : c.clinics) {
    w.StartObject();
    str("id", cl.id);
    if (!cl.name.empty()) str("name", cl.name);
    str("identifier_system_base", cl.identifier_system_base);
    str("time_zone", cl.time_zone);
    w.Key("programs");
    w.StartArray();
    for (const auto& p : cl.programs) {
      w.StartObject();
      str("id", p.id);
      w.Key("part2");
      w.Bool(p.part2);
      if (!p.setting.empty()) str("setting", p.setting);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();

  w.Key("partners");
  w.StartArray();
  for (const auto& p : c.partners) {
    w.StartObject();
    str("id", p.id);
    if (!p.name.empty()) str("name", p.name);
    str("fhir_base_url", p.fhir_base_url);
    str("ca_file", p.ca_file.string());
    optional_path("client_cert_file", p.client_cert_file);
    optional_path("client_key_file", p.client_key_file);
    if (!p.bearer_token_env.empty()) str("bearer_token_env", p.bearer_token_env);  // the name, never the value
    if (p.auth.enabled()) {
      w.Key("auth");
      w.StartObject();
      str("type", p.auth.type);
      if (!p.auth.token_url.empty()) str("token_url", p.auth.token_url);
      str("client_id", p.auth.client_id);
      str("scope", p.auth.scope);
      if (p.auth.type == "smart-backend") {
        str("private_key_file", p.auth.private_key_file.string());  // where the key is, never the key
        str("alg", p.auth.alg);
        str("kid", p.auth.kid);
      } else {
        optional_path("client_secret_file", p.auth.client_secret_file);  // never the secret
        if (!p.auth.client_secret_env.empty()) str("client_secret_env", p.auth.client_secret_env);
        str("client_auth_method", p.auth.client_auth_method);
      }
      w.EndObject();
    }
    str("purpose_of_use", p.purpose_of_use);
    num("max_bundle_entries", p.max_bundle_entries);
    str("write_mode", p.write_mode);
    num("capability_refresh_hours", p.capability_refresh.count());
    num("connect_timeout_ms", p.connect_timeout.count());
    num("request_timeout_ms", p.request_timeout.count());
    if (!p.proxy_url.empty()) str("proxy_url", p.proxy_url);
    optional_path("proxy_auth_file", p.proxy_auth_file);  // where the credentials are, never them
    w.Key("retry");
    w.StartObject();
    num("initial_ms", p.retry.initial.count());
    num("max_ms", p.retry.max.count());
    num("max_attempts", p.retry.max_attempts);
    w.EndObject();
    num("max_concurrent_requests", p.max_concurrent_requests);
    num("max_requests_per_second", p.max_requests_per_second);
    w.Key("circuit_breaker");
    w.StartObject();
    num("failure_threshold", p.circuit_breaker.failure_threshold);
    num("open_seconds", p.circuit_breaker.open.count());
    num("max_open_seconds", p.circuit_breaker.max_open.count());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();

  if (!c.signing_keys.empty()) {
    w.Key("signing_keys");
    w.StartArray();
    for (const auto& k : c.signing_keys) {
      w.StartObject();
      str("kid", k.kid);
      str("alg", k.alg);
      str("private_key_file", k.private_key_file.string());
      str("status", k.retired ? "retired" : "active");
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("delivery");
  w.StartObject();
  num("poll_interval_ms", c.delivery.poll_interval.count());
  num("batch_size", c.delivery.batch_size);
  if (!c.delivery.proxy_url.empty()) str("proxy_url", c.delivery.proxy_url);
  optional_path("proxy_auth_file", c.delivery.proxy_auth_file);
  w.EndObject();
  w.Key("privacy");
  w.StartObject();
  optional_path("master_key_file", c.privacy.master_key_file);  // where the key is, never the key
  if (!c.privacy.master_key_env.empty()) str("master_key_env", c.privacy.master_key_env);
  w.Key("retention_days");
  w.StartObject();
  num("general", c.privacy.retention_days.general);
  num("sud", c.privacy.retention_days.sud);
  num("mh", c.privacy.retention_days.mh);
  w.EndObject();
  num("purge_interval_minutes", c.privacy.purge_interval.count());
  str("part2_notice", c.privacy.part2_notice);
  str("policy_version", c.privacy.policy_version);
  w.EndObject();
  w.Key("audit");
  w.StartObject();
  w.Key("anchor");
  w.StartObject();
  str("file", c.audit.anchor.file.string());
  w.Key("syslog");
  w.Bool(c.audit.anchor.syslog);
  num("interval_seconds", c.audit.anchor.interval.count());
  w.EndObject();
  num("verify_interval_minutes", c.audit.verify_interval.count());
  num("accounting_years", c.audit.accounting_years);
  w.EndObject();
  if (c.console.enabled()) {
    w.Key("console");
    w.StartObject();
    str("directory", c.console.directory.string());
    num("session_idle_timeout_seconds", c.console.session_idle.count());
    num("session_absolute_timeout_seconds", c.console.session_absolute.count());
    w.Key("listen");
    w.StartObject();
    str("address", c.console.address);
    num("port", c.console.port);
    w.Key("tls");
    w.StartObject();
    str("cert_file", c.console.tls.cert_file.string());
    str("key_file", c.console.tls.key_file.string());
    optional_path("client_ca_file", c.console.tls.client_ca_file);
    str("client_cert", c.console.tls.client_cert == ClientCertMode::Required   ? "required"
                       : c.console.tls.client_cert == ClientCertMode::Optional ? "optional"
                                                                               : "none");
    w.EndObject();
    w.EndObject();
    w.EndObject();
  }
  w.Key("logging");
  w.StartObject();
  std::string level(log::levelName(c.log_level));
  std::transform(level.begin(), level.end(), level.begin(), [](unsigned char ch) { return std::tolower(ch); });
  str("level", level);
  str("format", std::string(log::formatName(c.log_format)));
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace gw::config

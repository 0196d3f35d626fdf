#pragma once
// Every setting of the gateway, loaded and checked once at start-up into an immutable value.
// The commented example in gateway/config/gateway.example.jsonc documents each key; keep the two
// in step (tests/config checks the example loads and that every key it uses is known).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/crypto.hpp"
#include "common/error.hpp"
#include "common/log.hpp"
#include "common/time_zone.hpp"

namespace gw::config {

enum class ClientCertMode { Required, Optional, None };

struct ServerTls {
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
  std::filesystem::path client_ca_file;  // required unless client_cert is none
  ClientCertMode client_cert = ClientCertMode::Required;
  /// PEM CRLs of the client CAs, loaded at start: a revoked client certificate fails the
  /// handshake. Optional; needs client_cert required or optional.
  std::filesystem::path client_crl_file;
};

struct Server {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8443;
  int threads = 2;
  /// Threads for handlers that touch the database or disk (record status, audit, ingest), so the
  /// I/O threads never block; and how many requests may wait for one before the gateway answers
  /// 503 with Retry-After.
  int blocking_threads = 4;
  int blocking_queue = 256;
  ServerTls tls;
  std::size_t max_body_bytes = 10 * 1024 * 1024;
  /// Every request body in flight together (docs/threading.md §2.2); when not configured, 64 MiB
  /// or 4 x max_body_bytes, whichever is larger.
  std::size_t max_inflight_body_bytes = 64 * 1024 * 1024;
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds read_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  std::size_t max_connections = 1024;
  /// From one client address; when a limit is reached, connections that have not proved
  /// themselves make room (http::ServerOptions).
  std::size_t max_connections_per_address = 256;
  /// server.metrics_listen: a second, plain-HTTP listener serving GET /metrics, /healthz and /readyz (for `fhir-gateway
  /// health`), on a loopback address ("127.0.0.1:9464"). Empty address: none (the main listener serves /metrics to tokens of
  /// the metrics role either way).
  std::string metrics_address;
  std::uint16_t metrics_port = 0;
};

struct Token {
  std::string id;
  std::string sha256;                // hex SHA-256 of the bearer token; the token itself is never stored
  std::vector<std::string> roles;    // ingest, engineer, compliance, admin, metrics
  std::vector<std::string> clinics;  // clinics whose data the token may post and read; "*" = any
  /// The client certificates the token may be used with (RFC 8705 certificate-bound tokens), as
  /// normalized by the loader: "sha256:<64 lowercase hex>" (the DER certificate's fingerprint) or
  /// "subject:<RFC 2253 subject>". Empty: the token is not bound to a certificate.
  std::vector<std::string> client_certs;
};

/// The settings a program may declare: the codes of fhir-profiles/CodeSystem/program-setting.json.
inline constexpr const char* kProgramSettings[] = {"outpatient", "intensive-outpatient", "residential", "court-mandated"};

struct Program {
  std::string id;
  bool part2 = false;  // a 42 CFR Part 2 program: all of its data is substance-use data
  /// Where the program treats its clients (one of kProgramSettings); empty: not stated. Every
  /// resource of its records but the Patient and the Consent carries it (docs/record-format.md §2.1).
  std::string setting;
};

struct Clinic {
  std::string id;
  std::string name;
  std::string identifier_system_base;  // prefix of business identifier systems, e.g. https://ids.c1.example/
  std::vector<Program> programs;
  /// IANA name (required): consents' date-only bounds are this zone's local days. Loaded at start.
  std::string time_zone;
  std::shared_ptr<const tz::TimeZone> zone;
};

/// storage.postgres: PostgreSQL instead of the SQLite file (docs/architecture.md §5.3).
struct PostgresStorage {
  // The libpq connection string (it holds the password): exactly one of the two is set.
  std::filesystem::path dsn_file;  // a file holding it; mode 0600 or stricter
  std::string dsn_env;             // the name of an environment variable holding it
  int pool_size = 16;              // read connections (the writer's comes on top)
  int connect_timeout_seconds = 10;
  /// "verify-full" (default: TLS, the server's certificate checked against sslrootcert and its
  /// name against the DSN's host), "verify-ca", "require" (TLS, no certificate check) or
  /// "disable" (no TLS: only over a Unix socket or loopback).
  std::string sslmode = "verify-full";
  std::filesystem::path sslrootcert;  // CA certificates for verify-ca / verify-full (required then)
  std::filesystem::path sslcert;      // client certificate, when the server asks for one
  std::filesystem::path sslkey;       // its key (mode 0600)
};

struct Storage {
  std::filesystem::path sqlite_path;  // empty when postgres is set: exactly one of the two
  bool synchronous_full = true;       // "full" (default) or "normal"
  std::optional<PostgresStorage> postgres;
};

struct Mapping {
  std::filesystem::path format_dir;       // mapper files + schemas of the reference record format
  std::filesystem::path profiles_dir;     // fhir-profiles/: every emitted resource is validated against it
  std::filesystem::path csv_mappers_dir;  // optional: *.csv-mapper.json files (CSV exports -> records)
};

struct Retry {
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds max{300000};
  int max_attempts = 0;  // 0 = keep retrying (a partner outage must not lose records)
};

/// How the gateway obtains a partner's bearer token (OAuth 2.0). type "" = none: mutual TLS,
/// or the static token of bearer_token_env.
struct PartnerAuth {
  std::string type;       // "", "smart-backend" (RFC 7523 signed assertion), "client-credentials" (a secret)
  std::string token_url;  // https; empty: token_endpoint of {fhir_base_url}/.well-known/smart-configuration
  std::string client_id;
  std::string scope;  // e.g. "system/Patient.u system/MedicationRequest.u"
  // smart-backend: the key that signs the client assertion (published in the gateway's JWKS)
  std::filesystem::path private_key_file;  // PEM, mode 0600
  std::string alg;                         // "RS384" or "ES384"
  std::string kid;
  // client-credentials: the client secret, from exactly one of these (never in the config)
  std::filesystem::path client_secret_file;  // mode 0600
  std::string client_secret_env;
  std::string client_auth_method = "client_secret_basic";  // or "client_secret_post"
  bool enabled() const { return !type.empty(); }
};

/// A signing key published in the JWKS without a partner signing with it: "active" to publish a
/// new key before partners switch to it, "retired" to keep an old kid verifiable until the
/// assertions and registrations that name it are gone (then remove the entry).
struct SigningKeyEntry {
  std::string kid;
  std::string alg;
  std::filesystem::path private_key_file;
  bool retired = false;
};

/// After failure_threshold requests in a row failed (no answer, 5xx, 429) no request goes to the
/// partner for open_seconds (doubling with each opening in a row, at most max_open_seconds), then
/// one probe decides whether it closes again.
struct CircuitBreakerSettings {
  int failure_threshold = 5;
  std::chrono::seconds open{30};
  std::chrono::seconds max_open{600};
};

struct Partner {
  std::string id;
  std::string name;  // for people (the compliance console, accountings); empty: the id
  std::string displayName() const { return name.empty() ? id : name; }
  std::string fhir_base_url;
  std::filesystem::path ca_file;
  std::filesystem::path client_cert_file;  // optional (mTLS)
  std::filesystem::path client_key_file;
  std::string bearer_token_env;  // name of an environment variable holding a static token; optional
  PartnerAuth auth;              // OAuth 2.0 token source; exclusive with bearer_token_env
  /// Why this partner receives data (v3-ActReason purpose of use): a consent must list it.
  std::string purpose_of_use = "TREAT";
  int max_bundle_entries = 8;
  /// How items are written (docs/architecture.md §5.6): "auto" picks from the partner's
  /// CapabilityStatement (transaction, else batch, else one request per resource); the others
  /// force that mode whatever the statement says.
  std::string write_mode = "auto";
  /// How often GET {base}/metadata is read again after the read at start.
  std::chrono::hours capability_refresh{6};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  Retry retry;
  /// HTTP CONNECT proxy (http://host:port) and its optional user:password file (mode 0600); the
  /// partner's own, else delivery.proxy_url's. Empty: direct.
  std::string proxy_url;
  std::filesystem::path proxy_auth_file;
  /// Flow control (docs/architecture.md §5.7): requests in flight at once (items of one patient
  /// still go one after another), requests per second (0: unlimited; token requests not counted),
  /// and the circuit breaker that stops requests after failure_threshold failures in a row.
  int max_concurrent_requests = 4;
  int max_requests_per_second = 0;
  CircuitBreakerSettings circuit_breaker;
};

struct Delivery {
  std::chrono::milliseconds poll_interval{500};
  int batch_size = 32;
  std::string proxy_url;  // every partner's, unless it names its own
  std::filesystem::path proxy_auth_file;
};

/// Days stored payloads of each privacy class are kept; 0 = forever.
struct RetentionDays {
  int general = 0;
  int sud = 0;
  int mh = 0;
};

struct Privacy {
  // The master key wrapping the per-class data keys: exactly one of the two is set.
  std::filesystem::path master_key_file;  // 64 hex digits or base64 of 32 bytes; mode 0600 or stricter
  std::string master_key_env;             // name of an environment variable holding the key
  RetentionDays retention_days;
  std::chrono::minutes purge_interval{60};  // how often expired payloads are deleted
  /// Attached to every disclosed Part 2 resource (42 CFR 2.32); default: the short statement.
  std::string part2_notice = "42 CFR part 2 prohibits unauthorized use or disclosure of these records.";
  /// Names the policy in force in every decision's log entry; change it when the value sets,
  /// program flags or notice change, so a review can tell which rules a decision followed.
  std::string policy_version = "gw-privacy-1";
};

/// Where the head of the audit chain is published (docs/privacy.md §11.4): a sink whoever can
/// write the database cannot rewrite, so `audit verify` can tell a truncated or rewritten log.
struct AuditAnchor {
  std::filesystem::path file;          // append-only file (O_APPEND, made 0600); empty: none. Never in the database folder
  bool syslog = false;                 // also a syslog line (facility authpriv)
  std::chrono::seconds interval{300};  // how often the head is published when it moved; also at clean shutdown
  bool enabled() const { return !file.empty() || syslog; }
};

struct Audit {
  AuditAnchor anchor;
  /// How often the gateway verifies the whole chain by itself (and against the anchor file), so
  /// the gw_audit_chain_verify_* metrics and their alert stay current; 0: only when asked.
  std::chrono::minutes verify_interval{60};
  /// How far back an accounting of disclosures goes by default (42 CFR 2.24: 3 years).
  int accounting_years = 3;
};

/// The compliance console (README "Compliance console"): browser pages served from `directory`
/// on a TLS listener of its own (console.listen), where a session cookie stands for the token
/// it was exchanged for. Absent (empty directory): no console, no second listener.
struct Console {
  std::filesystem::path directory;  // the shipped console/ folder (index.html, *.js, *.css)
  std::string address = "127.0.0.1";
  std::uint16_t port = 8444;                     // 0 = ephemeral (tests)
  ServerTls tls;                                 // client_cert defaults to "none" here: browsers handle them badly
  std::chrono::seconds session_idle{900};        // a session ends after this long unused
  std::chrono::seconds session_absolute{28800};  // and this long after its login, whatever
  bool enabled() const { return !directory.empty(); }
};

struct GatewayConfig {
  std::filesystem::path source_file;
  /// "deployment": "development" (demo, tests): the published development tokens and master key
  /// are accepted, with a warning. Default "production", which refuses them.
  bool development = false;
  /// "instance_id": this gateway among several on one database (PostgreSQL): names its database
  /// connections, its row in gateway_instances, and is on every log line, metric series and log
  /// row it writes. Empty: instanceId() makes one (host name, process id).
  std::string instance_id;
  Server server;
  std::vector<Token> tokens;
  Storage storage;
  Mapping mapping;
  std::vector<Clinic> clinics;
  std::vector<Partner> partners;
  std::vector<SigningKeyEntry> signing_keys;  // published besides the keys partners' auth names
  Delivery delivery;
  Privacy privacy;
  Audit audit;
  Console console;
  log::Level log_level = log::Level::Info;
  log::Format log_format = log::Format::Text;  // logging.format: "text" or "json" (one object per line)

  const Clinic* findClinic(std::string_view id) const;
  const Partner* findPartner(std::string_view id) const;
};

struct LoadResult {
  std::optional<GatewayConfig> config;
  std::vector<Error> errors;  // each: where = "file:line:column key.path", message, hint
};

/// Reads and checks a config file. Relative paths inside it resolve against the file's folder.
/// Checks: JSON syntax, unknown keys, types, ranges, enums, cross references (clinics named by
/// tokens and partners exist), ids unique, files that must exist do.
LoadResult loadFile(const std::filesystem::path& file);
LoadResult loadText(std::string_view text, const std::filesystem::path& base_dir, std::string_view label,
                    bool check_files = true);

/// The master key named by privacy.master_key_file or privacy.master_key_env (read at start, and
/// by `keys rotate`). Errors say which source failed and how to fix it, never the key.
Result<crypto::SecretKey> loadMasterKey(const Privacy& privacy);
/// config.instance_id, or "<host name>-<process id>" when it is not set.
std::string instanceId(const GatewayConfig& config);
/// The PostgreSQL connection string from dsn_file or dsn_env (never logged: it holds a password).
Result<std::string> loadPostgresDsn(const PostgresStorage& postgres);

/// The config as JSON with secrets removed (token hashes shown as "<redacted>"), for `check-config`.
std::string redactedJson(const GatewayConfig& config);

}  // namespace gw::config

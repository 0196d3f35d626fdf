// fhir-gateway command line. Everything it runs lives in the libraries under gateway/src/.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pthread.h>

#include "app/audit_tools.hpp"
#include "app/csv_import.hpp"
#include "app/engineer_tools.hpp"
#include "app/gateway.hpp"
#include "app/golden_cases.hpp"
#include "app/instances.hpp"
#include "app/keys.hpp"
#include "app/operator_tools.hpp"
#include "app/progress.hpp"
#include "app/settings.hpp"
#include "app/signing_keys.hpp"
#include "app/store_tools.hpp"
#include "audit/audit_format.hpp"
#include "audit/audit_query.hpp"
#include "common/json.hpp"
#include "common/log.hpp"
#include "config/gateway_config.hpp"
#include "config/insecure_settings.hpp"
#include "http/auth.hpp"
#include "http/plain_probe.hpp"

namespace {

constexpr std::string_view kHelp = R"(fhir-gateway )" GW_VERSION
                                   R"( - maps clinic records to FHIR R4 and delivers them to partner hospitals

Usage:
  fhir-gateway serve --config FILE         run the gateway (HTTPS listener + delivery workers, and
                                           the compliance console's listener when `console` is set)
  fhir-gateway check-config --config FILE  check a config file: keys, types and references
                                           (every problem with file:line:column and key
                                           path), then that certificates, keys, mappers and
                                           partner settings load; prints the config with
                                           secrets redacted; exit 0 when valid, 3 when not
  fhir-gateway health --config FILE        ask the gateway running with FILE whether it is ready:
                                           GET /readyz on its plain loopback listener
                                           (server.metrics_listen, required here), so a
                                           container health check needs no certificate or
                                           token. Prints one line (no PHI); exit 0 ready,
                                           1 not ready or not answering within 5 s, 3 when the
                                           config cannot be read or has no metrics_listen
  fhir-gateway map [--config FILE | --format-dir DIR] [--profiles-dir DIR] --mapper FILE|TYPE RECORD.json
                                           dry run: one record (JSON file, '-' for stdin)
                                           through the same pipeline as ingest (schema, mapping,
                                           privacy classes and security labels, validation);
                                           prints the FHIR resources, each one's classes and
                                           labels and its validation outcome; stores and sends
                                           nothing;
                                           exit 0 when valid, 1 when mapping or validation fails
  fhir-gateway map [--config FILE | --format-dir DIR] [--profiles-dir DIR] --mapper FILE.csv-mapper.json DATA.csv
                                           dry run of a CSV input mapper: per data row, the
                                           record it converts to (or the row's error with line
                                           and column), its FHIR resources and their validation
                                           outcomes; exit 0 when every row is valid, 1 otherwise
  fhir-gateway mappers test [--config FILE | --format-dir DIR] [--profiles-dir DIR] [--csv-mappers-dir DIR] [--update]
                                           run the golden cases in <format dir>/golden
                                           (<name>.input.json -> <name>.expected.json) and
                                           those beside every CSV input mapper
                                           (golden/<case>.csv -> <case>.records.json and, if
                                           present, <case>.fhir.json), print a diff per
                                           mismatch and "N passed, N failed"; exit 1 when any
                                           case fails. A CSV case in a golden folder no mapper
                                           reads is a failed case. --update rewrites the
                                           expected files from what the mappers produce now
                                           (review the diff before committing it)
  fhir-gateway import --config FILE --mapper NAME|FILE DATA.csv
                                           convert a CSV export with a CSV input mapper (a
                                           name under mapping.csv_mappers_dir, e.g.
                                           harm-reduction-weekly/weekly-export, or a
                                           *.csv-mapper.json file) and ingest each row into the
                                           configured gateway's database, as POST /v1/records
                                           does (a running gateway delivers them); prints the
                                           per-record result JSON; exit 0 when every row is
                                           accepted, 1 otherwise. Progress (rows, rate, ETA) on
                                           stderr: a bar on a terminal, lines otherwise
  fhir-gateway outbox list --config FILE [--partner P] [--state S] [--clinic C] [--older-than AGE] [--limit N] [--after ID]
                                           list outbox items (oldest first, a page of --limit,
                                           default 100; --after the last id for the next page):
                                           id, partner, clinic, record id, state, attempts, last
                                           error, next attempt (JSON, as GET /v1/outbox). AGE:
                                           seconds or 90s, 15m, 2h, 3d
  fhir-gateway outbox replay --config FILE (--item ID | --partner P [--clinic C] [--older-than AGE]) [--operator NAME]
                                           queue dead items again after their cause was fixed;
                                           each one's consent decision is taken again first: an
                                           item no longer permitted is denied (and logged), one
                                           whose record has a newer version is skipped;
                                           cancelled items are never replayed. Prints the
                                           outcome per item; exit 0 when none was denied, 1
                                           otherwise
  fhir-gateway outbox pause|resume --config FILE --partner P [--reason TEXT] [--operator NAME]
                                           stop (or start again) every delivery to the partner,
                                           kept across restarts; shown in /readyz and outbox status
  fhir-gateway outbox status --config FILE per partner: items by state and whether it is paused
  fhir-gateway records reprocess --config FILE --state invalid|unmapped [--record-type T] [--dry-run] [--operator NAME]
                                           put records left invalid or unmapped through mapping,
                                           validation and the consent decision again (after a
                                           mapper or profile fix): the ones now mapped get a new
                                           version and their deliveries queued. --dry-run maps
                                           and counts, storing nothing. Progress on stderr.
                                           Every outbox and records operation is logged in the
                                           audit log with --operator (default: the OS user)
  fhir-gateway keys new-signing-key --alg RS384|ES384 --out FILE [--kid KID]
                                           make a key pair for SMART Backend Services: the
                                           private key goes to FILE (PEM, mode 0600, never
                                           overwritten); prints the kid (default: the key's
                                           RFC 7638 thumbprint), the public JWK and the auth
                                           keys to put in the config. Exit 0 made, 3 otherwise
  fhir-gateway keys jwks --config FILE     print the JWKS the gateway publishes at
                                           GET /.well-known/jwks.json (public keys of partners'
                                           auth and of signing_keys, retired ones included), for
                                           a hospital that registers the gateway's keys by value
  fhir-gateway keys rotate --config FILE --new-master-key-file NEW
                                           re-wrap the database's data keys (one per privacy
                                           class) under the master key in NEW (64 hex digits,
                                           mode 0600; make it with openssl rand -hex 32), in one
                                           transaction; stored data is unchanged. Then point
                                           privacy.master_key_file at NEW (or put the key in the
                                           privacy.master_key_env variable) before the next start;
                                           keep the old key until then. Exit 0 when rotated,
                                           3 when a key is wrong or unreadable, 1 otherwise
  fhir-gateway keys rotate-data --config FILE --class sud|mh|general [--batch-rows N]
                                           make a new version of the class's data key and
                                           re-encrypt every stored payload of the class under it
                                           (record versions, resources, outbox Bundles and
                                           outcomes, consents, deployment secrets), N rows per
                                           short transaction (default 200), while the gateway
                                           runs (it loads the new version from its master key
                                           source and seals under it from then on); then delete
                                           the old versions' wrapped keys. Logged, with audit
                                           rows. Interrupted, it is finished by running it
                                           again. Exit 0 when rotated, 3 when the master key or
                                           the config is wrong, 1 otherwise
  fhir-gateway audit verify --config FILE [--anchor SEQ:HASH | --anchor-file FILE] [--read-only] [--database FILE]
                                           recompute the keyed chain of the decision and
                                           disclosure log in the configured database and check
                                           it against the latest anchor the gateway published
                                           (the last authentic line of audit.anchor.file, or of
                                           --anchor-file, a copy; --anchor overrides both);
                                           prints a JSON report: first broken rows and
                                           "anchor_check" ok, truncated (the log ends before the
                                           anchor) or rewritten (the anchor's row differs).
                                           --read-only writes nothing into the database (no
                                           migration, no key, no log row); --database FILE
                                           checks a copy, read-only. Exit 0 intact, 1 broken or
                                           unreadable
  fhir-gateway store migrate --from CONFIG_A --to CONFIG_B
                                           copy the store of CONFIG_A's database into CONFIG_B's
                                           (SQLite to PostgreSQL or back; the target must be new
                                           and empty): every record, payload, item, consent, key
                                           and log row, payloads still encrypted (both configs
                                           must name the same master key), in one transaction;
                                           then compare every table's row count and verify the
                                           audit chain in the copy. Stop the gateways using
                                           CONFIG_A first. Exit 0 when copied and verified,
                                           3 when a config or key is wrong, 1 otherwise
  fhir-gateway store backup --config FILE --to BACKUP.db
                                           an online, consistent copy of the SQLite database
                                           (VACUUM INTO; the gateway may keep running), mode
                                           0600, checked with quick_check. PostgreSQL: use
                                           pg_dump. Exit 0 when written, 1 otherwise
  fhir-gateway instances --config FILE [--json]
                                           the gateway instances recorded in the configured
                                           database (several share one PostgreSQL database): per
                                           instance its state (running, stale: no heartbeat for
                                           35 s, stopped), the versions it runs (build,
                                           configuration, mapping set), its last reload and
                                           whether it took; an instance whose versions differ
                                           from the others', or whose last reload was refused,
                                           is marked '!'. Exit 0 when none is marked, 1 otherwise
  fhir-gateway hash-token                  read a bearer token on stdin, print the SHA-256 hex
                                           to put in auth.tokens[].sha256
  fhir-gateway --version                   print the version
  fhir-gateway --help                      print this help

The config file is JSON with comments; gateway/config/gateway.example.jsonc documents every key.
serve stops gracefully on SIGINT or SIGTERM: it stops accepting, answers requests in flight,
commits what was accepted and lets delivery attempts in flight finish.

map and mappers test: --mapper FILE uses the mapper file's directory as the format directory
(its schemas/ beside it); --mapper TYPE names a record type in the format directory, which is
--format-dir, else mapping.format_dir of --config, else mappers/clinic-v1 (relative to the
current directory). Profiles: --profiles-dir, else mapping.profiles_dir of --config, else
fhir-profiles. With --config, records are mapped as that gateway would map them: its clinics'
identifier systems and Part 2 programs (a record of an unknown clinic or program is an error).
Without it, resource ids and identifier systems use the record's clinic and the base
https://ids.clinic-<clinic>.example/, as the golden cases do, and no program is Part 2. A *.csv-mapper.json given to map
converts rows into records for the format directory's mappers. mappers test finds CSV input
mappers under --csv-mappers-dir, else mapping.csv_mappers_dir of --config, else the format
directory's parent (mappers/).

serve reloads record schemas, mappers, profiles and CSV mappers on SIGHUP (as POST
/v1/admin/reload does) and runs the new set's golden cases first; a set that fails to load, or
whose golden cases fail, is logged (file:line:column, or the failing cases) and the running set
stays. On PostgreSQL every other instance on the database then reloads its own files too, and
each records the version it runs (or why it kept the old one): see fhir-gateway instances.

Exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 invalid configuration.
)";

int usage(std::string_view message) {
  std::cerr << "fhir-gateway: " << message << "\nRun 'fhir-gateway --help' for usage.\n";
  return 2;
}

std::optional<gw::config::GatewayConfig> loadConfig(const std::string& path) {
  auto loaded = gw::config::loadFile(path);
  if (loaded.config) return std::move(loaded.config);
  for (const auto& e : loaded.errors) std::cerr << "config error: " << e.describe() << "\n";
  std::cerr << loaded.errors.size() << " problem(s) in " << path
            << "; the example config gateway/config/gateway.example.jsonc documents every key\n";
  return std::nullopt;
}

int serve(const std::string& config_path) {
  // Block the stop signals in every thread; this one waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = loadConfig(config_path);
  if (!config) return 3;
  static gw::SystemClock clock;
  auto gateway = gw::app::Gateway::create(std::move(*config), clock);
  if (!gateway) {
    GW_LOG(Error, Main, "start_failed").kv("error", gateway.error().describe());
    std::cerr << "fhir-gateway: cannot start: " << gateway.error().describe() << "\n";
    return gateway.error().code == gw::ErrorCode::Config ? 3 : 1;
  }
  if (auto started = gateway.value()->start(); !started) {
    std::cerr << "fhir-gateway: cannot start: " << started.error().describe() << "\n";
    return 1;
  }
  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) break;
    GW_LOG(Info, Main, "reload_signal").kv("signal", "SIGHUP");
    (void)gateway.value()->reloadMappings();  // logs the outcome; a failure keeps the running set
  }
  GW_LOG(Info, Main, "stopping").kv("signal", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  gateway.value()->stop();
  GW_LOG(Info, Main, "stopped");
  return 0;
}

int checkConfig(const std::string& config_path) {
  auto config = loadConfig(config_path);
  if (!config) return 3;
  gw::log::setLevel(gw::log::Level::Warn);
  if (auto usable = gw::app::Gateway::check(*config); !usable) {
    std::cerr << "config error: " << usable.error().describe() << "\n";
    return 3;
  }
  std::cout << gw::config::redactedJson(*config) << "\n";
  for (const auto& weak : gw::config::insecureSettings(*config)) {
    std::cerr << "warning: " << weak.key << ": " << weak.problem << "\n";
  }
  std::cerr << config_path << ": OK\n";
  return 0;
}

// `health`: the running gateway's readiness from its loopback listener, in one line for a
// container runtime's log of health checks. The answer carries counts and states only.
int health(const std::string& config_path) {
  auto config = loadConfig(config_path);
  if (!config) return 3;
  const auto& server = config->server;
  if (server.metrics_address.empty()) {
    std::cerr << "fhir-gateway: health: " << config_path
              << ": server.metrics_listen is not set; health asks the gateway on that loopback listener (e.g. "
                 "\"127.0.0.1:9464\"; see gateway/config/gateway.example.jsonc)\n";
    return 3;
  }
  const auto answer = gw::http::plainGet(server.metrics_address, server.metrics_port, "/readyz",
                                         std::chrono::milliseconds(5000));
  if (!answer) {
    std::cout << "not ready: " << answer.error().message << "\n";
    return answer.error().code == gw::ErrorCode::Config ? 3 : 1;
  }
  const std::string where = server.metrics_address + ":" + std::to_string(server.metrics_port);
  if (answer.value().status == 200) {
    std::cout << "ready (" << where << "/readyz: 200)\n";
    return 0;
  }
  // 503 names what is wrong: "database", "disk-full", ... (never record data).
  std::string reason;
  rapidjson::Document body;
  if (gw::json::parse(answer.value().body, body) && body.IsObject() && body.HasMember("reason") &&
      body["reason"].IsString()) {
    reason = std::string(", reason ") + body["reason"].GetString();
  }
  std::cout << "not ready (" << where << "/readyz: " << answer.value().status << reason << ")\n";
  return 1;
}

// Where map / mappers test find the format (schemas + mappers), the profiles and the CSV mappers.
struct MappingDirs {
  std::string config_path;
  std::string format_dir;
  std::string profiles_dir;
  std::string csv_mappers_dir;
  bool update = false;  // mappers test --update
  // With --config: the configured clinics, programs and partners (resolveDirs fills it).
  std::optional<gw::ingest::PipelineSettings> settings;
};

std::optional<std::pair<std::string, std::string>> resolveDirs(MappingDirs& dirs) {
  std::string format_dir = dirs.format_dir;
  std::string profiles_dir = dirs.profiles_dir;
  if (!dirs.config_path.empty()) {
    auto config = loadConfig(dirs.config_path);
    if (!config) return std::nullopt;
    if (format_dir.empty()) format_dir = config->mapping.format_dir.string();
    if (profiles_dir.empty()) profiles_dir = config->mapping.profiles_dir.string();
    if (dirs.csv_mappers_dir.empty()) dirs.csv_mappers_dir = config->mapping.csv_mappers_dir.string();
    dirs.settings = gw::app::pipelineSettings(*config);
  }
  if (format_dir.empty()) format_dir = "mappers/clinic-v1";
  if (profiles_dir.empty()) profiles_dir = "fhir-profiles";
  if (dirs.csv_mappers_dir.empty()) {
    auto format = std::filesystem::path(format_dir).lexically_normal();
    if (!format.has_filename()) format = format.parent_path();  // "mappers/clinic-v1/"
    dirs.csv_mappers_dir = format.parent_path().empty() ? "." : format.parent_path().string();
  }
  return std::pair{format_dir, profiles_dir};
}

std::shared_ptr<const gw::app::MappingSnapshot> loadSnapshot(const MappingDirs& dirs, const std::string& format_dir,
                                                             const std::string& profiles_dir) {
  gw::log::setLevel(gw::log::Level::Warn);
  auto loaded = gw::app::loadMappingSnapshot(format_dir, profiles_dir);
  if (!loaded) {
    std::cerr << "fhir-gateway: cannot load the mapping set: " << loaded.error().describe() << "\n";
    return nullptr;
  }
  if (!dirs.settings) return std::move(loaded).value();
  // Map as the configured gateway would: its clinics' identifier systems and Part 2 programs.
  auto configured = std::make_shared<gw::app::MappingSnapshot>(*loaded.value());
  configured->settings = *dirs.settings;
  return configured;
}

// `map --mapper FILE.csv-mapper.json DATA.csv`: every row through the CSV mapper, then as `map`.
int mapCsvCommand(MappingDirs dirs, const std::string& mapper_file, const std::string& csv_path) {
  auto resolved = resolveDirs(dirs);
  if (!resolved) return 3;
  auto snapshot = loadSnapshot(dirs, resolved->first, resolved->second);
  if (!snapshot) return 1;
  auto mapper = gw::mapping::CsvInputMapper::loadFile(mapper_file);
  if (!mapper) {
    std::cerr << "fhir-gateway: cannot load the CSV mapper: " << mapper.error().describe() << "\n";
    return 1;
  }
  std::string text;
  if (csv_path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(csv_path, std::ios::binary);
    if (!in) {
      std::cerr << "fhir-gateway: cannot read " << csv_path << "\n";
      return 1;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const auto mapped = gw::app::mapCsv(*snapshot, mapper.value(), text);
  if (mapped.error) {
    std::cerr << "fhir-gateway: " << csv_path << ": " << gw::app::formatMappedCsv(mapped);
    return 1;
  }
  std::cout << gw::app::formatMappedCsv(mapped);
  if (!mapped.valid()) {
    std::cerr << "fhir-gateway: " << mapped.failed() << " of " << mapped.rows.size()
              << " rows failed (see \"FAILED\" above)\n";
    return 1;
  }
  return 0;
}

int mapCommand(const MappingDirs& dirs, const std::string& mapper, const std::string& record_path) {
  if (mapper.ends_with(gw::mapping::CsvInputMapper::kSuffix)) return mapCsvCommand(dirs, mapper, record_path);
  MappingDirs effective = dirs;
  std::string record_type = mapper;
  const std::filesystem::path mapper_path(mapper);
  constexpr std::string_view kSuffix = ".mapper.json";
  if (mapper.ends_with(kSuffix) || std::filesystem::is_regular_file(mapper_path)) {
    const std::string file = mapper_path.filename().string();
    if (!file.ends_with(kSuffix) || !std::filesystem::is_regular_file(mapper_path)) {
      std::cerr << "fhir-gateway: " << mapper << ": not a readable <record_type>.mapper.json file\n";
      return 2;
    }
    record_type = file.substr(0, file.size() - kSuffix.size());
    effective.format_dir = mapper_path.parent_path().empty() ? "." : mapper_path.parent_path().string();
  }
  auto resolved = resolveDirs(effective);
  if (!resolved) return 3;
  auto snapshot = loadSnapshot(effective, resolved->first, resolved->second);
  if (!snapshot) return 1;
  if (!snapshot->rules->mappers->has(record_type)) {
    std::cerr << "fhir-gateway: no mapper for record type '" << record_type << "' in " << resolved->first
              << " (give --mapper a <record_type>.mapper.json file or one of its record types)\n";
    return 1;
  }
  std::string text;
  if (record_path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(record_path, std::ios::binary);
    if (!in) {
      std::cerr << "fhir-gateway: cannot read " << record_path << "\n";
      return 1;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  rapidjson::Document record;
  if (auto parsed = gw::json::parse(text, record); !parsed) {
    std::cerr << "fhir-gateway: " << record_path << ": " << parsed.error().describe() << "\n";
    return 1;
  }
  auto mapped = gw::app::mapRecord(*snapshot, record, record_type);
  const std::string report = gw::app::formatMappedRecord(mapped);
  if (!mapped.errors.empty()) {
    std::cerr << report;
    return 1;
  }
  std::cout << report;
  if (!mapped.valid()) {
    std::cerr << "fhir-gateway: the mapped resources fail validation (see the outcomes above)\n";
    return 1;
  }
  return 0;
}

int mappersTest(MappingDirs dirs) {
  auto resolved = resolveDirs(dirs);
  if (!resolved) return 3;
  auto snapshot = loadSnapshot(dirs, resolved->first, resolved->second);
  if (!snapshot) return 1;
  const auto golden_dir = std::filesystem::path(resolved->first) / "golden";
  const auto mode = dirs.update ? gw::app::GoldenMode::Update : gw::app::GoldenMode::Check;
  auto results = gw::app::runGoldenCases(*snapshot, golden_dir, mode);
  auto csv_results = gw::app::runCsvGoldenCases(*snapshot, dirs.csv_mappers_dir, mode);
  std::move(csv_results.begin(), csv_results.end(), std::back_inserter(results));
  if (results.empty()) {
    std::cerr << "fhir-gateway: no golden cases (<name>.input.json) in " << golden_dir.string()
              << " and no CSV golden cases under " << dirs.csv_mappers_dir << "\n";
    return 1;
  }
  std::cout << gw::app::formatGoldenResults(results);
  return std::all_of(results.begin(), results.end(), [](const auto& r) { return r.passed(); }) ? 0 : 1;
}

int importCommand(const std::string& config_path, const std::string& mapper, const std::string& csv_path) {
  auto config = loadConfig(config_path);
  if (!config) return 3;
  gw::log::setLevel(gw::log::Level::Warn);
  gw::app::ProgressBar bar("rows");
  auto imported = gw::app::importCsv(*config, mapper, csv_path,
                                     [&bar](std::size_t done, std::size_t total) { bar.update(done, total); });
  bar.finish();
  if (!imported) {
    std::cerr << "fhir-gateway: import failed, nothing stored: " << imported.error().describe() << "\n";
    return 1;
  }
  std::cout << imported.value().body << "\n";
  if (!imported.value().all_accepted) {
    std::cerr << "fhir-gateway: not every row was accepted (see \"status\" and \"errors\" per row above)\n";
    return 1;
  }
  return 0;
}

// keys new-signing-key --alg A --out FILE [--kid KID] | keys jwks --config FILE
int signingKeyCommand(const std::vector<std::string_view>& args) {
  std::string alg_name, out, kid, config_path;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const bool has_value = i + 1 < args.size();
    if (args[i] == "--config" && has_value) config_path = std::string(args[++i]);
    else if (args[i] == "--alg" && has_value && args[1] == "new-signing-key") alg_name = std::string(args[++i]);
    else if (args[i] == "--out" && has_value && args[1] == "new-signing-key") out = std::string(args[++i]);
    else if (args[i] == "--kid" && has_value && args[1] == "new-signing-key") kid = std::string(args[++i]);
    else return usage("unknown or incomplete argument '" + std::string(args[i]) + "'");
  }
  if (args[1] == "jwks") {
    if (config_path.empty()) return usage("keys jwks needs --config FILE");
    auto config = loadConfig(config_path);
    if (!config) return 3;
    auto jwks = gw::app::configuredJwks(*config);
    if (!jwks) {
      std::cerr << "fhir-gateway: " << jwks.error().describe() << "\n";
      return 3;
    }
    std::cout << jwks.value() << "\n";
    return 0;
  }
  if (!config_path.empty()) return usage("keys new-signing-key takes no --config");
  const auto alg = gw::delivery::parseJwsAlg(alg_name);
  if (!alg) return usage("keys new-signing-key needs --alg RS384 or --alg ES384");
  if (out.empty()) return usage("keys new-signing-key needs --out FILE");
  auto key = gw::app::newSigningKey(*alg, out, kid);
  if (!key) {
    std::cerr << "fhir-gateway: " << key.error().describe() << "\n";
    return 3;
  }
  std::cout << "kid: " << key.value().kid() << "\npublic JWK: " << key.value().publicJwk()
            << "\nconfig (partners[].auth): \"type\": \"smart-backend\", \"private_key_file\": \"" << out
            << "\", \"alg\": \"" << alg_name << "\", \"kid\": \"" << key.value().kid() << "\"\n";
  return 0;
}

int rotateKeys(const std::string& config_path, const std::string& new_key_file) {
  auto config = loadConfig(config_path);
  if (!config) return 3;
  gw::log::setLevel(gw::log::Level::Warn);
  auto rotated = gw::app::rotateMasterKey(*config, new_key_file);
  if (!rotated) {
    std::cerr << "fhir-gateway: keys rotate failed, nothing changed: " << rotated.error().describe() << "\n";
    return rotated.error().code == gw::ErrorCode::Config ? 3 : 1;
  }
  const auto& r = rotated.value();
  std::cout << "re-wrapped " << r.data_keys << " data keys (";
  for (std::size_t i = 0; i < r.keys.size(); ++i) std::cout << (i == 0 ? "" : ", ") << r.keys[i];
  std::cout << ") from master key " << r.old_master_id << " to " << r.new_master_id << "\n";
  std::cerr << "fhir-gateway: now make privacy.master_key_file (or master_key_env) of " << config_path
            << " give the new key before the gateway next starts; the old key no longer opens this database\n";
  return 0;
}

int rotateDataKey(const std::string& config_path, gw::privacy::DataClass data_class, int batch_rows) {
  auto config = loadConfig(config_path);
  if (!config) return 3;
  // Each step's log line goes to standard error (info): what was created, re-sealed, destroyed.
  auto rotated = gw::app::rotateDataKey(*config, data_class, batch_rows);
  if (!rotated) {
    std::cerr << "fhir-gateway: keys rotate-data stopped: " << rotated.error().describe()
              << "\nRun it again to finish: it continues the same key version; every payload opens meanwhile.\n";
    return rotated.error().code == gw::ErrorCode::Config ? 3 : 1;
  }
  const auto& r = rotated.value();
  std::cout << (r.resumed ? "finished" : "made") << " " << gw::privacy::className(r.data_class) << " data key version "
            << r.key_version << ": re-encrypted " << r.payloads_resealed << " payloads (" << r.rows_scanned
            << " rows read in " << r.batches << " batches, " << r.passes << " passes, " << r.seconds
            << " s); destroyed versions";
  if (r.destroyed.empty()) std::cout << " none";
  for (auto v : r.destroyed) std::cout << " " << v;
  std::cout << "\n";
  return 0;
}

int verifyAudit(const std::string& config_path, const std::string& anchor_text, gw::app::AuditVerifyOptions options) {
  auto config = loadConfig(config_path);
  if (!config) return 3;
  gw::log::setLevel(gw::log::Level::Warn);
  if (!anchor_text.empty()) {
    auto parsed = gw::audit::parseChainAnchor(anchor_text);
    if (!parsed) return usage("--anchor: " + parsed.error().describe());
    options.anchor = parsed.value();
  }
  auto report = gw::app::verifyAuditLog(*config, options);
  if (!report) {
    std::cerr << "fhir-gateway: audit verify could not read the log: " << report.error().describe() << "\n";
    return 1;
  }
  const auto& r = report.value();
  std::cout << gw::audit::verifyReportToJson(r) << "\n";
  const auto& check = r.anchor;
  if (check.anchor) {
    std::cerr << "fhir-gateway: anchor check " << gw::store::anchorStatusName(check.status) << ": seq " << check.anchor->seq
              << " (" << check.source << ")\n";
  } else {
    std::cerr << "fhir-gateway: no anchor to check against (" << check.source
              << "): a cut or rewritten log would go unnoticed; set audit.anchor.file\n";
  }
  if (!r.ok) {
    const auto& first = r.breaks.front();
    std::cerr << "fhir-gateway: the audit log is broken: first broken row seq " << first.seq << " ("
              << gw::store::chainProblemName(first.problem) << "): " << first.message << "\n";
  }
  return gw::audit::verifyExitCode(r);
}

// outbox list|replay|pause|resume|status and records reprocess: flags --name VALUE (and --dry-run).
int operationsCommand(const std::vector<std::string_view>& args) {
  const std::string what = std::string(args[0]) + " " + std::string(args[1]);
  std::map<std::string, std::string> flags;
  bool dry_run = false;
  for (std::size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--dry-run" && what == "records reprocess") {
      dry_run = true;
    } else if (args[i].rfind("--", 0) == 0 && i + 1 < args.size()) {
      std::string name(args[i].substr(2));
      flags[name] = std::string(args[i + 1]);
      ++i;
    } else {
      return usage("unknown or incomplete argument '" + std::string(args[i]) + "'");
    }
  }
  const auto take = [&flags](const char* name) {
    auto it = flags.find(name);
    if (it == flags.end()) return std::string();
    std::string v = std::move(it->second);
    flags.erase(it);
    return v;
  };
  const std::string config_path = take("config");
  if (config_path.empty()) return usage(what + " needs --config FILE");
  const std::string actor = gw::app::cliOperator(take("operator"));
  const auto allowed = [&flags, &what](std::initializer_list<const char*> names) -> std::optional<int> {
    for (const auto& flag : flags) {
      const std::string& name = flag.first;  // clang before 16 cannot capture a structured binding
      if (std::none_of(names.begin(), names.end(), [&](const char* n) { return name == n; })) {
        return usage(what + " takes no --" + name);
      }
    }
    return std::nullopt;
  };
  auto config = loadConfig(config_path);
  if (!config) return 3;
  gw::log::setLevel(gw::log::Level::Warn);
  const auto failed = [&what](const gw::Error& e) {
    std::cerr << "fhir-gateway: " << what << " failed: " << e.describe() << "\n";
    return e.code == gw::ErrorCode::BadRequest || e.code == gw::ErrorCode::NotFound ? 2 : 1;
  };
  if (what == "outbox list") {
    if (auto bad = allowed({"partner", "state", "clinic", "older-than", "limit", "after"})) return *bad;
    std::map<std::string, std::string> params;
    for (auto& [name, value] : flags) params[name == "older-than" ? "older_than" : name] = value;
    auto listed = gw::app::outboxListCommand(*config, params, actor);
    if (!listed) return failed(listed.error());
    std::cout << listed.value() << "\n";
    return 0;
  }
  if (what == "outbox status") {
    if (auto bad = allowed({})) return *bad;
    auto status = gw::app::outboxStatusCommand(*config);
    if (!status) return failed(status.error());
    std::cout << status.value() << "\n";
    return 0;
  }
  if (what == "outbox pause" || what == "outbox resume") {
    if (auto bad = allowed({"partner", "reason"})) return *bad;
    const bool pause = what == "outbox pause";
    if (auto done = gw::app::partnerPauseCommand(*config, flags["partner"], pause, flags["reason"], actor); !done) {
      return failed(done.error());
    }
    std::cout << "{\"partner\":\"" << flags["partner"] << "\",\"paused\":" << (pause ? "true" : "false") << "}\n";
    std::cerr << "fhir-gateway: deliveries to " << flags["partner"] << (pause ? " paused" : " resumed")
              << "; a running gateway "
              << (pause ? "stops after the attempts in flight" : "resumes within its poll interval") << "\n";
    return 0;
  }
  if (what == "outbox replay") {
    if (auto bad = allowed({"item", "partner", "clinic", "older-than"})) return *bad;
    gw::app::ReplayFilter filter;
    if (!flags["item"].empty()) {
      try {
        std::size_t used = 0;
        filter.item_id = std::stoll(flags["item"], &used);
        if (used != flags["item"].size()) throw std::invalid_argument("item");
      } catch (const std::exception&) {
        return usage("--item needs an outbox item id (a number, from outbox list)");
      }
      if (!flags["partner"].empty() || !flags["clinic"].empty() || !flags["older-than"].empty()) {
        return usage("outbox replay takes --item alone, or --partner with optional --clinic and --older-than");
      }
    } else if (flags["partner"].empty()) {
      return usage("outbox replay needs --item ID or --partner P");
    }
    filter.partner_id = flags["partner"];
    if (!flags["clinic"].empty()) filter.clinics = {flags["clinic"]};
    auto replayed = gw::app::outboxReplayCommand(*config, filter, flags["older-than"], actor);
    if (!replayed) return failed(replayed.error());
    std::cout << gw::app::replayResultJson(replayed.value()) << "\n";
    const auto& r = replayed.value();
    std::cerr << "fhir-gateway: " << r.replayed << " replayed, " << r.denied << " denied (no longer permitted), "
              << r.skipped << " skipped; a running gateway sends them within its poll interval\n";
    return r.denied > 0 ? 1 : 0;
  }
  if (what == "records reprocess") {
    if (auto bad = allowed({"state", "record-type"})) return *bad;
    gw::app::ReprocessOptions options;
    const auto state = gw::store::parseRecordState(flags["state"]);
    if (!state || (*state != gw::store::RecordState::Invalid && *state != gw::store::RecordState::Unmapped)) {
      return usage("records reprocess needs --state invalid or --state unmapped");
    }
    options.state = *state;
    options.record_type = flags["record-type"];
    options.dry_run = dry_run;
    gw::app::ProgressBar bar("records");
    auto done = gw::app::reprocessCommand(*config, options, actor,
                                          [&bar](std::size_t n, std::size_t total) { bar.update(n, total); });
    bar.finish();
    if (!done) return failed(done.error());
    std::cout << gw::app::reprocessResultJson(done.value(), dry_run) << "\n";
    return 0;
  }
  return usage("unknown command '" + what + "': outbox list|replay|pause|resume|status, records reprocess");
}

int storeCommand(const std::vector<std::string_view>& args) {
  std::string from, to, config_path, target;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const bool has_value = i + 1 < args.size();
    if (args[i] == "--from" && has_value) {
      from = std::string(args[++i]);
    } else if (args[i] == "--to" && has_value) {
      (args[1] == "migrate" ? to : target) = std::string(args[++i]);
    } else if (args[i] == "--config" && has_value) {
      config_path = std::string(args[++i]);
    } else {
      return usage("unknown or incomplete argument '" + std::string(args[i]) + "'");
    }
  }
  if (args[1] == "migrate") {
    if (from.empty() || to.empty()) return usage("store migrate needs --from CONFIG_A --to CONFIG_B");
    auto from_config = loadConfig(from);
    if (!from_config) return 3;
    auto to_config = loadConfig(to);
    if (!to_config) return 3;
    auto migrated = gw::app::migrateStore(*from_config, *to_config);
    if (!migrated) {
      std::cerr << "fhir-gateway: store migrate failed: " << migrated.error().describe() << "\n";
      return migrated.error().code == gw::ErrorCode::Config ? 3 : 1;
    }
    const auto& r = migrated.value();
    for (const auto& t : r.copy.tables) std::cout << t.name << ": " << t.rows << " rows\n";
    std::cout << "copied " << r.copy.rows << " rows from " << r.from << " to " << r.to
              << "; row counts match; audit chain intact in the copy (" << r.target_audit.rows << " rows, head seq "
              << r.target_audit.last_seq << " " << r.target_audit.head_hash << ")\n";
    return 0;
  }
  if (config_path.empty() || target.empty()) return usage("store backup needs --config FILE --to BACKUP.db");
  auto config = loadConfig(config_path);
  if (!config) return 3;
  auto written = gw::app::backupStore(*config, target);
  if (!written) {
    std::cerr << "fhir-gateway: store backup failed: " << written.error().describe() << "\n";
    return written.error().code == gw::ErrorCode::Config ? 3 : 1;
  }
  std::cout << "backed up " << config->storage.sqlite_path.string() << " to " << target << " (" << written.value()
            << " bytes, quick_check ok)\n";
  return 0;
}

int hashToken() {
  std::string token;
  std::getline(std::cin, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16) {
    std::cerr << "fhir-gateway: a token must have at least 16 characters (use 32 random bytes, base64)\n";
    return 2;
  }
  std::cout << gw::http::hashToken(token) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return usage("missing command");
  const auto command = args[0];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kHelp;
    return 0;
  }
  if (command == "--version") {
    std::cout << "fhir-gateway " << GW_VERSION << "\n";
    return 0;
  }
  if (command == "hash-token") return args.size() == 1 ? hashToken() : usage("hash-token takes no arguments");
  if (command == "keys" && args.size() >= 2 && args[1] == "rotate-data") {
    std::string config_path, class_name, batch_text;
    for (std::size_t i = 2; i < args.size(); ++i) {
      if ((args[i] == "--config" || args[i] == "--class" || args[i] == "--batch-rows") && i + 1 < args.size()) {
        (args[i] == "--config" ? config_path : args[i] == "--class" ? class_name : batch_text) = std::string(args[i + 1]);
        ++i;
      } else {
        return usage("unknown or incomplete argument '" + std::string(args[i]) + "'");
      }
    }
    if (config_path.empty()) return usage("keys rotate-data needs --config FILE");
    const auto data_class = gw::privacy::parseClass(class_name);
    if (!data_class) return usage("keys rotate-data needs --class sud, mh or general");
    int batch_rows = 200;
    if (!batch_text.empty()) {
      try {
        std::size_t used = 0;
        batch_rows = std::stoi(batch_text, &used);
        if (used != batch_text.size() || batch_rows < 1 || batch_rows > 100000) throw std::invalid_argument("range");
      } catch (const std::exception&) {
        return usage("--batch-rows needs a whole number from 1 to 100000");
      }
    }
    return rotateDataKey(config_path, *data_class, batch_rows);
  }
  if (command == "keys" && args.size() >= 2 && (args[1] == "new-signing-key" || args[1] == "jwks")) {
    return signingKeyCommand(args);
  }
  if (command == "keys") {
    if (args.size() < 2 || args[1] != "rotate") {
      return usage("keys needs a subcommand: keys rotate, keys rotate-data, keys new-signing-key or keys jwks");
    }
    std::string config_path;
    std::string new_key_file;
    for (std::size_t i = 2; i < args.size(); ++i) {
      if ((args[i] == "--config" || args[i] == "--new-master-key-file") && i + 1 < args.size()) {
        (args[i] == "--config" ? config_path : new_key_file) = std::string(args[i + 1]);
        ++i;
      } else {
        return usage("unknown or incomplete argument '" + std::string(args[i]) + "'");
      }
    }
    if (config_path.empty()) return usage("keys rotate needs --config FILE");
    if (new_key_file.empty()) return usage("keys rotate needs --new-master-key-file FILE");
    return rotateKeys(config_path, new_key_file);
  }
  if (command == "audit") {
    if (args.size() < 2 || args[1] != "verify") return usage("audit needs a subcommand: audit verify");
    std::string config_path;
    std::string anchor;
    gw::app::AuditVerifyOptions options;
    for (std::size_t i = 2; i < args.size(); ++i) {
      const bool has_value = i + 1 < args.size();
      if (args[i] == "--read-only") {
        options.read_only = true;
      } else if (args[i] == "--config" && has_value) {
        config_path = std::string(args[++i]);
      } else if (args[i] == "--anchor" && has_value) {
        anchor = std::string(args[++i]);
      } else if (args[i] == "--anchor-file" && has_value) {
        options.anchor_file = std::string(args[++i]);
      } else if (args[i] == "--database" && has_value) {
        options.database = std::string(args[++i]);
      } else {
        return usage("unknown or incomplete argument '" + std::string(args[i]) + "'");
      }
    }
    if (config_path.empty()) return usage("audit verify needs --config FILE");
    if (!anchor.empty() && !options.anchor_file.empty()) {
      return usage("audit verify takes --anchor or --anchor-file, not both");
    }
    return verifyAudit(config_path, anchor, std::move(options));
  }
  if (command == "store") {
    if (args.size() < 2 || (args[1] != "migrate" && args[1] != "backup")) {
      return usage("store needs a subcommand: store migrate or store backup");
    }
    return storeCommand(args);
  }
  if (command == "instances") {
    std::string config_path;
    bool json = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--config" && i + 1 < args.size()) {
        config_path = std::string(args[++i]);
      } else if (args[i] == "--json") {
        json = true;
      } else {
        return usage("unknown or incomplete argument '" + std::string(args[i]) + "'");
      }
    }
    if (config_path.empty()) return usage("instances needs --config FILE");
    auto config = loadConfig(config_path);
    if (!config) return 3;
    gw::log::setLevel(gw::log::Level::Warn);
    bool consistent = true;
    auto listed = gw::app::instancesCommand(*config, json, consistent);
    if (!listed) {
      std::cerr << "fhir-gateway: instances failed: " << listed.error().describe() << "\n";
      return 1;
    }
    std::cout << listed.value() << (json ? "\n" : "");
    return consistent ? 0 : 1;
  }
  if (command == "outbox" || command == "records") {
    if (args.size() < 2) return usage(std::string(command) + " needs a subcommand");
    return operationsCommand(args);
  }
  if (command == "map" || command == "mappers") {
    std::size_t i = 1;
    if (command == "mappers") {
      if (args.size() < 2 || args[1] != "test") return usage("mappers needs a subcommand: mappers test");
      i = 2;
    }
    MappingDirs dirs;
    std::string mapper;
    std::vector<std::string> positional;
    for (; i < args.size(); ++i) {
      const auto a = args[i];
      auto value = [&](std::string& out) {
        if (i + 1 >= args.size()) return false;
        out = std::string(args[++i]);
        return true;
      };
      bool ok = true;
      if (a == "--config") {
        ok = value(dirs.config_path);
      } else if (a == "--format-dir") {
        ok = value(dirs.format_dir);
      } else if (a == "--profiles-dir") {
        ok = value(dirs.profiles_dir);
      } else if (a == "--mapper" && command == "map") {
        ok = value(mapper);
      } else if (a == "--csv-mappers-dir" && command == "mappers") {
        ok = value(dirs.csv_mappers_dir);
      } else if (a == "--update" && command == "mappers") {
        dirs.update = true;
      } else if (a.size() > 1 && a.front() == '-') {
        return usage("unknown argument '" + std::string(a) + "'");
      } else {
        positional.emplace_back(a);
      }
      if (!ok) return usage(std::string(a) + " needs a value");
    }
    if (command == "mappers") {
      if (!positional.empty()) return usage("mappers test takes no file arguments");
      return mappersTest(dirs);
    }
    if (mapper.empty()) return usage("map needs --mapper FILE|RECORD_TYPE");
    if (positional.size() != 1) return usage("map needs exactly one RECORD.json or DATA.csv (or '-' for stdin)");
    return mapCommand(dirs, mapper, positional[0]);
  }
  if (command == "import") {
    std::string config_path;
    std::string mapper;
    std::vector<std::string> positional;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--config" || args[i] == "--mapper") {
        if (i + 1 >= args.size()) return usage(std::string(args[i]) + " needs a value");
        (args[i] == "--config" ? config_path : mapper) = std::string(args[i + 1]);
        ++i;
      } else if (args[i].size() > 1 && args[i].front() == '-') {
        return usage("unknown argument '" + std::string(args[i]) + "'");
      } else {
        positional.emplace_back(args[i]);
      }
    }
    if (config_path.empty()) return usage("import needs --config FILE");
    if (mapper.empty()) return usage("import needs --mapper NAME|FILE");
    if (positional.size() != 1) return usage("import needs exactly one DATA.csv");
    return importCommand(config_path, mapper, positional[0]);
  }
  if (command == "serve" || command == "check-config" || command == "health") {
    std::string config_path;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--config" && i + 1 < args.size()) {
        config_path = std::string(args[++i]);
      } else if (args[i].rfind("--config=", 0) == 0) {
        config_path = std::string(args[i].substr(9));
      } else {
        return usage("unknown argument '" + std::string(args[i]) + "'");
      }
    }
    if (config_path.empty()) return usage(std::string(command) + " needs --config FILE");
    if (command == "health") return health(config_path);
    return command == "serve" ? serve(config_path) : checkConfig(config_path);
  }
  return usage("unknown command '" + std::string(command) + "'");
}

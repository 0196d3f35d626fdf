#pragma once
// Starts the real sandbox FHIR partner (Node + Medplum, tests/partner) and the real fhir-gateway
// binary on 127.0.0.1 with the test PKI, and talks to both over TLS.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>

#include "child_process.hpp"
#include "support/tls_test_client.hpp"

namespace gw::test {

/// The Node partner: one per test suite, reset between tests.
class Partner {
 public:
  /// `name` tells the output files of several partners apart.
  explicit Partner(const std::string& work_dir, const std::string& name = "partner");
  std::uint16_t port() const { return port_; }
  std::string baseUrl() const { return "https://127.0.0.1:" + std::to_string(port_) + "/fhir/R4"; }

  HttpResponse get(const std::string& target);  // under the FHIR base
  HttpResponse admin(const std::string& method, const std::string& path, const std::string& body = {});
  /// Any request to the partner (e.g. its token endpoint), with the test client certificate.
  HttpResponse request(const std::string& method, const std::string& target, const std::string& body,
                       const std::vector<std::pair<std::string, std::string>>& headers);
  std::string tokenUrl() const { return "https://127.0.0.1:" + std::to_string(port_) + "/oauth2/token"; }
  void reset();
  /// Bundle.total of a search by identifier, e.g. count("MedicationRequest", system, value).
  int count(const std::string& type, const std::string& system, const std::string& value);
  rapidjson::Document search(const std::string& type, const std::string& system, const std::string& value);

 private:
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
  TlsClientOptions tls_;
};

struct GatewayOptions {
  std::string partner_url;         // partner "st-mary"
  std::string second_partner_url;  // optional partner "county-general"
  int retry_initial_ms = 100;
  int retry_max_ms = 1000;
  int max_attempts = 0;
  std::size_t max_body_bytes = 1 << 20;
  std::string format_dir;   // mapping.format_dir; empty: the repo's mappers/clinic-v1
  std::string server_keys;  // more "server" keys, JSON text ending in a comma, e.g. R"("max_connections": 64,)"
  std::string anchor_file;  // audit.anchor.file (outside the work dir); empty: no anchors published
  int anchor_interval_seconds = 1;
  std::string partner_keys;                   // more keys of partner "st-mary", JSON text ending in a comma (e.g. "auth")
  std::string top_level_keys;                 // more top-level keys, JSON text ending in a comma (e.g. "signing_keys")
  std::string client_cert_mode = "required";  // server.tls.client_cert ("optional" lets a hospital fetch the JWKS)
  std::string database_path;                  // storage.sqlite_path; empty: <work dir>/gateway.db
  std::string storage_json;                   // the whole "storage" object (e.g. PostgreSQL); empty: SQLite
  // Several instances on one PostgreSQL database: storage.postgres.dsn_file instead of SQLite
  // (sslmode disable: the test server listens on 127.0.0.1), the instance's id, and the master key
  // file the instances share (empty: <work dir>/master.key, made when missing).
  std::string postgres_dsn_file;
  std::string instance_id;
  std::string master_key_file;
  int poll_interval_ms = 50;  // delivery.poll_interval_ms
};

/// The fhir-gateway binary with its own database folder.
class Gateway {
 public:
  Gateway(const std::string& work_dir, GatewayOptions options);
  ~Gateway();
  void start();  // starts and waits until it listens
  void kill();   // SIGKILL
  int stop();    // SIGTERM, returns exit status
  std::uint16_t port() const { return port_; }
  /// The gateway process (for /proc/<pid>/status); -1 when it is not running.
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  const std::string& configPath() const { return config_path_; }
  std::string log() const;

  /// POST /v1/records with the clinic token and client certificate.
  HttpResponse post(const std::string& body, const std::string& content_type = "application/json",
                    const std::string& token = "dev-ingest-c1");
  HttpResponse status(const std::string& record_id, const std::string& token = "dev-ingest-c1");
  /// POST /v1/records?mapper=MAPPER with Content-Type text/csv (mapper names are URL-safe).
  HttpResponse postCsv(const std::string& csv, const std::string& mapper, const std::string& token = "dev-ingest-c1");
  /// Any request with a bearer token (tokens: dev-ingest-c1, dev-compliance, dev-engineer, dev-admin; and
  /// test-compliance-c1, compliance and admin for clinic c1 only; test-operator for every clinic,
  /// test-operator-c1 for c1 only; test-ingest-c2 posts c2's records).
  HttpResponse request(const std::string& method, const std::string& target, const std::string& body,
                       const std::string& token);
  void signal(int sig);
  /// Polls the record's status until every delivery is in `state` (e.g. "delivered").
  bool waitForDeliveries(const std::string& record_id, const std::string& state,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));
  TlsClientOptions clientTls() const;

 private:
  std::string dir_;
  std::string config_path_;
  GatewayOptions options_;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
  int starts_ = 0;
};

/// A consent of patient `mrn` at clinic c1 naming `recipient` for TREAT, `categories` a JSON
/// array such as ["general","sud"], in force from three days ago for a year ("revoked": revoked today).
std::string consentRecord(const std::string& mrn = "A12345", const std::string& recipient = "st-mary",
                          const std::string& categories = R"(["general","sud"])", const std::string& status = "active",
                          const std::string& id = "77");

/// The reference record texts used by the tests (spec examples).
std::string patientRecord(const std::string& mrn = "A12345", const std::string& family = "Rivera");
std::string prescriptionRecord(const std::string& id = "9001", const std::string& mrn = "A12345",
                               const std::string& status = "active");

/// A suite whose tests share one partner (reset before each test) and start a gateway each, in a
/// folder of their own; a failing test prints the gateway's log.
class PartnerSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  /// A gateway delivering to the suite's partner as "st-mary".
  Gateway& startGateway(GatewayOptions options = {});
  /// Every patient of the reference records consents to st-mary receiving all their data for
  /// treatment (for tests about delivery; what consent permits is tested in privacy_e2e_test).
  void consentToEverything();

  static inline std::string suite_dir_;
  static inline Partner* partner_ = nullptr;
  std::string dir_;
  std::unique_ptr<Gateway> gateway_;
};

inline constexpr const char* kMrnSystem = "https://ids.c1.example.org/mrn";
inline constexpr const char* kRxSystem = "https://ids.c1.example.org/prescription";

/// Now, in Unix milliseconds (the partner's lastUpdated and the log's times are compared with it).
std::int64_t nowMs();
/// "2026-12-07T12:57:06.964Z" (the partner's meta.lastUpdated) -> Unix milliseconds.
std::int64_t isoToMs(const std::string& iso);

}  // namespace gw::test

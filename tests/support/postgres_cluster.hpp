#pragma once
// A real PostgreSQL server for tests: initdb into a temporary folder, started on a free port of
// 127.0.0.1, stopped and removed at the end. initdb and postgres refuse to run as root, so as
// root (CI) they run as the `postgres` user (runuser); otherwise as the current user.
//
// One cluster serves a whole test run: ctest starts it once (the postgres_cluster fixture, the
// postgres_cluster executable) and names its folder in GW_TEST_POSTGRES_DIR; a test binary run
// by hand without that starts its own cluster on first use and stops it at exit. Each test takes
// a fresh database (createDatabase).
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace gw::test {

class PostgresCluster {
 public:
  /// The cluster of this test run; nullptr when PostgreSQL's programs are not installed
  /// (unavailableReason() says what is missing). Starting failures throw std::runtime_error.
  static PostgresCluster* shared();
  /// Why there is no cluster ("" when there is one or may be one).
  static std::string unavailableReason();

  /// Starts a new cluster in `folder` (created; must not exist yet) and writes its port there.
  static std::unique_ptr<PostgresCluster> start(const std::filesystem::path& folder);
  /// The cluster already running in `folder` (started by start(), in another process).
  static std::unique_ptr<PostgresCluster> attach(const std::filesystem::path& folder);
  /// Stops the cluster in `folder` and removes the folder.
  static void stop(const std::filesystem::path& folder);

  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  /// A new, empty database owned by the application role; returns a libpq DSN for it (TCP to
  /// 127.0.0.1 with the role's password, as a gateway connects).
  std::string createDatabase();
  /// A DSN for `dbname` as the superuser over the cluster's Unix socket (tests' direct SQL).
  std::string superuserDsn(const std::string& dbname) const;
  /// Runs SQL as the superuser on `dbname`; throws std::runtime_error with the server's message.
  void exec(const std::string& dbname, const std::string& sql) const;
  /// The integer the SQL selects, as the superuser on `dbname`.
  long long count(const std::string& dbname, const std::string& sql) const;
  /// The database name a DSN from createDatabase names.
  static std::string databaseOf(const std::string& dsn);

  /// Leaves the server running when this object goes away (the ctest fixture's start).
  void keepRunning() { owned_ = false; }

  int port() const { return port_; }
  const std::filesystem::path& folder() const { return folder_; }

 private:
  PostgresCluster(std::filesystem::path folder, int port, bool owned)
      : folder_(std::move(folder)), port_(port), owned_(owned) {}
  std::filesystem::path folder_;
  int port_ = 0;
  bool owned_ = false;  // stopped and removed when this object goes away
};

}  // namespace gw::test

#include "support/postgres_cluster.hpp"

#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <stdexcept>
#include <vector>

namespace gw::test {
namespace fs = std::filesystem;
namespace {

constexpr const char* kRole = "gw";
constexpr const char* kRolePassword = "gw-test-password";

// The newest installed server's programs (Debian: /usr/lib/postgresql/<major>/bin).
fs::path serverBin() {
  std::error_code ec;
  fs::path best;
  int best_major = 0;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const int major = std::atoi(entry.path().filename().c_str());
    if (major > best_major && fs::exists(entry.path() / "bin" / "initdb", ec)) {
      best_major = major;
      best = entry.path() / "bin";
    }
  }
  return best;
}

bool root() { return ::geteuid() == 0; }

// As root, PostgreSQL's programs run as `postgres`.
std::string asServerUser() { return root() ? "runuser -u postgres -- " : ""; }

void run(const std::string& command, const fs::path& log) {
  const std::string full = command + " >>" + log.string() + " 2>&1";
  if (std::system(full.c_str()) != 0) {
    std::string tail;
    std::ifstream in(log);
    std::string line;
    while (std::getline(in, line)) tail = line;
    throw std::runtime_error("PostgreSQL test cluster: `" + command + "` failed: " + tail + " (log: " + log.string() + ")");
  }
}

int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("PostgreSQL test cluster: no free port on 127.0.0.1");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::string randomName() {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex m;
  std::lock_guard lock(m);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = "t_";
  for (int i = 0; i < 12; ++i) name += kHex[rng() % 16];
  return name;
}

PGconn* connectOrThrow(const std::string& dsn) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string message = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("PostgreSQL test cluster: cannot connect: " + message);
  }
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return c;
}

std::mutex shared_mutex;
std::unique_ptr<PostgresCluster> shared_cluster;
bool shared_tried = false;

}  // namespace

std::string PostgresCluster::unavailableReason() {
  if (serverBin().empty()) {
    return "PostgreSQL's server programs are not installed (/usr/lib/postgresql/*/bin/initdb): "
           "apt-get install postgresql (gateway/scripts/install-deps.sh)";
  }
  if (root() && ::getpwnam("postgres") == nullptr) {
    return "running as root and there is no `postgres` user to run the test server as";
  }
  return "";
}

PostgresCluster* PostgresCluster::shared() {
  std::lock_guard lock(shared_mutex);
  if (shared_tried) return shared_cluster.get();
  shared_tried = true;
  if (!unavailableReason().empty()) return nullptr;
  if (const char* dir = std::getenv("GW_TEST_POSTGRES_DIR"); dir && *dir && fs::exists(fs::path(dir) / "port")) {
    shared_cluster = attach(dir);
  } else {
    char folder[] = "/tmp/gw-pg.XXXXXX";
    if (!::mkdtemp(folder)) throw std::runtime_error("PostgreSQL test cluster: cannot make a folder under /tmp");
    fs::remove(folder);
    shared_cluster = start(folder);
  }
  return shared_cluster.get();
}

std::unique_ptr<PostgresCluster> PostgresCluster::start(const fs::path& folder) {
  const fs::path bin = serverBin();
  if (bin.empty()) throw std::runtime_error(unavailableReason());
  fs::create_directories(folder);
  fs::permissions(folder, fs::perms::owner_all, fs::perm_options::replace);
  if (root()) {
    const passwd* pw = ::getpwnam("postgres");
    if (!pw || ::chown(folder.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("PostgreSQL test cluster: cannot give " + folder.string() + " to the postgres user");
    }
  }
  const fs::path log = folder / "setup.log";
  // Fast settings for a throw-away server: no fsync, no full-page writes.
  run(asServerUser() + (bin / "initdb").string() + " -D " + (folder / "data").string() +
          " -U postgres --auth-local=trust --auth-host=scram-sha-256 -N -E UTF8 --locale=C",
      log);
  int port = 0;
  for (int attempt = 0;; ++attempt) {
    port = freePort();
    try {
      run(asServerUser() + (bin / "pg_ctl").string() + " -D " + (folder / "data").string() + " -l " +
              (folder / "server.log").string() + " -w -t 30 -o \"-c listen_addresses=127.0.0.1 -p " + std::to_string(port) +
              " -k " + folder.string() +
              " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300\" start",
          log);
      break;
    } catch (const std::runtime_error&) {
      if (attempt == 2) throw;  // the port was taken between the probe and the start: another one
    }
  }
  std::unique_ptr<PostgresCluster> cluster(new PostgresCluster(folder, port, true));
  cluster->exec("postgres", std::string("CREATE ROLE ") + kRole + " LOGIN PASSWORD '" + kRolePassword + "'");
  std::ofstream(folder / "port") << port << "\n";
  return cluster;
}

std::unique_ptr<PostgresCluster> PostgresCluster::attach(const fs::path& folder) {
  int port = 0;
  std::ifstream(folder / "port") >> port;
  if (port <= 0) throw std::runtime_error("PostgreSQL test cluster: no port file in " + folder.string());
  return std::unique_ptr<PostgresCluster>(new PostgresCluster(folder, port, false));
}

void PostgresCluster::stop(const fs::path& folder) {
  const fs::path bin = serverBin();
  std::error_code ec;
  if (!bin.empty() && fs::exists(folder / "data" / "postmaster.pid", ec)) {
    const std::string command = asServerUser() + (bin / "pg_ctl").string() + " -D " + (folder / "data").string() +
                                " -m fast -w stop >/dev/null 2>&1";
    [[maybe_unused]] const int rc = std::system(command.c_str());
  }
  fs::remove_all(folder, ec);
}

PostgresCluster::~PostgresCluster() {
  if (owned_) stop(folder_);
}

std::string PostgresCluster::createDatabase() {
  const std::string name = randomName();
  exec("postgres", "CREATE DATABASE " + name + " OWNER " + kRole);
  return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + name + " user=" + kRole +
         " password=" + kRolePassword;
}

std::string PostgresCluster::superuserDsn(const std::string& dbname) const {
  return "host=" + folder_.string() + " port=" + std::to_string(port_) + " dbname=" + dbname + " user=postgres";
}

void PostgresCluster::exec(const std::string& dbname, const std::string& sql) const {
  PGconn* c = connectOrThrow(superuserDsn(dbname));
  PGresult* r = PQexec(c, sql.c_str());
  const auto status = PQresultStatus(r);
  std::string message = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error("PostgreSQL test cluster: " + message + " in: " + sql);
  }
}

long long PostgresCluster::count(const std::string& dbname, const std::string& sql) const {
  PGconn* c = connectOrThrow(superuserDsn(dbname));
  PGresult* r = PQexec(c, sql.c_str());
  const auto status = PQresultStatus(r);
  std::string message = PQresultErrorMessage(r);
  long long n = 0;
  if (status == PGRES_TUPLES_OK && PQntuples(r) > 0) n = std::atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  if (status != PGRES_TUPLES_OK) throw std::runtime_error("PostgreSQL test cluster: " + message + " in: " + sql);
  return n;
}

std::string PostgresCluster::databaseOf(const std::string& dsn) {
  const auto at = dsn.find("dbname=");
  if (at == std::string::npos) return {};
  const auto start = at + 7;
  return dsn.substr(start, dsn.find(' ', start) - start);
}

}  // namespace gw::test

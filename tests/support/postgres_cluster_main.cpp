// postgres_cluster start|stop FOLDER: the ctest fixture that gives a whole test run one PostgreSQL
// server (support/postgres_cluster.hpp). Without the server's programs, start says so and
// succeeds: the tests that need it then skip with the same message.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include "support/postgres_cluster.hpp"

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "start" && std::string(argv[1]) != "stop")) {
    std::fprintf(stderr, "usage: postgres_cluster start|stop FOLDER\n");
    return 2;
  }
  const std::filesystem::path folder = argv[2];
  try {
    gw::test::PostgresCluster::stop(folder);  // a cluster an interrupted run left behind
    if (std::string(argv[1]) == "stop") return 0;
    if (const auto why = gw::test::PostgresCluster::unavailableReason(); !why.empty()) {
      std::printf("no PostgreSQL test server: %s\n", why.c_str());
      return 0;
    }
    auto cluster = gw::test::PostgresCluster::start(folder);
    cluster->keepRunning();
    std::printf("PostgreSQL test server on 127.0.0.1:%d in %s\n", cluster->port(), folder.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}

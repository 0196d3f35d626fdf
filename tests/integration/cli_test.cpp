// The command line as a user meets it: the real binary, its exit codes and messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "child_process.hpp"
#include "common/ids.hpp"
#include "support/test_pki.hpp"

namespace gw::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gw-cli-" + ids::randomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CliRun run(std::vector<std::string> args, const std::string& stdin_text = {}) {
    args.insert(args.begin(), GW_GATEWAY_BIN);
    if (!stdin_text.empty()) {
      // Through a shell so stdin can be fed; arguments here are test-controlled.
      std::string cmd = "printf '%s' '" + stdin_text + "' |";
      for (const auto& a : args) cmd += " '" + a + "'";
      args = {"sh", "-c", cmd};
    }
    ChildProcess p(args, (dir_ / "out").string(), (dir_ / "err").string());
    const int status = p.wait(std::chrono::seconds(30)).value_or(-1);
    return {status, readWholeFile((dir_ / "out").string()), readWholeFile((dir_ / "err").string())};
  }

  std::string writeConfig(const std::string& text) {
    const auto path = (dir_ / "gw.json").string();
    std::ofstream(path) << text;
    return path;
  }

  fs::path dir_;
};

TEST_F(Cli, VersionAndHelp) {
  auto version = run({"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_THAT(version.out, HasSubstr("fhir-gateway " GW_VERSION));
  auto help = run({"--help"});
  EXPECT_EQ(help.status, 0);
  for (const char* command : {"serve --config", "check-config --config", "hash-token", "--version"}) {
    EXPECT_THAT(help.out, HasSubstr(command));
  }
  auto wrong = run({"frobnicate"});
  EXPECT_EQ(wrong.status, 2);
  EXPECT_THAT(wrong.err, HasSubstr("unknown command 'frobnicate'"));
}

TEST_F(Cli, CheckConfigAcceptsTheShippedExampleWithTheDevPki) {
  // The example refers to certs/out; point it at the test PKI instead.
  std::ifstream in(std::string(GW_REPO_DIR) + "/gateway/config/gateway.example.jsonc");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (std::size_t p; (p = text.find("../../certs/out")) != std::string::npos;) text.replace(p, 15, devPkiDir());
  for (std::size_t p; (p = text.find("../../")) != std::string::npos;) text.replace(p, 6, std::string(GW_REPO_DIR) + "/");
  auto r = run({"check-config", "--config", writeConfig(text)});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(": OK"));
  EXPECT_THAT(r.out, HasSubstr("\"sha256\": \"<redacted>\""));
  EXPECT_THAT(r.out, Not(HasSubstr("16fe3168")));
}

TEST_F(Cli, CheckConfigListsEveryProblemWithPosition) {
  const auto path = writeConfig("{\n  \"server\": {\"prot\": 1},\n  \"storage\": {}\n}\n");
  auto r = run({"check-config", "--config", path});
  EXPECT_EQ(r.status, 3);
  EXPECT_THAT(r.err, HasSubstr(path + ":2:14 server.prot: unknown key 'prot'"));
  EXPECT_THAT(r.err, HasSubstr("missing required key 'sqlite_path'"));
  EXPECT_THAT(r.err, HasSubstr("missing required section 'auth'"));
  EXPECT_THAT(r.err, HasSubstr("gateway.example.jsonc documents every key"));
}

TEST_F(Cli, ServeRefusesAnInvalidConfig) {
  auto r = run({"serve", "--config", writeConfig("{}")});
  EXPECT_EQ(r.status, 3);
  auto missing = run({"serve", "--config", (dir_ / "nope.json").string()});
  EXPECT_EQ(missing.status, 3);
  EXPECT_THAT(missing.err, HasSubstr("cannot read the config file"));
}

TEST_F(Cli, HashTokenPrintsTheSha256) {
  auto r = run({"hash-token"}, "Zm9vYmFyYmF6cXV4LXRva2Vu");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, ids::sha256Hex("Zm9vYmFyYmF6cXV4LXRva2Vu") + "\n");
  EXPECT_EQ(run({"hash-token"}, "short").status, 2);
}

}  // namespace
}  // namespace gw::test

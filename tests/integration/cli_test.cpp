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
    return {status, readFile((dir_ / "out").string()), readFile((dir_ / "err").string())};
  }

  std::string writeConfig(const std::string& text) {
    const auto path = (dir_ / "gw.json").string();
    std::ofstream(path) << text;
    return path;
  }

  // A master key file (64 hex digits) with the given mode.
  std::string writeKey(const std::string& name, fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
    const auto path = (dir_ / name).string();
    std::ofstream(path) << ids::randomHex(32) << "\n";
    fs::permissions(path, perms, fs::perm_options::replace);
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
  for (const char* command :
       {"serve --config", "check-config --config", "health --config", "map [--config", "mappers test", "import --config",
        "keys rotate --config FILE --new-master-key-file NEW", "keys rotate-data --config FILE --class sud|mh|general",
        "hash-token", "--version", "instances --config FILE [--json]"}) {
    EXPECT_THAT(help.out, HasSubstr(command));
  }
  auto wrong = run({"frobnicate"});
  EXPECT_EQ(wrong.status, 2);
  EXPECT_THAT(wrong.err, HasSubstr("unknown command 'frobnicate'"));
}

TEST_F(Cli, CheckConfigAcceptsTheShippedExampleWithTheDevPki) {
  // The example refers to certs/out; point it at the test PKI instead.
  std::string text = readFile(repoPath("gateway/config/gateway.example.jsonc"));
  for (std::size_t p; (p = text.find("../../certs/out")) != std::string::npos;) text.replace(p, 15, devPkiDir());
  for (std::size_t p; (p = text.find("../../")) != std::string::npos;) text.replace(p, 6, std::string(GW_REPO_DIR) + "/");
  auto r = run({"check-config", "--config", writeConfig(text)});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(": OK"));
  EXPECT_THAT(r.out, HasSubstr("\"sha256\": \"<redacted>\""));
  EXPECT_THAT(r.out, Not(HasSubstr("16fe3168")));
  // The example is the development setup: it starts, and says what makes it unfit for real data.
  EXPECT_THAT(r.err, HasSubstr("warning: deployment: this is a development deployment"));
  EXPECT_THAT(r.err, HasSubstr("warning: auth.tokens: token 'admin' is a published development token"));
  EXPECT_THAT(r.err, HasSubstr("warning: privacy.master_key_file: the master key is the development key"));
  EXPECT_THAT(r.err, HasSubstr("warning: server.tls: the server certificate or client CA comes from the development PKI"));
}

TEST_F(Cli, TheExampleWithoutItsDevelopmentLineIsRefusedTokenByTokenAndForItsMasterKey) {
  std::string text = readFile(repoPath("gateway/config/gateway.example.jsonc"));
  for (std::size_t p; (p = text.find("../../certs/out")) != std::string::npos;) text.replace(p, 15, devPkiDir());
  for (std::size_t p; (p = text.find("../../")) != std::string::npos;) text.replace(p, 6, std::string(GW_REPO_DIR) + "/");
  text.replace(text.find(R"("deployment": "development",)"), 28, "");
  const auto config = writeConfig(text);
  for (const char* command : {"check-config", "serve"}) {
    auto r = run({command, "--config", config});
    EXPECT_EQ(r.status, 3) << command << ": " << r.err;
    for (const char* id : {"clinic-c1", "engineer", "compliance", "admin"}) {
      EXPECT_THAT(r.err, HasSubstr("token '" + std::string(id) + "' is a published development token")) << command;
    }
    EXPECT_THAT(r.err, HasSubstr("the master key is the development key")) << command;
  }
}

TEST_F(Cli, CheckConfigListsEveryProblemWithPosition) {
  const auto path = writeConfig("{\n  \"server\": {\"prot\": 1},\n  \"storage\": {}\n}\n");
  auto r = run({"check-config", "--config", path});
  EXPECT_EQ(r.status, 3);
  EXPECT_THAT(r.err, HasSubstr(path + ":2:14 server.prot: unknown key 'prot'"));
  EXPECT_THAT(r.err, HasSubstr("no database: set sqlite_path"));
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

TEST_F(Cli, MapPrintsResourcesAndValidationAndFailsOnBadRecords) {
  const std::string repo = GW_REPO_DIR;
  const std::string golden = repo + "/mappers/clinic-v1/golden/";
  // By mapper file: its directory is the format directory.
  auto by_file = run({"map", "--mapper", repo + "/mappers/clinic-v1/lab_result.mapper.json", "--profiles-dir",
                      repo + "/fhir-profiles", golden + "lab_quantity.input.json"});
  EXPECT_EQ(by_file.status, 0) << by_file.err;
  EXPECT_THAT(by_file.out, HasSubstr("\"resourceType\": \"Observation\""));
  EXPECT_THAT(by_file.out, HasSubstr("validation Observation/"));
  EXPECT_THAT(by_file.out, HasSubstr(": valid"));

  // By record type, with the directories from a config file.
  std::string example = readFile(repo + "/gateway/config/gateway.example.jsonc");
  for (std::size_t p; (p = example.find("../../certs/out")) != std::string::npos;) example.replace(p, 15, devPkiDir());
  for (std::size_t p; (p = example.find("../../")) != std::string::npos;) example.replace(p, 6, repo + "/");
  auto by_type = run(
      {"map", "--config", writeConfig(example), "--mapper", "lab_result", golden + "lab_quantity.input.json"});
  EXPECT_EQ(by_type.status, 0) << by_type.err;
  EXPECT_THAT(by_type.out, HasSubstr("\"resourceType\": \"Observation\""));
  // With --config, as that gateway maps it: its clinic's identifier systems, and the record's
  // program (otp) is Part 2 there, so the labels are the Part 2 ones ingest would send.
  EXPECT_THAT(by_type.out, HasSubstr("https://ids.c1.example.org/"));
  EXPECT_THAT(by_type.out, Not(HasSubstr("https://ids.clinic-c1.example/")));
  EXPECT_THAT(by_type.out, HasSubstr("class sud, labels R,SUD,OPIOIDUD,42CFRPart2,NORDSCLCD,CPLYCD"));
  // Without it, the golden cases' convention: no Part 2 program.
  EXPECT_THAT(by_file.out, HasSubstr("https://ids.clinic-c1.example/"));
  EXPECT_THAT(by_file.out, Not(HasSubstr("42CFRPart2")));
  EXPECT_THAT(by_file.out, HasSubstr("privacy Observation/"));

  // A record that fails its schema: exit 1, the record field path named.
  std::string text = readFile(golden + "lab_quantity.input.json");
  text.replace(text.find("\"loinc\""), 7, "\"loinx\"");
  std::ofstream(dir_ / "bad.json") << text;
  auto bad = run({"map", "--format-dir", repo + "/mappers/clinic-v1", "--profiles-dir", repo + "/fhir-profiles", "--mapper",
                  "lab_result", (dir_ / "bad.json").string()});
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.err, HasSubstr("result"));
  // The wrong mapper for the record.
  auto wrong = run({"map", "--format-dir", repo + "/mappers/clinic-v1", "--profiles-dir", repo + "/fhir-profiles",
                    "--mapper", "patient", golden + "lab_quantity.input.json"});
  EXPECT_EQ(wrong.status, 1);
  EXPECT_THAT(wrong.err, HasSubstr("record_type"));
  EXPECT_EQ(run({"map", golden + "lab_quantity.input.json"}).status, 2);
}

TEST_F(Cli, MappersTestRunsTheGoldenCasesAndShowsADiff) {
  const std::string repo = GW_REPO_DIR;
  auto shipped = run(
      {"mappers", "test", "--format-dir", repo + "/mappers/clinic-v1", "--profiles-dir", repo + "/fhir-profiles"});
  EXPECT_EQ(shipped.status, 0) << shipped.out << shipped.err;
  EXPECT_THAT(shipped.out, HasSubstr(" passed, 0 failed"));

  // A copy whose one golden expectation differs.
  const auto format = dir_ / "format";
  fs::copy(repo + "/mappers/clinic-v1", format, fs::copy_options::recursive);
  for (const auto& entry : fs::directory_iterator(format / "golden")) {
    if (entry.path().filename() != "lab_quantity.input.json" && entry.path().filename() != "lab_quantity.expected.json") {
      fs::remove(entry.path());
    }
  }
  std::string expected = readFile((format / "golden/lab_quantity.expected.json").string());
  expected.replace(expected.find("\"corrected\""), 11, "\"final\"");
  std::ofstream(format / "golden/lab_quantity.expected.json") << expected;
  auto failing = run({"mappers", "test", "--format-dir", format.string(), "--profiles-dir", repo + "/fhir-profiles"});
  EXPECT_EQ(failing.status, 1);
  EXPECT_THAT(failing.out, HasSubstr("FAIL lab_quantity"));
  EXPECT_THAT(failing.out, HasSubstr("$[0].status"));
  EXPECT_THAT(failing.out, HasSubstr("expected: \"final\""));
  EXPECT_THAT(failing.out, HasSubstr("actual:   \"corrected\""));
  EXPECT_THAT(failing.out, HasSubstr("0 passed, 1 failed"));

  // After a reviewed change, --update rewrites the expected file from what the mapper makes now.
  auto updated = run(
      {"mappers", "test", "--update", "--format-dir", format.string(), "--profiles-dir", repo + "/fhir-profiles"});
  EXPECT_EQ(updated.status, 0) << updated.out << updated.err;
  EXPECT_THAT(readFile((format / "golden/lab_quantity.expected.json").string()), HasSubstr("\"corrected\""));
  auto again = run({"mappers", "test", "--format-dir", format.string(), "--profiles-dir", repo + "/fhir-profiles"});
  EXPECT_EQ(again.status, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("1 passed, 0 failed"));

  // A CSV golden case in a folder no CSV mapper reads is reported, not skipped.
  const auto csv_dir = dir_ / "csv";
  fs::create_directories(csv_dir);
  fs::copy(repo + "/mappers/harm-reduction-weekly", csv_dir / "hrw", fs::copy_options::recursive);
  fs::create_directories(csv_dir / "hrw/golden/stray");
  fs::copy_file(csv_dir / "hrw/golden/edge_cases.csv", csv_dir / "hrw/golden/stray/lost.csv");
  auto stray = run({"mappers", "test", "--format-dir", format.string(), "--profiles-dir", repo + "/fhir-profiles",
                    "--csv-mappers-dir", csv_dir.string()});
  EXPECT_EQ(stray.status, 1) << stray.out;
  EXPECT_THAT(stray.out, HasSubstr("FAIL hrw/golden/stray/lost.csv"));
  EXPECT_THAT(stray.out, HasSubstr("no CSV mapper reads"));
  EXPECT_THAT(stray.out, HasSubstr("PASS hrw/weekly-export/edge_cases.csv"));

  // A broken mapper: file:line:column, exit 1.
  std::ofstream(format / "patient.mapper.json") << "{\n  oops\n}\n";
  auto broken = run({"mappers", "test", "--format-dir", format.string(), "--profiles-dir", repo + "/fhir-profiles"});
  EXPECT_EQ(broken.status, 1);
  EXPECT_THAT(broken.err, HasSubstr("patient.mapper.json:2:"));
}

TEST_F(Cli, MapWithACsvMapperPrintsEachRowsRecordResourcesAndValidation) {
  const std::string repo = GW_REPO_DIR;
  const std::string mapper = repo + "/mappers/harm-reduction-weekly/weekly-export.csv-mapper.json";
  const std::vector<std::string> dirs = {"--format-dir", repo + "/mappers/clinic-v1", "--profiles-dir",
                                         repo + "/fhir-profiles"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin() + 1, dirs.begin(), dirs.end());
    return args;
  };
  auto good = run(with({"map", "--mapper", mapper, repo + "/mappers/harm-reduction-weekly/examples/weekly.csv"}));
  EXPECT_EQ(good.status, 0) << good.err;
  EXPECT_THAT(good.out, HasSubstr("# line 2: valid\nrecord:\n{"));
  EXPECT_THAT(good.out, HasSubstr("\"date\": \"2026-11-16\""));  // read as M/D/YYYY
  EXPECT_THAT(good.out, HasSubstr("\"recorded_at\": \"2026-11-16T12:00:00-05:00\""));
  EXPECT_THAT(good.out, HasSubstr("validation Observation/"));
  EXPECT_THAT(good.out, HasSubstr("3 rows: 3 valid, 0 failed"));

  auto edge = run(with({"map", "--mapper", mapper, repo + "/mappers/harm-reduction-weekly/golden/edge_cases.csv"}));
  EXPECT_EQ(edge.status, 1);
  EXPECT_THAT(edge.out, HasSubstr("error: line 4, column 'Naloxone Kits'"));
  EXPECT_THAT(edge.out, HasSubstr("error: line 5, column 'Visit Date'"));
  EXPECT_THAT(edge.out, HasSubstr("expected M/D/YYYY or YYYY-MM-DD naming a real day"));
  EXPECT_THAT(edge.out, HasSubstr("6 rows: 1 valid, 5 failed"));
  EXPECT_THAT(edge.err, HasSubstr("5 of 6 rows failed"));

  std::ofstream(dir_ / "broken.csv") << "Visit ID,Client ID\n\"open\n";
  auto unreadable = run(with({"map", "--mapper", mapper, (dir_ / "broken.csv").string()}));
  EXPECT_EQ(unreadable.status, 1);
  EXPECT_THAT(unreadable.err, HasSubstr("line 2"));
  std::ofstream(dir_ / "bad.csv-mapper.json") << "{\"format\": \"gw-csv-mapper/1\",\n \"colums\": {}}";
  auto bad_mapper = run(with({"map", "--mapper", (dir_ / "bad.csv-mapper.json").string(), (dir_ / "broken.csv").string()}));
  EXPECT_EQ(bad_mapper.status, 1);
  EXPECT_THAT(bad_mapper.err, HasSubstr("bad.csv-mapper.json:2:2"));
}

TEST_F(Cli, MappersTestAlsoRunsTheCsvGoldenCases) {
  const std::string repo = GW_REPO_DIR;
  auto shipped = run(
      {"mappers", "test", "--format-dir", repo + "/mappers/clinic-v1/", "--profiles-dir", repo + "/fhir-profiles"});
  EXPECT_EQ(shipped.status, 0) << shipped.out << shipped.err;
  EXPECT_THAT(shipped.out, HasSubstr("PASS lab_quantity\n"));
  EXPECT_THAT(shipped.out, HasSubstr("PASS harm-reduction-weekly/weekly-export/weekly_example.csv\n"));
  EXPECT_THAT(shipped.out, HasSubstr("PASS harm-reduction-weekly/weekly-export/quoted_multiline_site.csv\n"));
  EXPECT_THAT(shipped.out, HasSubstr(" passed, 0 failed"));

  // A copy of the CSV mapper whose golden FHIR differs, found with --csv-mappers-dir.
  const auto csv = dir_ / "csv/weekly";
  fs::create_directories(csv / "golden");
  fs::copy_file(repo + "/mappers/harm-reduction-weekly/weekly-export.csv-mapper.json",
                csv / "weekly-export.csv-mapper.json");
  for (const char* f : {"weekly_example.csv", "weekly_example.records.json", "weekly_example.fhir.json"}) {
    fs::copy_file(repo + "/mappers/harm-reduction-weekly/golden/" + f, csv / "golden" / f);
  }
  std::string fhir = readFile((csv / "golden/weekly_example.fhir.json").string());
  fhir.replace(fhir.find("\"value\": 50"), 11, "\"value\": 55");
  std::ofstream(csv / "golden/weekly_example.fhir.json") << fhir;
  auto failing = run({"mappers", "test", "--format-dir", repo + "/mappers/clinic-v1", "--profiles-dir",
                      repo + "/fhir-profiles", "--csv-mappers-dir", (dir_ / "csv").string()});
  EXPECT_EQ(failing.status, 1);
  EXPECT_THAT(failing.out, HasSubstr("FAIL weekly/weekly-export/weekly_example.csv\n"));
  EXPECT_THAT(failing.out,
              HasSubstr("fhir $[\"line 2\"].resources[1].valueQuantity.value\n    expected: 55\n    actual:   50"));
  EXPECT_THAT(failing.out, Not(HasSubstr("harm-reduction-weekly/")));  // only the given directory
  EXPECT_THAT(failing.out, HasSubstr(" passed, 1 failed"));
}

TEST_F(Cli, ImportConvertsACsvExportAndIngestsEveryRow) {
  const std::string repo = GW_REPO_DIR;
  const std::string pki = devPkiDir();
  const auto config = writeConfig(R"({
  "deployment": "development",
  "server": {"address": "127.0.0.1", "port": 0,
             "tls": {"cert_file": ")" +
                                  pki + R"(/server.crt", "key_file": ")" + pki + R"(/server.key",
                     "client_ca_file": ")" +
                                  pki + R"(/ca.crt", "client_cert": "required"}},
  "auth": {"tokens": [{"id": "clinic-c1", "sha256": "16fe3168dfc75472f79c00f62f719efaa73e9881e57cca363e1d0f945b24d372", "roles": ["ingest"], "clinics": ["c1"]}]},
  "storage": {"sqlite_path": ")" + (dir_ / "gw.db").string() +
                                  R"("},
  "mapping": {"format_dir": ")" + repo +
                                  R"(/mappers/clinic-v1", "profiles_dir": ")" + repo + R"(/fhir-profiles",
              "csv_mappers_dir": ")" +
                                  repo + R"(/mappers"},
  "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c1.example.org/", "programs": [{"id": "hr", "part2": false}]}],
  "partners": [],
  "privacy": {"master_key_file": ")" +
                                  writeKey("master.key") + R"("}
})");
  const std::string weekly = repo + "/mappers/harm-reduction-weekly/examples/weekly.csv";

  auto first = run({"import", "--config", config, "--mapper", "harm-reduction-weekly/weekly-export", weekly});
  ASSERT_EQ(first.status, 0) << first.err << first.out;
  EXPECT_THAT(first.out, HasSubstr("\"accepted\":3"));
  EXPECT_THAT(first.err, HasSubstr("progress: 3/3 rows 100%")) << "progress on stderr, plain lines off a terminal";
  EXPECT_THAT(first.out, HasSubstr("\"record_id\":\"hrw:W47-003\""));
  EXPECT_THAT(first.out, HasSubstr("\"line\":4"));
  EXPECT_THAT(first.out, HasSubstr("\"disposition\":\"created\""));
  // Stored in the gateway's database: the same file again changes nothing. By mapper file too.
  auto again = run({"import", "--config", config, "--mapper",
                    repo + "/mappers/harm-reduction-weekly/weekly-export.csv-mapper.json", weekly});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("\"disposition\":\"unchanged\""));
  EXPECT_THAT(again.out, Not(HasSubstr("\"disposition\":\"created\"")));

  // Some rows rejected: results for every row, exit 1.
  auto edge = run({"import", "--config", config, "--mapper", "harm-reduction-weekly/weekly-export",
                   repo + "/mappers/harm-reduction-weekly/golden/edge_cases.csv"});
  EXPECT_EQ(edge.status, 1);
  EXPECT_THAT(edge.out, HasSubstr("\"accepted\":1"));
  EXPECT_THAT(edge.out, HasSubstr("line 4, column 'Naloxone Kits'"));
  EXPECT_THAT(edge.err, HasSubstr("not every row was accepted"));

  auto unknown = run({"import", "--config", config, "--mapper", "weekly", weekly});
  EXPECT_EQ(unknown.status, 1);
  EXPECT_THAT(unknown.err, HasSubstr("unknown CSV mapper 'weekly'"));
  EXPECT_THAT(unknown.err, HasSubstr("harm-reduction-weekly/weekly-export"));
  auto missing = run(
      {"import", "--config", config, "--mapper", "harm-reduction-weekly/weekly-export", (dir_ / "none.csv").string()});
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(run({"import", "--config", config, weekly}).status, 2) << "--mapper is required";
  EXPECT_EQ(run({"import", "--mapper", "x", weekly}).status, 2) << "--config is required";
}

// keys rotate: the data keys are re-wrapped under the new master key; the old key no longer
// opens the database, the new one does, and the stored records are still there.
TEST_F(Cli, KeysRotateMovesTheDatabaseToTheNewMasterKey) {
  const std::string repo = GW_REPO_DIR;
  const std::string pki = devPkiDir();
  const std::string old_key = writeKey("old.key"), new_key = writeKey("new.key");
  const auto config_with = [&](const std::string& key) {
    return writeConfig(R"({
  "deployment": "development",
  "server": {"tls": {"cert_file": ")" +
                       pki + R"(/server.crt", "key_file": ")" + pki + R"(/server.key", "client_cert": "none"}},
  "auth": {"tokens": []},
  "storage": {"sqlite_path": ")" +
                       (dir_ / "gw.db").string() + R"("},
  "mapping": {"format_dir": ")" +
                       repo + R"(/mappers/clinic-v1", "profiles_dir": ")" + repo + R"(/fhir-profiles",
              "csv_mappers_dir": ")" +
                       repo + R"(/mappers"},
  "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c1.example.org/", "programs": [{"id": "hr", "part2": false}]}],
  "partners": [],
  "privacy": {"master_key_file": ")" +
                       key + R"("}
})");
  };
  const std::string weekly = repo + "/mappers/harm-reduction-weekly/examples/weekly.csv";
  auto config = config_with(old_key);
  auto imported = run({"import", "--config", config, "--mapper", "harm-reduction-weekly/weekly-export", weekly});
  ASSERT_EQ(imported.status, 0) << imported.err << imported.out;

  auto rotated = run({"keys", "rotate", "--config", config, "--new-master-key-file", new_key});
  ASSERT_EQ(rotated.status, 0) << rotated.err;
  EXPECT_THAT(rotated.out, HasSubstr("re-wrapped 5 data keys"));
  EXPECT_THAT(rotated.err, HasSubstr("privacy.master_key_file"));

  auto stale = run({"import", "--config", config, "--mapper", "harm-reduction-weekly/weekly-export", weekly});
  EXPECT_NE(stale.status, 0);
  EXPECT_THAT(stale.err, HasSubstr("the master key does not match the one that wrapped the data keys"));
  auto again = run({"keys", "rotate", "--config", config, "--new-master-key-file", new_key});
  EXPECT_EQ(again.status, 3) << "the old key is no longer the current one";

  config = config_with(new_key);
  auto after = run({"import", "--config", config, "--mapper", "harm-reduction-weekly/weekly-export", weekly});
  ASSERT_EQ(after.status, 0) << after.err;
  EXPECT_THAT(after.out, HasSubstr("\"disposition\":\"unchanged\""));

  auto shared = run({"keys", "rotate", "--config", config, "--new-master-key-file",
                     writeKey("shared.key", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read)});
  EXPECT_EQ(shared.status, 3);
  EXPECT_THAT(shared.err, HasSubstr("may be read or changed by other users"));
  auto usage = run({"keys", "rotate", "--config", config});
  EXPECT_EQ(usage.status, 2);
  EXPECT_THAT(usage.err, HasSubstr("--new-master-key-file"));
}

std::string fileState(const fs::path& path) {
  std::error_code ec;
  return readFile(path.string()) + "|" + std::to_string(fs::last_write_time(path, ec).time_since_epoch().count());
}

// audit verify --read-only and --database COPY write nothing into the database they check (not
// even a -wal or -shm file), and every verify reports its anchor check.
TEST_F(Cli, AuditVerifyReadOnlyLeavesTheDatabaseUntouchedAndReportsTheAnchorCheck) {
  const std::string repo = GW_REPO_DIR;
  const std::string pki = devPkiDir();
  const fs::path db = dir_ / "db" / "gw.db";
  const fs::path anchors = dir_ / "anchors" / "audit-anchors.log";
  const auto config = writeConfig(R"({
  "server": {"tls": {"cert_file": ")" +
                                  pki + R"(/server.crt", "key_file": ")" + pki +
                                  R"(/server.key", "client_cert": "none"}},
  "auth": {"tokens": []},
  "storage": {"sqlite_path": ")" + db.string() +
                                  R"("},
  "mapping": {"format_dir": ")" + repo +
                                  R"(/mappers/clinic-v1", "profiles_dir": ")" + repo +
                                  R"(/fhir-profiles", "csv_mappers_dir": ")" + repo + R"(/mappers"},
  "clinics": [{"id": "c1", "time_zone": "America/New_York", "identifier_system_base": "https://ids.c1.example.org/", "programs": [{"id": "hr", "part2": false}]}],
  "partners": [],
  "privacy": {"master_key_file": ")" +
                                  writeKey("master.key") + R"("},
  "audit": {"anchor": {"file": ")" +
                                  anchors.string() + R"("}}
})");
  auto imported = run({"import", "--config", config, "--mapper", "harm-reduction-weekly/weekly-export",
                       repo + "/mappers/harm-reduction-weekly/examples/weekly.csv"});
  ASSERT_EQ(imported.status, 0) << imported.err << imported.out;
  ASSERT_FALSE(fs::exists(db.string() + "-wal"));

  const auto before = fileState(db);
  auto ro = run({"audit", "verify", "--config", config, "--read-only"});
  EXPECT_EQ(ro.status, 0) << ro.err;
  EXPECT_THAT(ro.out, HasSubstr(R"("ok":true)"));
  EXPECT_THAT(ro.out, HasSubstr(R"("keyed_from_seq":1)"));
  EXPECT_THAT(ro.out, HasSubstr(R"("anchor_check":{"status":"none","source":"file )" + anchors.string() +
                                R"x( (none published yet)"})x"));
  EXPECT_THAT(ro.err, HasSubstr("no anchor to check against"));
  EXPECT_EQ(fileState(db), before) << "verify --read-only changed the database";
  EXPECT_FALSE(fs::exists(db.string() + "-wal"));
  EXPECT_FALSE(fs::exists(db.string() + "-shm"));

  // The head passed back as an anchor; a copy checked with --database.
  const auto anchor_at = ro.out.find(R"("anchor":")") + 10;
  const std::string anchor = ro.out.substr(anchor_at, ro.out.find('"', anchor_at) - anchor_at);
  const fs::path copy = dir_ / "backup.db";
  fs::copy_file(db, copy);
  const auto copy_before = fileState(copy);
  auto checked = run({"audit", "verify", "--config", config, "--database", copy.string(), "--anchor", anchor});
  EXPECT_EQ(checked.status, 0) << checked.err;
  EXPECT_THAT(checked.out, HasSubstr(R"("anchor_check":{"status":"ok","source":"argument","seq":)"));
  EXPECT_THAT(checked.err, HasSubstr("anchor check ok"));
  EXPECT_EQ(fileState(copy), copy_before) << "verifying a copy changed it";
  EXPECT_FALSE(fs::exists(copy.string() + "-wal"));

  auto missing = run({"audit", "verify", "--config", config, "--read-only", "--anchor-file", (dir_ / "none.log").string()});
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.err, HasSubstr("cannot read the audit anchor file"));
  EXPECT_EQ(run({"audit", "verify", "--config", config, "--anchor", anchor, "--anchor-file", anchors.string()}).status, 2);
  EXPECT_EQ(run({"audit", "verify", "--config", config, "--database"}).status, 2);

  // Without --read-only the check is itself logged: the database changes.
  EXPECT_EQ(run({"audit", "verify", "--config", config}).status, 0);
  EXPECT_NE(fileState(db), before);
}

}  // namespace
}  // namespace gw::test

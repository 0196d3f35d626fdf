// What an attacker holding only the database file sees: ciphertext for every payload, each class
// under its own key. The file is read here with plain SQLite (Poco) and no keyring. (That every
// read decrypts, rotation and retention hold on any backend: the store contract.)
#include <Poco/Data/LOB.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "common/crypto.hpp"
#include "common/ids.hpp"
#include "store/keyring.hpp"
#include "store/sqlite_store.hpp"
#include "store/store.hpp"
#include "support/test_files.hpp"
#include "support/test_keys.hpp"

namespace gw::store {
namespace {

namespace fs = std::filesystem;
using namespace Poco::Data::Keywords;
using privacy::ClassSet;
using privacy::DataClass;
using ::testing::HasSubstr;

std::string blobText(const Poco::Data::BLOB& b) {
  return b.size() == 0 ? std::string() : std::string(reinterpret_cast<const char*>(b.rawContent()), b.size());
}

// One record of each class with its resources and Bundle. (That ids are stored as lookup keys,
// never in clear: lookup_keys_test.cpp.)
IngestWrite recordOf(DataClass c, const std::string& record_id, const std::string& mrn, const std::string& clinical) {
  IngestWrite w;
  w.clinic = "c1";
  w.record_id = record_id;
  w.record_type = "test_record";
  w.content_hash = ids::sha256Hex(record_id + mrn + clinical);
  w.payload = R"({"patient":{"mrn":")" + mrn + R"("},"detail":")" + clinical + R"("})";
  w.patient_key = ids::randomHex(8);
  w.state = RecordState::Mapped;
  w.classes = c;
  const std::string patient_id = ids::randomHex(16), obs_id = ids::randomHex(16);
  w.resources.push_back({"Patient", patient_id, "https://ids.c1.example.org/mrn", mrn,
                         R"({"resourceType":"Patient","identifier":[{"value":")" + mrn + R"("}]})", c});
  w.resources.push_back({"Observation", obs_id, "https://ids.c1.example.org/obs", record_id,
                         R"({"resourceType":"Observation","valueString":")" + clinical + R"("})", c});
  w.outbox.push_back({"p1", R"({"resourceType":"Bundle","entry":[")" + mrn + " " + clinical + R"("]})", 2, c});
  return w;
}

class EncryptionAtRestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Poco::Data::SQLite::Connector::registerConnector();
    dir_ = fs::temp_directory_path() / ("gw-at-rest-" + ids::randomHex(6));
    fs::create_directories(dir_);
    store_ = open(test::testMasterKey()).value();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  Result<std::unique_ptr<Store>> open(crypto::SecretKey master) {
    return openSqliteStore({path(), true, 2, std::move(master)});
  }
  std::string path() const { return (dir_ / "gw.db").string(); }
  std::unique_ptr<Poco::Data::Session> raw() { return std::make_unique<Poco::Data::Session>("SQLite", path()); }
  static SystemTime day(int d) { return fromUnixMillis(1'800'000'000'000 + d * 86'400'000LL); }
  std::string key(const std::string& record_id) const { return store_->lookupKeys().record("c1", record_id); }

  // The data key of a class, unwrapped from data_keys with the master key (what an attacker who
  // stole one class's key would hold).
  crypto::SecretKey dataKey(Poco::Data::Session& s, DataClass c) {
    std::string name(privacy::className(c));
    Poco::Data::BLOB wrapped;
    s << "SELECT wrapped FROM data_keys WHERE data_class=? AND key_version=1", use(name), into(wrapped), now;
    auto raw_key = crypto::open(test::testMasterKey(), blobText(wrapped), dataKeyAad(c, 1));
    EXPECT_TRUE(raw_key);
    return crypto::SecretKey::fromBytes(raw_key.value()).value();
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(EncryptionAtRestTest, FileHoldsNoPlaintextAndEachClassNeedsItsOwnKey) {
  ASSERT_TRUE(store_->ingest({recordOf(DataClass::Sud, "c1:rx:0001", "A12345", "buprenorphine naloxone film"),
                              recordOf(DataClass::Mh, "c1:sc:0002", "B67890", "major depressive disorder PHQ-9 19"),
                              recordOf(DataClass::General, "c1:lab:0003", "C24680", "lisinopril general marker")},
                             day(0)));
  auto due = store_->dueItems("p1", day(0), 10);
  ASSERT_TRUE(due);
  ASSERT_EQ(due.value().size(), 3u);
  ASSERT_TRUE(store_->markDead(due.value()[0].id, 1, "HTTP 422",
                               R"({"resourceType":"OperationOutcome","issue":[{"diagnostics":"A12345 rejected"}]})",
                               day(0)));

  const std::vector<std::string> secrets = {"A12345",         "buprenorphine", "naloxone",    "B67890",
                                            "depressive",     "PHQ-9 19",      "C24680",      "lisinopril",
                                            "general marker", "diagnostics",   "resourceType"};
  const auto scan = [&](const std::string& when) {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      const fs::path file = path() + suffix;
      if (!fs::exists(file)) continue;
      const std::string bytes = gw::test::readFile(file);
      for (const auto& s : secrets) EXPECT_EQ(bytes.find(s), std::string::npos) << s << " in " << file << " " << when;
    }
  };
  scan("before the checkpoint");  // the WAL holds the new pages
  auto s = raw();
  *s << "PRAGMA wal_checkpoint(TRUNCATE)", now;
  ASSERT_GT(fs::file_size(path()), 16384u) << "the checkpoint moved the pages into the main file";
  scan("after the checkpoint");

  // Every payload column holds a BLOB envelope of the row's class, and data_class says which.
  std::vector<std::string> classes, types;
  std::vector<Poco::Data::BLOB> payloads;
  *s << "SELECT data_class, typeof(payload), payload FROM record_versions ORDER BY rowid", into(classes), into(types),
      into(payloads), now;
  ASSERT_EQ(classes, (std::vector<std::string>{"sud", "mh", "general"}));  // rx, sc, lab
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    EXPECT_EQ(types[i], "blob");
    const auto view = parseEnvelope(blobText(payloads[i]));
    ASSERT_TRUE(view);
    EXPECT_EQ(privacy::className(view->data_class), classes[i]);
  }
  std::vector<std::string> column_types;
  *s << "SELECT typeof(body) || typeof(identifier_value) || typeof(resource_id) FROM resources UNION ALL "
        "SELECT typeof(bundle) || typeof(disclosure) FROM outbox UNION ALL "
        "SELECT typeof(outcome) FROM outbox WHERE state='dead'",
      into(column_types), now;
  ASSERT_EQ(column_types.size(), 6u + 3u + 1u);
  for (const auto& t : column_types) EXPECT_TRUE(t == "blobblobblob" || t == "blobblob" || t == "blob") << t;
  std::vector<std::string> outbox_classes;
  *s << "SELECT data_class FROM outbox ORDER BY id", into(outbox_classes), now;
  EXPECT_EQ(outbox_classes, (std::vector<std::string>{"sud", "mh", "general"}));

  // The general data key cannot open a sud or mh envelope, even with the right row context;
  // the class's own key can (so the failure is the key, not the test).
  const auto general = dataKey(*s, DataClass::General);
  for (auto [index, c, record_id] :
       {std::tuple{0, DataClass::Sud, "c1:rx:0001"}, std::tuple{1, DataClass::Mh, "c1:sc:0002"}}) {
    const std::string envelope = blobText(payloads[static_cast<std::size_t>(index)]);
    const auto view = parseEnvelope(envelope).value();
    const std::string aad = std::string(view.header) + payloadContext({"record_versions.payload", "c1",
                                                                       store_->lookupKeys().record("c1", record_id), "1"});
    EXPECT_FALSE(crypto::open(general, view.sealed, aad)) << privacy::className(c) << " opened with the general key";
    auto own = crypto::open(dataKey(*s, c), view.sealed, aad);
    ASSERT_TRUE(own) << privacy::className(c);
    EXPECT_THAT(own.value(), HasSubstr(c == DataClass::Sud ? "A12345" : "B67890"));
  }
}

TEST_F(EncryptionAtRestTest, UnclassifiedPayloadsAreStoredAsSud) {
  auto w = recordOf(DataClass::General, "r1", "A12345", "x");
  w.classes = ClassSet();
  w.resources[0].classes = ClassSet();
  w.outbox[0].classes = ClassSet();
  ASSERT_TRUE(store_->ingest({w}, day(0)));
  auto s = raw();
  std::vector<std::string> classes;
  *s << "SELECT data_class FROM records UNION ALL SELECT data_class FROM record_versions UNION ALL "
        "SELECT data_class FROM resources WHERE resource_type='Patient' UNION ALL SELECT data_class FROM outbox",
      into(classes), now;
  EXPECT_EQ(classes, (std::vector<std::string>(4, "sud")));
}

TEST_F(EncryptionAtRestTest, AlteredOrMovedCiphertextIsRefusedNamingTheClass) {
  ASSERT_TRUE(
      store_->ingest({recordOf(DataClass::Sud, "r1", "A12345", "x"), recordOf(DataClass::Sud, "r2", "B1", "y")}, day(0)));
  auto s = raw();
  // Move r2's Bundle into r1's row: both are valid sud envelopes, but bound to their own row.
  *s << "UPDATE outbox SET bundle=(SELECT bundle FROM outbox WHERE record_key='" + key("r2") + "') WHERE record_key='" +
            key("r1") + "'",
      now;
  auto due = store_->dueItems("p1", day(0), 10);
  ASSERT_FALSE(due);
  EXPECT_EQ(due.error().code, ErrorCode::Storage);
  EXPECT_THAT(due.error().message, HasSubstr("sud payload does not authenticate"));
  EXPECT_THAT(due.error().where, HasSubstr("outbox item 1 bundle"));

  // A flipped bit in a record version.
  Poco::Data::BLOB payload;
  *s << "SELECT payload FROM record_versions WHERE record_key='" + key("r2") + "'", into(payload), now;
  std::string bytes = blobText(payload);
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x10);
  Poco::Data::BLOB altered(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  *s << "UPDATE record_versions SET payload=? WHERE record_key='" + key("r2") + "'", use(altered), now;
  auto read = store_->recordPayload("c1", "r2", 1);
  ASSERT_FALSE(read);
  EXPECT_THAT(read.error().message, HasSubstr("sud payload does not authenticate"));
}

TEST_F(EncryptionAtRestTest, OpeningNeedsTheRightMasterKey) {
  store_.reset();
  auto none = openSqliteStore({path(), true, 2});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::Config);
  EXPECT_THAT(none.error().message, HasSubstr("no master key"));

  auto wrong = open(test::testMasterKey('w'));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::Config);
  EXPECT_THAT(wrong.error().message, HasSubstr("the master key does not match the one that wrapped the data keys"));
  EXPECT_THAT(wrong.error().where, HasSubstr(path()));
  EXPECT_TRUE(open(test::testMasterKey()));
}

}  // namespace
}  // namespace gw::store

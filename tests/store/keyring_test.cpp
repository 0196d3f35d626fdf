#include "store/keyring.hpp"

#include <Poco/Data/LOB.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "common/ids.hpp"
#include "store/sqlite_store.hpp"
#include "support/test_keys.hpp"

namespace gw::store {
namespace {

namespace fs = std::filesystem;
using namespace Poco::Data::Keywords;
using privacy::ClassSet;
using privacy::DataClass;
using ::testing::HasSubstr;

class KeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Poco::Data::SQLite::Connector::registerConnector();
    dir_ = fs::temp_directory_path() / ("gw-keyring-" + ids::randomHex(6));
    fs::create_directories(dir_);
    auto backend = openSqliteBackend({(dir_ / "gw.db").string(), true, 2, {}});
    ASSERT_TRUE(backend) << backend.error().describe();
    backend_ = std::move(backend).value();
    session_ = std::make_unique<Poco::Data::Session>("SQLite", (dir_ / "gw.db").string());
  }
  void TearDown() override {
    session_.reset();
    backend_.reset();
    fs::remove_all(dir_);
  }
  Result<Keyring> open(char master = 'm') { return Keyring::open(*backend_, test::testMasterKey(master), SystemTime{}); }
  int keyRows() {
    int n = 0;
    *session_ << "SELECT COUNT(*) FROM data_keys", into(n), now;
    return n;
  }
  std::string wrappedOf(const std::string& data_class) {
    Poco::Data::BLOB b;
    *session_ << "SELECT wrapped FROM data_keys WHERE data_class=?", useRef(data_class), into(b), now;
    return std::string(reinterpret_cast<const char*>(b.rawContent()), b.size());
  }

  fs::path dir_;
  std::unique_ptr<StoreBackend> backend_;
  std::unique_ptr<Poco::Data::Session> session_;  // the file as anyone with access sees it
};

TEST_F(KeyringTest, MakesOneWrappedKeyPerClassOnceAndReadsThemBack) {
  auto first = open();
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_EQ(keyRows(), 5) << "three data keys and the two keyed-hash secrets";
  for (DataClass c : {DataClass::General, DataClass::Sud, DataClass::Mh}) EXPECT_EQ(first.value().currentVersion(c), 1u);
  const std::string general_wrapped = wrappedOf("general");
  EXPECT_EQ(general_wrapped.size(), crypto::kKeySize + crypto::kSealOverhead) << "stored wrapped, never raw";

  const auto ctx = payloadContext({"t", "row-1"});
  const auto sealed = first.value().seal(DataClass::Sud, "{\"mrn\":\"A12345\"}", ctx).value();
  auto second = open();  // a restart: the same keys come back from the table
  ASSERT_TRUE(second);
  EXPECT_EQ(keyRows(), 5);
  EXPECT_EQ(wrappedOf("general"), general_wrapped);
  EXPECT_EQ(second.value().open(sealed, ctx).value(), "{\"mrn\":\"A12345\"}");
}

TEST_F(KeyringTest, KeyedHashSecretsAreWrappedDistinctAndSurviveRestartAndRotation) {
  auto first = open('m');
  ASSERT_TRUE(first) << first.error().describe();
  const auto lookup = crypto::hmacSha256Hex(first.value().hashKey(HashKeyPurpose::Lookup), "c1|MRN-1");
  const auto chain = crypto::hmacSha256Hex(first.value().hashKey(HashKeyPurpose::AuditChain), "c1|MRN-1");
  EXPECT_NE(lookup, chain) << "one secret per purpose";
  EXPECT_EQ(wrappedOf("lookup").size(), crypto::kKeySize + crypto::kSealOverhead) << "stored wrapped, never raw";

  ASSERT_TRUE(Keyring::rotateMaster(*backend_, test::testMasterKey('m'), test::testMasterKey('n')));
  auto rotated = open('n');
  ASSERT_TRUE(rotated) << rotated.error().describe();
  EXPECT_EQ(crypto::hmacSha256Hex(rotated.value().hashKey(HashKeyPurpose::Lookup), "c1|MRN-1"), lookup)
      << "a master key rotation must not change any stored lookup key";
  EXPECT_EQ(crypto::hmacSha256Hex(rotated.value().hashKey(HashKeyPurpose::AuditChain), "c1|MRN-1"), chain);
}

TEST_F(KeyringTest, ADatabaseWithOnlyDataKeysGetsTheKeyedHashSecretsOnOpen) {
  ASSERT_TRUE(open('m'));
  *session_ << "DELETE FROM data_keys WHERE data_class IN ('lookup', 'audit-chain')", now;  // as an older version left it
  ASSERT_EQ(keyRows(), 3);
  auto ring = open('m');
  ASSERT_TRUE(ring) << ring.error().describe();
  EXPECT_EQ(keyRows(), 5);
  EXPECT_FALSE(ring.value().hashKey(HashKeyPurpose::Lookup).empty());
}

TEST_F(KeyringTest, EnvelopeHasVersionClassAndKeyVersionUpFront) {
  auto ring = open().value();
  const std::string plain(2048, 'x');
  for (auto [set, expected] :
       {std::pair{ClassSet(DataClass::General), DataClass::General}, std::pair{ClassSet(DataClass::Sud), DataClass::Sud},
        std::pair{ClassSet(DataClass::Mh), DataClass::Mh},
        std::pair{ClassSet(), DataClass::Sud},  // unclassified: the safe default
        std::pair{ClassSet(DataClass::General).add(DataClass::Mh), DataClass::Mh},
        std::pair{ClassSet(DataClass::Sud).add(DataClass::Mh), DataClass::Sud}}) {
    const auto envelope = ring.seal(set, plain, "ctx").value();
    ASSERT_EQ(envelope.size(), plain.size() + kEnvelopeOverhead);
    EXPECT_EQ(envelope.substr(0, 3), "GW1");
    EXPECT_EQ(static_cast<std::uint8_t>(envelope[3]), static_cast<std::uint8_t>(expected));
    EXPECT_EQ(envelope.substr(4, 4), std::string("\0\0\0\1", 4));
    const auto view = parseEnvelope(envelope);
    ASSERT_TRUE(view);
    EXPECT_EQ(view->data_class, expected);
    EXPECT_EQ(view->key_version, 1u);
    EXPECT_EQ(envelope.find(plain.substr(0, 16)), std::string::npos);
  }
}

TEST_F(KeyringTest, AnEnvelopeOpensOnlyForItsOwnRow) {
  auto ring = open().value();
  const auto a = payloadContext({"resources.body", "Patient", "1"});
  const auto b = payloadContext({"resources.body", "Patient", "2"});
  const auto envelope = ring.seal(DataClass::Mh, "PHQ-9 total 19", a).value();
  auto moved = ring.open(envelope, b);
  ASSERT_FALSE(moved);
  EXPECT_EQ(moved.error().code, ErrorCode::Storage);
  EXPECT_THAT(moved.error().message, HasSubstr("a mh payload does not authenticate with the mh data key"));
  EXPECT_TRUE(ring.open(envelope, a));
  // Length prefixes: the same characters split differently are a different context.
  EXPECT_NE(payloadContext({"ab", "c"}), payloadContext({"a", "bc"}));
}

TEST_F(KeyringTest, RelabellingAnEnvelopeToAnotherClassDoesNotOpen) {
  auto ring = open().value();
  auto envelope = ring.seal(DataClass::Sud, "buprenorphine", "ctx").value();
  envelope[3] = static_cast<char>(DataClass::General);  // claim it is general data
  auto opened = ring.open(envelope, "ctx");
  ASSERT_FALSE(opened);
  EXPECT_THAT(opened.error().message, HasSubstr("general payload does not authenticate"));
}

TEST_F(KeyringTest, UnknownFormatAndMissingKeyVersionAreNamed) {
  auto ring = open().value();
  auto plain = ring.open("{\"not\":\"encrypted\"} padding padding padding", "ctx");
  ASSERT_FALSE(plain);
  EXPECT_THAT(plain.error().message, HasSubstr("not an encrypted envelope (GW1)"));
  auto envelope = ring.seal(DataClass::Mh, "x", "ctx").value();
  envelope[7] = 9;  // key version 9
  auto missing = ring.open(envelope, "ctx");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("no mh data key version 9"));
}

TEST_F(KeyringTest, WrongMasterKeyIsNamedNotMistakenForDamage) {
  ASSERT_TRUE(open('m'));
  auto wrong = open('w');
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ErrorCode::Config);
  EXPECT_THAT(wrong.error().message,
              HasSubstr("the master key does not match the one that wrapped the data keys (id " +
                        test::testMasterKey('w').id() + ", expected " + test::testMasterKey('m').id() + ")"));
  EXPECT_EQ(keyRows(), 5) << "nothing was made with the wrong key";
}

TEST_F(KeyringTest, AlteredWrappedKeyIsReported) {
  ASSERT_TRUE(open());
  std::string wrapped = wrappedOf("sud");
  wrapped[20] = static_cast<char>(wrapped[20] ^ 1);
  Poco::Data::BLOB blob(reinterpret_cast<const unsigned char*>(wrapped.data()), wrapped.size());
  *session_ << "UPDATE data_keys SET wrapped=? WHERE data_class='sud'", use(blob), now;
  auto ring = open();
  ASSERT_FALSE(ring);
  EXPECT_EQ(ring.error().code, ErrorCode::Storage);
  EXPECT_THAT(ring.error().message, HasSubstr("sud data key version 1 does not unwrap"));
}

TEST_F(KeyringTest, RotationRewrapsEveryKeyAndKeepsPayloadsReadable) {
  const auto ctx = payloadContext({"outbox.bundle", "p1"});
  const auto envelope = open('m').value().seal(DataClass::Sud, "bundle", ctx).value();
  auto rotated = Keyring::rotateMaster(*backend_, test::testMasterKey('m'), test::testMasterKey('n'));
  ASSERT_TRUE(rotated) << rotated.error().describe();
  EXPECT_EQ(rotated.value().data_keys, 5);
  EXPECT_EQ(rotated.value().old_master_id, test::testMasterKey('m').id());
  EXPECT_EQ(rotated.value().new_master_id, test::testMasterKey('n').id());
  EXPECT_THAT(rotated.value().keys,
              ::testing::UnorderedElementsAre("general v1", "sud v1", "mh v1", "lookup v1", "audit-chain v1"));

  EXPECT_FALSE(open('m')) << "the old master key no longer opens the keyring";
  auto ring = open('n');
  ASSERT_TRUE(ring) << ring.error().describe();
  EXPECT_EQ(ring.value().open(envelope, ctx).value(), "bundle") << "data keys unchanged: old payloads still open";
}

TEST_F(KeyringTest, RotationRefusesTheWrongCurrentKeyOrTheSameKeyAndChangesNothing) {
  ASSERT_TRUE(open('m'));
  const std::string before = wrappedOf("mh");
  auto wrong = Keyring::rotateMaster(*backend_, test::testMasterKey('x'), test::testMasterKey('n'));
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message, HasSubstr("does not match"));
  auto same = Keyring::rotateMaster(*backend_, test::testMasterKey('m'), test::testMasterKey('m'));
  ASSERT_FALSE(same);
  EXPECT_THAT(same.error().message, HasSubstr("the same as the current one"));
  EXPECT_EQ(wrappedOf("mh"), before);
  EXPECT_TRUE(WriteTransaction::begin(*backend_)) << "the failed rotation released the write lock";
  EXPECT_TRUE(open('m'));
}

}  // namespace
}  // namespace gw::store

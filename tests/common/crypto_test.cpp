#include "common/crypto.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/ids.hpp"

namespace gw::crypto {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

SecretKey key(char fill) { return SecretKey::fromBytes(std::string(kKeySize, fill)).value(); }

TEST(Crypto, SealOpenRoundTripsEverySize) {
  const SecretKey k = SecretKey::generate().value();
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 2048u, 100000u}) {
    std::string plain(size, '\0');
    for (std::size_t i = 0; i < size; ++i) plain[i] = static_cast<char>(i * 7);
    auto sealed = seal(k, plain, "aad");
    ASSERT_TRUE(sealed) << sealed.error().describe();
    EXPECT_EQ(sealed.value().size(), size + kSealOverhead);
    auto opened = open(k, sealed.value(), "aad");
    ASSERT_TRUE(opened) << opened.error().describe();
    EXPECT_EQ(opened.value(), plain) << "size " << size;
  }
}

TEST(Crypto, EveryMessageGetsItsOwnNonce) {
  const SecretKey k = key('a');
  const auto first = seal(k, "same text", "").value();
  const auto second = seal(k, "same text", "").value();
  EXPECT_NE(first.substr(0, kNonceSize), second.substr(0, kNonceSize));
  EXPECT_NE(first, second);
}

// Nonces are drawn from a per-thread block of DRBG output; a forked child must not reuse the
// parent's block, or parent and child would seal under the same nonce.
TEST(Crypto, AForkedChildDoesNotRepeatTheParentsNonces) {
  const SecretKey k = key('f');
  ASSERT_TRUE(seal(k, "warm up the block", ""));
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const auto sealed = seal(k, "child", "");
    const std::string nonce = sealed ? sealed.value().substr(0, kNonceSize) : std::string(kNonceSize, '\0');
    const auto written = ::write(fds[1], nonce.data(), nonce.size());
    ::_exit(written == static_cast<ssize_t>(kNonceSize) ? 0 : 1);
  }
  const std::string parent_nonce = seal(k, "parent", "").value().substr(0, kNonceSize);
  std::string child_nonce(kNonceSize, '\0');
  ASSERT_EQ(::read(fds[0], child_nonce.data(), kNonceSize), static_cast<ssize_t>(kNonceSize));
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_EQ(status, 0);
  EXPECT_NE(child_nonce, parent_nonce);
}

// Known answer (GCM specification, test case 16: AES-256, 96-bit IV, with AAD): the messages are
// standard AES-256-GCM, readable by any other implementation given the key.
TEST(Crypto, OpensTheGcmSpecificationTestVector) {
  const auto k = SecretKey::fromBytes(unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")).value();
  const std::string nonce = unhex("cafebabefacedbaddecaf888");
  const std::string cipher = unhex(
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f"
      "662");
  const std::string tag = unhex("76fc6ece0f4e1768cddf8853bb2d551b");
  const std::string aad = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  auto opened = open(k, nonce + cipher + tag, aad);
  ASSERT_TRUE(opened) << opened.error().describe();
  EXPECT_EQ(opened.value(), unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e"
                                  "2449a6b525b16aedf5aa0de657ba637b39"));
}

TEST(Crypto, HmacSha256MatchesOpenSslCommandLine) {
  // `echo -n "Hi There" | openssl dgst -sha256 -mac HMAC -macopt hexkey:0b...0b` (32 bytes of 0x0b)
  const auto k = SecretKey::fromBytes(std::string(32, '\x0b')).value();
  EXPECT_EQ(hmacSha256Hex(k, "Hi There"), "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
  EXPECT_EQ(hmacSha256Hex(k, "Hi There", 16), "198a607eb44bfbc69903a0f1cf2bbdc5");
  const auto other = SecretKey::fromBytes(std::string(32, '\x0c')).value();
  EXPECT_NE(hmacSha256Hex(other, "Hi There"), hmacSha256Hex(k, "Hi There")) << "keyed: another key, another digest";
}

TEST(Crypto, AKeyedHmacGivesTheSameMacForEveryMessageItIsAskedFor) {
  const auto k = SecretKey::fromBytes(std::string(32, '\x0b')).value();
  const KeyedHmacSha256 keyed(k);
  // Twice the same message: each MAC starts from the keyed state, not from the previous MAC's.
  EXPECT_EQ(keyed.macHex("Hi There"), "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7");
  EXPECT_EQ(keyed.macHex("Hi There", 16), "198a607eb44bfbc69903a0f1cf2bbdc5");
  EXPECT_EQ(keyed.mac("another message"), hmacSha256(k, "another message"));
  EXPECT_THROW(KeyedHmacSha256(SecretKey{}), std::runtime_error);
}

TEST(Crypto, AnyFlippedBitFailsToOpenAndLeavesNoPlaintext) {
  const SecretKey k = key('b');
  const std::string sealed = seal(k, "MRN A12345 buprenorphine", "row-1").value();
  // Nonce, ciphertext and tag: every byte position, one bit each.
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] = static_cast<char>(tampered[i] ^ (1 << (i % 8)));
    std::string out = "prefix";
    auto opened = openAppend(k, tampered, "row-1", out);
    ASSERT_FALSE(opened) << "byte " << i;
    EXPECT_EQ(opened.error().code, ErrorCode::InvalidInput);
    EXPECT_EQ(out, "prefix") << "unauthenticated plaintext must not be left behind (byte " << i << ")";
  }
  EXPECT_FALSE(open(k, sealed.substr(0, sealed.size() - 1), "row-1")) << "truncated";
  EXPECT_FALSE(open(k, sealed.substr(0, kSealOverhead - 1), "row-1")) << "shorter than nonce + tag";
  EXPECT_TRUE(open(k, sealed, "row-1")) << "the untampered message still opens";
}

TEST(Crypto, WrongKeyOrWrongAadFails) {
  const std::string sealed = seal(key('c'), "payload", "resources|Patient|1").value();
  auto wrong_key = open(key('d'), sealed, "resources|Patient|1");
  ASSERT_FALSE(wrong_key);
  EXPECT_THAT(wrong_key.error().message, HasSubstr("does not authenticate"));
  EXPECT_FALSE(open(key('c'), sealed, "resources|Patient|2"));
  EXPECT_FALSE(open(key('c'), sealed, ""));
  EXPECT_TRUE(open(key('c'), sealed, "resources|Patient|1"));
}

TEST(Crypto, EmptyKeyIsRefused) {
  EXPECT_FALSE(seal(SecretKey(), "x", ""));
  EXPECT_FALSE(SecretKey::fromBytes("short"));
}

TEST(SecretKey, NeverPrintsItsBytes) {
  const auto k = SecretKey::fromBytes(unhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")).value();
  std::ostringstream out;
  out << k;
  EXPECT_EQ(out.str(), "SecretKey(<redacted>)");
  const std::string printed = ::testing::PrintToString(k);  // what a failing EXPECT would show
  EXPECT_THAT(printed, Not(HasSubstr("0011")));
  EXPECT_THAT(printed, Not(HasSubstr("00 11")));
}

TEST(SecretKey, IdNamesTheKeyWithoutRevealingIt) {
  const auto a = key('a');
  EXPECT_EQ(a.id().size(), 16u);
  EXPECT_EQ(a.id(), ids::sha256Hex(std::string(kKeySize, 'a')).substr(0, 16));
  EXPECT_NE(a.id(), key('b').id());
}

TEST(SecretKey, MovedFromKeyIsEmpty) {
  SecretKey a = key('a');
  const std::string id = a.id();
  SecretKey b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the wipe on purpose
  EXPECT_EQ(b.id(), id);
  SecretKey c = b;
  EXPECT_EQ(c.id(), id);
}

TEST(Crypto, WipeClearsAString) {
  std::string secret = "do not keep me";
  wipe(secret);
  EXPECT_TRUE(secret.empty());
}

TEST(KeyText, HexAndBase64FormsGiveTheSameKey) {
  const std::string raw = unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const std::string id = SecretKey::fromBytes(raw).value().id();
  EXPECT_EQ(parseKeyText("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", "t").value().id(), id);
  EXPECT_EQ(parseKeyText("  000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F  ", "t").value().id(), id);
  EXPECT_EQ(parseKeyText("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", "t").value().id(), id);
}

TEST(KeyText, RejectsOtherShapesWithoutEchoingThem) {
  for (std::string_view bad :
       {"", "abc", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
        "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGx*dHh8="}) {
    auto k = parseKeyText(bad, "where");
    ASSERT_FALSE(k) << bad;
    EXPECT_EQ(k.error().where, "where");
    EXPECT_THAT(k.error().message, HasSubstr("64 hex digits or base64 of 32 bytes"));
    if (bad.size() > 4) {
      EXPECT_THAT(k.error().describe(), Not(HasSubstr(bad.substr(2))));
    }
  }
}

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("gw-key-" + ids::randomHex(6));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& text, mode_t mode) {
    const auto path = (dir_ / "master.key").string();
    std::ofstream(path, std::ios::trunc) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(KeyFileTest, LoadsAPrivateFile) {
  const auto path = write(std::string(64, 'a') + "\n", 0600);
  auto k = loadKeyFile(path);
  ASSERT_TRUE(k) << k.error().describe();
  EXPECT_EQ(k.value().id(), SecretKey::fromBytes(std::string(32, '\xaa')).value().id());
  EXPECT_TRUE(loadKeyFile(write(std::string(64, 'a'), 0400)));
}

TEST_F(KeyFileTest, RefusesAFileOthersCanRead) {
  for (mode_t mode : {0644, 0640, 0604, 0660, 0601}) {
    const auto path = write(std::string(64, 'a'), mode);
    auto k = loadKeyFile(path);
    ASSERT_FALSE(k) << std::oct << mode;
    EXPECT_EQ(k.error().code, ErrorCode::Config);
    EXPECT_EQ(k.error().where, path);
    EXPECT_THAT(k.error().message, HasSubstr("may be read or changed by other users"));
    EXPECT_THAT(k.error().hint, HasSubstr("chmod 600"));
  }
}

TEST_F(KeyFileTest, MissingFileAndBadContentAreClear) {
  auto missing = loadKeyFile(dir_ / "nope.key");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("cannot read the key file"));
  auto bad = loadKeyFile(write("not a key", 0600));
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("not a 256-bit key"));
  EXPECT_THAT(bad.error().hint, HasSubstr("openssl rand -hex 32"));
}

TEST(KeyEnv, ReadsTheNamedVariable) {
  ::setenv("GW_TEST_MASTER_KEY", std::string(64, 'b').c_str(), 1);
  auto k = loadKeyFromEnv("GW_TEST_MASTER_KEY");
  ::unsetenv("GW_TEST_MASTER_KEY");
  ASSERT_TRUE(k) << k.error().describe();
  EXPECT_EQ(k.value().id(), SecretKey::fromBytes(std::string(32, '\xbb')).value().id());
  auto unset = loadKeyFromEnv("GW_TEST_MASTER_KEY");
  ASSERT_FALSE(unset);
  EXPECT_THAT(unset.error().message, HasSubstr("GW_TEST_MASTER_KEY is not set"));
}

}  // namespace
}  // namespace gw::crypto

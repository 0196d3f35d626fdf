// FlatStringMap, the validator's lookup table for member names and codes: keys of every length
// class (0..3, 4..7, 8..16 held in the slot, longer confirmed on the stored key) and the joined
// (system, code) lookups of code sets, including near misses that share a length and words.
#include <gtest/gtest.h>

#include <string>

#include "validate/model.hpp"

namespace gw::validate {
namespace {

std::string keyOf(std::size_t length, char fill, std::size_t variant) {
  std::string key(length, fill);
  for (std::size_t i = 0; i < length; ++i) key[i] = static_cast<char>('a' + (i * 7 + variant) % 26);
  return key;
}

TEST(FlatStringMapTest, FindsEveryKeyAndNothingElse) {
  FlatStringMap<int> map;
  int next = 0;
  for (std::size_t length = 0; length <= 40; ++length) {
    for (std::size_t variant = 0; variant < 3; ++variant) {
      if (length == 0 && variant > 0) continue;
      EXPECT_TRUE(map.emplace(keyOf(length, 'x', variant), next++));
    }
  }
  EXPECT_FALSE(map.emplace(keyOf(12, 'x', 1), 99)) << "a second insert of a key is refused";
  next = 0;
  for (std::size_t length = 0; length <= 40; ++length) {
    for (std::size_t variant = 0; variant < 3; ++variant) {
      if (length == 0 && variant > 0) continue;
      const std::string key = keyOf(length, 'x', variant);
      const int* found = map.find(key);
      ASSERT_NE(found, nullptr) << key;
      EXPECT_EQ(*found, next++) << key;
      // One byte changed in the middle: same length, same first and last word for long keys.
      if (length > 0) {
        std::string other = key;
        other[length / 2] = '#';
        EXPECT_EQ(map.find(other), nullptr) << other;
      }
    }
  }
  EXPECT_EQ(map.find("not-there"), nullptr);
}

TEST(FlatStringMapTest, JoinedKeysAreFoundByTheirTwoParts) {
  FlatStringMap<char> pairs;
  const std::string system = "http://terminology.hl7.org/CodeSystem/consentscope";
  for (const char* code : {"patient-privacy", "research", "adr", "treatment"}) {
    EXPECT_TRUE(pairs.emplace(FlatStringMap<char>::joinedKey(system, code), 0));
  }
  EXPECT_NE(pairs.find2(system, "research"), nullptr);
  EXPECT_NE(pairs.find2(system, "adr"), nullptr);
  EXPECT_EQ(pairs.find2(system, "researc"), nullptr);
  EXPECT_EQ(pairs.find2(system + "x", "research"), nullptr);
  EXPECT_EQ(pairs.find2("", system + "research"), nullptr);
  EXPECT_FALSE(pairs.emplace(FlatStringMap<char>::joinedKey(system, "adr"), 0));
}

}  // namespace
}  // namespace gw::validate

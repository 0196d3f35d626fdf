#include "common/ids.hpp"

#include <gtest/gtest.h>

namespace gw::ids {
namespace {

TEST(UuidV5, MatchesRfc4122Example) {
  // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org") == 886313e1-3b8a-5372-9b90-0c9aee199e5d
  EXPECT_EQ(uuidV5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
}

TEST(ResourceId, IsDeterministicAndDistinguishesInputs) {
  EXPECT_EQ(resourceId("c1", "Patient", "A1"), resourceId("c1", "Patient", "A1"));
  EXPECT_NE(resourceId("c1", "Patient", "A1"), resourceId("c2", "Patient", "A1"));
  EXPECT_NE(resourceId("c1", "Patient", "A1"), resourceId("c1", "MedicationRequest", "A1"));
  // The separator keeps ("c1|P", "x") and ("c1", "P|x") apart only if ids never contain '|';
  // record ids are checked for that at ingest. Here we pin the format.
  EXPECT_EQ(resourceId("c1", "Patient", "A1"), uuidV5(kGatewayNamespace, "c1|Patient|A1"));
}

TEST(Sha256, KnownVector) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(constantTimeEquals("abc", "abc"));
  EXPECT_FALSE(constantTimeEquals("abc", "abd"));
  EXPECT_FALSE(constantTimeEquals("abc", "abcd"));
}

TEST(RandomHex, HasRequestedLengthAndVaries) {
  EXPECT_EQ(randomHex(16).size(), 32u);
  EXPECT_NE(randomHex(16), randomHex(16));
}

}  // namespace
}  // namespace gw::ids

namespace gw::ids {
namespace {

TEST(RecordKey, DependsOnTheDeploymentSecret) {
  EXPECT_EQ(recordKey("s1", "c1", "c1:pt:A1"), recordKey("s1", "c1", "c1:pt:A1"));
  EXPECT_NE(recordKey("s1", "c1", "c1:pt:A1"), recordKey("s2", "c1", "c1:pt:A1"))
      << "without the secret, nobody can enumerate MRNs against logged keys";
  EXPECT_NE(recordKey("s1", "c1", "c1:pt:A1"), recordKey("s1", "c2", "c1:pt:A1"));
  EXPECT_EQ(recordKey("s1", "c1", "x").size(), 32u);
}

}  // namespace
}  // namespace gw::ids

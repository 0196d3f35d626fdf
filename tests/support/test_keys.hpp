#pragma once
// Fixed master keys for tests that open a store (never for real data: the bytes are public).
#include <string>

#include "common/crypto.hpp"

namespace gw::test {

/// 32 bytes of `fill`; different fills give different keys.
inline crypto::SecretKey testMasterKey(char fill = 'm') {
  return crypto::SecretKey::fromBytes(std::string(crypto::kKeySize, fill)).value();
}

}  // namespace gw::test

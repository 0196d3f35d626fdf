// Fuzzes the config loader: syntax, unknown keys, types, position lookup.
#include <cstdint>
#include <string_view>

#include "config/gateway_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto result = gw::config::loadText(text, "/nonexistent", "fuzz.json", false);
  if (result.config) (void)gw::config::redactedJson(*result.config);
  return 0;
}

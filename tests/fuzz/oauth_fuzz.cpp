// Fuzzes what a partner's authorization server sends back (delivery/oauth_token_source.cpp): the
// token endpoint's JSON answer, its error answer, and {base}/.well-known/smart-configuration. Any
// input is an error or a value, never a crash; an accepted token can always go into a header.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "delivery/oauth_token_source.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto token = gw::delivery::parseTokenResponse(text)) {
    const auto& t = token.value();
    if (t.access_token.empty() || t.access_token.find_first_of("\r\n :") != std::string::npos) std::abort();
    if (t.expires_in.count() <= 0) std::abort();
  }
  const auto summary = gw::delivery::tokenErrorSummary(400, text);
  if (summary.find_first_of("\r\n") != std::string::npos) std::abort();
  if (auto config = gw::delivery::parseSmartConfiguration(text)) {
    if (config.value().token_endpoint.rfind("https://", 0) != 0) std::abort();
  }
  return 0;
}

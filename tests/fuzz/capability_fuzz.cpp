// Fuzzes a partner's CapabilityStatement (delivery/capability.cpp): any input is an error or a
// statement, never a crash; a statement read is always R4 and always yields a write mode.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "delivery/capability.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cap = gw::delivery::parseCapabilityStatement(text);
  if (!cap) {
    if (cap.error().where.empty()) std::abort();
    return 0;
  }
  if (cap.value().fhir_version.rfind("4.0", 0) != 0) std::abort();
  const std::optional<gw::delivery::PartnerCapability> known = cap.value();
  const auto choice = gw::delivery::chooseWriteMode("auto", known);
  if (choice.mode == gw::delivery::WriteMode::Transaction && !cap.value().transaction) std::abort();
  for (const auto& [type, r] : cap.value().resources) {
    (void)r;
    (void)gw::delivery::unsupportedWrite(known, {type, gw::delivery::RequiredWrite::Method::ConditionalUpdate});
  }
  return 0;
}

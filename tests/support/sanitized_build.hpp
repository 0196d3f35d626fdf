#pragma once
// Whether the tests run under AddressSanitizer (the fuzz preset, CI's sanitizer suite): time and
// memory bounds measured for optimised builds do not hold there.
namespace gw::test {
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizedBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif
#else
inline constexpr bool kSanitizedBuild = false;
#endif
}  // namespace gw::test

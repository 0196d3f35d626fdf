#pragma once
// Ordering FHIR date, dateTime and instant values as FHIRPath compares them, for per-1 (a
// Period's start is not after its end). Values may be partial ("2026", "2026-03"); times are
// compared as instants, whatever their offsets.
#include <string_view>

namespace gw::validate {

/// -1, 0 or 1 when `a` is before, the same as or after `b`; 2 when FHIRPath cannot decide
/// (different precisions that agree as far as both go) or either is not a date/time.
int compareDateTimes(std::string_view a, std::string_view b);

}  // namespace gw::validate

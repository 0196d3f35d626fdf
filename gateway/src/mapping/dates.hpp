#pragma once
// Date checks for the mapping engine: no regex, no allocation on the happy path of isCalendarDate.
#include <string>
#include <string_view>

namespace gw::mapping {

/// YYYY-MM-DD naming a real day (year 0001-9999, leap years honoured): 1990-02-30 is rejected.
bool isCalendarDate(std::string_view text);

/// RFC 3339 date-time with an offset -> FHIR dateTime. Checks the calendar date, hour 00-23,
/// minute 00-59, second 00-60, at most 9 fraction digits and an offset FHIR accepts
/// (Z or -14:00..+14:00); writes the text with 'T' and 'Z' upper-cased to `out`.
bool normaliseDateTime(std::string_view text, std::string& out);

}  // namespace gw::mapping

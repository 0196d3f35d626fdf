#pragma once
// JSON for tests, header-only (it reports through GoogleTest, which gw_test_support does not link).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string_view>

namespace gw::test {

/// The parsed document; a parse error fails the calling test, naming the byte.
inline rapidjson::Document parseJson(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  EXPECT_FALSE(doc.HasParseError()) << "test JSON does not parse at byte " << doc.GetErrorOffset() << ": "
                                    << text.substr(0, 200);
  return doc;
}

}  // namespace gw::test

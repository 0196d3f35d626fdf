#pragma once
// Golden .expected.json files hold resources as ingest stores them: labelled (meta.security).
// Tests of the stages before labelling (the mapper alone, the classifier and the labeller) want
// them as the mappers emit them: this takes the labels off again.
#include <rapidjson/document.h>

namespace gw::test {

/// Removes meta.security, and meta itself when nothing else is left in it.
inline void stripSecurityLabels(rapidjson::Value& resource) {
  if (!resource.IsObject()) return;
  auto meta = resource.FindMember("meta");
  if (meta == resource.MemberEnd() || !meta->value.IsObject()) return;
  meta->value.RemoveMember("security");
  if (meta->value.ObjectEmpty()) resource.RemoveMember("meta");
}

/// The same for every resource of an array (a golden file's content).
inline void stripSecurityLabelsFromAll(rapidjson::Value& resources) {
  if (!resources.IsArray()) return;
  for (auto& r : resources.GetArray()) stripSecurityLabels(r);
}

}  // namespace gw::test

#include "outbox/transaction_bundle.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <unordered_set>

#include "common/json.hpp"

namespace gw::outbox {
namespace {

using rapidjson::Value;

std::string percentEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    // Unreserved characters plus those FHIR servers expect verbatim in token systems (":/.").
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
        c == '~' || c == ':' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

// Copies `in` into `out`, rewriting in-bundle references and dropping the top-level id.
void writeResource(const Value& in, rapidjson::Writer<rapidjson::StringBuffer>& w,
                   const std::unordered_set<std::string>& local_refs, bool top_level) {
  switch (in.GetType()) {
    case rapidjson::kObjectType:
      w.StartObject();
      for (auto it = in.MemberBegin(); it != in.MemberEnd(); ++it) {
        const std::string_view key(it->name.GetString(), it->name.GetStringLength());
        if (top_level && key == "id") continue;
        w.Key(it->name.GetString(), it->name.GetStringLength());
        if (key == "reference" && it->value.IsString()) {
          const std::string ref(it->value.GetString(), it->value.GetStringLength());
          const auto slash = ref.find('/');
          if (slash != std::string::npos && local_refs.count(ref) != 0) {
            const std::string urn = "urn:uuid:" + ref.substr(slash + 1);
            w.String(urn.c_str(), static_cast<rapidjson::SizeType>(urn.size()));
            continue;
          }
        }
        writeResource(it->value, w, local_refs, false);
      }
      w.EndObject();
      break;
    case rapidjson::kArrayType:
      w.StartArray();
      for (const auto& v : in.GetArray()) writeResource(v, w, local_refs, false);
      w.EndArray();
      break;
    default: in.Accept(w);
  }
}

using json::writeString;

BuiltBundle buildOne(const std::vector<const BundleEntry*>& entries, const rapidjson::Value* bundle_security) {
  std::unordered_set<std::string> local_refs;
  for (const auto* e : entries) {
    if (e->method != EntryMethod::ConditionalDelete) local_refs.insert(e->resource_type + "/" + e->id);
  }

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("resourceType");
  w.String("Bundle");
  if (bundle_security != nullptr && bundle_security->IsArray() && !bundle_security->Empty()) {
    w.Key("meta");
    w.StartObject();
    w.Key("security");
    bundle_security->Accept(w);
    w.EndObject();
  }
  w.Key("type");
  w.String("transaction");
  w.Key("entry");
  w.StartArray();
  for (const auto* e : entries) {
    w.StartObject();
    if (e->method == EntryMethod::ConditionalDelete) {
      w.Key("request");
      w.StartObject();
      w.Key("method");
      w.String("DELETE");
      w.Key("url");
      writeString(w, conditionalUrl(e->resource_type, e->identifier_system, e->identifier_value));
      w.EndObject();
      w.EndObject();
      continue;
    }
    w.Key("fullUrl");
    writeString(w, "urn:uuid:" + e->id);
    w.Key("resource");
    writeResource(*e->resource, w, local_refs, true);
    w.Key("request");
    w.StartObject();
    if (e->method == EntryMethod::ConditionalUpdate) {
      w.Key("method");
      w.String("PUT");
      w.Key("url");
      writeString(w, conditionalUrl(e->resource_type, e->identifier_system, e->identifier_value));
    } else {
      w.Key("method");
      w.String("POST");
      w.Key("url");
      writeString(w, e->resource_type);
      w.Key("ifNoneExist");
      writeString(w, identifierQuery(e->identifier_system, e->identifier_value));
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {std::string(buffer.GetString(), buffer.GetSize()), static_cast<int>(entries.size())};
}

}  // namespace

std::string identifierQuery(const std::string& system, const std::string& value) {
  return "identifier=" + percentEncode(system) + "|" + percentEncode(value);
}

std::string conditionalUrl(const std::string& resource_type, const std::string& system, const std::string& value) {
  return resource_type + "?" + identifierQuery(system, value);
}

std::vector<BuiltBundle> buildTransactionBundles(const std::vector<BundleEntry>& entries, int max_entries,
                                                 const rapidjson::Value* bundle_security) {
  // Every part: the ConditionalCreate entries first (the patient the others reference), then its
  // share of the rest, then the in_every_part entries (e.g. the Consent of a Part 2 disclosure).
  std::vector<const BundleEntry*> leading;
  std::vector<const BundleEntry*> trailing;
  std::vector<const BundleEntry*> rest;
  for (const auto& e : entries) {
    if (e.method == EntryMethod::ConditionalCreate) {
      leading.push_back(&e);
    } else if (e.in_every_part) {
      trailing.push_back(&e);
    } else {
      rest.push_back(&e);
    }
  }
  std::vector<BuiltBundle> bundles;
  if (rest.empty()) {
    std::vector<const BundleEntry*> part = leading;
    part.insert(part.end(), trailing.begin(), trailing.end());
    if (!part.empty()) bundles.push_back(buildOne(part, bundle_security));
    return bundles;
  }
  // Shared entries ride along in every part; at least one other entry per part.
  const int limit = std::max(max_entries, 1);
  const int shared = static_cast<int>(leading.size() + trailing.size());
  const std::size_t room = static_cast<std::size_t>(std::max(1, limit - shared));
  for (std::size_t start = 0; start < rest.size(); start += room) {
    std::vector<const BundleEntry*> part = leading;
    for (std::size_t i = start; i < rest.size() && i < start + room; ++i) part.push_back(rest[i]);
    part.insert(part.end(), trailing.begin(), trailing.end());
    bundles.push_back(buildOne(part, bundle_security));
  }
  return bundles;
}

}  // namespace gw::outbox

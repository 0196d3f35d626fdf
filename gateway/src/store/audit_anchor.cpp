#include "store/audit_anchor.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"

namespace gw::store {
namespace {

constexpr std::string_view kFormat = "gw-audit-anchor-v1";
constexpr std::string_view kMacKey = ",\"mac\":\"";

}  // namespace

std::string AnchorSealer::line(const PublishedAnchor& a) const {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("anchor");
  json::writeString(w, kFormat);
  w.Key("seq");
  w.Int64(a.seq);
  w.Key("hash");
  json::writeString(w, a.hash);
  w.Key("at");
  json::writeString(w, formatRfc3339(fromUnixMillis(a.at_ms)));
  w.Key("at_ms");
  w.Int64(a.at_ms);
  w.EndObject();
  std::string text(b.GetString(), b.GetSize());
  text.pop_back();  // the closing brace: the MAC covers everything before its own member
  return text + std::string(kMacKey) + crypto::hmacSha256Hex(key_, text) + "\"}";
}

std::optional<PublishedAnchor> AnchorSealer::read(std::string_view line) const {
  if (key_.empty()) return std::nullopt;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  const auto at = line.rfind(kMacKey);
  if (at == std::string_view::npos) return std::nullopt;
  const auto signed_part = line.substr(0, at);
  const auto mac = line.substr(at + kMacKey.size());
  if (mac.size() != 64 + 2 || !mac.ends_with("\"}")) return std::nullopt;
  if (!ids::constantTimeEquals(mac.substr(0, 64), crypto::hmacSha256Hex(key_, signed_part))) return std::nullopt;
  // Authentic: written by this database's gateway. Read its fields.
  rapidjson::Document doc;
  const std::string object = std::string(signed_part) + "}";
  if (!json::parse(object, doc) || !doc.IsObject()) return std::nullopt;
  const auto* format = json::find(doc, "anchor");
  const auto* seq = json::find(doc, "seq");
  const auto* hash = json::find(doc, "hash");
  const auto* at_ms = json::find(doc, "at_ms");
  if (format == nullptr || !format->IsString() || json::view(*format) != kFormat || seq == nullptr || !seq->IsInt64() ||
      hash == nullptr || !hash->IsString() || at_ms == nullptr || !at_ms->IsInt64()) {
    return std::nullopt;
  }
  return PublishedAnchor{seq->GetInt64(), std::string(hash->GetString(), hash->GetStringLength()), at_ms->GetInt64()};
}

}  // namespace gw::store

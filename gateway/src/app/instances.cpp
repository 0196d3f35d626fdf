#include "app/instances.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "app/keys.hpp"
#include "common/ids.hpp"
#include "common/json.hpp"

namespace gw::app {
namespace {

namespace fs = std::filesystem;

std::string shortDigest(std::string_view bytes) { return "sha256:" + ids::sha256Hex(bytes).substr(0, 16); }

void removeMember(rapidjson::Value& object, const char* key) {
  if (object.IsObject() && object.HasMember(key)) object.RemoveMember(key);
}

// A file or folder path: where this host keeps something, not how the gateway behaves (what the
// mapping files hold is the mappers version; certificates and keys are checked at start).
bool isPathKey(std::string_view key) {
  return key.ends_with("_file") || key.ends_with("_dir") || key.ends_with("_path") || key == "file" || key == "directory" ||
         key == "sslrootcert" || key == "sslcert" || key == "sslkey";
}

void removePaths(rapidjson::Value& value) {
  if (value.IsArray()) {
    for (auto& item : value.GetArray()) removePaths(item);
    return;
  }
  if (!value.IsObject()) return;
  for (auto it = value.MemberBegin(); it != value.MemberEnd();) {
    if (it->value.IsString() && isPathKey(json::view(it->name))) {
      it = value.EraseMember(it);
    } else {
      removePaths(it->value);
      ++it;
    }
  }
}

// The files under `root`, by path relative to it: name, size and bytes, so a renamed, added or
// removed file changes the digest as much as an edited one.
Status addTree(std::string& out, std::string_view label, const fs::path& root) {
  if (root.empty()) return ok();
  std::error_code ec;
  if (!fs::exists(root, ec)) {
    out.append(label).append(": none\n");
    return ok();
  }
  std::vector<fs::path> files;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path());
  }
  if (ec) {
    return makeError(ErrorCode::Config, "cannot list the mapping set's folder: " + ec.message(), root.string(),
                     "check that the folder exists and the gateway's user may read it");
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in && !in.eof()) {
      return makeError(ErrorCode::Config, "cannot read a file of the mapping set", file.string(),
                       "check that the gateway's user may read it");
    }
    const std::string content = bytes.str();
    out.append(label).append("/").append(fs::relative(file, root).generic_string());
    out.append("\n").append(std::to_string(content.size())).append("\n").append(content).append("\n");
  }
  return ok();
}

constexpr std::string_view kComparedFields[] = {"binary_version", "config_version", "mappers_version"};

const std::string& field(const store::InstanceRow& row, std::string_view name) {
  if (name == "binary_version") return row.binary_version;
  if (name == "config_version") return row.config_version;
  return row.mappers_version;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void member(Writer& w, std::string_view key, std::string_view value) { json::writeMember(w, key, value); }

void timeMember(Writer& w, std::string_view key, std::int64_t ms) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  if (ms <= 0) {
    w.Null();
  } else {
    json::writeString(w, formatRfc3339(fromUnixMillis(ms)));
  }
}

}  // namespace

std::string_view binaryVersion() { return GW_VERSION; }

std::string configVersion(const config::GatewayConfig& config) {
  rapidjson::Document doc;
  const std::string redacted = config::redactedJson(config);
  std::string canonical;
  if (json::parse(redacted, doc) && doc.IsObject()) {
    removeMember(doc, "instance_id");
    if (doc.HasMember("server")) {
      auto& server = doc["server"];
      removeMember(server, "address");
      removeMember(server, "port");
      removeMember(server, "metrics_listen");
    }
    if (doc.HasMember("console") && doc["console"].IsObject() && doc["console"].HasMember("listen")) {
      auto& listen = doc["console"]["listen"];
      removeMember(listen, "address");
      removeMember(listen, "port");
    }
    removePaths(doc);
    canonical = json::toString(doc);
  } else {
    canonical = redacted;
  }
  // check-config shows token hashes as "<redacted>": a changed token still changes the version.
  for (const auto& token : config.tokens) canonical += "\ntoken " + token.id + " " + token.sha256;
  return shortDigest(canonical);
}

Result<std::string> mappingSetVersion(const config::Mapping& mapping) {
  std::string bytes;
  GW_TRY(addTree(bytes, "format", mapping.format_dir));
  GW_TRY(addTree(bytes, "profiles", mapping.profiles_dir));
  GW_TRY(addTree(bytes, "csv_mappers", mapping.csv_mappers_dir));
  return shortDigest(bytes);
}

std::vector<InstanceView> describeInstances(std::vector<store::InstanceRow> rows, SystemTime now) {
  const std::int64_t now_ms = toUnixMillis(now);
  const std::int64_t stale_ms = std::chrono::duration_cast<std::chrono::milliseconds>(kInstanceStaleAfter).count();
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.instance_id < b.instance_id; });
  std::vector<InstanceView> views;
  views.reserve(rows.size());
  for (auto& row : rows) {
    InstanceView v;
    v.state = row.stopped_at_ms > 0 ? "stopped" : now_ms - row.last_seen_at_ms > stale_ms ? "stale" : "running";
    v.row = std::move(row);
    views.push_back(std::move(v));
  }
  // Each version against the value most running instances have; a tie flags every one of them.
  for (const auto name : kComparedFields) {
    std::map<std::string, int> counts;
    for (const auto& v : views) {
      if (v.state == "running") ++counts[field(v.row, name)];
    }
    if (counts.size() < 2) continue;
    int most = 0, holders = 0;
    for (const auto& [value, n] : counts) {
      if (n > most) {
        most = n;
        holders = 1;
      } else if (n == most) {
        ++holders;
      }
    }
    for (auto& v : views) {
      if (v.state != "running") continue;
      if (holders > 1 || counts[field(v.row, name)] != most) v.differs.emplace_back(name);
    }
  }
  for (auto& v : views) {
    if (v.state == "running" && !v.row.last_reload_error.empty()) v.differs.emplace_back("last_reload_failed");
  }
  return views;
}

std::string instancesJson(const std::vector<InstanceView>& instances, std::string_view self) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  bool consistent = true;
  for (const auto& v : instances) consistent = consistent && v.differs.empty();
  w.StartObject();
  member(w, "self", self);
  w.Key("consistent");
  w.Bool(consistent);
  w.Key("instances");
  w.StartArray();
  for (const auto& v : instances) {
    const auto& r = v.row;
    w.StartObject();
    member(w, "instance_id", r.instance_id);
    member(w, "state", v.state);
    member(w, "binary_version", r.binary_version);
    member(w, "config_version", r.config_version);
    member(w, "mappers_version", r.mappers_version);
    timeMember(w, "started_at", r.started_at_ms);
    timeMember(w, "last_seen_at", r.last_seen_at_ms);
    timeMember(w, "stopped_at", r.stopped_at_ms);
    timeMember(w, "mappers_loaded_at", r.mappers_loaded_at_ms);
    w.Key("last_reload");
    if (r.last_reload_at_ms <= 0) {
      w.Null();
    } else {
      w.StartObject();
      timeMember(w, "at", r.last_reload_at_ms);
      member(w, "result", r.last_reload_error.empty() ? "ok" : "failed");
      if (!r.last_reload_error.empty()) member(w, "error", r.last_reload_error);
      w.EndObject();
    }
    w.Key("differs");
    w.StartArray();
    for (const auto& d : v.differs) json::writeString(w, d);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::string instancesText(const std::vector<InstanceView>& instances) {
  std::ostringstream out;
  for (const auto& v : instances) {
    const auto& r = v.row;
    out << (v.differs.empty() ? "  " : "! ") << r.instance_id << "  " << v.state << "  binary " << r.binary_version
        << "  config " << r.config_version << "  mappers " << r.mappers_version << "  last seen "
        << (r.last_seen_at_ms > 0 ? formatRfc3339(fromUnixMillis(r.last_seen_at_ms)) : std::string("-"));
    if (r.last_reload_at_ms > 0) {
      out << "  last reload " << formatRfc3339(fromUnixMillis(r.last_reload_at_ms))
          << (r.last_reload_error.empty() ? " ok" : " FAILED: " + r.last_reload_error);
    }
    if (!v.differs.empty()) {
      out << "  differs:";
      for (const auto& d : v.differs) out << ' ' << d;
    }
    out << '\n';
  }
  if (instances.empty()) out << "no instance has recorded itself in this database yet\n";
  return out.str();
}

Result<std::string> instancesCommand(const config::GatewayConfig& config, bool json, bool& consistent) {
  GW_TRY(auto store, openConfiguredStore(config, 1));
  GW_TRY(auto rows, store->instances());
  const auto views = describeInstances(std::move(rows), std::chrono::system_clock::now());
  consistent = std::all_of(views.begin(), views.end(), [](const auto& v) { return v.differs.empty(); });
  return json ? instancesJson(views, "") : instancesText(views);
}

}  // namespace gw::app

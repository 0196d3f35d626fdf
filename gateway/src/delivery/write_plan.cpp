#include "delivery/write_plan.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>

#include "common/json.hpp"

namespace gw::delivery {

namespace {

Error storedBundleError(std::string message, std::string where) {
  return makeError(ErrorCode::Internal, "outbox Bundle: " + std::move(message), std::move(where),
                   "the item was not written by this gateway's outbox; report it");
}

void collectUrnReferences(const rapidjson::Value& v, std::vector<std::string>& out) {
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      if (json::view(it->name) == "reference" && it->value.IsString()) {
        const std::string ref(json::view(it->value));
        if (ref.rfind("urn:uuid:", 0) == 0 && std::find(out.begin(), out.end(), ref) == out.end()) out.push_back(ref);
      } else {
        collectUrnReferences(it->value, out);
      }
    }
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray()) collectUrnReferences(e, out);
  }
}

void writeResolved(const rapidjson::Value& in, rapidjson::Writer<rapidjson::StringBuffer>& w,
                   const std::map<std::string, std::string>& resolved) {
  if (in.IsObject()) {
    w.StartObject();
    for (auto it = in.MemberBegin(); it != in.MemberEnd(); ++it) {
      w.Key(it->name.GetString(), it->name.GetStringLength());
      if (json::view(it->name) == "reference" && it->value.IsString()) {
        const auto found = resolved.find(std::string(json::view(it->value)));
        if (found != resolved.end()) {
          json::writeString(w, found->second);
          continue;
        }
      }
      writeResolved(it->value, w, resolved);
    }
    w.EndObject();
  } else if (in.IsArray()) {
    w.StartArray();
    for (const auto& e : in.GetArray()) writeResolved(e, w, resolved);
    w.EndArray();
  } else {
    in.Accept(w);
  }
}

}  // namespace

int entryStatusCode(std::string_view status) {
  while (!status.empty() && status.front() == ' ') status.remove_prefix(1);
  int code = 0;
  const auto [end, ec] = std::from_chars(status.data(), status.data() + status.size(), code);
  if (ec != std::errc() || end - status.data() != 3) return 0;
  if (end != status.data() + status.size() && *end != ' ') return 0;
  return code;
}

Result<WritePlan> planWrites(std::string_view text) {
  rapidjson::Document doc;
  GW_TRY(json::parse(text, doc));
  if (!doc.IsObject() || json::getString(doc, "resourceType") != "Bundle") return storedBundleError("not a Bundle", "$");
  WritePlan plan;
  if (const auto* meta = json::find(doc, "meta"); meta != nullptr && meta->IsObject()) {
    if (const auto* security = json::find(*meta, "security"); security != nullptr && security->IsArray()) {
      plan.bundle_security_json = json::toString(*security);
    }
  }
  const auto* entries = json::find(doc, "entry");
  if (entries == nullptr || !entries->IsArray()) return storedBundleError("no entry array", "$.entry");
  for (rapidjson::SizeType i = 0; i < entries->Size(); ++i) {
    const std::string where = "$.entry[" + std::to_string(i) + "]";
    const auto& e = (*entries)[i];
    const auto* request = e.IsObject() ? json::find(e, "request") : nullptr;
    if (request == nullptr || !request->IsObject()) return storedBundleError("entry without request", where);
    PlannedEntry p;
    p.index = i;
    p.full_url = std::string(json::getString(e, "fullUrl"));
    p.url = std::string(json::getString(*request, "url"));
    p.if_none_exist = std::string(json::getString(*request, "ifNoneExist"));
    const std::string_view method = json::getString(*request, "method");
    p.write.resource_type = p.url.substr(0, p.url.find('?'));
    if (method == "PUT") {
      p.write.method = RequiredWrite::Method::ConditionalUpdate;
    } else if (method == "POST") {
      p.write.method = RequiredWrite::Method::ConditionalCreate;
    } else if (method == "DELETE") {
      p.write.method = RequiredWrite::Method::ConditionalDelete;
    } else {
      return storedBundleError("unexpected request method", where + ".request.method");
    }
    if (p.write.resource_type.empty()) return storedBundleError("request without a url", where + ".request.url");
    if (const auto* resource = json::find(e, "resource"); resource != nullptr) {
      p.resource_json = json::toString(*resource);
      collectUrnReferences(*resource, p.depends_on);
      std::erase(p.depends_on, p.full_url);
    } else if (p.write.method != RequiredWrite::Method::ConditionalDelete) {
      return storedBundleError("entry without a resource", where);
    }
    plan.entries.push_back(std::move(p));
  }
  // Patient first: every other resource of a record refers to it.
  std::stable_partition(plan.entries.begin(), plan.entries.end(),
                        [](const PlannedEntry& p) { return p.write.resource_type == "Patient"; });
  return plan;
}

std::string resourceReference(std::string_view location) {
  if (const auto history = location.find("/_history"); history != std::string_view::npos) {
    location = location.substr(0, history);
  }
  while (!location.empty() && location.back() == '/') location.remove_suffix(1);
  const auto last = location.rfind('/');
  if (last == std::string_view::npos || last == 0 || last + 1 == location.size()) return {};
  const auto type_start = location.rfind('/', last - 1);
  const std::string_view type = location.substr(type_start == std::string_view::npos ? 0 : type_start + 1,
                                                last - (type_start == std::string_view::npos ? 0 : type_start + 1));
  if (type.empty() || !(type.front() >= 'A' && type.front() <= 'Z')) return {};
  return std::string(type) + "/" + std::string(location.substr(last + 1));
}

std::string resolvedResource(const PlannedEntry& entry, const std::map<std::string, std::string>& resolved) {
  if (entry.resource_json.empty()) return {};
  rapidjson::Document doc;
  if (!json::parse(entry.resource_json, doc)) return entry.resource_json;  // written by planWrites: cannot fail
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  writeResolved(doc, w, resolved);
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string batchBundle(const WritePlan& plan, const std::vector<const PlannedEntry*>& entries,
                        const std::map<std::string, std::string>& resolved) {
  std::string out = R"({"resourceType":"Bundle",)";
  if (!plan.bundle_security_json.empty()) out += R"("meta":{"security":)" + plan.bundle_security_json + "},";
  out += R"("type":"batch","entry":[)";
  bool first = true;
  for (const auto* e : entries) {
    if (!first) out += ',';
    first = false;
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    w.StartObject();
    if (!e->full_url.empty()) {
      w.Key("fullUrl");
      json::writeString(w, e->full_url);
    }
    w.Key("request");
    w.StartObject();
    w.Key("method");
    w.String(e->write.method == RequiredWrite::Method::ConditionalUpdate   ? "PUT"
             : e->write.method == RequiredWrite::Method::ConditionalCreate ? "POST"
                                                                           : "DELETE");
    w.Key("url");
    json::writeString(w, e->url);
    if (!e->if_none_exist.empty()) {
      w.Key("ifNoneExist");
      json::writeString(w, e->if_none_exist);
    }
    w.EndObject();
    w.EndObject();
    std::string entry(b.GetString(), b.GetSize());
    if (!e->resource_json.empty()) {
      entry.pop_back();  // '}'
      entry += R"(,"resource":)" + resolvedResource(*e, resolved) + "}";
    }
    out += entry;
  }
  return out + "]}";
}

Result<std::vector<EntryResult>> parseBatchResponse(std::string_view body, std::size_t expected_entries) {
  const auto bad = [](std::string message) {
    return makeError(ErrorCode::Unavailable, "partner batch answer: " + std::move(message), "batch-response",
                     "check the partner's batch support, or set partners[].write_mode to \"per-resource\"");
  };
  rapidjson::Document doc;
  if (auto parsed = json::parseStrict(body, doc); !parsed) return bad("not JSON (" + parsed.error().message + ")");
  if (!doc.IsObject() || json::getString(doc, "resourceType") != "Bundle" ||
      json::getString(doc, "type") != "batch-response") {
    return bad("not a Bundle of type batch-response");
  }
  std::vector<EntryResult> results;
  const auto* entries = json::find(doc, "entry");
  if (entries != nullptr && !entries->IsArray()) return bad("Bundle.entry is not an array");
  for (rapidjson::SizeType i = 0; entries != nullptr && i < entries->Size(); ++i) {
    const auto& e = (*entries)[i];
    const auto* response = e.IsObject() ? json::find(e, "response") : nullptr;
    if (response == nullptr || !response->IsObject()) {
      results.push_back({});  // no status: counts as failed, retried
      continue;
    }
    results.push_back({std::string(json::getString(*response, "status")),
                       std::string(json::getString(*response, "location")), std::string(json::getString(*response, "etag")),
                       std::string(json::getString(*response, "lastModified"))});
  }
  if (results.size() != expected_entries) {
    return bad("answered " + std::to_string(results.size()) + " entries for " + std::to_string(expected_entries) +
               " requests");
  }
  return results;
}

}  // namespace gw::delivery

#include "audit/audit_format.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/clock.hpp"
#include "common/json.hpp"

namespace gw::audit {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

using json::writeKey;
void writeStringMember(Writer& w, std::string_view key, std::string_view value) { json::writeMember(w, key, value); }
// "sud,mh" -> ["sud","mh"]; "" -> [].
void writeList(Writer& w, std::string_view key, std::string_view list) { json::writeListMember(w, key, list); }

void writeEntry(Writer& w, const store::AuditEntry& e) {
  w.StartObject();
  writeKey(w, "seq");
  w.Int64(e.seq);
  writeStringMember(w, "at", formatRfc3339(fromUnixMillis(e.at_ms)));
  writeKey(w, "at_ms");
  w.Int64(e.at_ms);
  writeStringMember(w, "kind", store::auditKindName(e.kind));
  writeStringMember(w, "actor", e.actor);
  writeStringMember(w, "clinic", e.clinic);
  writeStringMember(w, "patient_key", e.patient_key);
  writeStringMember(w, "partner_id", e.partner_id);
  writeStringMember(w, "purpose", e.purpose);
  writeStringMember(w, "resource_type", e.resource_type);
  writeStringMember(w, "resource_id", e.resource_id);
  writeList(w, "classes", e.classes);
  writeList(w, "labels", e.labels);
  writeStringMember(w, "consent_id", e.consent_id);
  writeKey(w, "consent_version");
  w.Int64(e.consent_version);
  writeStringMember(w, "outcome", store::auditOutcomeName(e.outcome));
  writeStringMember(w, "reason", e.reason);
  writeStringMember(w, "policy_version", e.policy_version);
  writeKey(w, "detail");
  if (e.detail.empty()) {
    w.Null();
  } else {
    rapidjson::Document doc;
    if (json::parse(e.detail, doc) && doc.IsObject()) {
      doc.Accept(w);
    } else {
      json::writeString(w, e.detail);
    }
  }
  writeStringMember(w, "prev_hash", e.prev_hash);
  writeStringMember(w, "hash", e.hash);
  writeStringMember(w, "instance_id", e.instance_id);
  w.EndObject();
}

std::string_view asView(const rapidjson::StringBuffer& b) { return {b.GetString(), b.GetSize()}; }

void appendCsvLine(std::string& out, const store::AuditEntry& e) {
  const std::string cells[] = {
      std::to_string(e.seq),
      formatRfc3339(fromUnixMillis(e.at_ms)),
      std::to_string(e.at_ms),
      std::string(store::auditKindName(e.kind)),
      e.actor,
      e.clinic,
      e.patient_key,
      e.partner_id,
      e.purpose,
      e.resource_type,
      e.resource_id,
      e.classes,
      e.labels,
      e.consent_id,
      std::to_string(e.consent_version),
      std::string(store::auditOutcomeName(e.outcome)),
      e.reason,
      e.policy_version,
      e.detail,
      e.prev_hash,
      e.hash,
      e.instance_id,  // last: the columns before it keep their places (schema 9)
  };
  bool first = true;
  for (const auto& c : cells) {
    if (!first) out.push_back(',');
    first = false;
    out += csvCell(c);
  }
  out += "\r\n";
}

}  // namespace

std::string pageToJson(const store::AuditPage& page) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  writeKey(w, "count");
  w.Uint64(page.entries.size());
  writeKey(w, "next_after_seq");
  if (page.next_after_seq) {
    w.Int64(*page.next_after_seq);
  } else {
    w.Null();
  }
  writeKey(w, "entries");
  w.StartArray();
  for (const auto& e : page.entries) writeEntry(w, e);
  w.EndArray();
  w.EndObject();
  return std::string(asView(buffer));
}

std::string csvCell(std::string_view value) {
  std::string cell;
  cell.reserve(value.size() + 3);
  if (!value.empty() && std::string_view("=+-@\t\r").find(value.front()) != std::string_view::npos) {
    cell.push_back('\'');
  }
  cell.append(value);
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string quoted;
  quoted.reserve(cell.size() + 8);
  quoted.push_back('"');
  for (char c : cell) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

std::string csvHeader() {
  return "seq,at,at_ms,kind,actor,clinic,patient_key,partner_id,purpose,resource_type,resource_id,classes,labels,"
         "consent_id,consent_version,outcome,reason,policy_version,detail,prev_hash,hash,instance_id\r\n";
}

std::string csvRows(const store::AuditPage& page) {
  std::string out;
  out.reserve(page.entries.size() * 400);
  for (const auto& e : page.entries) appendCsvLine(out, e);
  return out;
}

std::string pageToCsv(const store::AuditPage& page) { return csvHeader() + csvRows(page); }

std::string verifyReportToJson(const store::VerifyReport& report) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  writeKey(w, "ok");
  w.Bool(report.ok);
  writeKey(w, "rows");
  w.Int64(report.rows);
  writeKey(w, "last_seq");
  w.Int64(report.last_seq);
  writeStringMember(w, "head_hash", report.head_hash);
  // Ready to keep elsewhere and pass back as --anchor / ?anchor= next time.
  writeStringMember(w, "anchor", std::to_string(report.last_seq) + ":" + report.head_hash);
  writeKey(w, "keyed_from_seq");
  w.Int64(report.keyed_from_seq);
  writeKey(w, "unkeyed_rows");
  w.Int64(report.unkeyed_rows);
  // The log against the latest published anchor (or the one given): ok, truncated, rewritten, none.
  const auto& check = report.anchor;
  writeKey(w, "anchor_check");
  w.StartObject();
  writeStringMember(w, "status", store::anchorStatusName(check.status));
  writeStringMember(w, "source", check.source);
  if (check.anchor) {
    writeKey(w, "seq");
    w.Int64(check.anchor->seq);
    writeStringMember(w, "hash", check.anchor->hash);
  }
  if (check.published_at_ms > 0) writeStringMember(w, "published_at", formatRfc3339(fromUnixMillis(check.published_at_ms)));
  if (check.lines > 0 || check.forged_lines > 0) {
    writeKey(w, "lines");
    w.Int64(check.lines);
    writeKey(w, "forged_lines");
    w.Int64(check.forged_lines);
  }
  w.EndObject();
  writeKey(w, "break_count");
  w.Int64(report.break_count);
  writeKey(w, "breaks");
  w.StartArray();
  for (const auto& b : report.breaks) {
    w.StartObject();
    writeKey(w, "seq");
    w.Int64(b.seq);
    writeStringMember(w, "problem", store::chainProblemName(b.problem));
    writeStringMember(w, "message", b.message);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(asView(buffer));
}

int verifyExitCode(const store::VerifyReport& report) { return report.ok ? 0 : 1; }

}  // namespace gw::audit

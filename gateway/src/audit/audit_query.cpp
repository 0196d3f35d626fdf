#include "audit/audit_query.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

#include "common/dates.hpp"
#include "common/json.hpp"

namespace gw::audit {
namespace {

constexpr std::array<std::string_view, 11> kQueryParams = {
    "clinic", "patient_key", "partner_id", "outcome", "kind", "class", "from", "to", "after_seq", "limit", "format",
};
constexpr std::size_t kMaxParamBytes = 256;
constexpr std::size_t kEchoBytes = 40;  // enough of a bad value to recognise it, no more

std::string joined(const auto& names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::string echo(std::string_view value) {
  std::string out(value.substr(0, kEchoBytes));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return value.size() > kEchoBytes ? out + "..." : out;
}

Error badParam(std::string_view name, std::string message, std::string hint) {
  return makeError(ErrorCode::BadRequest, std::move(message), "query parameter '" + echo(name) + "'", std::move(hint));
}

// Whole-string decimal; nullopt on anything else (sign, spaces, overflow).
std::optional<std::int64_t> parseNonNegative(std::string_view s) {
  if (s.empty() || s.front() == '-' || s.front() == '+') return std::nullopt;
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string writeDetail(const AuditRequest& r, std::size_t returned) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  const auto& q = r.query;
  w.StartObject();
  w.Key("format");
  w.String(r.format == ExportFormat::Csv ? "csv" : "json");
  w.Key("returned");
  w.Uint64(returned);
  w.Key("filters");
  w.StartObject();
  // patient_key has its own column; the rest of the request is here. The partner filter is
  // detail only: a read is no event about the partner, so it never shows in a partner's log.
  if (!q.partner_id.empty()) {
    w.Key("partner_id");
    json::writeString(w, q.partner_id);
  }
  if (!q.clinic.empty()) {
    w.Key("clinic");
    json::writeString(w, q.clinic);
  }
  if (q.outcome) {
    w.Key("outcome");
    json::writeString(w, store::auditOutcomeName(*q.outcome));
  }
  if (q.kind) {
    w.Key("kind");
    json::writeString(w, store::auditKindName(*q.kind));
  }
  if (q.data_class) {
    w.Key("class");
    json::writeString(w, privacy::className(*q.data_class));
  }
  if (q.from_ms) {
    w.Key("from_ms");
    w.Int64(*q.from_ms);
  }
  if (q.to_ms) {
    w.Key("to_ms");
    w.Int64(*q.to_ms);
  }
  w.Key("after_seq");
  w.Int64(q.after_seq);
  w.Key("limit");
  w.Int(q.limit);
  w.EndObject();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

}  // namespace

Result<std::int64_t> parseRfc3339Millis(std::string_view s) {
  auto bad = [&](const std::string& what) -> Error {
    return makeError(ErrorCode::BadRequest, "'" + echo(s) + "' is not an RFC 3339 date-time: " + what, {},
                     "write it like 2026-03-01T10:00:00Z or 2026-03-01T10:00:00.250-05:00 (percent-encode '+' "
                     "as %2B in a URL)");
  };
  // Lenient where a query string is: a '+' decoded as a space, any number of fraction digits.
  static constexpr dates::Rfc3339Rules kQueryRules{.year_zero = true,
                                                   .max_fraction_digits = std::numeric_limits<std::size_t>::max(),
                                                   .max_offset_minutes = 23 * 60 + 59,
                                                   .url_spaces = true};
  dates::DateTime t;
  switch (dates::readRfc3339(s, t, kQueryRules)) {
    case dates::Rfc3339Status::Ok: return dates::unixMillis(t);
    case dates::Rfc3339Status::DateSyntax: return bad("the date must be YYYY-MM-DD");
    case dates::Rfc3339Status::NoTime: return bad("a time must follow the date after 'T'");
    case dates::Rfc3339Status::TimeSyntax: return bad("the time must be HH:MM:SS");
    case dates::Rfc3339Status::MonthRange: return bad("month out of range");
    case dates::Rfc3339Status::DayRange: return bad("day out of range for the month");
    case dates::Rfc3339Status::TimeRange: return bad("time out of range");
    case dates::Rfc3339Status::EmptyFraction:
    case dates::Rfc3339Status::LongFraction: return bad("a '.' must be followed by digits");
    case dates::Rfc3339Status::NoZone: return bad("the time zone is missing (Z or +HH:MM / -HH:MM)");
    case dates::Rfc3339Status::OffsetSyntax: return bad("the offset must be +HH:MM or -HH:MM");
    case dates::Rfc3339Status::OffsetRange: return bad("offset out of range");
    case dates::Rfc3339Status::ZoneSyntax: return bad("the time zone must be Z or +HH:MM / -HH:MM");
    case dates::Rfc3339Status::TrailingText: break;
  }
  return bad("unexpected text after the time zone");
}

Result<AuditRequest> parseAuditQuery(const std::multimap<std::string, std::string>& params) {
  AuditRequest request;
  auto& q = request.query;
  for (auto it = params.begin(); it != params.end(); it = params.upper_bound(it->first)) {
    const std::string& name = it->first;
    if (std::find(kQueryParams.begin(), kQueryParams.end(), name) == kQueryParams.end()) {
      return badParam(name, "unknown query parameter", "use only: " + joined(kQueryParams));
    }
    if (params.count(name) > 1) {
      return badParam(name, "given " + std::to_string(params.count(name)) + " times",
                      "give each filter at most once (filters combine with AND)");
    }
    const std::string& value = it->second;
    if (value.empty()) return badParam(name, "is empty", "leave the parameter out to not filter on it");
    if (value.size() > kMaxParamBytes) {
      return badParam(name, "is longer than " + std::to_string(kMaxParamBytes) + " bytes",
                      "no id or code in the audit log is longer; check the value");
    }
    for (unsigned char c : value) {
      if (c < 0x20 || c == 0x7f) return badParam(name, "contains a control character", "send the id or code as text");
    }

    if (name == "clinic") {
      q.clinic = value;
    } else if (name == "patient_key") {
      q.patient_key = value;
    } else if (name == "partner_id") {
      q.partner_id = value;
    } else if (name == "outcome") {
      q.outcome = store::parseAuditOutcome(value);
      if (!q.outcome) {
        return badParam(name, "unknown outcome '" + echo(value) + "'", "use one of: " + joined(store::auditOutcomeNames()));
      }
    } else if (name == "kind") {
      q.kind = store::parseAuditKind(value);
      if (!q.kind)
        return badParam(name, "unknown kind '" + echo(value) + "'", "use one of: " + joined(store::auditKindNames()));
    } else if (name == "class") {
      auto c = privacy::parseClass(value);
      if (!c) return badParam(name, "unknown class '" + echo(value) + "'", "use one of: general, sud, mh");
      q.data_class = *c;
    } else if (name == "from" || name == "to") {
      auto ms = parseRfc3339Millis(value);
      if (!ms) {
        auto e = ms.error();
        e.where = "query parameter '" + name + "'";
        return e;
      }
      (name == "from" ? q.from_ms : q.to_ms) = ms.value();
    } else if (name == "after_seq") {
      auto v = parseNonNegative(value);
      if (!v) {
        return badParam(name, "'" + echo(value) + "' is not a non-negative integer",
                        "pass the next_after_seq of the previous page, e.g. after_seq=1200");
      }
      q.after_seq = *v;
    } else if (name == "limit") {
      auto v = parseNonNegative(value);
      if (!v || *v < 1 || *v > store::kMaxAuditPageSize) {
        return badParam(name,
                        "'" + echo(value) + "' is not a whole number from 1 to " + std::to_string(store::kMaxAuditPageSize),
                        "page through larger answers with after_seq");
      }
      q.limit = static_cast<int>(*v);
    } else if (name == "format") {
      if (value == "json") {
        request.format = ExportFormat::Json;
      } else if (value == "csv") {
        request.format = ExportFormat::Csv;
      } else {
        return badParam(name, "unknown format '" + echo(value) + "'", "use json or csv");
      }
    }
  }
  if (q.from_ms && q.to_ms && *q.to_ms <= *q.from_ms) {
    return badParam("to", "is not after 'from'", "the range is from <= time < to");
  }
  return request;
}

Result<store::ChainAnchor> parseChainAnchor(std::string_view text) {
  const auto bad = [&] {
    return makeError(ErrorCode::BadRequest, "'" + echo(text) + "' is not an anchor", "anchor",
                     "give SEQ:HASH as printed in the 'anchor' field of an earlier verify report, e.g. "
                     "1042:v2:<64 hex digits> (1042:<64 hex digits> for a row written before the chain was keyed)");
  };
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return bad();
  const auto seq = parseNonNegative(text.substr(0, colon));
  const auto hash = text.substr(colon + 1);
  if (!seq || !store::chainVersionOf(hash)) return bad();
  return store::ChainAnchor{*seq, std::string(hash)};
}

Result<std::optional<store::ChainAnchor>> parseVerifyParams(const std::multimap<std::string, std::string>& params) {
  std::optional<store::ChainAnchor> anchor;
  for (const auto& [name, value] : params) {
    if (name != "anchor") return badParam(name, "unknown query parameter", "use only: anchor");
    if (params.count(name) > 1) return badParam(name, "given more than once", "give one anchor");
    auto a = parseChainAnchor(value);
    if (!a) {
      auto e = a.error();
      e.where = "query parameter 'anchor'";
      return e;
    }
    anchor = a.value();
  }
  return anchor;
}

store::AuditEntry auditReadEntry(const AuditRequest& request, std::string_view actor, std::int64_t at_ms,
                                 std::size_t returned) {
  return store::AuditEntryBuilder(store::AuditKind::AuditRead, store::AuditOutcome::Ok, actor, at_ms)
      .patient(request.query.patient_key)
      .detail(writeDetail(request, returned))
      .build();
}

store::AuditEntry recordReadEntry(const store::RecordStatus& status, std::string_view record_key, std::string_view actor,
                                  std::int64_t at_ms) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("record_key");
  json::writeString(w, record_key);
  w.Key("record_type");
  json::writeString(w, status.record_type);
  w.Key("resources");
  w.Uint64(status.resources.size());
  w.Key("deliveries");
  w.Uint64(status.deliveries.size());
  w.EndObject();
  return store::AuditEntryBuilder(store::AuditKind::RecordRead, store::AuditOutcome::Ok, actor, at_ms)
      .clinic(status.clinic)
      .patient(status.patient_key)
      .detail(std::string(b.GetString(), b.GetSize()))
      .build();
}

store::AuditEntry auditVerifyEntry(const store::VerifyReport& report, std::string_view actor, std::int64_t at_ms) {
  auto e = store::AuditEntryBuilder(store::AuditKind::AuditVerify,
                                    report.ok ? store::AuditOutcome::Ok : store::AuditOutcome::Error, actor, at_ms);
  if (!report.ok && !report.breaks.empty()) {
    e.reason(std::string(store::chainProblemName(report.breaks.front().problem)) + " at seq " +
             std::to_string(report.breaks.front().seq));
  }
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("rows");
  w.Int64(report.rows);
  w.Key("last_seq");
  w.Int64(report.last_seq);
  w.Key("head_hash");
  json::writeString(w, report.head_hash);
  w.Key("break_count");
  w.Int64(report.break_count);
  w.EndObject();
  e.detail(std::string(b.GetString(), b.GetSize()));
  return std::move(e).build();
}

}  // namespace gw::audit

#include "delivery/attempt_outcome.hpp"

#include <rapidjson/document.h>
#include <algorithm>
#include <charconv>
#include <ctime>

#include "common/json.hpp"

namespace gw::delivery {
namespace {

using Kind = AttemptOutcome::Kind;

struct Issue {
  std::string_view severity;
  std::string_view code;
  std::string diagnostics;
};

// Builds {"resourceType":"OperationOutcome","issue":[...]} from our own issues, followed by
// copies of `extra_issues` (issues taken from the partner's per-entry outcomes).
std::string synthesizeOutcome(const std::vector<Issue>& issues,
                              const std::vector<const rapidjson::Value*>& extra_issues = {}) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("resourceType", "OperationOutcome", a);
  rapidjson::Value list(rapidjson::kArrayType);
  for (const auto& issue : issues) {
    rapidjson::Value v(rapidjson::kObjectType);
    v.AddMember("severity", json::str(issue.severity, a), a);
    v.AddMember("code", json::str(issue.code, a), a);
    v.AddMember("diagnostics", json::str(issue.diagnostics, a), a);
    list.PushBack(v, a);
  }
  for (const auto* extra : extra_issues) list.PushBack(rapidjson::Value(*extra, a), a);
  doc.AddMember("issue", list, a);
  return json::toString(doc);
}

/// Leading status code of "201 Created" / "201"; 0 when there is none.
int leadingStatus(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  int code = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
  if (ec != std::errc() || end - text.data() != 3) return 0;
  if (end != text.data() + text.size() && *end != ' ') return 0;
  return code;
}

bool is2xx(int status) { return status >= 200 && status <= 299; }

/// issue[0].code when the body is an OperationOutcome and the code is a plain token (it comes
/// from a fixed value set, so it is safe for logs; diagnostics may echo PHI and are never used).
std::string firstIssueCode(const rapidjson::Document& doc) {
  const auto* issues = json::find(doc, "issue");
  if (!issues || !issues->IsArray() || issues->Empty()) return {};
  const std::string_view code = json::getString((*issues)[0], "code");
  if (code.empty() || code.size() > 32) return {};
  const bool token = std::all_of(code.begin(), code.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '-'; });
  return token ? std::string(code) : std::string();
}

/// The partner's body when it is an OperationOutcome: sets `json_out` to it verbatim and returns
/// its first issue code ("" if none). Returns nullopt when the body is not one.
std::optional<std::string> partnerOutcome(const std::string& body, std::string& json_out) {
  rapidjson::Document doc;
  if (body.empty() || !json::parseStrict(body, doc) || !doc.IsObject()) return std::nullopt;
  if (json::getString(doc, "resourceType") != "OperationOutcome") return std::nullopt;
  json_out = body;
  return firstIssueCode(doc);
}

std::string httpSummary(int status, std::string_view issue_code, std::string_view suffix = {}) {
  std::string out = "HTTP " + std::to_string(status) + " from partner";
  if (!issue_code.empty()) out += " (issue: " + std::string(issue_code) + ")";
  if (!suffix.empty()) out += ": " + std::string(suffix);
  return out;
}

// Dead from a non-2xx reply: keep the partner's OperationOutcome, or say what we saw.
AttemptOutcome deadReply(const HttpResult& res, std::string_view issue_type, std::string_view why) {
  AttemptOutcome out;
  out.kind = Kind::Dead;
  out.http_status = res.status;
  const auto code = partnerOutcome(res.body, out.operation_outcome_json);
  out.error_summary = httpSummary(res.status, code.value_or(""), why);
  if (!code) {
    std::string diagnostics = "partner answered HTTP " + std::to_string(res.status);
    if (!why.empty()) diagnostics += ": " + std::string(why);
    diagnostics += " without an OperationOutcome";
    out.operation_outcome_json = synthesizeOutcome({{"error", issue_type, diagnostics}});
  }
  return out;
}

// A 2xx whose content cannot be trusted: the partner may well have committed the transaction,
// so a person has to look before anything is resent.
AttemptOutcome deadSuccess(int status, std::string_view summary_suffix, const std::string& diagnostics,
                           std::string_view issue_type, const std::vector<const rapidjson::Value*>& extra = {}) {
  AttemptOutcome out;
  out.kind = Kind::Dead;
  out.http_status = status;
  out.error_summary = httpSummary(status, "", summary_suffix);
  out.operation_outcome_json =
      synthesizeOutcome({{"error", issue_type,
                          "partner answered HTTP " + std::to_string(status) + " but " + diagnostics +
                              "; the partner may have committed some or all of the transaction, check it before resending"}},
                        extra);
  return out;
}

AttemptOutcome classifySuccess(const HttpResult& res, std::optional<std::size_t> expected_entries) {
  const int status = res.status;
  rapidjson::Document doc;
  if (auto parsed = json::parseStrict(res.body, doc); !parsed) {
    return deadSuccess(status, "response is not JSON",
                       "the body is not a JSON transaction-response Bundle (" + parsed.error().message + " at " +
                           parsed.error().where + ")",
                       "structure");
  }
  if (!doc.IsObject() || json::getString(doc, "resourceType") != "Bundle" ||
      json::getString(doc, "type") != "transaction-response") {
    return deadSuccess(status, "response is not a transaction-response Bundle",
                       "the body is not a Bundle of type transaction-response", "structure");
  }

  AttemptOutcome out;
  out.http_status = status;
  std::vector<std::string> failures;
  std::vector<const rapidjson::Value*> partner_issues;
  std::size_t total = 0;
  if (const auto* entries = json::find(doc, "entry"); entries) {
    if (!entries->IsArray()) {
      return deadSuccess(status, "response Bundle.entry is not an array", "Bundle.entry is not an array", "structure");
    }
    total = entries->Size();
    for (rapidjson::SizeType i = 0; i < entries->Size(); ++i) {
      const std::string where = "entry[" + std::to_string(i) + "]";
      const auto* response = json::find((*entries)[i], "response");
      if (!response || !response->IsObject()) {
        failures.push_back(where + " has no response");
        continue;
      }
      EntryResult entry{std::string(json::getString(*response, "status")),
                        std::string(json::getString(*response, "location")), std::string(json::getString(*response, "etag")),
                        std::string(json::getString(*response, "lastModified"))};
      const int entry_status = leadingStatus(entry.status);
      if (!is2xx(entry_status)) {
        failures.push_back(entry_status == 0 ? where + " has no valid response.status"
                                             : where + " has status " + std::to_string(entry_status));
        const auto* outcome = json::find(*response, "outcome");
        const auto* issues = outcome ? json::find(*outcome, "issue") : nullptr;
        if (issues && issues->IsArray()) {
          for (const auto& issue : issues->GetArray()) partner_issues.push_back(&issue);
        }
      }
      out.entries.push_back(std::move(entry));
    }
  }
  if (!failures.empty()) {
    std::string joined;
    for (const auto& f : failures) joined += (joined.empty() ? "" : ", ") + f;
    auto dead = deadSuccess(status,
                            std::to_string(failures.size()) + " of " + std::to_string(total) +
                                " entries failed (first: " + failures.front() + ")",
                            joined, "processing", partner_issues);
    dead.entries = std::move(out.entries);
    return dead;
  }
  // A transaction-response answers every request entry; any other count means we cannot tell
  // what the partner stored.
  if (expected_entries && total != *expected_entries) {
    auto dead = deadSuccess(
        status, "answered " + std::to_string(total) + " entries for " + std::to_string(*expected_entries) + " requests",
        "the transaction-response has " + std::to_string(total) + " entries for " + std::to_string(*expected_entries) +
            " requests",
        "processing");
    dead.entries = std::move(out.entries);
    return dead;
  }
  out.kind = Kind::Delivered;
  return out;
}

}  // namespace

std::string_view attemptKindName(AttemptOutcome::Kind kind) {
  switch (kind) {
    case Kind::Delivered: return "delivered";
    case Kind::Retry: return "retry";
    case Kind::Dead: return "dead";
  }
  return "dead";
}

std::optional<std::chrono::milliseconds> parseRetryAfter(std::string_view value, SystemTime now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;

  if (value.find_first_not_of("0123456789") == std::string_view::npos) {
    constexpr auto kMaxSeconds = std::chrono::duration_cast<std::chrono::seconds>(kMaxRetryAfter).count();
    long long seconds = kMaxSeconds;
    if (value.size() <= 9) {
      std::from_chars(value.data(), value.data() + value.size(), seconds);
    }
    return std::chrono::milliseconds(std::min<long long>(seconds, kMaxSeconds) * 1000);
  }

  // HTTP-date (RFC 9110 5.6.7): IMF-fixdate, then the two obsolete forms recipients must accept.
  const std::string text(value);
  static constexpr const char* kFormats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                             "%a %b %d %H:%M:%S %Y"};
  for (const char* format : kFormats) {
    std::tm tm{};
    const char* end = strptime(text.c_str(), format, &tm);
    if (end == nullptr || *end != '\0') continue;
    const std::time_t when = timegm(&tm);
    if (when == static_cast<std::time_t>(-1)) return std::nullopt;
    const auto delta = std::chrono::system_clock::from_time_t(when) - now;
    if (delta <= std::chrono::milliseconds(0)) return std::chrono::milliseconds(0);
    return std::min(std::chrono::duration_cast<std::chrono::milliseconds>(delta), kMaxRetryAfter);
  }
  return std::nullopt;
}

AttemptOutcome classify(const Result<HttpResult>& result) { return classify(result, std::chrono::system_clock::now()); }

AttemptOutcome classify(const Result<HttpResult>& result, SystemTime now, std::optional<std::size_t> expected_entries) {
  if (!result) {
    const Error& error = result.error();
    AttemptOutcome out;
    // The record status shows it to the people who fix the cause: what to do goes with it.
    out.error_summary = error.hint.empty() ? error.message : error.message + "; " + error.hint;
    if (error.code == ErrorCode::Unavailable || error.code == ErrorCode::Timeout) {
      out.kind = Kind::Retry;
    } else {
      // Not a transient network condition (oversized reply, bad input, a bug): a person decides.
      out.kind = Kind::Dead;
      out.operation_outcome_json = synthesizeOutcome({{"error", fhirIssueTypeFor(error.code), error.describe()}});
    }
    return out;
  }

  const HttpResult& res = result.value();
  const int status = res.status;
  if (is2xx(status)) return classifySuccess(res, expected_entries);
  if (status == 408 || status == 429 || (status >= 500 && status <= 599)) {
    AttemptOutcome out;
    out.kind = Kind::Retry;
    out.http_status = status;
    const auto code = partnerOutcome(res.body, out.operation_outcome_json);
    out.error_summary = httpSummary(status, code.value_or(""));
    if (auto it = res.headers.find("retry-after"); it != res.headers.end()) {
      out.retry_after = parseRetryAfter(it->second, now);
    }
    return out;
  }
  if (status >= 300 && status <= 399) return deadReply(res, "not-supported", "redirects are not followed");
  if (status >= 400 && status <= 499) return deadReply(res, "processing", {});
  return deadReply(res, "exception", "unexpected HTTP status");
}

}  // namespace gw::delivery

#include "common/log.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "common/clock.hpp"

namespace gw::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::atomic<int> g_format{static_cast<int>(Format::Text)};
std::mutex g_sink_mutex;
std::function<void(std::string_view)> g_sink;  // empty: stderr
std::mutex g_instance_mutex;
std::string g_instance_id;  // guarded by g_instance_mutex; empty: no instance field

}  // namespace

std::string_view categoryName(Category c) {
  switch (c) {
    case Category::Main: return "main";
    case Category::Config: return "config";
    case Category::Http: return "http";
    case Category::Auth: return "auth";
    case Category::Ingest: return "ingest";
    case Category::Mapping: return "mapping";
    case Category::Store: return "store";
    case Category::Outbox: return "outbox";
    case Category::Delivery: return "delivery";
    case Category::Consent: return "consent";
    case Category::Audit: return "audit";
  }
  return "main";
}

std::string_view levelName(Level l) {
  switch (l) {
    case Level::Debug: return "DEBUG";
    case Level::Info: return "INFO";
    case Level::Warn: return "WARN";
    case Level::Error: return "ERROR";
  }
  return "INFO";
}

bool parseLevel(std::string_view text, Level& out) {
  if (text == "debug") out = Level::Debug;
  else if (text == "info") out = Level::Info;
  else if (text == "warn") out = Level::Warn;
  else if (text == "error") out = Level::Error;
  else return false;
  return true;
}

bool parseFormat(std::string_view text, Format& out) {
  if (text == "text") out = Format::Text;
  else if (text == "json") out = Format::Json;
  else return false;
  return true;
}

std::string_view formatName(Format f) { return f == Format::Json ? "json" : "text"; }

void setFormat(Format f) { g_format.store(static_cast<int>(f)); }
Format format() { return static_cast<Format>(g_format.load(std::memory_order_relaxed)); }

void setLevel(Level level) { g_level.store(static_cast<int>(level)); }
bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void setInstanceId(std::string id) {
  std::lock_guard lock(g_instance_mutex);
  g_instance_id = std::move(id);
}

std::string instanceId() {
  std::lock_guard lock(g_instance_mutex);
  return g_instance_id;
}

void setSink(std::function<void(std::string_view)> sink) {
  std::lock_guard lock(g_sink_mutex);
  g_sink = std::move(sink);
}

namespace {

void appendTextValue(std::string& out, std::string_view value) {
  const bool quote = value.empty() || value.find_first_of(" \t\"=") != std::string_view::npos;
  if (!quote) {
    out += value;
    return;
  }
  out += '"';
  for (char ch : value) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (ch == '\n' || ch == '\r') ch = ' ';
    out += ch;
  }
  out += '"';
}

// A JSON number as RFC 8259 spells it: what a C++ stream writes for a finite number always is;
// inf and nan are not, and go out as strings.
bool isJsonNumber(std::string_view text) {
  if (text.empty() || text.front() == '+') return false;
  char* end = nullptr;
  const std::string copy(text);
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || value != value) return false;
  return text.find_first_not_of("-+.0123456789eE") == std::string_view::npos;
}

bool reservedKey(std::string_view key) {
  return key == "ts" || key == "level" || key == "category" || key == "event" || key == "instance_id";
}

}  // namespace

Line::Line(Level level, Category category, std::string_view event)
    : level_(level), category_(categoryName(category)), event_(event) {}

Line& Line::kv(std::string_view key, std::string_view value) { return field(key, std::string(value), Kind::String); }

Line& Line::field(std::string_view key, std::string value, Kind kind) {
  fields_.push_back({std::string(key), std::move(value), kind});
  return *this;
}

Line::~Line() {
  std::string line;
  const std::string ts = formatRfc3339(SystemClock().now());
  const std::string instance = instanceId();
  if (format() == Format::Json) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    const auto str = [&](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
    w.StartObject();
    str("ts");
    str(ts);
    str("level");
    str(levelName(level_));
    str("category");
    str(category_);
    str("event");
    str(event_);
    if (!instance.empty()) {
      str("instance_id");
      str(instance);
    }
    for (const auto& f : fields_) {
      str(reservedKey(f.key) ? f.key + "_" : f.key);
      if (f.kind == Kind::Bool) {
        w.Bool(f.value == "1" || f.value == "true");
      } else if (f.kind == Kind::Number && isJsonNumber(f.value)) {
        w.RawValue(f.value.data(), f.value.size(), rapidjson::kNumberType);
      } else {
        str(f.value);
      }
    }
    w.EndObject();
    line.assign(buffer.GetString(), buffer.GetSize());
  } else {
    line.reserve(64 + fields_.size() * 24);
    line += ts;
    line += ' ';
    line += levelName(level_);
    line += ' ';
    line += category_;
    line += ' ';
    line += event_;
    for (const auto& f : fields_) {
      line += ' ';
      line += f.key;
      line += '=';
      if (f.kind == Kind::String) {
        appendTextValue(line, f.value);
      } else {
        line += f.value;
      }
    }
    if (!instance.empty()) {
      line += " instance_id=";
      appendTextValue(line, instance);
    }
  }
  line += '\n';
  std::lock_guard lock(g_sink_mutex);
  if (g_sink) {
    g_sink(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

}  // namespace gw::log

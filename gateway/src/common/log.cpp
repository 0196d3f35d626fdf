#include "common/log.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "common/clock.hpp"

namespace gw::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::mutex g_sink_mutex;
std::function<void(std::string_view)> g_sink;  // empty: stderr

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

void setLevel(Level level) { g_level.store(static_cast<int>(level)); }
bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void setSink(std::function<void(std::string_view)> sink) {
  std::lock_guard lock(g_sink_mutex);
  g_sink = std::move(sink);
}

Line::Line(Level level, Category category, std::string_view event) : level_(level) {
  buffer_ << formatRfc3339(SystemClock().now()) << ' ' << levelName(level) << ' ' << categoryName(category) << ' ' << event;
}

Line& Line::kv(std::string_view key, std::string_view value) {
  buffer_ << ' ' << key << '=';
  const bool quote = value.empty() || value.find_first_of(" \t\"=") != std::string_view::npos;
  if (!quote) {
    buffer_ << value;
    return *this;
  }
  buffer_ << '"';
  for (char ch : value) {
    if (ch == '"' || ch == '\\') buffer_ << '\\';
    if (ch == '\n' || ch == '\r') ch = ' ';
    buffer_ << ch;
  }
  buffer_ << '"';
  return *this;
}

Line::~Line() {
  buffer_ << '\n';
  const std::string line = buffer_.str();
  std::lock_guard lock(g_sink_mutex);
  if (g_sink) {
    g_sink(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  (void)level_;
}

}  // namespace gw::log

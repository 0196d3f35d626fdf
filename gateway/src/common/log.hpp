#pragma once
// One line per event: "<utc time> <LEVEL> <category> <event> key=value ...".
// Callers pass internal ids only (record keys, resource ids, partner ids): never names, birth
// dates, MRNs, clinical values or credentials. Values are quoted when they contain spaces.
#include <functional>
#include <sstream>
#include <string>
#include <string_view>

namespace gw::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class Category { Main, Config, Http, Auth, Ingest, Mapping, Store, Outbox, Delivery, Consent, Audit };

std::string_view categoryName(Category c);
std::string_view levelName(Level l);
/// Parses "debug" | "info" | "warn" | "error".
bool parseLevel(std::string_view text, Level& out);

void setLevel(Level level);
bool enabled(Level level);
/// Replaces the writer (default: stderr). Tests use it to capture lines.
void setSink(std::function<void(std::string_view line)> sink);

/// Builds one log line; written when it goes out of scope.
class Line {
 public:
  Line(Level level, Category category, std::string_view event);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& kv(std::string_view key, std::string_view value);
  Line& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
  Line& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
  template <class Number>
  Line& kv(std::string_view key, Number value) {
    buffer_ << ' ' << key << '=' << value;
    return *this;
  }

 private:
  Level level_;
  std::ostringstream buffer_;
};

}  // namespace gw::log

#define GW_LOG(level, category, event)                \
  if (!::gw::log::enabled(::gw::log::Level::level)) { \
  } else ::gw::log::Line(::gw::log::Level::level, ::gw::log::Category::category, event)

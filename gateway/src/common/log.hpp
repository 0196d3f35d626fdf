#pragma once
// One line per event: "<utc time> <LEVEL> <category> <event> key=value ...", or, in the JSON
// format, one JSON object per line: {"ts":..,"level":..,"category":..,"event":..,<key>:<value>...}
// (numbers stay numbers; a key that would shadow ts/level/category/event is given a "_" suffix).
// Once setInstanceId() named this gateway instance, every line carries it: `instance_id=<id>` at
// the end of a text line, the member "instance_id" after "event" in JSON (so a field of that name
// gets the "_" suffix too). Callers pass internal ids only (record keys, resource ids, partner ids): never names, birth
// dates, MRNs, clinical values or credentials. Values are quoted when they contain spaces.
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace gw::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class Format { Text, Json };
enum class Category { Main, Config, Http, Auth, Ingest, Mapping, Store, Outbox, Delivery, Consent, Audit };

std::string_view categoryName(Category c);
std::string_view levelName(Level l);
/// Parses "debug" | "info" | "warn" | "error".
bool parseLevel(std::string_view text, Level& out);
/// Parses "text" | "json".
bool parseFormat(std::string_view text, Format& out);
std::string_view formatName(Format f);

void setFormat(Format format);
Format format();

void setLevel(Level level);
bool enabled(Level level);
/// Names this process among several gateway instances (config::instanceId): every line written
/// afterwards carries it. Empty (the default; tools and tests): no instance field.
void setInstanceId(std::string id);
std::string instanceId();

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
    std::ostringstream text;
    text << value;  // as the text format always wrote it (a bool as 1 or 0)
    const Kind kind = std::is_same_v<Number, bool>                                    ? Kind::Bool
                      : std::is_arithmetic_v<Number> && !std::is_same_v<Number, char> ? Kind::Number
                                                                                      : Kind::String;
    return field(key, text.str(), kind);
  }

 private:
  enum class Kind { String, Number, Bool };
  Line& field(std::string_view key, std::string value, Kind kind);

  struct Field {
    std::string key, value;
    Kind kind;
  };
  Level level_;
  std::string_view category_;
  std::string event_;
  std::vector<Field> fields_;
};

}  // namespace gw::log

#define GW_LOG(level, category, event)                \
  if (!::gw::log::enabled(::gw::log::Level::level)) { \
  } else ::gw::log::Line(::gw::log::Level::level, ::gw::log::Category::category, event)

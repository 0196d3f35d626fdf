#pragma once
// Internal to mapping/: the compiler of one mapper file into the Node tree that mapper_eval.cpp
// walks per record. mapper_compiler.cpp compiles the file, its rules, templates and paths;
// call_compiler.cpp compiles function calls ({"$name": operand, ...}, see mapper_functions.hpp).
#include <rapidjson/document.h>

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/json.hpp"
#include "common/json_locations.hpp"
#include "common/time_zone.hpp"
#include "mapping/compiled_mapper.hpp"
#include "mapping/mapper_functions.hpp"

namespace gw::mapping::detail {

// The JSON pointer of a member, or of an item, below `pointer`.
inline std::string child(const std::string& pointer, std::string_view token) {
  std::string out = pointer;
  json::appendPointerToken(out, token);
  return out;
}

inline std::string child(const std::string& pointer, rapidjson::SizeType index) {
  return pointer + "/" + std::to_string(index);
}

// Names in mappers (value maps, identifier kinds, resource types): ASCII letters, digits, '_' and `extra`.
inline bool isIdentifierChar(char c, bool allow_dash) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || (allow_dash && c == '-');
}

inline bool isName(std::string_view s, std::string_view extra) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!isIdentifierChar(c, false) && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

inline bool isResourceTypeName(std::string_view s) { return !s.empty() && s[0] >= 'A' && s[0] <= 'Z' && isName(s, ""); }

// FHIR has no empty strings, arrays or objects.
inline bool isEmptyLiteral(const rapidjson::Value& v) {
  return (v.IsString() && v.GetStringLength() == 0) || (v.IsArray() && v.Empty()) || (v.IsObject() && v.MemberCount() == 0);
}

class Compiler {
 public:
  Compiler(CompiledMapper& mapper, std::string_view text, const RecordSchemas* schemas)
      : mapper_(mapper), text_(text), locations_(json::JsonLocations::build(text, true)), schemas_(schemas) {}

  // Input-mapper mode (CSV): only "$.<column>" paths, no rule variables or resource functions.
  Result<Node> compileRecordTemplate(const std::string& pointer, const std::vector<std::string>& columns);

  Status compile();

 private:
  std::string at(const std::string& pointer) const {
    return json::JsonLocations::position(mapper_.file, text_, locations_.valueOffset(pointer));
  }
  std::string atKey(const std::string& pointer) const {
    return json::JsonLocations::position(mapper_.file, text_, locations_.keyOffset(pointer));
  }
  Error error(std::string message, const std::string& pointer, std::string hint = {}) const {
    return makeError(ErrorCode::Config, std::move(message), at(pointer), std::move(hint));
  }

  Status onlyKeys(const rapidjson::Value& object, const std::string& pointer,
                  std::initializer_list<std::string_view> allowed, std::string_view what) const;

  // A call may hold its function's name and the table's arguments, nothing else.
  Status onlyKeys(const rapidjson::Value& call, const std::string& pointer, const FunctionSpec& spec) const;

  Status onlyKeys(const rapidjson::Value& object, const std::string& pointer, const std::vector<std::string_view>& allowed,
                  std::string_view what) const;

  Status compileValueMaps(const rapidjson::Value& maps);

  Result<ResourceRule> compileResource(const rapidjson::Value& v, const std::string& pointer);

  // The business identifier is how partners reconcile and how conditional updates find the
  // resource; a mapper cannot leave it out.
  Status checkBusinessIdentifier(const rapidjson::Value& body, const std::string& pointer) const;

  Result<Node> compileExpr(const rapidjson::Value& v, const std::string& pointer);

  Result<Node> compileObject(const rapidjson::Value& v, const std::string& pointer);

  // A literal node that stands for its own source text (not a {"$literal": ...} call, whose
  // output differs from its source), so the enclosing container can be folded into one constant.
  static bool isVerbatim(const Node& node, const rapidjson::Value& source);

  Result<Node> literal(const rapidjson::Value& v, const std::string& pointer) const;

  // A function call is an object with one "$name" key (its main operand) and named arguments.
  Result<Node> compileFunction(const rapidjson::Value& call, const std::string& pointer, const std::string& name,
                               const rapidjson::Value& operand);

  // $narrative: the title is the operand; each section's heading and empty text are fixed here
  // (node.names, two per section) and its items are an expression (node.children after the title).
  Result<Node> compileNarrative(const rapidjson::Value& call, const std::string& pointer, const rapidjson::Value& operand,
                                Node node);

  // "formats" and "timezone" of $date / $dateTime, compiled once here so a bad format or an
  // unknown zone fails at start-up and evaluation only reads. Without both: ISO input only.
  Status compileDateSpec(const rapidjson::Value& call, const std::string& pointer, bool with_time, Node& node);

  // The array a loop walks (forEach or $map): a path into the record or into the enclosing
  // loop's item. `array_pointer` receives its schema pointer, so $item paths can be checked.
  Result<Node> compileLoopSource(const rapidjson::Value& v, const std::string& pointer, std::string_view what,
                                 std::string& array_pointer);

  // "equals" / "contains" compare with a literal; "is" tests the JSON type. At most one.
  Status compileIfTest(const rapidjson::Value& call, const std::string& pointer, Node& node) const;

  static Node withOperand(Node node, Node operand);

  Status checkSelect(const ValueMap& map, const std::string& member, const std::string& pointer) const;

  // path := "$" [variable] { "." name | "[" digits "]" }
  Result<Node> compilePath(std::string_view text, const std::string& pointer, std::string* schema_pointer = nullptr);

  Error badPath(std::string_view text, std::size_t position, const std::string& pointer) const;

  CompiledMapper& mapper_;
  std::string_view text_;
  json::JsonLocations locations_;
  const RecordSchemas* schemas_;
  bool in_source_id_ = false;
  const std::vector<std::string>* columns_ = nullptr;                          // set in input-mapper mode
  std::map<std::string, std::shared_ptr<const TimeZone>, std::less<>> zones_;  // each zone file read once per mapper
  std::vector<std::string> loops_;  // schema pointers of the arrays of the enclosing loops, innermost last
};

}  // namespace gw::mapping::detail

#pragma once
// Internal: the compiled form of one mapper file. Built once by compileMapperFile(), then only
// read (map() is const and shares nothing mutable between threads).
#include <rapidjson/document.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "mapping/dates.hpp"
#include "mapping/mapper_set.hpp"

namespace gw::mapping {

class RecordSchemas;

enum class NodeKind : std::uint8_t {
  Literal,           // a constant JSON value (also whole constant subtrees, folded at load)
  Path,              // "$.a.b[0]" into the record, or a variable such as "$sourceId"
  Object,            // template object: members that come out absent are left out
  Array,             // template array: items that come out absent are left out
  Lookup,            // {"$lookup": map, "value": expr, "select"?: member}
  Date,              // {"$date": expr, "formats"?: [...]}: calendar-checked FHIR date
  DateTime,          // {"$dateTime": expr, "formats"?: [...], "timezone"?: zone}: FHIR dateTime with offset
  Reference,         // {"$reference": Type, "sourceId": expr}: "Type/<resourceId>"
  ResourceId,        // {"$resourceId": Type, "sourceId": expr}: "<resourceId>"
  IdentifierSystem,  // {"$identifierSystem": kind}: identifier_system_base + kind
  Concat,            // {"$concat": [expr, ...]}: string join, absent if any part is
  If,                // {"$if": expr, "equals"|"contains"|"is"?: test, "then": expr, "else"?: expr}
  Map,               // {"$map": path, "to": expr}: one output item per array item, with $item and $index
  Join,              // {"$join": expr, "separator": text}: an array of strings/numbers as one string
  Upper,             // {"$upper": expr}
  Lower,             // {"$lower": expr}
  Trim,              // {"$trim": expr}: leading and trailing ASCII white space removed
  EscapeXhtml,       // {"$escapeXhtml": expr}: text made safe inside FHIR narrative XHTML
  Number,            // {"$number": expr}: decimal text (a CSV cell) as a JSON number; numbers pass through
  Narrative,         // {"$narrative": title, "sections": [...]}: common/xhtml.hpp's list narrative
};

// $item and $index exist only inside a loop (a rule's forEach or a $map's "to").
enum class Variable : std::uint8_t { Record, SourceId, IdentifierSystem, Id, Clinic, Item, Index };

// How $if tests its condition (Truthy: present and not false).
enum class IfTest : std::uint8_t { Truthy, Equals, Contains, IsType };

struct PathStep {
  std::string name;         // member name (when index < 0)
  std::int64_t index = -1;  // array element
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct ValueMap {
  std::string name;
  std::string where;  // file:line:column of its definition
  std::unordered_map<std::string, const rapidjson::Value*, StringHash, std::equal_to<>> entries;
  const rapidjson::Value* fallback = nullptr;  // "default"

  /// The entry for `code`, or null (the fallback is the caller's business).
  const rapidjson::Value* find(std::string_view code) const;
  /// Builds the quick index find() uses for small maps; call once `entries` is complete and the
  /// map is where it stays.
  void index();

 private:
  // Most value maps have a few short codes: comparing a code's length and first eight bytes with
  // each is quicker than hashing it. `entries` stays the full index, and the order that error
  // messages list codes in.
  struct Slot {
    std::uint64_t head = 0;
    std::string code;  // a copy: a copied ValueMap stays valid
    const rapidjson::Value* value = nullptr;
  };
  static constexpr std::size_t kMaxSlots = 16;
  std::vector<Slot> slots_;  // empty: not indexed, or too many codes
};

struct Node {
  // The small members come first, together, so a Node stays as compact as it can: the evaluator
  // walks many of them per record.
  NodeKind kind = NodeKind::Literal;
  // Whether the value depends on the record. An object or array whose record-dependent parts all
  // come out absent is itself absent (so {"value": "$.x", "unit": "d"} vanishes without $.x).
  bool dynamic = false;
  Variable variable = Variable::Record;  // Path
  // field_path is relative to the current loop item ($item.kind -> "kind"); the full path
  // ("service.items[2].kind") is only built when a message needs it.
  bool item_relative = false;
  IfTest if_test = IfTest::Truthy;                 // If
  rapidjson::Type if_type = rapidjson::kNullType;  // If with "is": the JSON type tested ("number" -> kNumberType)
  const rapidjson::Value* literal = nullptr;       // Literal; points into CompiledMapper::source
  std::vector<PathStep> steps;                     // Path
  std::string field_path;                          // record field path for messages ("prescription.route"), if known
  const rapidjson::Value* if_operand = nullptr;    // If with "equals"/"contains": the literal compared with
  std::vector<std::string> names;       // Object member names, parallel to children; Narrative: heading, empty per section
  std::vector<Node> children;           // Object members, Array items, operator operands
  const ValueMap* value_map = nullptr;  // Lookup
  const DateSpec* date_spec = nullptr;  // Date, DateTime with "formats"/"timezone" (owned by the mapper); null: ISO
  std::string text;                     // resource type, identifier kind, Lookup's select member, Join's separator
  std::string where;                    // file:line:column of this expression in the mapper
};

struct ResourceRule {
  std::string resource_type;
  std::string identifier_kind;
  // With "forEach": the record array (a Path node); the rule then produces one resource per item,
  // with $item and $index in scope for sourceId and the template. Null: one resource per record.
  std::unique_ptr<Node> for_each;
  Node source_id;
  Node body;  // Object node: the template's members
};

struct CompiledMapper {
  std::string record_type;
  std::string file;
  rapidjson::Document source;                               // the parsed file; literals and value-map entries live here
  std::map<std::string, ValueMap> value_maps;               // node-based: Node::value_map pointers stay valid
  std::vector<std::unique_ptr<const DateSpec>> date_specs;  // what Node::date_spec points to
  std::vector<ResourceRule> resources;
};

/// Parses and compiles one mapper file (see mappers/README.md). `schemas` may be null.
Result<std::unique_ptr<CompiledMapper>> compileMapperFile(const std::filesystem::path& path, const RecordSchemas* schemas);

/// Compiles the expression at JSON pointer `template_pointer` of `mapper.source` (already parsed
/// from `text`, with mapper.file set) as a record template for an input mapper (CSV): value maps
/// come from "/valueMaps"; paths may only be "$.<name>" for a name in `columns`; the rule
/// variables ($sourceId, $id, $identifierSystem, $clinic) and the resource functions ($reference,
/// $resourceId, $identifierSystem) are errors, since a record has no resources yet.
Result<Node> compileRecordTemplate(CompiledMapper& mapper, std::string_view text, const std::string& template_pointer,
                                   const std::vector<std::string>& columns);

/// Evaluates a record template against `row` (an object of column name -> cell) into `out`.
/// Errors: InvalidInput with where = the column name the failing expression reads, if any.
Status evaluateRecordTemplate(const CompiledMapper& mapper, const Node& node, const rapidjson::Value& row,
                              rapidjson::Document& out);

/// Applies one rule to a record and appends its resources to `out`: one resource, or one per
/// item of the rule's forEach array (none for an absent or empty array).
Status applyRule(const CompiledMapper& mapper, const ResourceRule& rule, const rapidjson::Value& record,
                 const MappingContext& context, std::vector<MappedResource>& out);

}  // namespace gw::mapping

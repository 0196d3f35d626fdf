// Loads a mapper file and compiles it into the Node tree that mapper_eval.cpp walks per record:
// the file, its value maps, resource rules, templates and paths (function calls are
// call_compiler.cpp's). Everything that can be checked without a record is checked here, with
// file:line:column.
#include <rapidjson/pointer.h>

#include <algorithm>

#include "mapping/compiler.hpp"
#include "mapping/record_schemas.hpp"
#include "mapping/support.hpp"

namespace gw::mapping {
namespace {

constexpr std::string_view kFormat = "gw-mapper/1";
constexpr std::string_view kSuffix = ".mapper.json";
constexpr std::string_view kVariables =
    "$ (the record, as in $.patient.mrn), $sourceId, $identifierSystem, $id, $clinic, and inside a loop $item and $index";

}  // namespace

namespace detail {

Result<Node> Compiler::compileRecordTemplate(const std::string& pointer, const std::vector<std::string>& columns) {
  columns_ = &columns;
  if (const auto* maps = json::find(mapper_.source, "valueMaps"); maps != nullptr) {
    GW_TRY(compileValueMaps(*maps));
  }
  const rapidjson::Value* body =
      rapidjson::Pointer(rapidjson::StringRef(pointer.data(), pointer.size())).Get(mapper_.source);
  if (body == nullptr || !body->IsObject())
    return error("the record template must be a JSON object (one clinic record)", pointer);
  return compileObject(*body, pointer);
}

Status Compiler::compile() {
  const rapidjson::Value& root = mapper_.source;
  if (!root.IsObject()) return error("a mapper file must be a JSON object", "");
  // "$schema" lets editors find mappers/mapper.schema.json; the engine ignores it.
  GW_TRY(
      onlyKeys(root, "", {"$schema", "format", "recordType", "description", "valueMaps", "resources"}, "the mapper file"));
  if (const auto* schema = json::find(root, "$schema"); schema != nullptr && !schema->IsString()) {
    return error("$schema must be a string (the location of mapper.schema.json)", "/$schema");
  }

  const auto* format = json::find(root, "format");
  if (format == nullptr) return error("missing \"format\": \"" + std::string(kFormat) + "\"", "");
  if (!format->IsString() || json::view(*format) != kFormat) {
    return error("unsupported mapper format; this gateway reads \"" + std::string(kFormat) + "\"", "/format");
  }
  const auto* record_type = json::find(root, "recordType");
  if (record_type == nullptr || !record_type->IsString()) {
    return error("missing \"recordType\" (a string naming the record type this file maps)", "");
  }
  if (json::view(*record_type) != mapper_.record_type) {
    return error("recordType must be \"" + mapper_.record_type + "\" (the file is named " + mapper_.record_type +
                     std::string(kSuffix) + ")",
                 "/recordType");
  }
  if (schemas_ != nullptr && !schemas_->knows(mapper_.record_type)) {
    return error("no record schema for record type '" + mapper_.record_type + "'", "/recordType",
                 "add schemas/" + mapper_.record_type + ".schema.json next to the mappers");
  }
  if (const auto* description = json::find(root, "description"); description != nullptr && !description->IsString()) {
    return error("description must be a string", "/description");
  }
  if (const auto* maps = json::find(root, "valueMaps"); maps != nullptr) {
    GW_TRY(compileValueMaps(*maps));
  }

  const auto* resources = json::find(root, "resources");
  if (resources == nullptr || !resources->IsArray() || resources->Empty()) {
    return error("\"resources\" must be a non-empty array of resource rules", resources == nullptr ? "" : "/resources");
  }
  for (rapidjson::SizeType i = 0; i < resources->Size(); ++i) {
    GW_TRY(auto rule, compileResource((*resources)[i], child("/resources", i)));
    mapper_.resources.push_back(std::move(rule));
  }
  return ok();
}

Status Compiler::onlyKeys(const rapidjson::Value& object, const std::string& pointer,
                          std::initializer_list<std::string_view> allowed, std::string_view what) const {
  return onlyKeys(object, pointer, std::vector<std::string_view>(allowed), what);
}

Status Compiler::onlyKeys(const rapidjson::Value& call, const std::string& pointer, const FunctionSpec& spec) const {
  std::vector<std::string_view> allowed{spec.name};
  for (const auto& argument : spec.arguments) allowed.push_back(argument.name);
  return onlyKeys(call, pointer, allowed, spec.name);
}

Status Compiler::onlyKeys(const rapidjson::Value& object, const std::string& pointer,
                          const std::vector<std::string_view>& allowed, std::string_view what) const {
  for (const auto& member : object.GetObject()) {
    bool known = false;
    for (const auto key : allowed) known = known || json::view(member.name) == key;
    if (!known) {
      std::string list;
      for (const auto key : allowed) list += (list.empty() ? "" : ", ") + std::string(key);
      return makeError(ErrorCode::Config,
                       "unknown key " + quoteCode(json::view(member.name)) + " in " + std::string(what) +
                           "; allowed: " + list,
                       atKey(child(pointer, json::view(member.name))));
    }
  }
  return ok();
}

Status Compiler::compileValueMaps(const rapidjson::Value& maps) {
  if (!maps.IsObject()) return error("valueMaps must be an object of named value maps", "/valueMaps");
  for (const auto& member : maps.GetObject()) {
    const std::string name(json::view(member.name));
    const std::string pointer = child("/valueMaps", name);
    if (!isName(name, "-")) {
      return makeError(ErrorCode::Config, "value map names use letters, digits, '_' and '-'", atKey(pointer));
    }
    const rapidjson::Value& definition = member.value;
    if (!definition.IsObject()) {
      return error("a value map is an object {\"entries\": {code: value, ...}, \"default\"?: value}", pointer);
    }
    GW_TRY(onlyKeys(definition, pointer, {"description", "entries", "default"}, "value map '" + name + "'"));
    const auto* entries = json::find(definition, "entries");
    if (entries == nullptr || !entries->IsObject() || entries->MemberCount() == 0) {
      return error("value map '" + name + "' needs a non-empty \"entries\" object {code: value, ...}", pointer);
    }
    ValueMap map;
    map.name = name;
    map.where = at(pointer);
    for (const auto& entry : entries->GetObject()) {
      const std::string entry_pointer = child(child(pointer, "entries"), json::view(entry.name));
      if (entry.value.IsNull() || isEmptyLiteral(entry.value)) {
        return error("a value map entry needs a value (null and empty values are not allowed in FHIR)", entry_pointer);
      }
      if (!map.entries.emplace(std::string(json::view(entry.name)), &entry.value).second) {
        return makeError(ErrorCode::Config,
                         "duplicate code " + quoteCode(json::view(entry.name)) + " in value map '" + name + "'",
                         atKey(entry_pointer));
      }
    }
    if (const auto* fallback = json::find(definition, "default"); fallback != nullptr) {
      if (fallback->IsNull() || isEmptyLiteral(*fallback)) {
        return error("default needs a value; leave it out to reject unknown codes", child(pointer, "default"));
      }
      map.fallback = fallback;
    }
    mapper_.value_maps.emplace(name, std::move(map)).first->second.index();
  }
  return ok();
}

Result<ResourceRule> Compiler::compileResource(const rapidjson::Value& v, const std::string& pointer) {
  if (!v.IsObject())
    return error("a resource rule is an object with resourceType, sourceId, identifierKind and template", pointer);
  GW_TRY(onlyKeys(v, pointer, {"description", "resourceType", "forEach", "sourceId", "identifierKind", "template"},
                  "a resource rule"));
  ResourceRule rule;
  const auto* type = json::find(v, "resourceType");
  if (type == nullptr || !type->IsString() || !isResourceTypeName(json::view(*type))) {
    return error("resourceType must be a FHIR resource type name such as \"Patient\"",
                 type == nullptr ? pointer : child(pointer, "resourceType"));
  }
  rule.resource_type = json::view(*type);
  const auto* kind = json::find(v, "identifierKind");
  if (kind == nullptr || !kind->IsString() || !isName(json::view(*kind), "-.")) {
    return error(
        "identifierKind must be a short name such as \"mrn\" or \"prescription\" "
        "(identifier.system = the clinic's identifier base + this kind)",
        kind == nullptr ? pointer : child(pointer, "identifierKind"));
  }
  rule.identifier_kind = json::view(*kind);

  // forEach: one resource per item of a record array; $item and $index are in scope below.
  std::size_t loops_before = loops_.size();
  if (const auto* for_each = json::find(v, "forEach"); for_each != nullptr) {
    const std::string for_each_pointer = child(pointer, "forEach");
    std::string array_pointer;
    GW_TRY(auto source, compileLoopSource(*for_each, for_each_pointer, "forEach", array_pointer));
    rule.for_each = std::make_unique<Node>(std::move(source));
    loops_.push_back(std::move(array_pointer));
  }
  const auto* source_id = json::find(v, "sourceId");
  if (source_id == nullptr) return error("missing sourceId (the record field that identifies this resource)", pointer);
  in_source_id_ = true;
  auto compiled_source_id = compileExpr(*source_id, child(pointer, "sourceId"));
  in_source_id_ = false;
  if (!compiled_source_id) return compiled_source_id.error();
  rule.source_id = std::move(compiled_source_id).value();
  if (!rule.source_id.dynamic) {
    return error("sourceId must come from the record (for example \"$.prescription.id\")", child(pointer, "sourceId"));
  }

  const std::string template_pointer = child(pointer, "template");
  const auto* body = json::find(v, "template");
  if (body == nullptr || !body->IsObject())
    return error("template must be a JSON object (the FHIR resource)", body == nullptr ? pointer : template_pointer);
  for (const auto& member : body->GetObject()) {
    const auto name = json::view(member.name);
    if (name == "resourceType" || name == "id") {
      return makeError(ErrorCode::Config,
                       "the engine sets \"" + std::string(name) +
                           "\"; remove it from the template (resourceType comes "
                           "from the rule, id from resourceType and sourceId)",
                       atKey(child(template_pointer, name)));
    }
    if (!name.empty() && name[0] == '$') {
      return makeError(ErrorCode::Config, "the template itself must be a resource object, not a function call",
                       atKey(child(template_pointer, name)));
    }
  }
  GW_TRY(checkBusinessIdentifier(*body, template_pointer));
  GW_TRY(auto compiled_body, compileObject(*body, template_pointer));
  rule.body = std::move(compiled_body);
  loops_.resize(loops_before);
  return rule;
}

Status Compiler::checkBusinessIdentifier(const rapidjson::Value& body, const std::string& pointer) const {
  const auto* identifiers = json::find(body, "identifier");
  if (identifiers != nullptr && identifiers->IsArray()) {
    for (const auto& identifier : identifiers->GetArray()) {
      if (json::getString(identifier, "system") == "$identifierSystem" &&
          json::getString(identifier, "value") == "$sourceId") {
        return ok();
      }
    }
  }
  return error(
      "the template must carry the business identifier: \"identifier\": [{\"system\": "
      "\"$identifierSystem\", \"value\": \"$sourceId\"}] (other members such as use and type may be added)",
      identifiers == nullptr ? pointer : child(pointer, "identifier"));
}

Result<Node> Compiler::compileExpr(const rapidjson::Value& v, const std::string& pointer) {
  switch (v.GetType()) {
    case rapidjson::kStringType:
      if (v.GetStringLength() > 0 && v.GetString()[0] == '$') return compilePath(json::view(v), pointer);
      if (v.GetStringLength() == 0) return error("empty strings are not allowed in FHIR; leave the member out", pointer);
      return literal(v, pointer);
    case rapidjson::kNullType: return error("null is not allowed in FHIR; leave the member out", pointer);
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
    case rapidjson::kNumberType: return literal(v, pointer);
    case rapidjson::kArrayType: {
      if (v.Empty()) return error("empty arrays are not allowed in FHIR; leave the member out", pointer);
      Node node;
      node.kind = NodeKind::Array;
      node.where = at(pointer);
      bool verbatim = true;
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        GW_TRY(auto item, compileExpr(v[i], child(pointer, i)));
        node.dynamic = node.dynamic || item.dynamic;
        verbatim = verbatim && isVerbatim(item, v[i]);
        node.children.push_back(std::move(item));
      }
      if (verbatim) return literal(v, pointer);  // a constant subtree is copied in one go
      return node;
    }
    case rapidjson::kObjectType: {
      const rapidjson::Value* function = nullptr;
      std::string function_name;
      for (const auto& member : v.GetObject()) {
        const auto name = json::view(member.name);
        if (name.empty() || name[0] != '$') continue;
        if (function != nullptr) {
          return makeError(ErrorCode::Config,
                           "an object may call only one function; found " + quoteCode(function_name) + " and " +
                               quoteCode(name),
                           atKey(child(pointer, name)));
        }
        function = &member.value;
        function_name = name;
      }
      if (function != nullptr) return compileFunction(v, pointer, function_name, *function);
      GW_TRY(auto node, compileObject(v, pointer));
      bool verbatim = true;
      rapidjson::SizeType i = 0;
      for (const auto& member : v.GetObject()) verbatim = verbatim && isVerbatim(node.children[i++], member.value);
      if (verbatim) return literal(v, pointer);
      return node;
    }
  }
  return error("unsupported JSON value", pointer);
}

Result<Node> Compiler::compileObject(const rapidjson::Value& v, const std::string& pointer) {
  if (v.MemberCount() == 0) return error("empty objects are not allowed in FHIR; leave the member out", pointer);
  Node node;
  node.kind = NodeKind::Object;
  node.where = at(pointer);
  for (const auto& member : v.GetObject()) {
    GW_TRY(auto value, compileExpr(member.value, child(pointer, json::view(member.name))));
    node.dynamic = node.dynamic || value.dynamic;
    node.names.emplace_back(json::view(member.name));
    node.children.push_back(std::move(value));
  }
  return node;
}

bool Compiler::isVerbatim(const Node& node, const rapidjson::Value& source) {
  return node.kind == NodeKind::Literal && node.literal == &source;
}

Result<Node> Compiler::literal(const rapidjson::Value& v, const std::string& pointer) const {
  if (isEmptyLiteral(v)) return error("empty values are not allowed in FHIR; leave the member out", pointer);
  Node node;
  node.kind = NodeKind::Literal;
  node.literal = &v;
  node.where = at(pointer);
  return node;
}

Result<Node> Compiler::compileLoopSource(const rapidjson::Value& v, const std::string& pointer, std::string_view what,
                                         std::string& array_pointer) {
  if (!v.IsString() || v.GetStringLength() < 2 || v.GetString()[0] != '$') {
    return error(std::string(what) + " takes the path of a record array, such as \"$.service.items\" or \"$item.parts\"",
                 pointer);
  }
  GW_TRY(auto source, compilePath(json::view(v), pointer, &array_pointer));
  if (source.variable != Variable::Record && source.variable != Variable::Item) {
    return error(std::string(what) + " must walk a record array ($.… or $item…), not " + quoteCode(json::view(v)), pointer);
  }
  return source;
}

Result<Node> Compiler::compilePath(std::string_view text, const std::string& pointer, std::string* schema_pointer) {
  Node node;
  node.kind = NodeKind::Path;
  node.where = at(pointer);
  std::size_t i = 1;
  while (i < text.size() && isIdentifierChar(text[i], false)) ++i;
  const std::string_view variable = text.substr(1, i - 1);
  if (variable.empty()) {
    node.variable = Variable::Record;
  } else if (columns_ != nullptr && variable != "item" && variable != "index") {
    return error(quoteCode(std::string("$") + std::string(variable)) +
                     " is not available in a record template; columns are written $.<column name>",
                 pointer);
  } else if (variable == "sourceId") {
    node.variable = Variable::SourceId;
  } else if (variable == "identifierSystem") {
    node.variable = Variable::IdentifierSystem;
  } else if (variable == "id") {
    node.variable = Variable::Id;
  } else if (variable == "clinic") {
    node.variable = Variable::Clinic;
  } else if (variable == "item" || variable == "index") {
    if (loops_.empty()) {
      return error(quoteCode(std::string("$") + std::string(variable)) +
                       " exists only inside a loop (a rule's forEach or a $map's \"to\")",
                   pointer, "record fields are written $." + std::string(variable) + "...");
    }
    node.variable = variable == "item" ? Variable::Item : Variable::Index;
  } else {
    return error(
        "unknown variable " + quoteCode(std::string("$") + std::string(variable)) + "; known: " + std::string(kVariables),
        pointer,
        "record fields are written $." + std::string(variable) + "...; a literal starting with '$' is {\"$literal\": ...}");
  }
  std::string field_path;
  std::string field_pointer;
  while (i < text.size()) {
    if (text[i] == '.') {
      const std::size_t start = ++i;
      while (i < text.size() && isIdentifierChar(text[i], true)) ++i;
      if (i == start) return badPath(text, start, pointer);
      const std::string_view name = text.substr(start, i - start);
      node.steps.push_back({std::string(name), -1});
      field_path += (field_path.empty() ? "" : ".") + std::string(name);
      json::appendPointerToken(field_pointer, name);
    } else if (text[i] == '[') {
      const std::size_t start = ++i;
      std::int64_t index = 0;
      while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i - start < 9) index = index * 10 + (text[i++] - '0');
      if (i == start || i >= text.size() || text[i] != ']') return badPath(text, i, pointer);
      ++i;
      node.steps.push_back({{}, index});
      field_path += "[" + std::to_string(index) + "]";
      field_pointer += "/" + std::to_string(index);
    } else {
      return badPath(text, i, pointer);
    }
  }
  if (node.variable == Variable::Item) {
    // Relative to the innermost loop's item; checked against the schema of that array's items.
    const std::string full_pointer = loops_.back() + "/0" + field_pointer;
    if (schemas_ != nullptr && !schemas_->declaresField(mapper_.record_type, full_pointer)) {
      return error("field " + quoteCode(json::pointerToPath(full_pointer)) + " is not declared in the record schema of '" +
                       mapper_.record_type + "'",
                   pointer, "check the spelling against schemas/" + mapper_.record_type + ".schema.json");
    }
    if (schema_pointer != nullptr) *schema_pointer = full_pointer;
    node.dynamic = true;
    node.item_relative = true;
    node.field_path = std::move(field_path);
    return node;
  }
  if (node.variable == Variable::Index) {
    if (!node.steps.empty()) return error("'$index' is a number; it has no fields", pointer);
    node.dynamic = true;
    node.item_relative = true;
    return node;
  }
  if (node.variable != Variable::Record) {
    if (!node.steps.empty())
      return error(quoteCode(std::string("$") + std::string(variable)) + " is a string; it has no fields", pointer);
    if (in_source_id_ && (node.variable == Variable::SourceId || node.variable == Variable::Id)) {
      return error("sourceId cannot refer to itself; use a record field such as $.prescription.id", pointer);
    }
    node.dynamic = node.variable == Variable::SourceId || node.variable == Variable::Id;
    return node;
  }
  if (node.steps.empty()) return error("'$' alone is the whole record; name a field such as $.patient.mrn", pointer);
  if (columns_ != nullptr) {
    if (node.steps.size() != 1 || node.steps[0].index >= 0 ||
        std::find(columns_->begin(), columns_->end(), node.steps[0].name) == columns_->end()) {
      std::string known;
      for (const auto& c : *columns_) known += (known.empty() ? "" : ", ") + c;
      return error("a record template reads CSV columns as $.<name>, with a name declared in \"columns\"; " +
                       quoteCode(text) + " is not one",
                   pointer, "declared names: " + known);
    }
    node.dynamic = true;
    node.field_path = std::move(field_path);
    return node;
  }
  if (schemas_ != nullptr && !schemas_->declaresField(mapper_.record_type, field_pointer)) {
    return error("field " + quoteCode(field_path) + " is not declared in the record schema of '" + mapper_.record_type + "'",
                 pointer, "check the spelling against schemas/" + mapper_.record_type + ".schema.json");
  }
  if (schema_pointer != nullptr) *schema_pointer = field_pointer;
  node.dynamic = true;
  node.field_path = std::move(field_path);
  return node;
}

Error Compiler::badPath(std::string_view text, std::size_t position, const std::string& pointer) const {
  return error("bad path syntax at character " + std::to_string(position + 1) + " of " + quoteCode(text) +
                   "; paths look like $.prescription.dose.value or $.patient.given_names[0]",
               pointer);
}

}  // namespace detail

using detail::Compiler;

Result<std::unique_ptr<CompiledMapper>> compileMapperFile(const std::filesystem::path& path, const RecordSchemas* schemas) {
  auto mapper = std::make_unique<CompiledMapper>();
  mapper->file = path.string();
  const std::string name = path.filename().string();
  mapper->record_type = name.size() > kSuffix.size() ? name.substr(0, name.size() - kSuffix.size()) : name;
  GW_TRY(auto text, readTextFile(path));
  GW_TRY(parseJsonFile(mapper->file, text, mapper->source, true));
  Compiler compiler(*mapper, text, schemas);
  GW_TRY(compiler.compile());
  return mapper;
}

Result<Node> compileRecordTemplate(CompiledMapper& mapper, std::string_view text, const std::string& template_pointer,
                                   const std::vector<std::string>& columns) {
  Compiler compiler(mapper, text, nullptr);
  return compiler.compileRecordTemplate(template_pointer, columns);
}

}  // namespace gw::mapping

// Compiles the function calls of mapper templates ({"$name": operand, "argument": ...}): the
// function table (mapper_functions.hpp) says which functions exist and which keys each takes;
// each case here checks its operand and arguments and builds its Node.
#include <algorithm>

#include "mapping/compiler.hpp"
#include "mapping/dates.hpp"
#include "mapping/support.hpp"

namespace gw::mapping::detail {

Result<Node> Compiler::compileFunction(const rapidjson::Value& call, const std::string& pointer, const std::string& name,
                                       const rapidjson::Value& operand) {
  const std::string operand_pointer = child(pointer, name);
  Node node;
  node.where = at(pointer);
  const auto required = [&](std::string_view arg) -> Result<Node> {
    const auto* value = json::find(call, arg);
    if (value == nullptr) return error(name + " needs \"" + std::string(arg) + "\"", pointer);
    return compileExpr(*value, child(pointer, arg));
  };
  const auto string_operand = [&](std::string_view what) -> Result<std::string> {
    if (!operand.IsString() || operand.GetStringLength() == 0) {
      return error(name + " takes " + std::string(what), operand_pointer);
    }
    return std::string(json::view(operand));
  };

  const FunctionSpec* spec = findFunction(name);
  if (spec == nullptr) {
    return makeError(ErrorCode::Config, "unknown function " + quoteCode(name) + "; known functions: " + functionList(),
                     atKey(operand_pointer),
                     "a string value starting with '$' is a path; write {\"$literal\": \"$...\"} for a literal");
  }
  if (columns_ != nullptr && !spec->in_record_templates) {
    return makeError(ErrorCode::Config,
                     name +
                         " is not available in a record template: it builds clinic records, and resources come later "
                         "from the record-type mapper",
                     atKey(operand_pointer));
  }
  if (spec->kind == NodeKind::Date && json::find(call, "timezone") != nullptr) {
    return makeError(ErrorCode::Config, "a date has no time zone; use $dateTime for values with a time",
                     atKey(child(pointer, "timezone")));
  }
  GW_TRY(onlyKeys(call, pointer, *spec));
  node.kind = spec->kind;
  switch (spec->kind) {
    case NodeKind::Literal:
      if (operand.IsNull()) return error("null is not allowed in FHIR; leave the member out", operand_pointer);
      return literal(operand, operand_pointer);
    case NodeKind::Lookup: {
      GW_TRY(auto map_name, string_operand("the name of a value map"));
      const auto it = mapper_.value_maps.find(map_name);
      if (it == mapper_.value_maps.end()) {
        std::string known;
        for (const auto& [n, m] : mapper_.value_maps) known += (known.empty() ? "" : ", ") + n;
        return error("unknown value map " + quoteCode(map_name) +
                         (known.empty() ? "; valueMaps is empty" : "; defined: " + known),
                     operand_pointer);
      }
      node.value_map = &it->second;
      if (const auto* select = json::find(call, "select"); select != nullptr) {
        if (!select->IsString() || select->GetStringLength() == 0) {
          return error("select takes the name of a member of the value map's entries", child(pointer, "select"));
        }
        node.text = json::view(*select);
        GW_TRY(checkSelect(it->second, node.text, child(pointer, "select")));
      }
      GW_TRY(auto input, required("value"));
      return withOperand(std::move(node), std::move(input));
    }
    case NodeKind::Date:
    case NodeKind::DateTime: {
      GW_TRY(compileDateSpec(call, pointer, spec->kind == NodeKind::DateTime, node));
      GW_TRY(auto input, compileExpr(operand, operand_pointer));
      return withOperand(std::move(node), std::move(input));
    }
    case NodeKind::Reference:
    case NodeKind::ResourceId: {
      if (!operand.IsString() || !isResourceTypeName(json::view(operand))) {
        return error(name + " takes a FHIR resource type name such as \"Patient\"", operand_pointer);
      }
      node.text = json::view(operand);
      GW_TRY(auto input, required("sourceId"));
      return withOperand(std::move(node), std::move(input));
    }
    case NodeKind::IdentifierSystem: {
      GW_TRY(auto kind, string_operand("an identifier kind such as \"mrn\""));
      node.text = std::move(kind);
      if (!isName(node.text, "-.")) return error("identifier kinds use letters, digits, '_', '-' and '.'", operand_pointer);
      return node;
    }
    case NodeKind::Concat:
      if (!operand.IsArray() || operand.Empty()) return error("$concat takes a non-empty array of parts", operand_pointer);
      for (rapidjson::SizeType i = 0; i < operand.Size(); ++i) {
        GW_TRY(auto part, compileExpr(operand[i], child(operand_pointer, i)));
        node.dynamic = node.dynamic || part.dynamic;
        node.children.push_back(std::move(part));
      }
      return node;
    case NodeKind::If: {
      GW_TRY(compileIfTest(call, pointer, node));
      GW_TRY(auto condition, compileExpr(operand, operand_pointer));
      GW_TRY(auto then_branch, required("then"));
      node.dynamic = condition.dynamic || then_branch.dynamic;
      node.children.push_back(std::move(condition));
      node.children.push_back(std::move(then_branch));
      if (json::find(call, "else") != nullptr) {
        GW_TRY(auto else_branch, required("else"));
        node.dynamic = node.dynamic || else_branch.dynamic;
        node.children.push_back(std::move(else_branch));
      }
      return node;
    }
    case NodeKind::Map: {
      std::string array_pointer;
      GW_TRY(auto source, compileLoopSource(operand, operand_pointer, "$map", array_pointer));
      const auto* to = json::find(call, "to");
      if (to == nullptr) return error("$map needs \"to\": the value to produce for each item ($item, $index)", pointer);
      loops_.push_back(std::move(array_pointer));
      auto body = compileExpr(*to, child(pointer, "to"));
      loops_.pop_back();
      if (!body) return body.error();
      node.dynamic = true;
      node.field_path = source.field_path;
      node.item_relative = source.item_relative;
      node.children.push_back(std::move(source));
      node.children.push_back(std::move(body).value());
      return node;
    }
    case NodeKind::Join: {
      if (const auto* separator = json::find(call, "separator"); separator != nullptr) {
        if (!separator->IsString()) return error("separator must be a string such as \", \"", child(pointer, "separator"));
        node.text = json::view(*separator);
      }
      GW_TRY(auto input, compileExpr(operand, operand_pointer));
      return withOperand(std::move(node), std::move(input));
    }
    case NodeKind::Upper:
    case NodeKind::Lower:
    case NodeKind::Trim:
    case NodeKind::EscapeXhtml:
    case NodeKind::Number: {
      GW_TRY(auto input, compileExpr(operand, operand_pointer));
      return withOperand(std::move(node), std::move(input));
    }
    case NodeKind::Narrative: return compileNarrative(call, pointer, operand, std::move(node));
    case NodeKind::Path:
    case NodeKind::Object:
    case NodeKind::Array: break;  // template nodes, not functions
  }
  return makeError(ErrorCode::Internal, "function " + quoteCode(name) + " has no compiler case", atKey(operand_pointer),
                   "add it to compileFunction (mapping/mapper_compiler.cpp)");
}

Result<Node> Compiler::compileNarrative(const rapidjson::Value& call, const std::string& pointer,
                                        const rapidjson::Value& operand, Node node) {
  GW_TRY(auto title, compileExpr(operand, child(pointer, "$narrative")));
  const std::string sections_pointer = child(pointer, "sections");
  const auto* sections = json::find(call, "sections");
  if (sections == nullptr) {
    return error("$narrative needs \"sections\": [{\"heading\": ..., \"items\": ..., \"empty\": ...}, ...]", pointer);
  }
  if (!sections->IsArray() || sections->Empty()) {
    return error("sections takes a non-empty array of {\"heading\", \"items\", \"empty\"}", sections_pointer);
  }
  node.dynamic = title.dynamic;
  node.children.push_back(std::move(title));
  for (rapidjson::SizeType i = 0; i < sections->Size(); ++i) {
    const auto& section = (*sections)[i];
    const std::string section_pointer = child(sections_pointer, i);
    if (!section.IsObject())
      return error("a section is an object with \"heading\", \"items\" and \"empty\"", section_pointer);
    GW_TRY(onlyKeys(section, section_pointer, {"heading", "items", "empty"}, "a $narrative section"));
    const auto* heading = json::find(section, "heading");
    if (heading == nullptr || !heading->IsString() || heading->GetStringLength() == 0) {
      return error("heading takes the section's name as text, such as \"Goals\"", child(section_pointer, "heading"));
    }
    const auto* empty = json::find(section, "empty");
    if (empty == nullptr || !empty->IsString() || empty->GetStringLength() == 0) {
      return error("empty takes the text written when the section has no items, such as \"none recorded.\"",
                   child(section_pointer, "empty"));
    }
    const auto* items = json::find(section, "items");
    if (items == nullptr) {
      return error("a section needs \"items\": an array of {\"label\", \"qualifier\", \"detail\"}, usually a $map",
                   section_pointer);
    }
    GW_TRY(auto items_node, compileExpr(*items, child(section_pointer, "items")));
    node.dynamic = node.dynamic || items_node.dynamic;
    node.names.emplace_back(json::view(*heading));
    node.names.emplace_back(json::view(*empty));
    node.children.push_back(std::move(items_node));
  }
  return node;
}

Status Compiler::compileDateSpec(const rapidjson::Value& call, const std::string& pointer, bool with_time, Node& node) {
  const auto* formats = json::find(call, "formats");
  const auto* timezone = json::find(call, "timezone");
  if (formats == nullptr && timezone == nullptr) return ok();
  auto spec = std::make_unique<DateSpec>();
  spec->with_time = with_time;
  if (timezone != nullptr) {
    const std::string zone_pointer = child(pointer, "timezone");
    if (!timezone->IsString() || timezone->GetStringLength() == 0) {
      return error("timezone takes an IANA zone name such as \"America/New_York\" or a fixed offset such as \"-05:00\"",
                   zone_pointer);
    }
    const std::string zone_name(json::view(*timezone));
    auto cached = zones_.find(zone_name);
    if (cached == zones_.end()) {
      auto loaded = TimeZone::load(zone_name);
      if (!loaded) {
        Error e = loaded.error();
        e.where = at(zone_pointer);
        return e;
      }
      cached = zones_.emplace(zone_name, std::move(loaded).value()).first;
    }
    spec->zone = cached->second;
  }
  if (formats == nullptr) {
    spec->formats.push_back(compileDateFormat("ISO", with_time).value());
  } else {
    const std::string formats_pointer = child(pointer, "formats");
    if (!formats->IsArray() || formats->Empty()) {
      return error("formats takes a non-empty array of source formats such as [\"MM/DD/YYYY\", \"ISO\"]", formats_pointer);
    }
    for (rapidjson::SizeType i = 0; i < formats->Size(); ++i) {
      const auto& item = (*formats)[i];
      const std::string item_pointer = child(formats_pointer, i);
      if (!item.IsString()) return error("a format is a string such as \"MM/DD/YYYY\"", item_pointer);
      auto compiled = compileDateFormat(json::view(item), with_time);
      if (!compiled) {
        Error e = compiled.error();
        e.where = at(item_pointer);
        return e;
      }
      for (const auto& earlier : spec->formats) {
        if (earlier.text == compiled.value().text)
          return error("format " + quoteCode(earlier.text) + " is listed twice", item_pointer);
      }
      if (with_time && !compiled.value().has_offset && !spec->zone) {
        return error("format " + quoteCode(json::view(item)) +
                         " has no offset (Z), so it reads local times: add \"timezone\"",
                     item_pointer, "for example \"timezone\": \"America/New_York\" (DST-aware) or \"timezone\": \"-05:00\"");
      }
      spec->formats.push_back(std::move(compiled).value());
    }
  }
  describeDateSpec(*spec);
  node.date_spec = spec.get();
  mapper_.date_specs.push_back(std::move(spec));
  return ok();
}

Status Compiler::compileIfTest(const rapidjson::Value& call, const std::string& pointer, Node& node) const {
  int tests = 0;
  for (const char* key : {"equals", "contains", "is"}) tests += json::find(call, key) != nullptr ? 1 : 0;
  if (tests > 1) return error("$if takes at most one of \"equals\", \"contains\" and \"is\"", pointer);
  for (const char* key : {"equals", "contains"}) {
    const auto* literal = json::find(call, key);
    if (literal == nullptr) continue;
    if (!literal->IsString() && !literal->IsNumber() && !literal->IsBool()) {
      return error(std::string(key) + " takes a literal string, number or boolean", child(pointer, key));
    }
    node.if_test = std::string_view(key) == "equals" ? IfTest::Equals : IfTest::Contains;
    node.if_operand = literal;
  }
  if (const auto* type = json::find(call, "is"); type != nullptr) {
    const std::string_view t = type->IsString() ? json::view(*type) : std::string_view{};
    node.if_test = IfTest::IsType;
    if (t == "string") node.if_type = rapidjson::kStringType;
    else if (t == "number") node.if_type = rapidjson::kNumberType;
    else if (t == "boolean") node.if_type = rapidjson::kTrueType;  // stands for true and false
    else if (t == "array") node.if_type = rapidjson::kArrayType;
    else if (t == "object") node.if_type = rapidjson::kObjectType;
    else return error("is takes one of \"string\", \"number\", \"boolean\", \"array\", \"object\"", child(pointer, "is"));
  }
  return ok();
}

Node Compiler::withOperand(Node node, Node operand) {
  node.dynamic = operand.dynamic;
  node.item_relative = operand.item_relative;
  node.field_path = operand.field_path;  // messages name the record field when the operand is a plain path
  node.children.push_back(std::move(operand));
  return node;
}

Status Compiler::checkSelect(const ValueMap& map, const std::string& member, const std::string& pointer) const {
  for (const auto& [code, entry] : map.entries) {
    if (json::find(*entry, member) == nullptr) {
      return error("select " + quoteCode(member) + ": entry " + quoteCode(code) + " of value map '" + map.name +
                       "' has no such member",
                   pointer);
    }
  }
  if (map.fallback != nullptr && json::find(*map.fallback, member) == nullptr) {
    return error("select " + quoteCode(member) + ": the default of value map '" + map.name + "' has no such member",
                 pointer);
  }
  return ok();
}

}  // namespace gw::mapping::detail

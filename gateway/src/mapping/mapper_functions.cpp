#include "mapping/mapper_functions.hpp"

#include <array>

namespace gw::mapping {
namespace {

constexpr FunctionArgument kLookupArguments[] = {{"value", true}, {"select", false}};
constexpr FunctionArgument kDateArguments[] = {{"formats", false}};
constexpr FunctionArgument kDateTimeArguments[] = {{"formats", false}, {"timezone", false}};
constexpr FunctionArgument kSourceIdArgument[] = {{"sourceId", true}};
constexpr FunctionArgument kIfArguments[] = {
    {"equals", false}, {"contains", false}, {"is", false}, {"then", true}, {"else", false}};
constexpr FunctionArgument kMapArguments[] = {{"to", true}};
constexpr FunctionArgument kJoinArguments[] = {{"separator", false}};
constexpr FunctionArgument kNarrativeArguments[] = {{"sections", true}};

constexpr std::array kFunctions{
    FunctionSpec{"$lookup", NodeKind::Lookup, kLookupArguments, "the entry (or its `select` member) of a value map",
                 "codes of the record -> FHIR codings and texts through the mapper's valueMaps"},
    FunctionSpec{"$date", NodeKind::Date, kDateArguments, "a FHIR date (YYYY-MM-DD)",
                 "a real calendar day, read as YYYY-MM-DD or as `formats` say"},
    FunctionSpec{"$dateTime", NodeKind::DateTime, kDateTimeArguments, "a FHIR dateTime with an offset",
                 "RFC 3339 with an offset, or as `formats` say with local times placed in `timezone`"},
    FunctionSpec{"$reference", NodeKind::Reference, kSourceIdArgument, "\"Type/<id>\"",
                 "a reference to the resource another rule makes from that source id", false},
    FunctionSpec{"$resourceId", NodeKind::ResourceId, kSourceIdArgument, "\"<id>\"",
                 "the id of the resource another rule makes from that source id", false},
    FunctionSpec{"$identifierSystem",
                 NodeKind::IdentifierSystem,
                 {},
                 "the clinic's identifier base + kind",
                 "an identifier system of the clinic, e.g. for Reference.identifier",
                 false},
    FunctionSpec{"$concat", NodeKind::Concat, {}, "text", "the parts joined as text; absent if any part is absent"},
    FunctionSpec{"$if", NodeKind::If, kIfArguments, "`then` or `else`",
                 "a choice on a value: present and not false, equal to, containing, or of a JSON type"},
    FunctionSpec{"$map", NodeKind::Map, kMapArguments, "an array",
                 "one `to` value per item of a record array, with $item and $index"},
    FunctionSpec{"$join", NodeKind::Join, kJoinArguments, "text", "an array of strings or numbers joined with `separator`"},
    FunctionSpec{"$upper", NodeKind::Upper, {}, "text", "ASCII letters upper-cased"},
    FunctionSpec{"$lower", NodeKind::Lower, {}, "text", "ASCII letters lower-cased"},
    FunctionSpec{"$trim", NodeKind::Trim, {}, "text", "leading and trailing white space removed; absent if nothing is left"},
    FunctionSpec{"$escapeXhtml", NodeKind::EscapeXhtml, {}, "text", "& < > \" ' escaped for narrative XHTML (text.div)"},
    FunctionSpec{"$number", NodeKind::Number, {}, "a JSON number", "decimal text such as a CSV cell as a number"},
    FunctionSpec{"$narrative", NodeKind::Narrative, kNarrativeArguments, "XHTML for text.div",
                 "a titled narrative of sections, each a list of \"label (qualifier): detail\" items", false},
    FunctionSpec{
        "$literal", NodeKind::Literal, {}, "the value as written", "a value that would otherwise read as a path or a call"},
};

}  // namespace

std::span<const FunctionSpec> functionSpecs() { return kFunctions; }

const FunctionSpec* findFunction(std::string_view name) {
  for (const auto& spec : kFunctions) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string_view functionName(NodeKind kind) {
  for (const auto& spec : kFunctions) {
    if (spec.kind == kind) return spec.name;
  }
  return {};
}

std::string functionList() {
  std::string out;
  for (const auto& spec : kFunctions) out += (out.empty() ? "" : ", ") + std::string(spec.name);
  return out;
}

}  // namespace gw::mapping

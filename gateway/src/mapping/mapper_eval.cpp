// Per-record evaluation of a compiled mapper: a walk over the Node tree that writes straight into
// the output document's allocator. Hot path: no parsing, no regex, no locks.
#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>

#include "common/ids.hpp"
#include "common/json.hpp"
#include "common/time_zone.hpp"
#include "common/xhtml.hpp"
#include "mapping/compiled_mapper.hpp"
#include "mapping/dates.hpp"
#include "mapping/mapper_functions.hpp"
#include "mapping/support.hpp"

namespace gw::mapping {
namespace {

using Allocator = rapidjson::Document::AllocatorType;

// Chunk size of a resource's allocator. Most labelled resources fit in one (an Observation or a
// Patient takes about 9 KiB: RapidJSON gives every object room for 16 members); at 4 KiB a
// CarePlan took seven chunks, each a malloc and a free.
constexpr std::size_t kResourceChunkBytes = 12288;

enum class Outcome : std::uint8_t { Present, Absent, Failed };

// One level of loop (a rule's forEach or a $map): the item in scope as $item and $index.
struct LoopFrame {
  const LoopFrame* parent;
  const Node* source;  // the array's path node, for messages
  const rapidjson::Value* item;
  std::int64_t index;
};

struct Scope {
  const rapidjson::Value& record;
  const MappingContext& context;
  const CompiledMapper& mapper;
  Allocator& allocator;
  std::string_view source_id;
  std::string_view identifier_system;
  std::string_view id;
  std::optional<Error> error;
  const LoopFrame* loop = nullptr;  // innermost loop, if any
};

// "service.items[2]": the record path of the current item, built only for messages.
std::string itemPath(const LoopFrame* frame) {
  if (frame == nullptr) return {};
  std::string path = frame->source->item_relative ? itemPath(frame->parent) : std::string();
  if (!frame->source->field_path.empty()) path += (path.empty() ? "" : ".") + frame->source->field_path;
  return path + "[" + std::to_string(frame->index) + "]";
}

// The record field an expression reads, with loop indexes filled in ("service.items[2].kind").
std::string fieldPathOf(const Node& node, const Scope& scope) {
  if (!node.item_relative) return node.field_path;
  std::string path = itemPath(scope.loop);
  if (!node.field_path.empty()) path += "." + node.field_path;
  return path;
}

// Deep copy that always copies strings (RapidJSON's own copy shares "const" strings): the record
// may have been parsed in situ, and the output document must never point into its buffer.
void copyValue(const rapidjson::Value& in, rapidjson::Value& out, Allocator& allocator) {
  switch (in.GetType()) {
    case rapidjson::kStringType: out.SetString(in.GetString(), in.GetStringLength(), allocator); break;
    case rapidjson::kObjectType:
      out.SetObject();
      for (const auto& member : in.GetObject()) {
        rapidjson::Value name(member.name.GetString(), member.name.GetStringLength(), allocator);
        rapidjson::Value value;
        copyValue(member.value, value, allocator);
        out.AddMember(name, value, allocator);
      }
      break;
    case rapidjson::kArrayType:
      out.SetArray();
      out.Reserve(in.Size(), allocator);
      for (const auto& item : in.GetArray()) {
        rapidjson::Value value;
        copyValue(item, value, allocator);
        out.PushBack(value, allocator);
      }
      break;
    default: out.CopyFrom(in, allocator);  // numbers, booleans, null: no strings involved
  }
}

// out = a + b + c as one string in `allocator`, without a temporary std::string when it is short
// (references and identifier systems are made for most resources).
void setJoined(rapidjson::Value& out, std::string_view a, std::string_view b, std::string_view c, Allocator& allocator) {
  char text[256];
  const std::size_t size = a.size() + b.size() + c.size();
  if (size > sizeof(text)) {
    std::string joined;
    joined.reserve(size);
    joined.append(a).append(b).append(c);
    out.SetString(joined.data(), static_cast<rapidjson::SizeType>(joined.size()), allocator);
    return;
  }
  char* p = text;
  for (const std::string_view part : {a, b, c}) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  out.SetString(text, static_cast<rapidjson::SizeType>(size), allocator);
}

// The first (up to) eight bytes of a code as a number, the rest zero.
std::uint64_t headBytes(std::string_view s) {
  std::uint64_t out = 0;
  const std::size_t n = std::min<std::size_t>(s.size(), 8);
  for (std::size_t k = n; k-- > 0;) out = (out << 8) | static_cast<unsigned char>(s[k]);
  return out;
}

// FHIR has no empty strings, arrays or objects, and no nulls: such source values count as absent.
bool isAbsentValue(const rapidjson::Value& v) {
  return v.IsNull() || (v.IsString() && v.GetStringLength() == 0) || (v.IsArray() && v.Empty()) ||
         (v.IsObject() && v.MemberCount() == 0);
}

Outcome fail(Scope& scope, std::string message, const Node& node, std::string hint = {}) {
  // `where` is the record field when the expression reads one; otherwise the mapper position.
  std::string path = fieldPathOf(node, scope);
  scope.error = makeError(ErrorCode::InvalidInput, std::move(message), path.empty() ? node.where : std::move(path),
                          std::move(hint));
  return Outcome::Failed;
}

std::string fieldName(const Node& node, const Scope& scope) {
  const std::string path = fieldPathOf(node, scope);
  return path.empty() ? std::string("the value") : "'" + path + "'";
}

// A code or id as text: strings as they are, integers in decimal (CSV-like sources send numbers).
bool scalarText(const rapidjson::Value& v, std::string& buffer, std::string_view& out) {
  if (v.IsString()) {
    out = json::view(v);
    return true;
  }
  if (v.IsInt64()) {
    buffer = std::to_string(v.GetInt64());
  } else if (v.IsUint64()) {
    buffer = std::to_string(v.GetUint64());
  } else {
    return false;
  }
  out = buffer;
  return true;
}

Outcome eval(const Node& node, Scope& scope, rapidjson::Value& out);

// The record value a Record or Item path names, or null when it is not there.
const rapidjson::Value* resolve(const Node& node, const rapidjson::Value& record, const LoopFrame* loop) {
  const rapidjson::Value* v = node.variable == Variable::Item ? loop->item : &record;
  for (const auto& step : node.steps) {
    if (step.index >= 0) {
      if (!v->IsArray() || static_cast<std::uint64_t>(step.index) >= v->Size()) return nullptr;
      v = &(*v)[static_cast<rapidjson::SizeType>(step.index)];
    } else {
      if (!v->IsObject()) return nullptr;
      const auto it = v->FindMember(rapidjson::StringRef(step.name.data(), step.name.size()));
      if (it == v->MemberEnd()) return nullptr;
      v = &it->value;
    }
  }
  return v;
}

Outcome evalPath(const Node& node, Scope& scope, rapidjson::Value& out) {
  std::string_view text;
  switch (node.variable) {
    case Variable::Item: {
      const rapidjson::Value* v = resolve(node, scope.record, scope.loop);
      if (v == nullptr || isAbsentValue(*v)) return Outcome::Absent;
      copyValue(*v, out, scope.allocator);
      return Outcome::Present;
    }
    case Variable::Index: out.SetInt64(scope.loop->index); return Outcome::Present;
    case Variable::Record: {
      const rapidjson::Value* v = &scope.record;
      for (const auto& step : node.steps) {
        if (step.index >= 0) {
          if (!v->IsArray() || static_cast<std::uint64_t>(step.index) >= v->Size()) return Outcome::Absent;
          v = &(*v)[static_cast<rapidjson::SizeType>(step.index)];
        } else {
          if (!v->IsObject()) return Outcome::Absent;
          const auto it = v->FindMember(rapidjson::StringRef(step.name.data(), step.name.size()));
          if (it == v->MemberEnd()) return Outcome::Absent;
          v = &it->value;
        }
      }
      if (isAbsentValue(*v)) return Outcome::Absent;
      copyValue(*v, out, scope.allocator);
      return Outcome::Present;
    }
    case Variable::SourceId: text = scope.source_id; break;
    case Variable::IdentifierSystem: text = scope.identifier_system; break;
    case Variable::Id: text = scope.id; break;
    case Variable::Clinic: text = scope.context.clinic; break;
  }
  if (text.empty()) return Outcome::Absent;
  out.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), scope.allocator);
  return Outcome::Present;
}

// The value of an operand that only gets read (a code to look up, a date to check, a condition):
// a record path or a literal is read where it is, anything else is evaluated into `scratch`.
// Copying a record value into the output allocator just to read it was a large part of mapping.
Outcome operand(const Node& node, Scope& scope, rapidjson::Value& scratch, const rapidjson::Value*& out) {
  if (node.kind == NodeKind::Literal) {
    out = node.literal;
    return Outcome::Present;
  }
  if (node.kind == NodeKind::Path && (node.variable == Variable::Record || node.variable == Variable::Item)) {
    const rapidjson::Value* v = resolve(node, scope.record, scope.loop);
    if (v == nullptr || isAbsentValue(*v)) return Outcome::Absent;
    out = v;
    return Outcome::Present;
  }
  out = &scratch;
  return eval(node, scope, scratch);
}

Outcome evalObject(const Node& node, Scope& scope, rapidjson::Value& out) {
  out.SetObject();
  bool record_data_present = false;
  for (std::size_t i = 0; i < node.children.size(); ++i) {
    rapidjson::Value value;
    const Outcome outcome = eval(node.children[i], scope, value);
    if (outcome == Outcome::Failed) return outcome;
    if (outcome == Outcome::Absent) continue;
    record_data_present = record_data_present || node.children[i].dynamic;
    const std::string& name = node.names[i];
    out.AddMember(rapidjson::Value(name.data(), static_cast<rapidjson::SizeType>(name.size()), scope.allocator), value,
                  scope.allocator);
  }
  if ((node.dynamic && !record_data_present) || out.MemberCount() == 0) return Outcome::Absent;
  return Outcome::Present;
}

Outcome evalArray(const Node& node, Scope& scope, rapidjson::Value& out) {
  out.SetArray();
  out.Reserve(static_cast<rapidjson::SizeType>(node.children.size()), scope.allocator);
  bool record_data_present = false;
  for (const auto& child : node.children) {
    rapidjson::Value value;
    const Outcome outcome = eval(child, scope, value);
    if (outcome == Outcome::Failed) return outcome;
    if (outcome == Outcome::Absent) continue;
    record_data_present = record_data_present || child.dynamic;
    out.PushBack(value, scope.allocator);
  }
  if ((node.dynamic && !record_data_present) || out.Empty()) return Outcome::Absent;
  return Outcome::Present;
}

// The value-map entry (or its selected member) a Lookup node gives, without copying it; null
// when the selected member is absent from that entry.
Outcome findEntry(const Node& node, Scope& scope, const rapidjson::Value*& entry_out) {
  rapidjson::Value scratch;
  const rapidjson::Value* input = nullptr;
  const Outcome outcome = operand(node.children[0], scope, scratch, input);
  if (outcome != Outcome::Present) return outcome;
  std::string buffer;
  std::string_view code;
  const ValueMap& map = *node.value_map;
  if (!scalarText(*input, buffer, code)) {
    return fail(scope,
                fieldName(node, scope) + " must be a code (string), got " + std::string(jsonTypeName(*input)) +
                    " (value map '" + map.name + "' in " + map.where + ")",
                node);
  }
  const rapidjson::Value* entry = map.find(code);
  if (entry == nullptr) entry = map.fallback;
  if (entry == nullptr) {
    std::string known;
    for (const auto& [key, value] : map.entries) known += (known.empty() ? "" : ", ") + key;
    if (known.size() > 200) known = known.substr(0, 200) + "...";
    return fail(scope,
                "code " + quoteCode(code) + " of " + fieldName(node, scope) + " is not in value map '" + map.name + "' (" +
                    map.where + ")",
                node, "send one of " + known + ", or add the code to the value map");
  }
  if (!node.text.empty()) entry = json::find(*entry, node.text);  // presence checked at load
  entry_out = entry;
  return Outcome::Present;
}

Outcome evalLookup(const Node& node, Scope& scope, rapidjson::Value& out) {
  const rapidjson::Value* entry = nullptr;
  const Outcome outcome = findEntry(node, scope, entry);
  if (outcome != Outcome::Present) return outcome;
  if (entry == nullptr) return Outcome::Absent;
  copyValue(*entry, out, scope.allocator);
  return Outcome::Present;
}

// $date / $dateTime with declared "formats" / "timezone" (compiled at load into node.date_spec).
// Out of line: most mappers read ISO dates, and the common path stays as small as it was.
[[gnu::noinline]] Outcome evalDeclaredDate(const Node& node, Scope& scope, const rapidjson::Value& input,
                                           rapidjson::Value& out) {
  const DateSpec& spec = *node.date_spec;
  const std::string_view what = spec.with_time ? "date-time" : "date";
  char text[kMaxDateText];
  DateParse parsed;
  if (input.IsString()) parsed = parseDate(spec, json::view(input), text);
  switch (parsed.status) {
    case DateParse::Status::Ok:
      out.SetString(text, static_cast<rapidjson::SizeType>(parsed.size), scope.allocator);
      return Outcome::Present;
    case DateParse::Status::Invalid:
      return fail(scope,
                  fieldName(node, scope) + " is not a valid " + std::string(what) + "; expected " + spec.expectation +
                      " (mapped at " + node.where + ")",
                  node);
    case DateParse::Status::Ambiguous:
      return fail(scope,
                  fieldName(node, scope) + " is ambiguous: formats " + quoteCode(spec.formats[parsed.first].text) + " and " +
                      quoteCode(spec.formats[parsed.second].text) + " read it as different " + std::string(what) +
                      "s (mapped at " + node.where + ")",
                  node, "send the value in one unambiguous format, or list only one of these formats in the mapper");
    case DateParse::Status::NoFhirOffset:
      return fail(scope,
                  fieldName(node, scope) + " falls at a time when " + spec.zone->name() +
                      " had no whole-minute UTC offset within ±14:00 (local mean time), which FHIR cannot write "
                      "(mapped at " +
                      node.where + ")",
                  node);
  }
  return fail(scope, "internal error: unknown date outcome", node);
}

Outcome evalDate(const Node& node, Scope& scope, rapidjson::Value& out, bool with_time) {
  rapidjson::Value scratch;
  const rapidjson::Value* operand_value = nullptr;
  const Outcome outcome = operand(node.children[0], scope, scratch, operand_value);
  if (outcome != Outcome::Present) return outcome;
  const rapidjson::Value& input = *operand_value;
  // Never quote the value: dates of birth are PHI.
  if (node.date_spec) return evalDeclaredDate(node, scope, input, out);
  if (!with_time) {
    if (!input.IsString() || !isCalendarDate(json::view(input))) {
      return fail(scope,
                  fieldName(node, scope) +
                      " is not a valid calendar date; expected YYYY-MM-DD naming a real day (mapped at " + node.where + ")",
                  node);
    }
    out.SetString(input.GetString(), input.GetStringLength(), scope.allocator);
    return Outcome::Present;
  }
  std::string normalised;
  if (!input.IsString() || !normaliseDateTime(json::view(input), normalised)) {
    return fail(scope,
                fieldName(node, scope) +
                    " is not a valid date-time; expected RFC 3339 with an offset, e.g. "
                    "2026-11-20T09:00:00-05:00 (mapped at " +
                    node.where + ")",
                node);
  }
  out.SetString(normalised.data(), static_cast<rapidjson::SizeType>(normalised.size()), scope.allocator);
  return Outcome::Present;
}

Outcome evalResourceId(const Node& node, Scope& scope, rapidjson::Value& out, bool as_reference) {
  rapidjson::Value scratch;
  const rapidjson::Value* input = nullptr;
  const Outcome outcome = operand(node.children[0], scope, scratch, input);
  if (outcome != Outcome::Present) return outcome;
  std::string buffer;
  std::string_view source_id;
  if (!scalarText(*input, buffer, source_id)) {
    return fail(scope,
                fieldName(node, scope) + " must be an identifier (string), got " + std::string(jsonTypeName(*input)) +
                    " (mapped at " + node.where + ")",
                node);
  }
  const std::string id = ids::resourceId(scope.context.clinic, node.text, source_id);
  if (!as_reference) {
    out.SetString(id.data(), static_cast<rapidjson::SizeType>(id.size()), scope.allocator);
    return Outcome::Present;
  }
  setJoined(out, node.text, "/", id, scope.allocator);  // "Type/<id>"
  return Outcome::Present;
}

bool ifHolds(const Node& node, const rapidjson::Value& condition);

// Appends a scalar as text: strings as they are (escaped for XHTML if asked), numbers and
// booleans as JSON writes them. False for objects, arrays and null.
bool appendScalar(const rapidjson::Value& v, std::string& out, bool escape) {
  if (v.IsString()) {
    const std::string_view text = json::view(v);
    if (escape) {
      xhtml::appendEscaped(out, text);
    } else {
      out.append(text);
    }
    return true;
  }
  if (v.IsNumber() || v.IsBool()) {
    out += json::toString(v);
    return true;
  }
  return false;
}

// Builds the text of $concat, $join (of a $map) and $escapeXhtml straight into one std::string,
// without materialising every part as a JSON string first: a CarePlan narrative has dozens of
// parts. Same results as eval(); on Absent or Failed, `out` is left as it was.
Outcome appendText(const Node& node, Scope& scope, std::string& out, bool escape, const Node& owner, std::string_view what) {
  const std::size_t mark = out.size();
  const auto cannotJoin = [&](const rapidjson::Value& v, const Node& part) {
    out.resize(mark);
    return fail(scope,
                std::string(what) + " cannot join " + std::string(jsonTypeName(v)) + " values from " +
                    fieldName(part, scope) + " (mapped at " + owner.where + ")",
                part);
  };
  switch (node.kind) {
    case NodeKind::Literal:
      if (!appendScalar(*node.literal, out, escape)) return cannotJoin(*node.literal, node);
      return Outcome::Present;
    case NodeKind::Path:
      if (node.variable == Variable::Record || node.variable == Variable::Item) {
        const rapidjson::Value* v = resolve(node, scope.record, scope.loop);
        if (v == nullptr || isAbsentValue(*v)) return Outcome::Absent;
        if (!appendScalar(*v, out, escape)) return cannotJoin(*v, node);
        return Outcome::Present;
      }
      break;
    case NodeKind::Concat:
      for (const auto& child : node.children) {
        const Outcome outcome = appendText(child, scope, out, escape, node, functionName(NodeKind::Concat));
        if (outcome != Outcome::Present) {
          out.resize(mark);  // absent if any part is absent
          return outcome;
        }
      }
      return Outcome::Present;
    case NodeKind::Lookup: {
      // The entry's text goes straight into `out` (a narrative names each coded item).
      const rapidjson::Value* entry = nullptr;
      const Outcome outcome = findEntry(node, scope, entry);
      if (outcome != Outcome::Present) return outcome;
      if (entry == nullptr) return Outcome::Absent;
      if (!appendScalar(*entry, out, escape)) return cannotJoin(*entry, node);
      return Outcome::Present;
    }
    case NodeKind::EscapeXhtml:
      if (escape) break;  // escaping twice: take the general path
      return appendText(node.children[0], scope, out, true, node, what);
    case NodeKind::If: {
      rapidjson::Value scratch;
      const rapidjson::Value* condition = nullptr;
      const Outcome outcome = operand(node.children[0], scope, scratch, condition);
      if (outcome == Outcome::Failed) return outcome;
      if (outcome == Outcome::Present && ifHolds(node, *condition)) {
        return appendText(node.children[1], scope, out, escape, owner, what);
      }
      if (node.children.size() > 2) return appendText(node.children[2], scope, out, escape, owner, what);
      return Outcome::Absent;
    }
    case NodeKind::Join: {
      const Node& input = node.children[0];
      if (input.kind != NodeKind::Map) break;
      // $join of a $map: each item's text goes straight into `out`; absent items are left out.
      const Node& source = input.children[0];
      const rapidjson::Value* array = resolve(source, scope.record, scope.loop);
      if (array == nullptr || isAbsentValue(*array)) return Outcome::Absent;
      if (!array->IsArray()) {
        out.resize(mark);
        return fail(scope,
                    fieldName(source, scope) + " must be an array, got " + std::string(jsonTypeName(*array)) + " ($map at " +
                        input.where + ")",
                    source);
      }
      LoopFrame frame{scope.loop, &source, nullptr, 0};
      scope.loop = &frame;
      Outcome result = Outcome::Absent;
      for (const auto& item : array->GetArray()) {
        frame.item = &item;
        const std::size_t before = out.size();
        if (result == Outcome::Present) out += node.text;
        const Outcome outcome = appendText(input.children[1], scope, out, escape, node, functionName(NodeKind::Join));
        if (outcome == Outcome::Failed) {
          result = outcome;
          break;
        }
        if (outcome == Outcome::Absent) {
          out.resize(before);
        } else {
          result = Outcome::Present;
        }
        ++frame.index;
      }
      scope.loop = frame.parent;
      if (result != Outcome::Present) out.resize(mark);
      return result;
    }
    default: break;
  }
  rapidjson::Value part;
  const Outcome outcome = eval(node, scope, part);
  if (outcome != Outcome::Present) return outcome;
  if (!appendScalar(part, out, escape)) return cannotJoin(part, node);
  return Outcome::Present;
}

// A string to build text in, reused per thread: most resources have a $concat, and a narrative
// grows through several reallocations. Nested use (a $concat inside the value of a $concat's
// $lookup) gets a string of its own.
class TextBuffer {
 public:
  TextBuffer() {
    if (!state().in_use) {
      state().in_use = true;
      text_ = &state().text;
      text_->clear();
    } else {
      text_ = &own_;
    }
  }
  ~TextBuffer() {
    if (text_ != &own_) {
      if (text_->capacity() > kKeepBytes) std::string().swap(*text_);
      state().in_use = false;
    }
  }
  TextBuffer(const TextBuffer&) = delete;
  TextBuffer& operator=(const TextBuffer&) = delete;

  std::string& text() { return *text_; }

 private:
  static constexpr std::size_t kKeepBytes = 64 * 1024;
  struct State {
    std::string text;
    bool in_use = false;
  };
  static State& state() {
    thread_local State s;
    return s;
  }
  std::string* text_ = nullptr;
  std::string own_;
};

Outcome evalConcat(const Node& node, Scope& scope, rapidjson::Value& out) {
  TextBuffer buffer;
  std::string& text = buffer.text();
  const Outcome outcome = appendText(node, scope, text, false, node, functionName(NodeKind::Concat));
  if (outcome != Outcome::Present) return outcome;
  out.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), scope.allocator);
  return Outcome::Present;
}

bool ifHolds(const Node& node, const rapidjson::Value& condition) {
  switch (node.if_test) {
    case IfTest::Truthy: return !condition.IsFalse();
    case IfTest::Equals: return condition == *node.if_operand;
    case IfTest::Contains:
      if (!condition.IsArray()) return condition == *node.if_operand;
      for (const auto& item : condition.GetArray()) {
        if (item == *node.if_operand) return true;
      }
      return false;
    case IfTest::IsType:
      return node.if_type == rapidjson::kTrueType ? condition.IsBool() : condition.GetType() == node.if_type;
  }
  return false;
}

Outcome evalIf(const Node& node, Scope& scope, rapidjson::Value& out) {
  rapidjson::Value scratch;
  const rapidjson::Value* condition = nullptr;
  const Outcome outcome = operand(node.children[0], scope, scratch, condition);
  if (outcome == Outcome::Failed) return outcome;
  const bool truthy = outcome == Outcome::Present && ifHolds(node, *condition);
  if (truthy) return eval(node.children[1], scope, out);
  if (node.children.size() > 2) return eval(node.children[2], scope, out);
  return Outcome::Absent;
}

// Walks the array without copying it: each item is read in place through the loop frame.
Outcome evalMap(const Node& node, Scope& scope, rapidjson::Value& out) {
  const Node& source = node.children[0];
  const rapidjson::Value* array = resolve(source, scope.record, scope.loop);
  if (array == nullptr || isAbsentValue(*array)) return Outcome::Absent;
  if (!array->IsArray()) {
    return fail(scope,
                fieldName(source, scope) + " must be an array, got " + std::string(jsonTypeName(*array)) + " ($map at " +
                    node.where + ")",
                source);
  }
  out.SetArray();
  out.Reserve(array->Size(), scope.allocator);
  LoopFrame frame{scope.loop, &source, nullptr, 0};
  scope.loop = &frame;
  Outcome result = Outcome::Present;
  for (const auto& item : array->GetArray()) {
    frame.item = &item;
    rapidjson::Value value;
    const Outcome outcome = eval(node.children[1], scope, value);
    if (outcome == Outcome::Failed) {
      result = outcome;
      break;
    }
    if (outcome == Outcome::Present) out.PushBack(value, scope.allocator);
    ++frame.index;
  }
  scope.loop = frame.parent;
  if (result == Outcome::Failed) return result;
  return out.Empty() ? Outcome::Absent : Outcome::Present;
}

Outcome evalJoin(const Node& node, Scope& scope, rapidjson::Value& out) {
  if (node.children[0].kind == NodeKind::Map) {
    TextBuffer buffer;
    std::string& text = buffer.text();
    const Outcome outcome = appendText(node, scope, text, false, node, functionName(NodeKind::Join));
    if (outcome != Outcome::Present) return outcome;
    out.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), scope.allocator);
    return Outcome::Present;
  }
  rapidjson::Value scratch;
  const rapidjson::Value* operand_value = nullptr;
  const Outcome outcome = operand(node.children[0], scope, scratch, operand_value);
  if (outcome != Outcome::Present) return outcome;
  const rapidjson::Value& input = *operand_value;
  if (!input.IsArray()) {
    return fail(scope,
                "$join needs an array, got " + std::string(jsonTypeName(input)) + " from " + fieldName(node, scope) +
                    " (mapped at " + node.where + ")",
                node);
  }
  std::string text;
  bool first = true;
  for (const auto& part : input.GetArray()) {
    if (!first) text += node.text;
    first = false;
    if (part.IsString()) {
      text.append(part.GetString(), part.GetStringLength());
    } else if (part.IsNumber() || part.IsBool()) {
      text += json::toString(part);
    } else {
      return fail(scope,
                  "$join cannot join " + std::string(jsonTypeName(part)) + " values from " + fieldName(node, scope) +
                      " (mapped at " + node.where + ")",
                  node);
    }
  }
  out.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), scope.allocator);
  return Outcome::Present;
}

// $narrative: the title and each section's items are evaluated, then written by
// common/xhtml.hpp's listNarrative (which escapes every text).
Outcome evalNarrative(const Node& node, Scope& scope, rapidjson::Value& out) {
  // Every evaluated part stays alive (and in place: short strings live inside the Value) until
  // the narrative is written.
  std::vector<rapidjson::Value> scratch(node.children.size());
  std::vector<const rapidjson::Value*> values(node.children.size(), nullptr);
  std::deque<std::string> numbers;  // numbers written as text
  const auto text = [&](const rapidjson::Value& v, std::string_view& into) {
    if (v.IsString()) {
      into = json::view(v);
    } else if (v.IsNumber() || v.IsBool()) {
      into = numbers.emplace_back(json::toString(v));
    } else {
      return false;
    }
    return true;
  };
  const auto wrong = [&](const Node& part, std::string_view what, const rapidjson::Value& v) {
    return fail(scope,
                "$narrative " + std::string(what) + ", got " + std::string(jsonTypeName(v)) + " from " +
                    fieldName(part, scope) + " (mapped at " + node.where + ")",
                part);
  };
  for (std::size_t i = 0; i < node.children.size(); ++i) {
    const Outcome outcome = operand(node.children[i], scope, scratch[i], values[i]);
    if (outcome == Outcome::Failed) return outcome;
    if (outcome == Outcome::Absent) values[i] = nullptr;
  }
  if (values[0] == nullptr) return Outcome::Absent;  // no title, no narrative
  std::string_view title;
  if (!text(*values[0], title)) return wrong(node.children[0], "needs a text title", *values[0]);
  std::vector<xhtml::NarrativeSection> sections(node.children.size() - 1);
  for (std::size_t s = 0; s < sections.size(); ++s) {
    auto& section = sections[s];
    section.heading = node.names[2 * s];
    section.when_empty = node.names[2 * s + 1];
    const rapidjson::Value* items = values[s + 1];
    if (items == nullptr) continue;
    const Node& part = node.children[s + 1];
    if (!items->IsArray()) return wrong(part, "items must be an array of {label, qualifier, detail}", *items);
    for (const auto& item : items->GetArray()) {
      if (!item.IsObject()) return wrong(part, "items must be objects with a label", item);
      xhtml::NarrativeItem entry;
      for (const auto& member : item.GetObject()) {
        const std::string_view key = json::view(member.name);
        std::string_view* into = key == "label"       ? &entry.label
                                 : key == "qualifier" ? &entry.qualifier
                                 : key == "detail"    ? &entry.detail
                                                      : nullptr;
        if (into == nullptr) return wrong(part, "items have only label, qualifier and detail", item);
        if (!text(member.value, *into)) return wrong(part, "item members must be text", member.value);
      }
      if (entry.label.empty()) return wrong(part, "items need a label", item);
      section.items.push_back(entry);
    }
  }
  const std::string div = xhtml::listNarrative(title, sections);
  out.SetString(div.data(), static_cast<rapidjson::SizeType>(div.size()), scope.allocator);
  return Outcome::Present;
}

// $upper, $lower, $trim, $escapeXhtml: ASCII-only case mapping (codes, not prose), so UTF-8
// sequences pass through unchanged.
Outcome evalText(const Node& node, Scope& scope, rapidjson::Value& out) {
  rapidjson::Value scratch;
  const rapidjson::Value* operand_value = nullptr;
  const Outcome outcome = operand(node.children[0], scope, scratch, operand_value);
  if (outcome != Outcome::Present) return outcome;
  const rapidjson::Value& input = *operand_value;
  std::string buffer;
  std::string_view text;
  if (input.IsString()) {
    text = json::view(input);
  } else if (input.IsNumber() || input.IsBool()) {
    buffer = json::toString(input);
    text = buffer;
  } else {
    return fail(scope,
                fieldName(node, scope) + " must be text, got " + std::string(jsonTypeName(input)) + " (mapped at " +
                    node.where + ")",
                node);
  }
  std::string result;
  switch (node.kind) {
    case NodeKind::Upper:
    case NodeKind::Lower:
      result.assign(text);
      for (char& c : result) {
        if (node.kind == NodeKind::Upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (node.kind == NodeKind::Lower && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      break;
    case NodeKind::Trim: {
      const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
      std::size_t begin = 0;
      std::size_t end = text.size();
      while (begin < end && space(text[begin])) ++begin;
      while (end > begin && space(text[end - 1])) --end;
      result.assign(text.substr(begin, end - begin));
      if (result.empty()) return Outcome::Absent;  // FHIR has no empty strings
      break;
    }
    default: result.reserve(text.size() + 16); xhtml::appendEscaped(result, text);
  }
  out.SetString(result.data(), static_cast<rapidjson::SizeType>(result.size()), scope.allocator);
  return Outcome::Present;
}

// $number: spreadsheet cells are text; "12" or "-0.5" becomes a JSON number (plain decimal
// notation only, so "1e3", "0x10", "1,000" and " 12" are errors rather than guesses).
Outcome evalNumber(const Node& node, Scope& scope, rapidjson::Value& out) {
  rapidjson::Value scratch;
  const rapidjson::Value* operand_value = nullptr;
  const Outcome outcome = operand(node.children[0], scope, scratch, operand_value);
  if (outcome != Outcome::Present) return outcome;
  const rapidjson::Value& input = *operand_value;
  if (input.IsNumber()) {
    out.CopyFrom(input, scope.allocator);  // no strings involved
    return Outcome::Present;
  }
  const auto not_a_number = [&] {
    return fail(scope,
                fieldName(node, scope) + " must be a number written with digits and an optional '-' and '.' (mapped at " +
                    node.where + ")",
                node);
  };
  if (!input.IsString()) return not_a_number();
  const std::string_view text = json::view(input);
  std::size_t i = text.size() > 0 && text[0] == '-' ? 1 : 0;
  const std::size_t int_start = i;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == int_start || i - int_start > 18) return not_a_number();
  if (i < text.size() && text[i] == '.') {
    const std::size_t frac_start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == frac_start) return not_a_number();
  }
  if (i != text.size()) return not_a_number();
  rapidjson::Document parsed;
  parsed.Parse(text.data(), text.size());
  if (parsed.HasParseError() || !parsed.IsNumber()) return not_a_number();
  out.CopyFrom(parsed, scope.allocator);
  return Outcome::Present;
}

Outcome eval(const Node& node, Scope& scope, rapidjson::Value& out) {
  switch (node.kind) {
    case NodeKind::Literal: copyValue(*node.literal, out, scope.allocator); return Outcome::Present;
    case NodeKind::Path: return evalPath(node, scope, out);
    case NodeKind::Object: return evalObject(node, scope, out);
    case NodeKind::Array: return evalArray(node, scope, out);
    case NodeKind::Lookup: return evalLookup(node, scope, out);
    case NodeKind::Date: return evalDate(node, scope, out, false);
    case NodeKind::DateTime: return evalDate(node, scope, out, true);
    case NodeKind::Reference: return evalResourceId(node, scope, out, true);
    case NodeKind::ResourceId: return evalResourceId(node, scope, out, false);
    case NodeKind::IdentifierSystem:
      setJoined(out, scope.context.identifier_system_base, node.text, {}, scope.allocator);
      return Outcome::Present;
    case NodeKind::Concat: return evalConcat(node, scope, out);
    case NodeKind::If: return evalIf(node, scope, out);
    case NodeKind::Map: return evalMap(node, scope, out);
    case NodeKind::Join: return evalJoin(node, scope, out);
    case NodeKind::Upper:
    case NodeKind::Lower:
    case NodeKind::Trim:
    case NodeKind::EscapeXhtml: return evalText(node, scope, out);
    case NodeKind::Number: return evalNumber(node, scope, out);
    case NodeKind::Narrative: return evalNarrative(node, scope, out);
  }
  return fail(scope, "internal error: unknown expression kind", node);
}

// One resource from one rule, with the loop frame (if any) already in scope.
Result<MappedResource> applyOnce(const CompiledMapper& mapper, const ResourceRule& rule, const rapidjson::Value& record,
                                 const MappingContext& context, const LoopFrame* loop) {
  MappedResource result;
  result.resource_type = rule.resource_type;
  result.allocator = std::make_unique<rapidjson::MemoryPoolAllocator<>>(kResourceChunkBytes);
  result.resource = rapidjson::Document(rapidjson::kObjectType, result.allocator.get());
  rapidjson::Document& doc = result.resource;
  Allocator& allocator = doc.GetAllocator();
  Scope scope{record, context, mapper, allocator, {}, {}, {}, std::nullopt, loop};

  rapidjson::Value source_id;
  const Outcome outcome = eval(rule.source_id, scope, source_id);
  if (outcome == Outcome::Failed) return std::move(*scope.error);
  std::string buffer;
  std::string_view source_id_text;
  if (outcome == Outcome::Absent || !scalarText(source_id, buffer, source_id_text)) {
    const std::string path = fieldPathOf(rule.source_id, scope);
    return makeError(ErrorCode::InvalidInput,
                     "the record has no usable source id for " + rule.resource_type + " (" + mapper.file + ")",
                     path.empty() ? rule.source_id.where : path, "send a non-empty string identifier");
  }
  result.identifier_value.assign(source_id_text);
  result.identifier_system = context.identifier_system_base + rule.identifier_kind;
  result.id = ids::resourceId(context.clinic, rule.resource_type, result.identifier_value);
  scope.source_id = result.identifier_value;
  scope.identifier_system = result.identifier_system;
  scope.id = result.id;

  doc.AddMember("resourceType", json::str(rule.resource_type, allocator), allocator);
  doc.AddMember("id", json::str(result.id, allocator), allocator);
  const Node& body = rule.body;
  for (std::size_t i = 0; i < body.children.size(); ++i) {
    rapidjson::Value value;
    const Outcome member = eval(body.children[i], scope, value);
    if (member == Outcome::Failed) return std::move(*scope.error);
    if (member == Outcome::Absent) continue;
    doc.AddMember(json::str(body.names[i], allocator), value, allocator);
  }
  return result;
}

}  // namespace

void ValueMap::index() {
  slots_.clear();
  if (entries.size() > kMaxSlots) return;
  for (const auto& [code, value] : entries) slots_.push_back({headBytes(code), code, value});
}

const rapidjson::Value* ValueMap::find(std::string_view code) const {
  if (slots_.empty() || slots_.size() != entries.size()) {
    const auto it = entries.find(code);
    return it == entries.end() ? nullptr : it->second;
  }
  const std::uint64_t head = headBytes(code);
  for (const auto& slot : slots_) {
    if (slot.head == head && slot.code == code) return slot.value;
  }
  return nullptr;
}

Status applyRule(const CompiledMapper& mapper, const ResourceRule& rule, const rapidjson::Value& record,
                 const MappingContext& context, std::vector<MappedResource>& out) {
  if (!rule.for_each) {
    GW_TRY(auto resource, applyOnce(mapper, rule, record, context, nullptr));
    out.push_back(std::move(resource));
    return ok();
  }
  const Node& source = *rule.for_each;
  const rapidjson::Value* array = resolve(source, record, nullptr);
  if (array == nullptr || isAbsentValue(*array)) return ok();  // no items, no resources
  if (!array->IsArray()) {
    return makeError(ErrorCode::InvalidInput,
                     "'" + source.field_path + "' must be an array (forEach of " + rule.resource_type + " in " +
                         mapper.file + ")",
                     source.field_path);
  }
  const std::size_t first = out.size();
  LoopFrame frame{nullptr, &source, nullptr, 0};
  for (const auto& item : array->GetArray()) {
    frame.item = &item;
    GW_TRY(auto resource, applyOnce(mapper, rule, record, context, &frame));
    // Two items with one source id would silently overwrite each other at the partner.
    for (std::size_t i = first; i < out.size(); ++i) {
      if (out[i].id == resource.id) {
        return makeError(ErrorCode::InvalidInput,
                         "items " + std::to_string(i - first) + " and " + std::to_string(frame.index) + " of '" +
                             source.field_path + "' give the same source id for " + rule.resource_type + " (sourceId at " +
                             rule.source_id.where + ")",
                         itemPath(&frame), "send each item once (for example, add up the quantities of items of one kind)");
      }
    }
    out.push_back(std::move(resource));
    ++frame.index;
  }
  return ok();
}

}  // namespace gw::mapping

namespace gw::mapping {

Status evaluateRecordTemplate(const CompiledMapper& mapper, const Node& node, const rapidjson::Value& row,
                              rapidjson::Document& out) {
  static const MappingContext kNoContext{};
  out.SetObject();
  Scope scope{row, kNoContext, mapper, out.GetAllocator(), {}, {}, {}, std::nullopt, nullptr};
  rapidjson::Value value;
  const Outcome outcome = eval(node, scope, value);
  if (outcome == Outcome::Failed) return std::move(*scope.error);
  if (outcome == Outcome::Absent) {
    return makeError(ErrorCode::InvalidInput, "the row produced an empty record (every column the template reads is empty)",
                     node.where);
  }
  static_cast<rapidjson::Value&>(out) = std::move(value);
  return ok();
}

}  // namespace gw::mapping

#include "mapping/record_schemas.hpp"

#include <rapidjson/internal/regex.h>
#include <rapidjson/pointer.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

#include <mutex>
#include <set>

#include "common/json.hpp"
#include "common/json_locations.hpp"
#include "mapping/support.hpp"

namespace gw::mapping {

struct RecordSchemas::Entry {
  std::string record_type;
  std::string file;
  rapidjson::Document json;  // kept: error messages read keywords (enum lists, patterns) from it

  // RapidJSON 1.1's regex keeps its match scratch state inside the compiled pattern, so one
  // SchemaDocument must not serve two validations at once. Each validation borrows a compiled
  // copy from this pool; the pool grows to the number of threads validating concurrently.
  mutable std::mutex pool_mutex;
  mutable std::vector<std::unique_ptr<rapidjson::SchemaDocument>> pool;

  class Lease {
   public:
    explicit Lease(const Entry& entry) : entry_(entry) {
      {
        std::lock_guard lock(entry_.pool_mutex);
        if (!entry_.pool.empty()) {
          schema_ = std::move(entry_.pool.back());
          entry_.pool.pop_back();
        }
      }
      if (!schema_) schema_ = std::make_unique<rapidjson::SchemaDocument>(entry_.json);  // reads json only
    }
    ~Lease() {
      std::lock_guard lock(entry_.pool_mutex);
      entry_.pool.push_back(std::move(schema_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    const rapidjson::SchemaDocument& schema() const { return *schema_; }

   private:
    const Entry& entry_;
    std::unique_ptr<rapidjson::SchemaDocument> schema_;
  };
};

namespace {

constexpr std::string_view kSuffix = ".schema.json";

std::string stringify(const rapidjson::Pointer& pointer) {
  rapidjson::StringBuffer buffer;
  pointer.Stringify(buffer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// The last token of a JSON pointer, unescaped.
std::string lastToken(std::string_view pointer) {
  std::string token(pointer.substr(pointer.rfind('/') + 1));
  for (std::size_t p; (p = token.find("~1")) != std::string::npos;) token.replace(p, 2, "/");
  for (std::size_t p; (p = token.find("~0")) != std::string::npos;) token.replace(p, 2, "~");
  return token;
}

// Checks what RapidJSON would otherwise accept silently: a pattern its regex engine cannot compile
// is ignored (every value would match), and a $ref it cannot resolve validates nothing.
Status checkSchemaKeywords(const rapidjson::Value& node, const rapidjson::Document& root, std::string& pointer,
                           const std::string& file, std::string_view text, const json::JsonLocations& locations) {
  if (node.IsArray()) {
    for (rapidjson::SizeType i = 0; i < node.Size(); ++i) {
      const std::size_t length = pointer.size();
      pointer += '/';
      pointer += std::to_string(i);
      GW_TRY(checkSchemaKeywords(node[i], root, pointer, file, text, locations));
      pointer.resize(length);
    }
    return ok();
  }
  if (!node.IsObject()) return ok();
  for (const auto& member : node.GetObject()) {
    const std::size_t length = pointer.size();
    json::appendPointerToken(pointer, json::view(member.name));
    const std::string_view key = json::view(member.name);
    if (key == "pattern" && member.value.IsString()) {
      rapidjson::internal::GenericRegex<rapidjson::UTF8<>> regex(member.value.GetString());
      if (!regex.IsValid()) {
        return makeError(ErrorCode::Config, "pattern is not supported by RapidJSON's regex engine",
                         json::JsonLocations::position(file, text, locations.valueOffset(pointer)),
                         "use only ^ $ | ( ) ? * + {n,m} . [a-z] [^a-z] and backslash escapes of those characters; "
                         "write [0-9] instead of \\d");
      }
    } else if (key == "$ref" && member.value.IsString()) {
      const std::string_view ref = json::view(member.value);
      const bool resolvable = ref.size() >= 1 && ref[0] == '#' &&
                              rapidjson::Pointer(ref.data() + 1, ref.size() - 1).Get(root) != nullptr;
      if (!resolvable) {
        return makeError(ErrorCode::Config, "$ref does not point into this file",
                         json::JsonLocations::position(file, text, locations.valueOffset(pointer)),
                         "use a local reference such as \"#/definitions/date\"");
      }
    }
    GW_TRY(checkSchemaKeywords(member.value, root, pointer, file, text, locations));
    pointer.resize(length);
  }
  return ok();
}

Result<std::unique_ptr<RecordSchemas::Entry>> loadSchemaFile(const std::filesystem::path& path) {
  const std::string file = path.string();
  GW_TRY(auto text, readTextFile(path));
  auto entry = std::make_unique<RecordSchemas::Entry>();
  entry->file = file;
  const std::string name = path.filename().string();
  entry->record_type = name.substr(0, name.size() - kSuffix.size());
  GW_TRY(parseJsonFile(file, text, entry->json, false));
  const auto locations = json::JsonLocations::build(text, false);
  const auto at = [&](std::string_view pointer) {
    return json::JsonLocations::position(file, text, locations.valueOffset(pointer));
  };

  const rapidjson::Value& root = entry->json;
  if (!root.IsObject() || json::getString(root, "type") != "object") {
    return makeError(ErrorCode::Config, "a record schema must be an object schema (\"type\": \"object\")", at(""));
  }
  // The file name is the record type; the schema must agree so a renamed copy cannot shadow another.
  const auto* enum_values = rapidjson::Pointer("/properties/record_type/enum").Get(root);
  if (enum_values == nullptr || !enum_values->IsArray() || enum_values->Size() != 1 || !(*enum_values)[0].IsString() ||
      json::view((*enum_values)[0]) != entry->record_type) {
    return makeError(ErrorCode::Config,
                     "properties.record_type.enum must be [\"" + entry->record_type + "\"] (the file name's record type)",
                     at("/properties/record_type"));
  }
  std::string pointer;
  GW_TRY(checkSchemaKeywords(root, entry->json, pointer, file, text, locations));
  entry->pool.push_back(std::make_unique<rapidjson::SchemaDocument>(entry->json));
  return entry;
}

bool hasForbiddenControlCharacter(std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return true;
  }
  return false;
}

// FHIR strings must not contain control characters other than tab, CR and LF; checking here
// keeps invalid text from reaching a partner. Returns whether anything was found.
bool anyForbiddenControlCharacter(const rapidjson::Value& v) {
  if (v.IsString()) return hasForbiddenControlCharacter(json::view(v));
  if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      if (anyForbiddenControlCharacter(m.value)) return true;
    }
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray()) {
      if (anyForbiddenControlCharacter(e)) return true;
    }
  }
  return false;
}

void collectControlCharacterErrors(const rapidjson::Value& v, std::string& pointer,
                                   std::vector<RecordSchemas::FieldError>& errors) {
  if (errors.size() >= RecordSchemas::kMaxErrors) return;
  if (v.IsString()) {
    if (hasForbiddenControlCharacter(json::view(v))) {
      errors.push_back({json::pointerToPath(pointer), "contains control characters (only tab, CR and LF are allowed)"});
    }
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) {
      const std::size_t length = pointer.size();
      json::appendPointerToken(pointer, json::view(m.name));
      collectControlCharacterErrors(m.value, pointer, errors);
      pointer.resize(length);
    }
  } else if (v.IsArray()) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      const std::size_t length = pointer.size();
      pointer += '/';
      pointer += std::to_string(i);
      collectControlCharacterErrors(v[i], pointer, errors);
      pointer.resize(length);
    }
  }
}

std::string joinValues(const rapidjson::Value& array) {
  std::string out;
  for (const auto& v : array.GetArray()) {
    if (!out.empty()) out += ", ";
    out += v.IsString() ? std::string(json::view(v)) : json::toString(v);
  }
  return out;
}

std::string plural(const rapidjson::Value& n, std::string_view word) {
  std::string out = json::toString(n) + " " + std::string(word);
  if (!(n.IsUint64() && n.GetUint64() == 1)) out += "s";
  return out;
}

// Plain-words reason for a failed keyword. `schema` is the subschema that failed, `value` the
// offending value. Only codes are quoted (enum values); dates, names and ids never are.
std::string describe(std::string_view keyword, const rapidjson::Value& schema, const rapidjson::Value& value) {
  const auto* arg = json::find(schema, keyword);
  if (keyword == "type" && arg != nullptr) {
    std::string expected;
    if (arg->IsString()) {
      expected = json::view(*arg);
    } else if (arg->IsArray()) {
      for (const auto& t : arg->GetArray()) {
        if (!expected.empty()) expected += " or ";
        if (t.IsString()) expected += json::view(t);
      }
    }
    return "expected " + expected + ", got " + std::string(jsonTypeName(value));
  }
  if (keyword == "enum" && arg != nullptr && arg->IsArray()) {
    if (value.IsString()) return "value " + quoteCode(json::view(value)) + " is not one of " + joinValues(*arg);
    return "expected one of " + joinValues(*arg) + ", got " + std::string(jsonTypeName(value));
  }
  if (keyword == "pattern") {
    if (const auto expected = json::getString(schema, "x-expected"); !expected.empty()) {
      return "expected " + std::string(expected);
    }
    const auto format = json::getString(schema, "format");
    if (format == "date") return "expected a calendar date YYYY-MM-DD";
    if (format == "date-time") return "expected an RFC 3339 date-time with offset, e.g. 2026-11-20T09:00:00-05:00";
    return "does not match the pattern " + std::string(json::getString(schema, "pattern"));
  }
  if (arg != nullptr && arg->IsNumber()) {
    const bool exclusive_min = json::find(schema, "exclusiveMinimum") != nullptr && schema["exclusiveMinimum"].IsTrue();
    const bool exclusive_max = json::find(schema, "exclusiveMaximum") != nullptr && schema["exclusiveMaximum"].IsTrue();
    if (keyword == "minLength") {
      return arg->IsUint64() && arg->GetUint64() == 1 ? "must not be empty"
                                                      : "must be at least " + plural(*arg, "character") + " long";
    }
    if (keyword == "maxLength") return "must be at most " + plural(*arg, "character") + " long";
    if (keyword == "minimum") return (exclusive_min ? "must be greater than " : "must be at least ") + json::toString(*arg);
    if (keyword == "maximum") return (exclusive_max ? "must be less than " : "must be at most ") + json::toString(*arg);
    if (keyword == "multipleOf") return "must be a multiple of " + json::toString(*arg);
    if (keyword == "minItems") return "must have at least " + plural(*arg, "item");
    if (keyword == "maxItems") return "must have at most " + plural(*arg, "item");
    if (keyword == "minProperties") return "must have at least " + plural(*arg, "field");
    if (keyword == "maxProperties") return "must have at most " + plural(*arg, "field");
  }
  if (keyword == "uniqueItems") return "repeats an earlier item; items must be unique";
  return "is not valid (schema keyword '" + std::string(keyword) + "')";
}

// Removes the value at `pointer` from the scratch copy so validation can go on past it. Array
// elements take their whole array with them: removing one would shift the indices of later
// errors. Returns false when nothing could be removed (the root).
bool removeFromScratch(rapidjson::Document& scratch, const std::string& pointer, std::set<std::string>& removed) {
  if (pointer.empty()) return false;
  const std::string parent_pointer = pointer.substr(0, pointer.rfind('/'));
  rapidjson::Value* parent = rapidjson::Pointer(parent_pointer.c_str()).Get(scratch);
  if (parent == nullptr) return false;
  if (parent->IsArray()) return removeFromScratch(scratch, parent_pointer, removed);
  if (!parent->IsObject()) return false;
  const std::string token = lastToken(pointer);
  if (json::find(*parent, token) == nullptr) return false;  // (no iterator ==: ambiguous in C++20 with clang)
  parent->EraseMember(parent->FindMember(rapidjson::StringRef(token.data(), token.size())));
  removed.insert(pointer);
  return true;
}

void collectSchemaErrors(const RecordSchemas::Entry& entry, const rapidjson::SchemaDocument& schema_document,
                         const rapidjson::Value& record, std::vector<RecordSchemas::FieldError>& errors) {
  rapidjson::Document scratch;
  scratch.CopyFrom(record, scratch.GetAllocator());
  std::set<std::string> removed;
  // Each round removes something, so the number of rounds is bounded by the record's size; the
  // cap keeps a pathological record from costing much.
  for (std::size_t round = 0; round < 4 * RecordSchemas::kMaxErrors && errors.size() < RecordSchemas::kMaxErrors; ++round) {
    rapidjson::SchemaValidator validator(schema_document);
    if (scratch.Accept(validator)) return;
    const std::string document_pointer = stringify(validator.GetInvalidDocumentPointer());
    const std::string schema_pointer = stringify(validator.GetInvalidSchemaPointer());
    const char* keyword_text = validator.GetInvalidSchemaKeyword();
    const std::string_view keyword = keyword_text == nullptr ? std::string_view() : std::string_view(keyword_text);
    const rapidjson::Value* schema = rapidjson::Pointer(schema_pointer.c_str()).Get(entry.json);
    const rapidjson::Value* value = rapidjson::Pointer(document_pointer.c_str()).Get(scratch);
    const std::string path = json::pointerToPath(document_pointer);
    if (schema == nullptr || value == nullptr) {
      errors.push_back({path, "is not valid"});
      return;
    }
    if (keyword == "required") {
      // RapidJSON names the object, not the field; list every missing field the schema requires,
      // except those this loop removed itself.
      if (const auto* required = json::find(*schema, "required"); required != nullptr && required->IsArray()) {
        for (const auto& name : required->GetArray()) {
          if (!name.IsString() || json::find(*value, json::view(name)) != nullptr) continue;
          std::string child = document_pointer;
          json::appendPointerToken(child, json::view(name));
          if (removed.count(child) == 0) {
            errors.push_back({json::pointerToPath(child), "missing required field " + quoteCode(json::view(name))});
          }
        }
      }
    } else if (keyword == "additionalProperties") {
      errors.push_back({path, "unknown field " + quoteCode(lastToken(document_pointer))});
    } else {
      errors.push_back({path, describe(keyword, *schema, *value)});
    }
    if (!removeFromScratch(scratch, document_pointer, removed)) return;
  }
}

}  // namespace

RecordSchemas::RecordSchemas() = default;
RecordSchemas::RecordSchemas(RecordSchemas&&) noexcept = default;
RecordSchemas& RecordSchemas::operator=(RecordSchemas&&) noexcept = default;
RecordSchemas::~RecordSchemas() = default;

Result<RecordSchemas> RecordSchemas::loadDirectory(const std::filesystem::path& dir) {
  GW_TRY(auto files, listFiles(dir, kSuffix));
  if (files.empty()) {
    return makeError(ErrorCode::Config, "no *.schema.json files found", dir.string(),
                     "point the schemas directory at mappers/<format>/schemas");
  }
  RecordSchemas schemas;
  for (const auto& path : files) {
    GW_TRY(auto entry, loadSchemaFile(path));
    std::string type = entry->record_type;
    schemas.entries_.emplace(std::move(type), std::move(entry));
  }
  return schemas;
}

const RecordSchemas::Entry* RecordSchemas::entry(std::string_view record_type) const {
  const auto it = entries_.find(record_type);
  return it == entries_.end() ? nullptr : it->second.get();
}

bool RecordSchemas::knows(std::string_view record_type) const { return entry(record_type) != nullptr; }

std::vector<std::string> RecordSchemas::recordTypes() const {
  std::vector<std::string> out;
  for (const auto& [type, entry] : entries_) out.push_back(type);
  return out;
}

std::vector<RecordSchemas::FieldError> RecordSchemas::validate(const rapidjson::Value& record) const {
  if (!record.IsObject()) return {{"", "expected a JSON object, got " + std::string(jsonTypeName(record))}};
  const auto* record_type = json::find(record, "record_type");
  if (record_type == nullptr) return {{"record_type", "missing required field 'record_type'"}};
  if (!record_type->IsString()) {
    return {{"record_type", "expected string, got " + std::string(jsonTypeName(*record_type))}};
  }
  const Entry* schema = entry(json::view(*record_type));
  if (schema == nullptr) {
    std::string known;
    for (const auto& [type, e] : entries_) known += (known.empty() ? "" : ", ") + type;
    return {{"record_type", "value " + quoteCode(json::view(*record_type)) + " is not one of " + known}};
  }

  std::vector<FieldError> errors;
  {
    const Entry::Lease lease(*schema);
    rapidjson::SchemaValidator validator(lease.schema());
    if (!record.Accept(validator)) collectSchemaErrors(*schema, lease.schema(), record, errors);
  }
  if (anyForbiddenControlCharacter(record)) {
    std::string pointer;
    collectControlCharacterErrors(record, pointer, errors);
  }
  return errors;
}

bool RecordSchemas::declaresField(std::string_view record_type, std::string_view pointer) const {
  const Entry* e = entry(record_type);
  if (e == nullptr) return false;
  const rapidjson::Value* schema = &e->json;
  std::size_t i = 0;
  while (true) {
    // Follow local $ref chains first (bounded: a cycle of refs is not a field).
    for (int hops = 0; hops < 16; ++hops) {
      const auto ref = json::getString(*schema, "$ref");
      if (ref.empty() || ref[0] != '#') break;
      const rapidjson::Value* target = rapidjson::Pointer(std::string(ref.substr(1)).c_str()).Get(e->json);
      if (target == nullptr) return false;
      schema = target;
    }
    if (i >= pointer.size()) return true;
    const std::size_t end = std::min(pointer.find('/', i + 1), pointer.size());
    const std::string token = lastToken(pointer.substr(i, end - i));
    i = end;
    const bool numeric = !token.empty() && token.find_first_not_of("0123456789") == std::string::npos;
    if (numeric) {
      const auto* items = json::find(*schema, "items");
      if (items != nullptr && items->IsObject()) {
        schema = items;
        continue;
      }
    }
    const auto* properties = json::find(*schema, "properties");
    const auto* next = properties == nullptr ? nullptr : json::find(*properties, token);
    if (next == nullptr) return false;
    schema = next;
  }
}

}  // namespace gw::mapping

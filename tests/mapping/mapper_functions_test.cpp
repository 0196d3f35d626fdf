// The function table is the one list of mapping functions: the schema editors use
// (mappers/mapper.schema.json) and the README's function list must name exactly its functions,
// and the schema must allow exactly its arguments. A function added in one place only fails here.
#include "mapping/mapper_functions.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "test_support.hpp"

namespace gw::mapping {
namespace {

using testing::parseJson;
using testing::readFile;
using testing::repoPath;

std::set<std::string> tableNames() {
  std::set<std::string> names;
  for (const auto& spec : functionSpecs()) names.emplace(spec.name);
  return names;
}

struct SchemaFunction {
  std::set<std::string> arguments;  // properties apart from the function's own key
  std::set<std::string> required;   // required apart from the function's own key
};

// definitions.function.oneOf of mapper.schema.json: one object schema per function, whose "$" key
// is the function's name.
std::map<std::string, SchemaFunction> schemaFunctions() {
  const auto schema = parseJson(readFile(repoPath("mappers/mapper.schema.json")));
  std::map<std::string, SchemaFunction> out;
  const auto& alternatives = schema["definitions"]["function"]["oneOf"];
  EXPECT_TRUE(alternatives.IsArray());
  for (const auto& alternative : alternatives.GetArray()) {
    std::string name;
    SchemaFunction f;
    for (const auto& p : alternative["properties"].GetObject()) {
      const std::string key = p.name.GetString();
      if (key.starts_with("$")) {
        EXPECT_TRUE(name.empty()) << "two function keys in one schema alternative: " << name << ", " << key;
        name = key;
      } else {
        f.arguments.insert(key);
      }
    }
    for (const auto& r : alternative["required"].GetArray()) {
      if (r.GetString() != name) f.required.insert(r.GetString());
    }
    EXPECT_FALSE(name.empty()) << "a schema alternative without a $function key";
    EXPECT_EQ(out.count(name), 0u) << name << " twice in the schema";
    out[name] = f;
  }
  return out;
}

// Every `$name` in the first column of the table under "## Functions" in mappers/README.md.
std::set<std::string> readmeFunctions() {
  std::istringstream lines(readFile(repoPath("mappers/README.md")));
  std::set<std::string> names;
  bool in_section = false;
  const std::regex name_in_cell("`(\\$[A-Za-z]+)`");
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("## ")) in_section = line == "## Functions";
    if (!in_section || !line.starts_with("| `$")) continue;
    const std::string first_cell = line.substr(1, line.find('|', 1) - 1);
    for (std::sregex_iterator it(first_cell.begin(), first_cell.end(), name_in_cell), end; it != end; ++it) {
      names.insert((*it)[1]);
    }
  }
  return names;
}

TEST(FunctionTable, TheSchemaAllowsExactlyTheTablesFunctionsAndArguments) {
  const auto schema = schemaFunctions();
  std::set<std::string> schema_names;
  for (const auto& [name, f] : schema) schema_names.insert(name);
  EXPECT_EQ(schema_names, tableNames()) << "mappers/mapper.schema.json and mapping/mapper_functions.cpp differ";
  for (const auto& spec : functionSpecs()) {
    const auto it = schema.find(std::string(spec.name));
    if (it == schema.end()) continue;
    std::set<std::string> arguments;
    std::set<std::string> required;
    for (const auto& a : spec.arguments) {
      arguments.emplace(a.name);
      if (a.required) required.emplace(a.name);
    }
    EXPECT_EQ(it->second.arguments, arguments) << spec.name << ": arguments in the schema";
    EXPECT_EQ(it->second.required, required) << spec.name << ": required arguments in the schema";
  }
}

TEST(FunctionTable, TheReadmeListsExactlyTheTablesFunctions) {
  EXPECT_EQ(readmeFunctions(), tableNames())
      << "the Functions table of mappers/README.md and mapping/mapper_functions.cpp differ";
}

TEST(FunctionTable, EveryFunctionIsDocumentedAndCompilesToItsOwnKind) {
  std::set<NodeKind> kinds;
  for (const auto& spec : functionSpecs()) {
    EXPECT_TRUE(spec.name.starts_with("$")) << spec.name;
    EXPECT_FALSE(spec.returns.empty()) << spec.name;
    EXPECT_FALSE(spec.doc.empty()) << spec.name;
    EXPECT_TRUE(kinds.insert(spec.kind).second) << spec.name << " shares its node kind";
    EXPECT_EQ(findFunction(spec.name), &spec);
    EXPECT_EQ(functionName(spec.kind), spec.name);
  }
  EXPECT_EQ(findFunction("$nope"), nullptr);
  EXPECT_EQ(functionName(NodeKind::Path), "");
  EXPECT_THAT(functionList(), ::testing::StartsWith("$lookup, $date, $dateTime, "));
}

}  // namespace
}  // namespace gw::mapping

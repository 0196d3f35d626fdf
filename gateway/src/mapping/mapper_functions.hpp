#pragma once
// Internal: the functions of the mapping language in one table. The compiler finds a call's
// function and its allowed keys here, the evaluator names functions in its messages from here,
// and tests/mapping/mapper_functions_test.cpp fails when mappers/mapper.schema.json or the
// function list in mappers/README.md names a function the table does not, or misses one, or
// when the schema's arguments differ from the table's. A new function is a row here, a case in
// compileFunction and in eval, a schema entry and a README row.
#include <span>
#include <string>
#include <string_view>

#include "mapping/compiled_mapper.hpp"

namespace gw::mapping {

struct FunctionArgument {
  std::string_view name;
  bool required = false;
};

struct FunctionSpec {
  std::string_view name;                        // "$lookup": the member that names the call and holds its operand
  NodeKind kind;                                // what the call compiles to
  std::span<const FunctionArgument> arguments;  // the other members the call may have, in message order
  std::string_view returns;                     // what it produces
  std::string_view doc;                         // one line: what it is for
  bool in_record_templates = true;              // false: builds resource references (not in a CSV record template)
};

/// Every function, in the order messages list them.
std::span<const FunctionSpec> functionSpecs();
/// The function called `name` ("$lookup"), or null.
const FunctionSpec* findFunction(std::string_view name);
/// The name of the function that compiles to `kind` ("$literal" for Literal); empty for Path, Object, Array.
std::string_view functionName(NodeKind kind);
/// "$lookup, $date, ...": every function name, for messages.
std::string functionList();

}  // namespace gw::mapping

#pragma once
// The terminology of fhir-profiles/: its CodeSystem/ and ValueSet/ files. Value sets are expanded
// on first use, from shipped code systems only (no terminology server), for the required
// bindings the profiles declare.
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "validate/model.hpp"
#include "validate/profile_file.hpp"

namespace gw::validate {

class Terminology {
 public:
  /// Expansions are kept in `code_sets` (stable addresses, owned by the profile set).
  explicit Terminology(std::deque<CodeSet>& code_sets) : code_sets_(code_sets) {}

  Status loadCodeSystem(const ProfileFile& src);
  /// Keeps a pointer to `src`, which is read when the value set is first expanded.
  Status loadValueSet(const ProfileFile& src);

  /// Expansion of a shipped value set from shipped code systems (null with `why` set otherwise).
  const CodeSet* expand(const std::string& url, std::string& why, int depth = 0);

  /// Every code of a loaded code system (nested concepts included), or null.
  const std::vector<std::string>* codeSystemCodes(std::string_view url) const;

 private:
  struct CodeSystemCodes {
    std::string file;
    bool enumerable = false;
    std::vector<std::string> codes;
  };

  std::deque<CodeSet>& code_sets_;
  StringMap<CodeSystemCodes> code_systems_;
  StringMap<const ProfileFile*> value_sets_;
  StringMap<const CodeSet*> expanded_;
};

}  // namespace gw::validate

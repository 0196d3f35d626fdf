#pragma once
// Sensitivity classification of mapped FHIR resources (docs/privacy.md §2). The policy is
// data: five FHIR ValueSets in fhir-profiles/ValueSet/ (gw-sensitivity-*.json) say which codes
// are sud, opioid, mh, psychiatric or HIV. They are read once at start-up into hash tables;
// classify() then walks a resource once, looks up every Coding's system and code, and allocates
// nothing.
#include <rapidjson/document.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <vector>

#include "common/error.hpp"
#include "privacy/data_class.hpp"

namespace gw::privacy {

/// What one resource is, for consent decisions, storage keys and labels.
struct Classification {
  /// Never empty: general when neither sud nor mh matched. A resource can be sud and mh at once.
  ClassSet classes;
  bool part2 = false;   // from a 42 CFR Part 2 program (then classes holds sud)
  bool opioid = false;  // a code says opioid (OPIOIDUD label)
  bool hiv = false;     // an HIV result code (HIV label; the class is unchanged)
  bool psych = false;   // a psychiatric diagnosis (PSY label; the class is mh)

  friend bool operator==(const Classification&, const Classification&) = default;
};

/// The value set file for each role. Membership in `opioid` implies sud and in `psy` implies mh,
/// so those files need not repeat their codes in `sud` / `mh`.
struct ValueSetFiles {
  std::filesystem::path sud;     // class sud, label SUD
  std::filesystem::path opioid;  // class sud, labels SUD + OPIOIDUD
  std::filesystem::path mh;      // class mh, label MH
  std::filesystem::path psy;     // class mh, labels MH + PSY
  std::filesystem::path hiv;     // label HIV

  /// The shipped files: <profiles_dir>/ValueSet/gw-sensitivity-{sud,opioid,mh,psy,hiv}.json.
  static ValueSetFiles inProfilesDir(const std::filesystem::path& profiles_dir);
};

class Classifier {
 public:
  /// Reads the five value sets. Supported compose: include {system, concept[]} (listed codes),
  /// include {system} (every code of that system) and include {valueSet[]} naming another of the
  /// five files by url. filter and exclude are rejected rather than ignored. Any problem is an
  /// ErrorCode::Config error naming file:line:column and the JSON path.
  static Result<Classifier> load(const ValueSetFiles& files);

  /// Classes and label flags of `resource`: every Coding (an object with string system and code)
  /// anywhere in it counts, except inside meta and identifier (and the narrative, which holds no
  /// Codings). `part2_program`: the record came from a program configured as 42 CFR Part 2, so
  /// the resource is sud whatever its codes (the Patient included). Thread-safe.
  Classification classify(const rapidjson::Value& resource, bool part2_program) const;

  /// One ClassSet per CarePlan.activity entry, in order (empty when there are none), from the
  /// Codings inside that activity; every one is sud for a Part 2 program. For consent redaction.
  std::vector<ClassSet> classifyCarePlanActivities(const rapidjson::Value& careplan, bool part2_program) const;
  /// The classes of a CarePlan apart from its activities (category, reasons, ...): general unless
  /// something there is sensitive, sud for a Part 2 program.
  ClassSet classifyCarePlanOwn(const rapidjson::Value& careplan, bool part2_program) const;

  struct Stats {
    std::size_t codes = 0;          // distinct system|code entries
    std::size_t whole_systems = 0;  // systems included whole
    std::size_t unverified = 0;     // concepts carrying an "UNVERIFIED: ..." designation
  };
  /// For the start-up log line.
  Stats stats() const;

  struct Tables;

 private:
  explicit Classifier(std::shared_ptr<const Tables> tables) : tables_(std::move(tables)) {}
  std::shared_ptr<const Tables> tables_;
};

}  // namespace gw::privacy

#pragma once
// Security labels in Resource.meta.security (docs/privacy.md §3, §7, HL7 DS4P):
// one confidentiality code, then sensitivity (SUD, OPIOIDUD, MH, PSY, HIV), policy (42CFRPart2),
// refrain (NORDSCLCD), obligation (CPLYCD) and integrity (REDACTED) codes. The gateway owns these
// codes: writing labels replaces the ones already there, so re-labelling never duplicates, and
// keeps every other member of meta (profile, tags, other labels).
#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "privacy/classifier.hpp"

namespace gw::privacy {

inline constexpr std::string_view kConfidentialitySystem = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
inline constexpr std::string_view kActCodeSystem = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
inline constexpr std::string_view kObservationValueSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
/// DS4P "mark text that must be rendered" extension on Resource.meta (valueAnnotation).
inline constexpr std::string_view kDs4pDisplayExtension =
    "http://hl7.org/fhir/uv/security-label-ds4p/StructureDefinition/extension-display";
inline constexpr std::string_view kActReasonSystem = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// Put before the notice of data sent under a break-glass (docs/privacy.md §7.1).
inline constexpr std::string_view kEmergencyNoticePrefix =
    "Disclosed without the patient's consent to treat a medical emergency (42 CFR 2.51).";
/// The default Part 2 notice: the short statement of 42 CFR 2.32 (docs/privacy.md §7).
inline constexpr std::string_view kPart2ShortNotice =
    "42 CFR part 2 prohibits unauthorized use or disclosure of these records.";

/// v3-Confidentiality, in ascending order: U < L < M < N < R < V.
enum class Confidentiality : std::uint8_t { U = 0, L, M, N, R, V };

std::string_view confidentialityCode(Confidentiality c);  // "U" ... "V"
std::optional<Confidentiality> parseConfidentiality(std::string_view code);

/// The labels besides confidentiality, one bit each; codings are written in this order.
enum class Label : std::uint16_t {
  Sud = 1U << 0,                 // v3-ActCode SUD (sensitivity)
  OpioidUd = 1U << 1,            // v3-ActCode OPIOIDUD (sensitivity)
  Mh = 1U << 2,                  // v3-ActCode MH (sensitivity)
  Psy = 1U << 3,                 // v3-ActCode PSY (sensitivity)
  Hiv = 1U << 4,                 // v3-ActCode HIV (sensitivity)
  Part2Policy = 1U << 5,         // v3-ActCode 42CFRPart2 (policy)
  NoRedisclosure = 1U << 6,      // v3-ActCode NORDSCLCD (refrain)
  ComplyWithConsent = 1U << 7,   // v3-ActCode CPLYCD (obligation)
  Redacted = 1U << 8,            // v3-ObservationValue REDACTED (integrity)
  EmergencyTreatment = 1U << 9,  // v3-ActReason ETREAT (purpose of use): sent under a break-glass, 42 CFR 2.51
};

struct SecurityCoding {
  std::string_view system;
  std::string_view code;
  std::string_view display;
};

/// The labels of one resource (or Bundle).
struct LabelSet {
  Confidentiality confidentiality = Confidentiality::N;
  std::uint16_t bits = 0;  // Label values

  bool has(Label l) const { return (bits & static_cast<std::uint16_t>(l)) != 0; }
  LabelSet& add(Label l) {
    bits |= static_cast<std::uint16_t>(l);
    return *this;
  }
  /// Highest confidentiality of both, union of the other labels.
  LabelSet& merge(const LabelSet& other);
  /// The Codings in meta.security order (confidentiality first), with displays.
  std::vector<SecurityCoding> codings() const;
  /// "R,SUD,OPIOIDUD,42CFRPart2,NORDSCLCD,CPLYCD": codes only, for the audit log.
  std::string names() const;

  friend bool operator==(const LabelSet&, const LabelSet&) = default;
};

/// docs/privacy.md §3: general -> N; sud -> R, SUD (+OPIOIDUD when a code says opioid;
/// +42CFRPart2, NORDSCLCD, CPLYCD from a Part 2 program); mh -> R, MH (+PSY for psychiatric
/// diagnoses); an HIV result code adds HIV.
LabelSet labelsFor(const Classification& c);

/// The gateway-owned labels found in resource.meta.security. A resource with no confidentiality
/// label counts as R: when unsure, restrictive.
LabelSet readLabels(const rapidjson::Value& resource);

/// Bundle.meta.security for these entries: the highest confidentiality (N for none) and the union
/// of their sensitivity, policy, refrain and obligation labels (section 5: the Part 2 labels
/// travel on the Bundle too). REDACTED stays on the redacted resource only.
LabelSet bundleLabels(std::span<const Classification> entries);
/// The same from labelled resources (readLabels of each; an unlabelled one counts as R).
LabelSet bundleLabels(std::span<const rapidjson::Value* const> resources);

/// An array of Codings for meta.security (e.g. outbox::buildTransactionBundles' bundle_security).
rapidjson::Value securityCodings(const LabelSet& labels, rapidjson::Document::AllocatorType& allocator);

/// Replaces the gateway-owned labels of `resource` (a JSON object) with `labels`, creating meta
/// and meta.security as needed (meta is placed after id) and keeping everything else.
Status writeLabels(rapidjson::Value& resource, const LabelSet& labels, rapidjson::Document::AllocatorType& allocator);
Status writeLabels(rapidjson::Document& resource, const LabelSet& labels);

/// writeLabels(labelsFor(c)), keeping a REDACTED label the resource already has. Idempotent.
Status applyLabels(rapidjson::Value& resource, const Classification& c, rapidjson::Document::AllocatorType& allocator);
Status applyLabels(rapidjson::Document& resource, const Classification& c);

/// Carries the Part 2 notice in the resource itself, so it cannot be separated from the data:
/// meta.extension DS4P extension-display with valueAnnotation.text = `text`. Replaces an earlier
/// notice (idempotent). An empty text is an error.
Status attachPart2Notice(rapidjson::Value& resource, std::string_view text, rapidjson::Document::AllocatorType& allocator);
Status attachPart2Notice(rapidjson::Document& resource, std::string_view text = kPart2ShortNotice);

}  // namespace gw::privacy

// UTKFace label set and file-name convention. No LibTorch: usable from any layer.
// Pure functions, thread-safe, throw nothing: a name that does not parse says why in ParsedName.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace facet {

// Age targets are log(age) / kAgeScale, so that log(116) / 4.75 ~= 1 fits a sigmoid output (the seed's choice).
inline constexpr double kAgeScale = 4.75;
inline constexpr int kNumGenders = 2;
inline constexpr int kNumEthnicities = 5;
inline constexpr int kMaxAge = 116;  // oldest age in UTKFace; larger ages in a name are treated as malformed

inline constexpr std::array<const char*, kNumGenders> kGenderNames = {"male", "female"};
inline constexpr std::array<const char*, kNumEthnicities> kEthnicityNames = {"white", "black", "asian", "indian",
                                                                            "other"};

struct FaceLabels {
  int age = 0;        // years
  int gender = 0;     // 0 male, 1 female
  int ethnicity = 0;  // 0..4, see kEthnicityNames
};

// Why a file name was rejected. kNotAnImage names are ignored silently (README.md, labels.csv).
enum class NameProblem { kNone, kNotAnImage, kMalformed, kLabelOutOfRange };

struct ParsedName {
  std::optional<FaceLabels> labels;
  NameProblem problem = NameProblem::kNone;
};

// Parses `[age]_[gender]_[race]_[datetime].jpg[.chip.jpg]`. The real data set contains names with a missing
// field (`39_1_20170116174525125.jpg.chip.jpg`) and with a non-numeric field; both are kMalformed.
ParsedName ParseUtkFaceName(std::string_view file_name);

// The file name the synthetic generator and tests write for given labels.
std::string MakeUtkFaceName(const FaceLabels& labels, std::string_view datetime);

// The regression target for an age in years (clamped to >= 1 year, since log(0) is undefined).
double AgeToTarget(double age_years);
double TargetToAge(double target);

}  // namespace facet

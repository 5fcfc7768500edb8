#include "core/labels.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

namespace facet {
namespace {

bool EndsWithNoCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.rbegin(), suffix.rend(), s.rbegin(),
                    [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

std::optional<int> ParseNonNegativeInt(std::string_view field) {
  if (field.empty() || field.size() > 9) return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec != std::errc() || end != field.data() + field.size() || value < 0) return std::nullopt;
  return value;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

}  // namespace

ParsedName ParseUtkFaceName(std::string_view file_name) {
  if (!EndsWithNoCase(file_name, ".jpg")) return {std::nullopt, NameProblem::kNotAnImage};
  const auto parts = Split(file_name, '_');
  if (parts.size() != 4) return {std::nullopt, NameProblem::kMalformed};
  const auto age = ParseNonNegativeInt(parts[0]);
  const auto gender = ParseNonNegativeInt(parts[1]);
  const auto ethnicity = ParseNonNegativeInt(parts[2]);
  if (!age || !gender || !ethnicity) return {std::nullopt, NameProblem::kMalformed};
  if (*age > kMaxAge || *gender >= kNumGenders || *ethnicity >= kNumEthnicities) {
    return {std::nullopt, NameProblem::kLabelOutOfRange};
  }
  return {FaceLabels{*age, *gender, *ethnicity}, NameProblem::kNone};
}

std::string MakeUtkFaceName(const FaceLabels& labels, std::string_view datetime) {
  return std::to_string(labels.age) + "_" + std::to_string(labels.gender) + "_" + std::to_string(labels.ethnicity) +
         "_" + std::string(datetime) + ".jpg.chip.jpg";
}

double AgeToTarget(double age_years) { return std::log(std::max(age_years, 1.0)) / kAgeScale; }

double TargetToAge(double target) { return std::exp(target * kAgeScale); }

}  // namespace facet

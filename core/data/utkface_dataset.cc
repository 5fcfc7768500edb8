#include "core/data/utkface_dataset.h"

#include "core/data/data_config.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <random>
#include <stdexcept>

namespace facet {

std::string ScanReport::Summary() const {
  std::string s = folder + ": " + std::to_string(usable) + " images, skipped " + std::to_string(malformed) +
                  " malformed names and " + std::to_string(out_of_range) + " out-of-range labels";
  if (!skipped_examples.empty()) {
    s += " (e.g.";
    for (const auto& name : skipped_examples) s += " " + name;
    s += ")";
  }
  return s;
}

ScanResult ScanUtkFaceFolder(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw std::runtime_error("data folder '" + folder + "' does not exist");
  ScanResult result;
  result.report.folder = folder;
  fs::directory_iterator it(folder, ec);
  if (ec) throw std::runtime_error("cannot list data folder '" + folder + "': " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) throw std::runtime_error("cannot list data folder '" + folder + "': " + ec.message());
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    const ParsedName parsed = ParseUtkFaceName(name);
    switch (parsed.problem) {
      case NameProblem::kNotAnImage: continue;
      case NameProblem::kMalformed: ++result.report.malformed; break;
      case NameProblem::kLabelOutOfRange: ++result.report.out_of_range; break;
      case NameProblem::kNone: result.samples.push_back({it->path().string(), *parsed.labels}); continue;
    }
    if (result.report.skipped_examples.size() < 10) result.report.skipped_examples.push_back(name);
  }
  std::sort(result.samples.begin(), result.samples.end(),
            [](const Sample& a, const Sample& b) { return a.path < b.path; });
  result.report.usable = static_cast<int64_t>(result.samples.size());
  return result;
}

std::vector<Sample> Subsample(const std::vector<Sample>& samples, int64_t max_samples, uint64_t seed) {
  if (max_samples <= 0 || max_samples >= static_cast<int64_t>(samples.size())) return samples;
  std::vector<size_t> order(samples.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  order.resize(static_cast<size_t>(max_samples));
  std::sort(order.begin(), order.end());
  std::vector<Sample> out;
  for (size_t i : order) out.push_back(samples[i]);
  return out;
}

std::pair<std::vector<Sample>, std::vector<Sample>> SplitTrainValidation(const std::vector<Sample>& samples,
                                                                          double validation_fraction, uint64_t seed) {
  if (!(validation_fraction >= 0.0 && validation_fraction < 1.0)) {
    throw std::invalid_argument("validation fraction must be in [0, 1)");
  }
  std::vector<size_t> order(samples.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  const size_t cut = static_cast<size_t>(ValidationCount(static_cast<int64_t>(samples.size()), validation_fraction));
  std::vector<bool> is_validation(samples.size(), false);
  for (size_t i = 0; i < cut; ++i) is_validation[order[i]] = true;
  std::pair<std::vector<Sample>, std::vector<Sample>> split;
  for (size_t i = 0; i < samples.size(); ++i) (is_validation[i] ? split.second : split.first).push_back(samples[i]);
  return split;
}

}  // namespace facet

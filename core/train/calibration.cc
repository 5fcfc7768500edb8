#include "core/train/calibration.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace facet {
namespace {

double CrossEntropyAt(const torch::Tensor& logits, const torch::Tensor& labels, double temperature) {
  return torch::nn::functional::cross_entropy(logits / temperature, labels).item<double>();
}

}  // namespace

double ExpectedCalibrationError(const at::Tensor& probabilities, const at::Tensor& labels, int bins) {
  if (probabilities.size(0) == 0) return 0.0;
  const auto [confidence, predicted] = probabilities.to(torch::kDouble).max(1);
  const auto right = (predicted == labels).to(torch::kDouble);
  // Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 cannot occur for a top class.
  const auto bin = (confidence * bins).ceil().sub(1).clamp(0, bins - 1).to(torch::kLong);
  double ece = 0.0;
  const double n = static_cast<double>(probabilities.size(0));
  for (int i = 0; i < bins; ++i) {
    const auto mask = bin == i;
    const int64_t count = mask.sum().item<int64_t>();
    if (count == 0) continue;
    const double gap = confidence.masked_select(mask).mean().item<double>() - right.masked_select(mask).mean().item<double>();
    ece += count / n * std::abs(gap);
  }
  return ece;
}

double FitTemperature(const at::Tensor& logits, const at::Tensor& labels) {
  if (logits.size(0) == 0) return 1.0;
  torch::NoGradGuard no_grad;
  const auto z = logits.to(torch::kDouble);
  // The cross-entropy is convex in 1/T, hence unimodal in log T: a golden-section search finds its minimum.
  double lo = std::log(1.0 / 20), hi = std::log(20.0);
  const double r = (std::sqrt(5.0) - 1) / 2;
  double a = hi - r * (hi - lo), b = lo + r * (hi - lo);
  double fa = CrossEntropyAt(z, labels, std::exp(a)), fb = CrossEntropyAt(z, labels, std::exp(b));
  for (int i = 0; i < 60 && hi - lo > 1e-6; ++i) {
    if (fa < fb) {
      hi = b, b = a, fb = fa;
      a = hi - r * (hi - lo);
      fa = CrossEntropyAt(z, labels, std::exp(a));
    } else {
      lo = a, a = b, fa = fb;
      b = lo + r * (hi - lo);
      fb = CrossEntropyAt(z, labels, std::exp(b));
    }
  }
  return std::exp((lo + hi) / 2);
}

double ConformalQuantile(std::vector<double> scores, double coverage) {
  if (!(coverage > 0.0 && coverage < 1.0)) throw std::invalid_argument("coverage must be in (0,1)");
  const auto n = static_cast<double>(scores.size());
  const auto rank = static_cast<size_t>(std::ceil((n + 1) * coverage));  // 1-based
  if (rank > scores.size()) return std::numeric_limits<double>::infinity();
  std::nth_element(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(rank - 1), scores.end());
  return scores[rank - 1];
}

CalibrationReport FitCalibration(const LabelledOutputs& validation, double age_coverage) {
  CalibrationReport report;
  report.n = validation.size();
  if (report.n == 0) return report;
  const auto& out = validation.outputs;
  Calibration& c = report.calibration;
  c.gender_temperature = FitTemperature(out.gender, validation.gender);
  c.ethnicity_temperature = FitTemperature(out.ethnicity, validation.ethnicity);
  report.gender_ece_before = ExpectedCalibrationError(torch::softmax(out.gender, 1), validation.gender);
  report.gender_ece_after =
      ExpectedCalibrationError(torch::softmax(out.gender / c.gender_temperature, 1), validation.gender);
  report.ethnicity_ece_before = ExpectedCalibrationError(torch::softmax(out.ethnicity, 1), validation.ethnicity);
  report.ethnicity_ece_after =
      ExpectedCalibrationError(torch::softmax(out.ethnicity / c.ethnicity_temperature, 1), validation.ethnicity);

  // Nonconformity: |log(true age) - log(predicted age)|, with ages clamped to >= 1 year as the targets are.
  const auto residual = ((out.age.to(torch::kDouble) - validation.age.to(torch::kDouble)) * kAgeScale).abs().contiguous();
  std::vector<double> scores(residual.data_ptr<double>(), residual.data_ptr<double>() + residual.numel());
  const double w = ConformalQuantile(std::move(scores), age_coverage);
  if (std::isfinite(w)) {
    c.age_coverage = age_coverage;
    c.age_log_halfwidth = w;
  }
  return report;
}

}  // namespace facet

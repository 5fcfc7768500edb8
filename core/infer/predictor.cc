#include "core/infer/predictor.h"

#include "core/model/state_dict.h"
#include "core/util/device.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

namespace facet {

std::unique_ptr<Predictor> Predictor::FromExport(const std::string& model_path, const PredictorOptions& options) {
  if (options.max_batch_size < 1) throw std::invalid_argument("max_batch_size must be >= 1");
  std::unique_ptr<Predictor> p(new Predictor());
  p->options_ = options;
  p->device_ = ResolveDevice(options.device);
  p->model_ = LoadExportedModel(model_path, p->device_, &p->info_);
  p->image_size_ = p->info_.image_size;
  p->PrepareForServing();
  return p;
}

Predictor::Predictor(MultiTaskNet model, int image_size, const PredictorOptions& options,
                     const Calibration& calibration)
    : device_(ResolveDevice(options.device)), image_size_(image_size), options_(options) {
  if (options.max_batch_size < 1) throw std::invalid_argument("max_batch_size must be >= 1");
  info_ = ExportedModelInfo{model->options().arch, model->options().base_width, image_size, calibration};
  model_ = MultiTaskNet(model->options());
  LoadStateDict(*model_, StateDict(*model));
  model_->to(device_);
  model_->eval();
  PrepareForServing();
}

void Predictor::PrepareForServing() {
  ConfigureAllocator();
  if (options_.fuse_cpu_encoder && FusedCpuEncoder::Supported(device_)) {
    fused_encoder_ = std::make_unique<FusedCpuEncoder>(*model_->encoder());
  }
}

TaskOutputs Predictor::Forward(const at::Tensor& batch) const {
  return fused_encoder_ ? model_->Heads(fused_encoder_->forward(batch)) : model_->forward(batch);
}

Predictor::~Predictor() = default;

std::string Predictor::device() const { return device_.str(); }

std::vector<Prediction> Predictor::Predict(const std::vector<ImageView>& images) const {
  if (images.empty()) return {};
  std::vector<at::Tensor> inputs;
  inputs.reserve(images.size());
  for (const auto& image : images) inputs.push_back(PreprocessImage(image, image_size_));
  auto batch = torch::stack(inputs);
  if (device_.is_cuda()) batch = batch.pin_memory();
  return PredictTensor(batch);
}

std::vector<Prediction> Predictor::PredictTensor(const at::Tensor& batch) const {
  if (batch.dim() != 4 || batch.size(1) != 3) throw std::invalid_argument("PredictTensor expects (N,3,H,W)");
  torch::InferenceMode inference;
  std::vector<Prediction> out;
  out.reserve(static_cast<size_t>(batch.size(0)));
  for (int64_t start = 0; start < batch.size(0); start += options_.max_batch_size) {
    const auto chunk = batch.slice(0, start, std::min(batch.size(0), start + options_.max_batch_size))
                           .to(device_, /*non_blocking=*/true);
    // The model is in eval mode and InferenceMode keeps autograd out, so concurrent forwards are safe.
    const Calibration& calibration = info_.calibration;
    auto result = Forward(chunk);
    auto age = result.age;
    auto gender = torch::softmax(result.gender / calibration.gender_temperature, 1);
    auto ethnicity = torch::softmax(result.ethnicity / calibration.ethnicity_temperature, 1);
    if (options_.flip_average) {
      const auto flipped = Forward(chunk.flip({3}));
      age = (age + flipped.age) / 2;
      gender = (gender + torch::softmax(flipped.gender / calibration.gender_temperature, 1)) / 2;
      ethnicity = (ethnicity + torch::softmax(flipped.ethnicity / calibration.ethnicity_temperature, 1)) / 2;
    }
    const double interval_factor = std::exp(calibration.has_age_interval() ? calibration.age_log_halfwidth : 0.0);
    const auto age_cpu = age.to(torch::kCPU, torch::kDouble);
    const auto gender_cpu = gender.to(torch::kCPU, torch::kFloat).contiguous();
    const auto ethnicity_cpu = ethnicity.to(torch::kCPU, torch::kFloat).contiguous();
    const auto a = age_cpu.accessor<double, 1>();
    const auto g = gender_cpu.accessor<float, 2>();
    const auto e = ethnicity_cpu.accessor<float, 2>();
    for (int64_t i = 0; i < age_cpu.size(0); ++i) {
      Prediction p;
      p.age_years = TargetToAge(a[i]);
      p.age_low_years = p.age_years / interval_factor;
      p.age_high_years = p.age_years * interval_factor;
      p.age_interval_coverage = calibration.age_coverage;
      for (int c = 0; c < kNumGenders; ++c) p.gender_probabilities[c] = g[i][c];
      for (int c = 0; c < kNumEthnicities; ++c) p.ethnicity_probabilities[c] = e[i][c];
      p.gender = static_cast<int>(std::max_element(p.gender_probabilities.begin(), p.gender_probabilities.end()) -
                                  p.gender_probabilities.begin());
      p.ethnicity = static_cast<int>(
          std::max_element(p.ethnicity_probabilities.begin(), p.ethnicity_probabilities.end()) -
          p.ethnicity_probabilities.begin());
      out.push_back(p);
    }
  }
  return out;
}

}  // namespace facet

// Batched inference on decoded images. Thread-safe: Predict may be called from several threads at once.
#pragma once

#include "core/infer/fused_encoder.h"
#include "core/infer/preprocess.h"
#include "core/labels.h"
#include "core/model/model_file.h"

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace facet {

struct Prediction {
  double age_years = 0.0;
  // The model's conformal interval around age_years (Calibration); coverage 0 (and low = high = age_years)
  // when it has none.
  double age_low_years = 0.0;
  double age_high_years = 0.0;
  double age_interval_coverage = 0.0;
  int gender = 0;  // argmax
  std::array<float, kNumGenders> gender_probabilities{};
  int ethnicity = 0;  // argmax
  std::array<float, kNumEthnicities> ethnicity_probabilities{};  // temperature-scaled when the model is calibrated
};

struct PredictorOptions {
  std::string device = "auto";  // cpu | cuda | cuda:N | auto
  int max_batch_size = 64;      // larger inputs are split into forward passes of at most this many images
  bool flip_average = false;    // test-time augmentation: average with the horizontally flipped image
  // On a CPU with oneDNN, run the encoder as a FusedCpuEncoder (BatchNorm folded, blocked layout): the same
  // answers within float rounding, faster. Off: LibTorch's module, as in training.
  bool fuse_cpu_encoder = true;
};

class Predictor {
 public:
  // Loads an exported model (ExportModel). Throws std::runtime_error / std::invalid_argument with the cause.
  static std::unique_ptr<Predictor> FromExport(const std::string& model_path, const PredictorOptions& options);
  // Serves an in-memory model (copied, so training may go on with the original).
  Predictor(MultiTaskNet model, int image_size, const PredictorOptions& options, const Calibration& calibration = {});
  ~Predictor();

  std::vector<Prediction> Predict(const std::vector<ImageView>& images) const;
  // Already preprocessed input, (N,3,S,S) as PreprocessImage makes.
  std::vector<Prediction> PredictTensor(const at::Tensor& batch) const;

  int image_size() const { return image_size_; }
  const ExportedModelInfo& info() const { return info_; }
  std::string device() const;

 private:
  Predictor() = default;
  void PrepareForServing();
  TaskOutputs Forward(const at::Tensor& batch) const;
  // forward() is not const in LibTorch, but in eval mode under InferenceMode it changes nothing.
  mutable MultiTaskNet model_{nullptr};
  std::unique_ptr<FusedCpuEncoder> fused_encoder_;  // null: the module's own encoder
  c10::Device device_{c10::kCPU};
  int image_size_ = 64;
  PredictorOptions options_;
  ExportedModelInfo info_;
};

}  // namespace facet

// How the three task losses are measured and weighted. Plain data, no LibTorch: TrainingConfig holds a LossConfig,
// and the CLI and the server read it without the loss itself.
// The Parse* functions throw std::invalid_argument naming the accepted names; the rest is plain data.
#pragma once

#include <array>
#include <string>

namespace facet {

inline constexpr int kNumTasks = 3;  // age, gender, ethnicity: the order of every per-task array
inline constexpr std::array<const char*, kNumTasks> kTaskNames = {"age", "gender", "ethnicity"};

enum class LossWeighting {
  kUncertainty,      // Kendall, Gal & Cipolla 2018: regression ½e^(-s)L + ½s, classification e^(-s)L + ½s
  kUncertaintySeed,  // the seed's simpler form: Σ e^(-s_i)L_i + s_i
  kEqual,            // Σ L_i
  kFixed,            // Σ w_i L_i with user weights
};

LossWeighting ParseLossWeighting(const std::string& name);  // "uncertainty" | "uncertainty-seed" | "equal" | "fixed"
std::string LossWeightingName(LossWeighting weighting);

// What the age task's loss measures. The model's age output is the scaled log-age either way.
enum class AgeLoss {
  // MSE of the scaled log-age (the reference's): a relative error, so a child's 2 years weigh more than an
  // 80-year-old's 20.
  kLogMse,
  // Mean absolute error in years, divided by kAgeLossYears: the error that age MAE reports, whose minimiser is the
  // median age given the face.
  kYearsL1,
};

// Years per unit of the kYearsL1 loss. 100 puts its gradient at the cross-entropies' scale (about 1 per face at
// age 30, where the log-MSE gives about 0.1), so that no weighting has to learn a factor of 100 first.
inline constexpr double kAgeLossYears = 100.0;

AgeLoss ParseAgeLoss(const std::string& name);  // "log-mse" | "l1-years"
std::string AgeLossName(AgeLoss age_loss);

struct LossConfig {
  LossWeighting weighting = LossWeighting::kUncertainty;
  std::array<double, kNumTasks> fixed_weights = {1.0, 1.0, 1.0};  // used by kFixed only
  AgeLoss age_loss = AgeLoss::kLogMse;
  // Share of each classification target spread evenly over all classes (0: plain cross-entropy). It keeps logits
  // from growing without bound on faces the labels get wrong.
  double label_smoothing = 0.0;
};

}  // namespace facet

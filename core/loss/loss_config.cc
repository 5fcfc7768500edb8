#include "core/loss/loss_config.h"

#include <stdexcept>

namespace facet {

LossWeighting ParseLossWeighting(const std::string& name) {
  if (name == "uncertainty") return LossWeighting::kUncertainty;
  if (name == "uncertainty-seed") return LossWeighting::kUncertaintySeed;
  if (name == "equal") return LossWeighting::kEqual;
  if (name == "fixed") return LossWeighting::kFixed;
  throw std::invalid_argument("unknown loss weighting '" + name +
                              "' (expected uncertainty, uncertainty-seed, equal or fixed)");
}

std::string LossWeightingName(LossWeighting weighting) {
  switch (weighting) {
    case LossWeighting::kUncertainty: return "uncertainty";
    case LossWeighting::kUncertaintySeed: return "uncertainty-seed";
    case LossWeighting::kEqual: return "equal";
    case LossWeighting::kFixed: return "fixed";
  }
  return "unknown";
}

AgeLoss ParseAgeLoss(const std::string& name) {
  if (name == "log-mse") return AgeLoss::kLogMse;
  if (name == "l1-years") return AgeLoss::kYearsL1;
  throw std::invalid_argument("unknown age loss '" + name + "' (expected log-mse or l1-years)");
}

std::string AgeLossName(AgeLoss age_loss) {
  switch (age_loss) {
    case AgeLoss::kLogMse: return "log-mse";
    case AgeLoss::kYearsL1: return "l1-years";
  }
  return "unknown";
}

}  // namespace facet

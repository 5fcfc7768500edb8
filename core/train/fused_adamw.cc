#include "core/train/fused_adamw.h"

#include <ATen/Parallel.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <string>

namespace facet {
namespace {

using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

bool SameDenseLayout(const torch::Tensor& a, const torch::Tensor& b) {
  return b.defined() && b.device() == a.device() && b.scalar_type() == a.scalar_type() && b.strides() == a.strides();
}

// One parameter's update, element by element, in AdamW::step's order of operations:
//   p *= 1 - lr * wd;  m = m * b1 + g * (1 - b1);  v = v * b2 + g * g * (1 - b2);
//   p += -step_size * m / (sqrt(v) / sqrt(bc2) + eps)
// Every scalar is rounded to float as ATen rounds a double scalar for a float tensor. Built with -fno-math-errno so
// that the loop vectorizes (v is never negative, so sqrt never sets errno anyway).
struct UpdateScalars {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias_correction2, eps, neg_step_size;
};

void UpdateParameter(float* p, const float* g, float* m, float* v, int64_t n, const UpdateScalars& s) {
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    const UpdateScalars k = s;  // a local copy, so the compiler knows the stores below cannot change it
    for (int64_t i = begin; i < end; ++i) {
      const float grad = g[i];
      const float m_i = m[i] * k.beta1 + k.one_minus_beta1 * grad;
      const float v_i = v[i] * k.beta2 + k.one_minus_beta2 * grad * grad;
      m[i] = m_i;
      v[i] = v_i;
      p[i] = p[i] * k.decay + k.neg_step_size * (m_i / (std::sqrt(v_i) / k.sqrt_bias_correction2 + k.eps));
    }
  });
}

}  // namespace

bool FusedAdamW::CanFuse() {
  for (auto& group : param_groups_) {
    if (static_cast<AdamWOptions&>(group.options()).amsgrad()) return false;
    for (auto& p : group.params()) {
      const auto& grad = p.grad();
      if (!grad.defined()) continue;
      if (!p.device().is_cpu() || p.scalar_type() != torch::kFloat || !p.is_non_overlapping_and_dense() ||
          grad.is_sparse() || !SameDenseLayout(p, grad)) {
        return false;
      }
      auto it = state_.find(OptimizerStateKey(state_, p));
      if (it != state_.end()) {
        const auto& state = static_cast<AdamWParamState&>(*it->second);
        if (!SameDenseLayout(p, state.exp_avg()) || !SameDenseLayout(p, state.exp_avg_sq())) return false;
      }
    }
  }
  return true;
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  if (!CanFuse()) {
    AdamW::step();
    return loss;
  }
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<AdamWOptions&>(group.options());
    const double beta1 = std::get<0>(options.betas());
    const double beta2 = std::get<1>(options.betas());
    for (auto& p : group.params()) {
      const auto& grad = p.grad();
      if (!grad.defined()) continue;
      auto& slot = state_[OptimizerStateKey(state_, p)];
      if (!slot) {
        auto state = std::make_unique<AdamWParamState>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(state);
      }
      auto& state = static_cast<AdamWParamState&>(*slot);
      state.step(state.step() + 1);
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      const UpdateScalars scalars{static_cast<float>(1 - options.lr() * options.weight_decay()),
                                  static_cast<float>(beta1),
                                  static_cast<float>(1 - beta1),
                                  static_cast<float>(beta2),
                                  static_cast<float>(1 - beta2),
                                  static_cast<float>(std::sqrt(bias_correction2)),
                                  static_cast<float>(options.eps()),
                                  static_cast<float>(-options.lr() / bias_correction1)};
      // The data pointers of dense tensors with equal strides address the same elements in the same order.
      UpdateParameter(p.data_ptr<float>(), grad.data_ptr<float>(), state.exp_avg().data_ptr<float>(),
                      state.exp_avg_sq().data_ptr<float>(), p.numel(), scalars);
      // Writes through raw pointers are invisible to autograd's version counters; bump them as in-place ops do
      // (the trainer tells changed weights by their versions).
      const torch::Tensor* written[] = {&p, &state.exp_avg(), &state.exp_avg_sq()};
      for (const auto* t : written) t->unsafeGetTensorImpl()->bump_version();
    }
  }
  ++fused_steps_;
  return loss;
}

}  // namespace facet

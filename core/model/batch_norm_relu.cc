#include "core/model/batch_norm_relu.h"

#include "core/model/bfloat16.h"
#include "core/model/fused_kernels.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace facet {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// An NCHW tensor seen as n images of c channels of hw values: channel k of image i starts at (i * c + k) * hw.
struct Layout {
  int64_t n, c, hw;
  int64_t count() const { return n * hw; }  // values per channel
  int64_t offset(int64_t image, int64_t channel) const { return (image * c + channel) * hw; }
};

// The sum over a channel of value(i), i running over each image's run of hw values of that channel. Eight float
// lanes per run, so that the compiler vectorizes without reassociating, gathered in double per run.
template <typename Value>
double ChannelSum(const Layout& layout, int64_t channel, Value value) {
  double total = 0;
  for (int64_t image = 0; image < layout.n; ++image) {
    const int64_t start = layout.offset(image, channel);
    float lanes[8] = {};
    int64_t i = 0;
    for (; i + 8 <= layout.hw; i += 8) {
      for (int k = 0; k < 8; ++k) lanes[k] += value(start + i + k);
    }
    for (; i < layout.hw; ++i) total += value(start + i);
    for (float lane : lanes) total += lane;
  }
  return total;
}

// dy where y > 0 (ReLU's mask, as threshold_backward), else 0, in bit operations: GCC turns a select into a branch
// in some of the loops below, and a mispredicted branch per element (the mask is close to random) cost five times
// the whole pass.
inline float Masked(float dy, float y) { return FloatOf(BitsOf(dy) & (0u - static_cast<uint32_t>(y > 0.f))); }

// sum(g) and sum(g * (x - mean)) over a channel, g being dy through ReLU's mask: both in one pass (the backward's
// statistics read three tensors; a second pass would read them again).
void MaskedSums(const Layout& layout, int64_t channel, const float* dy, const float* y, const float* x, float mean,
                double& sum, double& dot) {
  for (int64_t image = 0; image < layout.n; ++image) {
    const int64_t start = layout.offset(image, channel);
    float sum_lanes[8] = {}, dot_lanes[8] = {};
    int64_t i = start;
    for (; i + 8 <= start + layout.hw; i += 8) {
      for (int k = 0; k < 8; ++k) {
        const float g = Masked(dy[i + k], y[i + k]);
        sum_lanes[k] += g;
        dot_lanes[k] += g * (x[i + k] - mean);
      }
    }
    for (; i < start + layout.hw; ++i) {
      const float g = Masked(dy[i], y[i]);
      sum += g;
      dot += g * (x[i] - mean);
    }
    for (int k = 0; k < 8; ++k) {
      sum += sum_lanes[k];
      dot += dot_lanes[k];
    }
  }
}

// Applies fn(channel, start) to every image's run of hw values, in memory order and in parallel: the element-wise
// passes stream through the tensor, as the per-channel statistics cannot.
template <typename Fn>
void ForEachPlane(const Layout& layout, Fn fn) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, layout.hw));
  at::parallel_for(0, layout.n * layout.c, grain, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) fn(plane % layout.c, plane * layout.hw);
  });
}

struct Buffers {
  torch::Tensor mean, var;  // BatchNorm's running statistics, updated in place
};

struct ChannelParameters {
  const float* weight;
  const float* bias;
};

// ATen's batch_norm_cpu arithmetic: the mean and biased variance of the batch in double over float terms,
// invstd = 1/sqrt(var + eps), running statistics moved by `momentum` (the unbiased variance), and
// y = relu(x * alpha + shift + residual) with alpha = invstd * weight, shift = bias - mean * alpha in float.
void Forward(const Layout& layout, const float* x, const float* residual, ChannelParameters params, double momentum,
             double eps, float* running_mean, float* running_var, float* save_mean, float* save_invstd, float* y) {
  std::vector<float> alpha(layout.c), shift(layout.c);
  at::parallel_for(0, layout.c, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const double count = static_cast<double>(layout.count());
      const double sum = ChannelSum(layout, c, [x](int64_t i) { return x[i]; });
      const float mean = static_cast<float>(sum / count);
      const double var_sum = ChannelSum(layout, c, [x, mean](int64_t i) {
        const float d = x[i] - mean;
        return d * d;
      });
      const double invstd = 1 / std::sqrt(var_sum / count + eps);
      save_mean[c] = mean;
      save_invstd[c] = static_cast<float>(invstd);
      running_mean[c] = static_cast<float>(momentum * mean + (1 - momentum) * running_mean[c]);
      running_var[c] = static_cast<float>(momentum * var_sum / (count - 1) + (1 - momentum) * running_var[c]);
      alpha[c] = save_invstd[c] * params.weight[c];
      shift[c] = params.bias[c] - mean * alpha[c];
    }
  });
  ForEachPlane(layout, [&](int64_t c, int64_t start) {
    const float a = alpha[c];
    const float b = shift[c];
    const float* __restrict in = x + start;
    float* __restrict out = y + start;
    if (residual != nullptr) {
      const float* __restrict add = residual + start;
      for (int64_t i = 0; i < layout.hw; ++i) {
        const float v = in[i] * a + b + add[i];
        out[i] = v < 0.f ? 0.f : v;  // NaN stays NaN, as in LibTorch's relu
      }
    } else {
      for (int64_t i = 0; i < layout.hw; ++i) {
        const float v = in[i] * a + b;
        out[i] = v < 0.f ? 0.f : v;
      }
    }
  });
}

// The gradient through the ReLU's mask (y > 0, as threshold_backward) and ATen's batch_norm_cpu_backward in
// training: with g the masked gradient and q = x - mean,
//   dx = (g - sum(g)/count - q * sum(g*q) * invstd^2 / count) * invstd * weight,
//   dweight = sum(g*q) * invstd, dbias = sum(g), and the residual's gradient is g itself.
void Backward(const Layout& layout, const float* dy, const float* y, const float* x, const float* weight,
              const float* mean, const float* invstd, float* dx, float* dresidual, float* dweight, float* dbias) {
  std::vector<float> grad_mean(layout.c), k(layout.c), scale(layout.c);
  at::parallel_for(0, layout.c, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      double sum = 0, dot = 0;
      MaskedSums(layout, c, dy, y, x, mean[c], sum, dot);
      dweight[c] = static_cast<float>(dot * invstd[c]);
      dbias[c] = static_cast<float>(sum);
      const double count = static_cast<double>(layout.count());
      k[c] = static_cast<float>(dot * invstd[c] * invstd[c] / count);
      grad_mean[c] = static_cast<float>(sum / count);
      scale[c] = invstd[c] * weight[c];
    }
  });
  ForEachPlane(layout, [&](int64_t c, int64_t start) {
    const float m = mean[c], kc = k[c], gm = grad_mean[c], sc = scale[c];
    const float* __restrict dy_run = dy + start;
    const float* __restrict y_run = y + start;
    const float* __restrict x_run = x + start;
    float* __restrict dx_run = dx + start;
    for (int64_t i = 0; i < layout.hw; ++i) {
      const float g = Masked(dy_run[i], y_run[i]);
      dx_run[i] = (g - gm - (x_run[i] - m) * kc) * sc;
    }
    if (dresidual != nullptr) {
      float* __restrict dr_run = dresidual + start;
      for (int64_t i = 0; i < layout.hw; ++i) dr_run[i] = Masked(dy_run[i], y_run[i]);
    }
  });
}

Layout LayoutOf(const torch::Tensor& x) { return {x.size(0), x.size(1), x.size(2) * x.size(3)}; }

// The data of a float tensor, or null for an undefined one (the residual and its gradient).
float* Data(const torch::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

// The two autograd functions below share these: relu(bn(x)) and relu(bn(x) + residual). Autograd takes no undefined
// tensor as an input, hence one function for each form rather than an optional residual.
torch::Tensor FusedForward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& residual,
                           const torch::Tensor& weight, const torch::Tensor& bias, const Buffers& buffers,
                           double momentum, double eps) {
  const Layout layout = LayoutOf(x);
  auto y = torch::empty_like(x);
  auto save_mean = torch::empty({layout.c}, weight.options());
  auto save_invstd = torch::empty({layout.c}, weight.options());
  const ChannelParameters params{weight.data_ptr<float>(), bias.data_ptr<float>()};
  float* running_mean = buffers.mean.data_ptr<float>();
  float* running_var = buffers.var.data_ptr<float>();
  Forward(layout, x.data_ptr<float>(), Data(residual), params, momentum, eps, running_mean, running_var,
          save_mean.data_ptr<float>(), save_invstd.data_ptr<float>(), y.data_ptr<float>());
  // The running statistics were written through raw pointers without bumping their versions, as ATen's
  // native_batch_norm writes them: its backward saves them and checks their versions, so a bump would break a
  // backward through an earlier call of the same BatchNorm (e.g. two forwards before one backward).
  ctx->save_for_backward({x, y, weight, save_mean, save_invstd});
  return y;
}

struct FusedGradients {
  torch::Tensor x, residual, weight, bias;
};

FusedGradients FusedBackward(AutogradContext* ctx, const torch::Tensor& grad_output, bool has_residual) {
  const auto saved = ctx->get_saved_variables();
  const auto& x = saved[0];
  const auto& y = saved[1];
  const auto& weight = saved[2];
  const auto dy = grad_output.contiguous();
  FusedGradients grads{torch::empty_like(x), has_residual ? torch::empty_like(x) : torch::Tensor(),
                       torch::empty_like(weight), torch::empty_like(weight)};
  Backward(LayoutOf(x), dy.data_ptr<float>(), y.data_ptr<float>(), x.data_ptr<float>(), weight.data_ptr<float>(),
           saved[3].data_ptr<float>(), saved[4].data_ptr<float>(), grads.x.data_ptr<float>(), Data(grads.residual),
           grads.weight.data_ptr<float>(), grads.bias.data_ptr<float>());
  return grads;
}

class BatchNormReluFunction : public torch::autograd::Function<BatchNormReluFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight,
                               const torch::Tensor& bias, const Buffers& buffers, double momentum, double eps) {
    return FusedForward(ctx, x, torch::Tensor(), weight, bias, buffers, momentum, eps);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto g = FusedBackward(ctx, grad_outputs[0], /*has_residual=*/false);
    return {g.x, g.weight, g.bias, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

class BatchNormAddReluFunction : public torch::autograd::Function<BatchNormAddReluFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& residual,
                               const torch::Tensor& weight, const torch::Tensor& bias, const Buffers& buffers,
                               double momentum, double eps) {
    return FusedForward(ctx, x, residual, weight, bias, buffers, momentum, eps);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto g = FusedBackward(ctx, grad_outputs[0], /*has_residual=*/true);
    return {g.x, g.residual, g.weight, g.bias, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

bool IsDenseFloatCpu(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous();
}

}  // namespace

bool BatchNormReluIsFused(const torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x,
                          const torch::Tensor& residual) {
  const auto& options = bn.options;
  return FusedKernelsEnabled() && bn.is_training() && options.affine() && options.track_running_stats() &&
         options.momentum().has_value() && IsDenseFloatCpu(x) && x.dim() == 4 &&
         x.size(0) * x.size(2) * x.size(3) > 1 && x.size(1) == options.num_features() && IsDenseFloatCpu(bn.weight) &&
         IsDenseFloatCpu(bn.bias) && IsDenseFloatCpu(bn.running_mean) && IsDenseFloatCpu(bn.running_var) &&
         (!residual.defined() || (IsDenseFloatCpu(residual) && residual.sizes() == x.sizes()));
}

torch::Tensor BatchNormRelu(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& residual) {
  if (!BatchNormReluIsFused(bn, x, residual)) {
    auto out = bn.forward(x);
    if (residual.defined()) out += residual;
    return out.relu_();
  }
  {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;  // as BatchNorm2d's forward counts its training batches
  }
  const Buffers buffers{bn.running_mean, bn.running_var};
  const double momentum = *bn.options.momentum();
  if (residual.defined()) {
    return BatchNormAddReluFunction::apply(x, residual, bn.weight, bn.bias, buffers, momentum, bn.options.eps());
  }
  return BatchNormReluFunction::apply(x, bn.weight, bn.bias, buffers, momentum, bn.options.eps());
}

}  // namespace facet

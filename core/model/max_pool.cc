#include "core/model/max_pool.h"

#include "core/model/bfloat16.h"
#include "core/model/fused_kernels.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace facet {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kKernel = 3;
constexpr int64_t kStride = 2;
constexpr int64_t kPadding = 1;

int64_t PooledSize(int64_t size) { return (size + 2 * kPadding - kKernel) / kStride + 1; }

// The maximum of a run of candidates in ATen's scan order and with its rule: a larger value or a NaN takes over.
// The choice is made with bit masks: the comparisons depend on the data, GCC compiles a plain select here to a
// branch, and that branch mispredicts about every other time.
inline void Offer(float value, int32_t at, float& best, int32_t& index) {
  const uint32_t take = 0u - static_cast<uint32_t>((value > best) | (value != value));
  best = FloatOf((BitsOf(value) & take) | (BitsOf(best) & ~take));
  index = static_cast<int32_t>((static_cast<uint32_t>(at) & take) | (static_cast<uint32_t>(index) & ~take));
}

// The window [begin, end) of output o along a dimension of `size`, clipped to the plane.
inline int64_t WindowBegin(int64_t o) { return std::max<int64_t>(o * kStride - kPadding, 0); }
inline int64_t WindowEnd(int64_t o, int64_t size) { return std::min<int64_t>(o * kStride - kPadding + kKernel, size); }

// Scratch for one plane: each input row's maxima over the three columns of each output, and their columns.
struct PlaneScratch {
  explicit PlaneScratch(int64_t height, int64_t width)
      : row_max(height * PooledSize(width)), row_col(height * PooledSize(width)), even((width + 1) / 2),
        odd(width / 2 + 1) {}
  std::vector<float> row_max;
  std::vector<int32_t> row_col;
  std::vector<float> even, odd;  // one input row's even and odd columns
};

// One plane, separably: the maximum over each row's three columns first, then over three rows of those. Scanning
// row by row keeps the first maximum in row-major order (and the last NaN) as ATen's single scan does. Every inner
// loop runs over independent outputs with unit stride (the row is split into its even and odd columns first, as
// output ow's window is columns 2ow-1, 2ow, 2ow+1), so that the compiler vectorizes them.
template <typename T>
void PoolPlane(const T* in, int64_t height, int64_t width, T* out, int64_t* indices, PlaneScratch& scratch) {
  const int64_t out_height = PooledSize(height);
  const int64_t out_width = PooledSize(width);
  // Outputs [1, inner_end) have all three columns in bounds: 2 * ow + 1 < width.
  const int64_t inner_end = std::max<int64_t>(1, std::min(out_width, width / 2));
  float* even = scratch.even.data();
  float* odd = scratch.odd.data();
  for (int64_t ih = 0; ih < height; ++ih) {
    const T* row = in + ih * width;
    float* best = scratch.row_max.data() + ih * out_width;
    int32_t* col = scratch.row_col.data() + ih * out_width;
    for (int64_t j = 0; j < width / 2; ++j) {
      even[j] = LoadFloat(row[2 * j]);
      odd[j] = LoadFloat(row[2 * j + 1]);
    }
    if (width % 2 == 1) even[width / 2] = LoadFloat(row[width - 1]);
    auto clipped = [&](int64_t ow) {
      best[ow] = -std::numeric_limits<float>::infinity();
      col[ow] = static_cast<int32_t>(WindowBegin(ow));
      for (int64_t iw = WindowBegin(ow); iw < WindowEnd(ow, width); ++iw) {
        Offer(LoadFloat(row[iw]), static_cast<int32_t>(iw), best[ow], col[ow]);
      }
    };
    clipped(0);
    for (int64_t ow = 1; ow < inner_end; ++ow) {
      float b = odd[ow - 1];
      int32_t c = static_cast<int32_t>(2 * ow - 1);
      Offer(even[ow], static_cast<int32_t>(2 * ow), b, c);
      Offer(odd[ow], static_cast<int32_t>(2 * ow + 1), b, c);
      best[ow] = b;
      col[ow] = c;
    }
    for (int64_t ow = inner_end; ow < out_width; ++ow) clipped(ow);
  }
  for (int64_t oh = 0; oh < out_height; ++oh) {
    const int64_t h_begin = WindowBegin(oh);
    const int64_t h_end = WindowEnd(oh, height);
    // The first row's maxima, then each further row offered to all outputs at once.
    float* best = scratch.row_max.data() + h_begin * out_width;  // updated in place: row h_begin is not read again
    int32_t* index = scratch.row_col.data() + h_begin * out_width;
    const int32_t first_row = static_cast<int32_t>(h_begin * width);
    for (int64_t ow = 0; ow < out_width; ++ow) index[ow] += first_row;
    for (int64_t ih = h_begin + 1; ih < h_end; ++ih) {
      const float* candidate = scratch.row_max.data() + ih * out_width;
      const int32_t* candidate_col = scratch.row_col.data() + ih * out_width;
      const int32_t row_start = static_cast<int32_t>(ih * width);
      for (int64_t ow = 0; ow < out_width; ++ow) {
        Offer(candidate[ow], row_start + candidate_col[ow], best[ow], index[ow]);
      }
    }
    for (int64_t ow = 0; ow < out_width; ++ow) {
      out[oh * out_width + ow] = StoreAs<T>(best[ow]);  // exact: one of the inputs
      indices[oh * out_width + ow] = index[ow];
    }
  }
}

class MaxPoolFunction : public torch::autograd::Function<MaxPoolFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x) {
    const int64_t planes = x.size(0) * x.size(1);
    const int64_t height = x.size(2);
    const int64_t width = x.size(3);
    const int64_t out_height = PooledSize(height);
    const int64_t out_width = PooledSize(width);
    auto out = torch::empty({x.size(0), x.size(1), out_height, out_width}, x.options());
    auto indices = torch::empty(out.sizes(), x.options().dtype(torch::kLong));
    int64_t* index_data = indices.data_ptr<int64_t>();
    const int64_t grain = std::max<int64_t>(1, 16384 / (height * width));
    auto pool = [&](const auto* in, auto* out_data) {
      at::parallel_for(0, planes, grain, [&](int64_t begin, int64_t end) {
        PlaneScratch scratch(height, width);
        for (int64_t p = begin; p < end; ++p) {
          PoolPlane(in + p * height * width, height, width, out_data + p * out_height * out_width,
                    index_data + p * out_height * out_width, scratch);
        }
      });
    };
    if (x.scalar_type() == torch::kBFloat16) {
      pool(x.data_ptr<c10::BFloat16>(), out.data_ptr<c10::BFloat16>());
    } else {
      pool(x.data_ptr<float>(), out.data_ptr<float>());
    }
    ctx->save_for_backward({x, indices});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    return {at::max_pool2d_with_indices_backward(grad_outputs[0], saved[0], {kKernel, kKernel},
                                                 {kStride, kStride}, {kPadding, kPadding}, {1, 1},
                                                 /*ceil_mode=*/false, saved[1])};
  }
};

}  // namespace

bool MaxPool3x3Stride2IsFused(const torch::Tensor& x) {
  return FusedKernelsEnabled() && x.defined() && x.device().is_cpu() &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16) && x.dim() == 4 &&
         x.is_contiguous() && x.size(2) > 0 && x.size(3) > 0;
}

torch::Tensor MaxPool3x3Stride2(const torch::Tensor& x) {
  if (!MaxPool3x3Stride2IsFused(x)) {
    return torch::max_pool2d(x, {kKernel, kKernel}, {kStride, kStride}, {kPadding, kPadding});
  }
  return MaxPoolFunction::apply(x);
}

}  // namespace facet

#include "core/model/max_pool.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>

namespace facet {
namespace {

// Output and input gradient of the pool on `x`, through MaxPool3x3Stride2 or LibTorch's max_pool2d.
std::pair<torch::Tensor, torch::Tensor> PoolAndGradient(const torch::Tensor& x, const torch::Tensor& grad, bool own) {
  auto input = x.detach().clone().requires_grad_();
  auto out = own ? MaxPool3x3Stride2(input) : torch::max_pool2d(input, 3, 2, 1);
  out.backward(grad);
  return {out.detach(), input.grad()};
}

// Every size from a single pixel up (odd and even, where the last window is clipped or not), values with many
// ties (so that which of two equal maxima is taken shows in the gradient), -inf and NaN: the same values and the
// same gradient, bit for bit, as LibTorch's max-pool.
TEST(MaxPool3x3Stride2, SameValuesAndGradientsAsLibTorch) {
  torch::manual_seed(7);
  for (int64_t height : {1, 2, 3, 4, 5, 8, 9, 31, 32}) {
    for (int64_t width : {1, 2, 3, 6, 7, 32}) {
      const std::string what = std::to_string(height) + "x" + std::to_string(width);
      auto x = torch::randint(-3, 4, {2, 3, height, width}).to(torch::kFloat);
      if (height * width > 4) {
        auto flat = x.view({-1});
        flat[1] = std::numeric_limits<float>::quiet_NaN();
        flat[flat.numel() - 2] = std::numeric_limits<float>::quiet_NaN();
        flat[flat.numel() - 3] = std::numeric_limits<float>::quiet_NaN();
        flat[5] = -std::numeric_limits<float>::infinity();
      }
      ASSERT_TRUE(MaxPool3x3Stride2IsFused(x)) << what;
      const int64_t out_height = (height - 1) / 2 + 1;
      const int64_t out_width = (width - 1) / 2 + 1;
      const auto grad = torch::randn({2, 3, out_height, out_width});
      const auto [out, dx] = PoolAndGradient(x, grad, /*own=*/true);
      const auto [expected_out, expected_dx] = PoolAndGradient(x, grad, /*own=*/false);
      ASSERT_EQ(out.sizes(), expected_out.sizes()) << what;
      EXPECT_TRUE(torch::equal(out.isnan(), expected_out.isnan())) << what;
      EXPECT_TRUE(torch::equal(torch::nan_to_num(out), torch::nan_to_num(expected_out))) << what;
      EXPECT_TRUE(torch::equal(dx, expected_dx)) << what;
    }
  }
}

// bfloat16 (the stem's activations under bf16 autocast): the same values and gradients as LibTorch's bfloat16
// max-pool.
TEST(MaxPool3x3Stride2, Bfloat16GivesLibTorchsValuesAndGradients) {
  torch::manual_seed(9);
  const auto x = torch::randn({3, 4, 17, 16}).to(torch::kBFloat16);
  ASSERT_TRUE(MaxPool3x3Stride2IsFused(x));
  const auto grad = torch::randn({3, 4, 9, 8}).to(torch::kBFloat16);
  const auto [out, dx] = PoolAndGradient(x, grad, /*own=*/true);
  const auto [expected_out, expected_dx] = PoolAndGradient(x, grad, /*own=*/false);
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(out, expected_out));
  EXPECT_TRUE(torch::equal(dx, expected_dx));
}

TEST(MaxPool3x3Stride2, OtherLayoutsAndTypesRunLibTorchsOperator) {
  const auto x = torch::randn({2, 4, 9, 9});
  EXPECT_FALSE(MaxPool3x3Stride2IsFused(x.contiguous(torch::MemoryFormat::ChannelsLast)));
  EXPECT_FALSE(MaxPool3x3Stride2IsFused(x.to(torch::kDouble)));
  EXPECT_FALSE(MaxPool3x3Stride2IsFused(x.to(torch::kHalf)));
  EXPECT_TRUE(torch::equal(MaxPool3x3Stride2(x.to(torch::kDouble)), torch::max_pool2d(x.to(torch::kDouble), 3, 2, 1)));
}

}  // namespace
}  // namespace facet

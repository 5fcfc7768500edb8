// mixup (Zhang, Cisse, Dauphin & Lopez-Paz, ICLR 2018) for the three tasks: each training image is blended with
// another of its batch, λx + (1-λ)x', and each task's loss is the same blend of the loss against either face's
// label. A regulariser: the network has to answer in proportion between faces instead of memorising each one.
// Pure functions on the calling thread's LibTorch generator; DrawMixup throws std::invalid_argument for alpha <= 0.
#pragma once

#include "core/loss/multitask_loss.h"
#include "core/model/multitask_net.h"

#include <cstdint>

namespace facet {

struct MixupDraw {
  double lambda = 1.0;   // the share of each image's own face, λ ~ Beta(alpha, alpha)
  torch::Tensor partner; // (N) int64 on the CPU: the image each one is blended with, a permutation of the batch
};

// λ and the partners for one batch, from LibTorch's default generator: the trainer seeds it per epoch and saves it
// in mid-epoch checkpoints, so a resumed run draws the same blends. alpha > 0: small alphas put λ near 0 or 1.
MixupDraw DrawMixup(int64_t batch_size, double alpha);

// λ * images + (1 - λ) * images[partner], on the images' device and in their dtype and memory format.
torch::Tensor MixImages(const torch::Tensor& images, const MixupDraw& draw);

// Per-task losses (3) of outputs computed on MixImages: λ L(targets) + (1 - λ) L(targets[partner]).
torch::Tensor MixedTaskLosses(const MultiTaskLossImpl& loss, const TaskOutputs& outputs,
                              const torch::Tensor& age_target, const torch::Tensor& gender,
                              const torch::Tensor& ethnicity, const MixupDraw& draw);

}  // namespace facet

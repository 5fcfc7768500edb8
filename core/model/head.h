// A task head shaped like fastai's create_head(2C, n, lin_ftrs=[512], ps=0.25).
// Builds a module (not thread-safe in training, as every torch::nn::Module); throws nothing of its own.
#pragma once

#include <torch/nn/modules/container/sequential.h>

namespace facet {

// Sequential(ConcatPool2d (avg||max), Flatten, BatchNorm1d(2C), Dropout(0.125), Linear(2C,512), ReLU,
//            BatchNorm1d(512), Dropout(0.25), Linear(512,n)).
// The indices of the parameterised layers (2, 4, 6, 8) match the plain-PyTorch reference's heads, so
// `age_head.4.weight` is the same tensor in both.
torch::nn::Sequential MakeHead(int encoder_channels, int outputs);

}  // namespace facet

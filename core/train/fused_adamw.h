// torch::optim::AdamW whose CPU step reads and writes each parameter's memory once.
//
// LibTorch 1.13's AdamW::step runs about ten element-wise operations per parameter (decay, two moment updates,
// sqrt, divide, add, addcdiv), each a full pass over a tensor: for ResNet-34's 22M weights that is about 2 GB of
// memory traffic per step, a real share of a 64-px training step on a CPU. FusedAdamW does the same arithmetic,
// in the same order and in float, element by element in one pass. Its state, options and checkpoints are
// AdamW's: a checkpoint written by either loads into the other.
// Not thread-safe: one training thread steps an optimizer (as torch::optim). Throws nothing of its own.
#pragma once

#include <torch/optim/adamw.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace facet {

// The key of a parameter's entry in a LibTorch optimizer's state(): the address of the parameter's TensorImpl, as
// text in LibTorch 1.x (what c10::guts::to_string wrote for a pointer; 2.x removed that function) and as the pointer
// itself in 2.x. The key type is read off the optimizer's state map, so that both compile.
template <typename StateMap>
typename StateMap::key_type OptimizerStateKey(const StateMap&, const torch::Tensor& p) {
  using Key = typename StateMap::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << p.unsafeGetTensorImpl();
    return text.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;

  // Falls back to AdamW::step (the whole step, same results) when any parameter with a gradient is not a
  // float32 CPU tensor laid out like its gradient and moments, or amsgrad is on: e.g. every step on CUDA.
  torch::Tensor step(LossClosure closure = nullptr) override;

  // How many steps took the fused path (for tests and benchmarks).
  int64_t fused_steps() const { return fused_steps_; }

 private:
  bool CanFuse();
  int64_t fused_steps_ = 0;
};

}  // namespace facet

// An exponential moving average of a model's weights (Polyak averaging; timm's ModelEmaV2, TensorFlow's
// ExponentialMovingAverage with num_updates). The average moves less from step to step than the weights it
// follows, so a model read from it is less tied to the last few batches.
// Not thread-safe: the training thread updates it. Throws std::invalid_argument for a decay outside [0, 1), std::logic_error
// when the two models' layouts differ.
#pragma once

#include "core/model/multitask_net.h"

#include <cstdint>

namespace facet {

class WeightAverage {
 public:
  // Starts the average at `source`'s current weights, on its device and in its memory formats; decay in [0, 1).
  WeightAverage(MultiTaskNet source, double decay);

  // average = d * average + (1 - d) * source for every floating parameter and buffer (BatchNorm's running
  // statistics included); integer buffers are copied. d = DecayAt(update): `update` counts the earlier updates, so
  // that a resumed run continues with the same d as one that never stopped.
  void Update(int64_t update);

  // Averaging starts again from the source's current weights (a resumed run whose checkpoint held no average).
  void Restart();

  // Early on, the average would remember the random initialisation for ~1/(1-decay) steps: the decay ramps up
  // as (1 + t) / (10 + t) until it reaches the configured one (TensorFlow's num_updates form).
  double DecayAt(int64_t update) const;

  // The averaged weights as a model of the source's architecture, always in eval mode.
  MultiTaskNet& model() { return average_; }

 private:
  double decay_;
  // Modules, not their tensors: loading a checkpoint may give a parameter new storage (Tensor::set_), which a
  // tensor taken earlier would not see.
  MultiTaskNet source_;
  MultiTaskNet average_;
};

}  // namespace facet

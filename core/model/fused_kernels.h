// A switch between facet's own CPU kernels for parts of the ResNet (BatchNormRelu, MaxPool3x3Stride2) and
// LibTorch's operators, which compute the same thing unoptimised: for tests that compare the two paths and for A/B
// benchmarks. On by default; process-wide.
// Reading the switch is thread-safe (an atomic); ScopedFusedKernels belongs to tests and benchmarks that own the
// process. Nothing here throws.
#pragma once

namespace facet {

bool FusedKernelsEnabled();

// Sets the switch for its lifetime, then restores what it was.
class ScopedFusedKernels {
 public:
  explicit ScopedFusedKernels(bool enabled);
  ~ScopedFusedKernels();
  ScopedFusedKernels(const ScopedFusedKernels&) = delete;
  ScopedFusedKernels& operator=(const ScopedFusedKernels&) = delete;

 private:
  bool previous_;
};

}  // namespace facet

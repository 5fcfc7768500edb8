#include "core/model/fused_kernels.h"

#include <atomic>

namespace facet {
namespace {

std::atomic<bool> enabled{true};

}  // namespace

bool FusedKernelsEnabled() { return enabled.load(std::memory_order_relaxed); }

ScopedFusedKernels::ScopedFusedKernels(bool on) : previous_(enabled.exchange(on)) {}

ScopedFusedKernels::~ScopedFusedKernels() { enabled.store(previous_); }

}  // namespace facet

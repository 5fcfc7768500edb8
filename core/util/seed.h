// Deterministic seed derivation. No LibTorch.
#pragma once

#include <cstdint>

namespace facet {

// Mixes a run seed with a counter (epoch, sample position) into an independent 64-bit seed (SplitMix64), so that
// every random stream of a run is a pure function of (seed, counter) and survives a resume.
inline uint64_t MixSeed(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (counter + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace facet

// Field checks for configurations: each failure is std::invalid_argument("field: what is wrong"), the form the
// service turns into INVALID_ARGUMENT and the CLI prints as it is.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>

namespace facet {

[[noreturn]] inline void FailField(const std::string& field, const std::string& message) {
  throw std::invalid_argument(field + ": " + message);
}

// NaN and the infinities fail too: a comparison alone would let NaN through.
inline void CheckRange(const std::string& field, double value, double lo, double hi) {
  if (!std::isfinite(value) || value < lo || value > hi) {
    FailField(field,
              "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(value));
  }
}

inline void CheckProbability(const std::string& field, double value) { CheckRange(field, value, 0.0, 1.0); }

}  // namespace facet

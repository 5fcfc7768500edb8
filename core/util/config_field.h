// One numeric setting of a configuration, described once: its name in the API and in errors, its command-line
// flag, its help, the values it accepts and how to read and write it. Tables of these (AugmentFields, DataFields,
// TrainingFields) are where each setting's facts live: the core validates with them, the server maps its API with
// them and facetctl builds its flags and --help from them. Plain C++; the tables are immutable, so thread-safe.
#pragma once

#include "core/util/range_check.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace facet {

template <typename Config>
struct ConfigField {
  std::string name;  // the API's field path and the prefix of its validation error: "frozen.lr_max"
  std::string flag;  // facetctl's flag: "frozen-lr"
  std::string help;
  double lo = 0.0;   // accepted values: [lo, hi], or [lo, hi) with hi_exclusive
  double hi = 0.0;
  bool hi_exclusive = false;
  bool integer = false;
  double flag_scale = 1.0;  // the flag's value times this is the field's (a budget in minutes for one in seconds)
  std::function<double(const Config&)> get;
  std::function<void(Config&, double)> set;
  std::function<bool(const Config&)> applies;  // when the range is checked; empty: always

  // "[4, 256]" or "[0, 1)" in the flag's units.
  std::string RangeText() const {
    char text[80];
    std::snprintf(text, sizeof text, "[%g, %g%s", lo / flag_scale, hi / flag_scale, hi_exclusive ? ")" : "]");
    return text;
  }

  // Throws std::invalid_argument("name: must be in [lo, hi], got v") for a value outside (NaN included), or a
  // fraction where a whole number belongs.
  void Check(const Config& config) const {
    if (applies && !applies(config)) return;
    const double v = get(config);
    const bool inside = std::isfinite(v) && v >= lo && (hi_exclusive ? v < hi : v <= hi);
    if (!inside || (integer && std::trunc(v) != v)) {
      char got[40];
      std::snprintf(got, sizeof got, "%.10g", v);
      FailField(name, "must be in " + RangeText() + (integer ? " (whole)" : "") + ", got " + got);
    }
  }
};

// The field of a part (AugmentOptions inside DataConfig) as a field of the whole.
template <typename Whole, typename Part>
ConfigField<Whole> LiftField(const ConfigField<Part>& field, Part Whole::*part) {
  ConfigField<Whole> lifted{field.name, field.flag, field.help, field.lo, field.hi, field.hi_exclusive,
                            field.integer, field.flag_scale, nullptr, nullptr, nullptr};
  lifted.get = [get = field.get, part](const Whole& w) { return get(w.*part); };
  lifted.set = [set = field.set, part](Whole& w, double v) { set(w.*part, v); };
  if (field.applies) lifted.applies = [applies = field.applies, part](const Whole& w) { return applies(w.*part); };
  return lifted;
}

template <typename Whole, typename Part>
void AppendLifted(std::vector<ConfigField<Whole>>& out, const std::vector<ConfigField<Part>>& fields,
                  Part Whole::*part) {
  for (const auto& f : fields) out.push_back(LiftField(f, part));
}

// A member as a field's get/set pair: FACET_FIELD_ACCESS(frozen.lr_max).
#define FACET_FIELD_ACCESS(member)                                        \
  [](const auto& c) { return static_cast<double>(c.member); },           \
      [](auto& c, double v) { c.member = static_cast<decltype(c.member)>(v); }

}  // namespace facet

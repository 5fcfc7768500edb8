#include "core/data/augment_options.h"

#include "core/util/range_check.h"

namespace facet {
namespace {

void CheckStrength(const char* field, double value, StrengthRange range) { CheckRange(field, value, range.lo, range.hi); }

}  // namespace

void ValidateAugmentOptions(const AugmentOptions& a) {
  CheckProbability("augment.flip_probability", a.flip_probability);
  CheckProbability("augment.rotate_probability", a.rotate_probability);
  CheckProbability("augment.zoom_probability", a.zoom_probability);
  CheckProbability("augment.warp_probability", a.warp_probability);
  CheckProbability("augment.lighting_probability", a.lighting_probability);
  CheckStrength("augment.max_rotate_degrees", a.max_rotate_degrees, kMaxRotateDegreesRange);
  CheckStrength("augment.max_zoom", a.max_zoom, kMaxZoomRange);
  CheckStrength("augment.max_warp", a.max_warp, kMaxWarpRange);
  CheckStrength("augment.max_lighting", a.max_lighting, kMaxLightingRange);
  CheckProbability("augment.erase_probability", a.erase_probability);
  CheckStrength("augment.max_erase_area", a.max_erase_area, kMaxEraseAreaRange);
}

}  // namespace facet

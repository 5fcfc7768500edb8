#include "core/data/augment_options.h"

#include "core/util/range_check.h"

namespace facet {

void ValidateAugmentOptions(const AugmentOptions& a) {
  CheckProbability("augment.flip_probability", a.flip_probability);
  CheckProbability("augment.rotate_probability", a.rotate_probability);
  CheckProbability("augment.zoom_probability", a.zoom_probability);
  CheckProbability("augment.warp_probability", a.warp_probability);
  CheckProbability("augment.lighting_probability", a.lighting_probability);
  CheckRange("augment.max_rotate_degrees", a.max_rotate_degrees, 0.0, 90.0);
  // The lower bounds are where the augmenter's draws start (zoom 1, an erased area of 2%): below them a draw's
  // interval would be empty.
  CheckRange("augment.max_zoom", a.max_zoom, 1.0, 3.0);
  CheckRange("augment.max_warp", a.max_warp, 0.0, 0.5);
  CheckRange("augment.max_lighting", a.max_lighting, 0.0, 0.9);
  CheckProbability("augment.erase_probability", a.erase_probability);
  CheckRange("augment.max_erase_area", a.max_erase_area, kMinEraseArea, 0.9);
}

}  // namespace facet

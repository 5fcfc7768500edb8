// Augmentation switches and strengths. Plain data: shared by the trainer's configuration, the OpenCV library and
// the CLI.
#pragma once

#include "core/util/config_field.h"

#include <vector>

namespace facet {

// Defaults follow fastai's get_transforms(): each transform fires with its probability, per image.
struct AugmentOptions {
  bool enabled = true;
  double flip_probability = 0.5;
  double rotate_probability = 0.75;
  double max_rotate_degrees = 10.0;
  double zoom_probability = 0.75;
  double max_zoom = 1.1;
  double warp_probability = 0.75;
  double max_warp = 0.2;  // symmetric perspective warp magnitude, in normalised coordinates
  double lighting_probability = 0.75;
  double max_lighting = 0.2;  // brightness change in [0.5-x/2, 0.5+x/2]; contrast in [1-x, 1/(1-x)] log-uniform
  // Random erasing (Zhong et al. 2017), not in fastai's defaults and so off: a rectangle of 2% to max_erase_area of
  // the image, aspect ratio 0.3 to 3.3, set to the ImageNet mean colour.
  double erase_probability = 0.0;
  double max_erase_area = 0.33;
};

// The smallest rectangle random erasing draws, as a share of the image (torchvision's RandomErasing).
inline constexpr double kMinEraseArea = 0.02;

// Each probability and strength: its API name ("augment.max_zoom"), facetctl flag, help and accepted range. The lower
// bounds of zoom and erased area are where the augmenter's draws start (zoom 1, an erased area of kMinEraseArea):
// below them a draw's interval would be empty. `enabled` is a switch, not in the table.
const std::vector<ConfigField<AugmentOptions>>& AugmentFields();

// Throws std::invalid_argument("augment.<field>: ...") for a value outside its AugmentFields() range (NaN
// included). The Augmenter checks its options with it, and so does ValidateTrainingConfig.
void ValidateAugmentOptions(const AugmentOptions& options);

}  // namespace facet

// Augmentation switches and strengths. Plain data: shared by the trainer's configuration and the OpenCV library.
#pragma once

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

// The strengths the augmenter accepts: ValidateAugmentOptions enforces them and facetctl's --help prints them. The
// lower bounds of zoom and erased area are where the augmenter's draws start (zoom 1, an erased area of 2%): below
// them a draw's interval would be empty.
struct StrengthRange {
  double lo;
  double hi;
};
inline constexpr StrengthRange kMaxRotateDegreesRange{0.0, 90.0};
inline constexpr StrengthRange kMaxZoomRange{1.0, 3.0};
inline constexpr StrengthRange kMaxWarpRange{0.0, 0.5};
inline constexpr StrengthRange kMaxLightingRange{0.0, 0.9};
inline constexpr StrengthRange kMaxEraseAreaRange{kMinEraseArea, 0.9};

// Throws std::invalid_argument("augment.<field>: ...") for a probability outside [0, 1] or a strength outside what
// the augmenter can draw from (NaN included). The Augmenter checks its options with it, and so does
// ValidateTrainingConfig.
void ValidateAugmentOptions(const AugmentOptions& options);

}  // namespace facet

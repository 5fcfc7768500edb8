#include "core/data/augment_options.h"

namespace facet {

const std::vector<ConfigField<AugmentOptions>>& AugmentFields() {
  using Field = ConfigField<AugmentOptions>;
  static const std::vector<Field> fields = {
      {"augment.flip_probability", "flip-probability", "augmentation: share of training images mirrored left to right",
       0.0, 1.0, false, false, 1.0, FACET_FIELD_ACCESS(flip_probability), nullptr},
      {"augment.rotate_probability", "rotate-probability", "augmentation: share of training images rotated", 0.0, 1.0,
       false, false, 1.0, FACET_FIELD_ACCESS(rotate_probability), nullptr},
      {"augment.max_rotate_degrees", "max-rotate-degrees", "augmentation: the largest rotation in degrees, either way",
       0.0, 90.0, false, false, 1.0, FACET_FIELD_ACCESS(max_rotate_degrees), nullptr},
      {"augment.zoom_probability", "zoom-probability", "augmentation: share of training images zoomed in", 0.0, 1.0,
       false, false, 1.0, FACET_FIELD_ACCESS(zoom_probability), nullptr},
      {"augment.max_zoom", "max-zoom", "augmentation: the largest zoom", 1.0, 3.0, false, false, 1.0,
       FACET_FIELD_ACCESS(max_zoom), nullptr},
      {"augment.warp_probability", "warp-probability", "augmentation: share of training images given a perspective warp",
       0.0, 1.0, false, false, 1.0, FACET_FIELD_ACCESS(warp_probability), nullptr},
      {"augment.max_warp", "max-warp", "augmentation: the largest warp, in normalised coordinates", 0.0, 0.5, false,
       false, 1.0, FACET_FIELD_ACCESS(max_warp), nullptr},
      {"augment.lighting_probability", "lighting-probability",
       "augmentation: share of training images with brightness and contrast changed", 0.0, 1.0, false, false, 1.0,
       FACET_FIELD_ACCESS(lighting_probability), nullptr},
      {"augment.max_lighting", "max-lighting", "augmentation: the largest brightness and contrast change", 0.0, 0.9,
       false, false, 1.0, FACET_FIELD_ACCESS(max_lighting), nullptr},
      {"augment.erase_probability", "erase-probability",
       "random erasing: the share of training images with a rectangle set to the mean colour (0: off)", 0.0, 1.0,
       false, false, 1.0, FACET_FIELD_ACCESS(erase_probability), nullptr},
      {"augment.max_erase_area", "max-erase-area", "random erasing: the rectangle's largest share of the image",
       kMinEraseArea, 0.9, false, false, 1.0, FACET_FIELD_ACCESS(max_erase_area), nullptr},
  };
  return fields;
}

void ValidateAugmentOptions(const AugmentOptions& options) {
  for (const auto& field : AugmentFields()) field.Check(options);
}

}  // namespace facet

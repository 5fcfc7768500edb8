// A synthetic UTKFace-format data set: face-like images whose pixels depend on the labels, so that a model can
// learn age, gender and ethnicity from them (not memorise noise). For the demo and tests; seeded and fast.
// Pure functions of their seed, thread-safe. WriteSyntheticDataset throws std::runtime_error naming a file it cannot
// write, std::invalid_argument on options it cannot render.
#pragma once

#include "core/labels.h"

#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <random>
#include <string>

namespace facet {

struct SyntheticOptions {
  int count = 1000;
  int image_size = 128;  // UTKFace's crops are 200x200; smaller keeps tests fast
  uint64_t seed = 1;
  int jpeg_quality = 90;
};

// What carries each label, so a reader can judge what a model has to find:
//   ethnicity: skin tone (five well separated tones, with per-image jitter) and eye colour;
//   gender: hair length (long hair framing the face vs short) and a beard shadow for men over 16;
//   age: head size up to adulthood, hair greying from 30 to 80, and wrinkle lines whose number grows with age.
// Backgrounds, lighting, position, scale and noise vary at random.
cv::Mat RenderSyntheticFace(const FaceLabels& labels, int size, std::mt19937_64& rng);

// Writes `count` images named [age]_[gender]_[race]_[datetime].jpg.chip.jpg into `folder` (created if missing).
// Ages are log-uniform over 1..90, genders and ethnicities uniform. Returns the number written; throws
// std::runtime_error naming the file that could not be written.
int WriteSyntheticDataset(const std::string& folder, const SyntheticOptions& options);

}  // namespace facet

// A folder of UTKFace images: listing, subsetting and splitting.
// Pure functions, thread-safe. ScanUtkFaceFolder throws std::runtime_error for a folder it cannot read;
// SplitTrainValidation std::invalid_argument for a fraction outside [0, 1).
#pragma once

#include "core/labels.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace facet {

struct Sample {
  std::string path;
  FaceLabels labels;
};

struct ScanReport {
  std::string folder;
  int64_t usable = 0;
  int64_t malformed = 0;         // a .jpg whose name does not parse
  int64_t out_of_range = 0;      // parses, but a label is outside UTKFace's ranges
  std::vector<std::string> skipped_examples;  // up to 10 skipped names, for the log
  std::string Summary() const;
};

struct ScanResult {
  std::vector<Sample> samples;  // sorted by file name
  ScanReport report;
};

// Lists a folder's .jpg files and parses their names; other files (README.md, labels.csv) are ignored. Never
// opens the images: undecodable files are found (and skipped, counted) by the loader.
// Throws std::runtime_error when the folder does not exist or cannot be read.
ScanResult ScanUtkFaceFolder(const std::string& folder);

// A seeded random subset of at most max_samples (0: all), in the original order (names sort by age, so a prefix
// would be biased).
std::vector<Sample> Subsample(const std::vector<Sample>& samples, int64_t max_samples, uint64_t seed);

// Deterministic split: a seeded permutation's first ValidationCount(n, fraction) samples validate.
std::pair<std::vector<Sample>, std::vector<Sample>> SplitTrainValidation(const std::vector<Sample>& samples,
                                                                          double validation_fraction, uint64_t seed);

}  // namespace facet

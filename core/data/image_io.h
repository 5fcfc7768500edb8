// Decoding images with OpenCV, and viewing them for the LibTorch-only predictor.
#pragma once

#include "core/infer/preprocess.h"

#include <opencv2/core/mat.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace facet {

class ImageDecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Decodes JPEG/PNG/... bytes to 8-bit BGR. Throws ImageDecodeError saying why (empty, not an image, corrupt).
cv::Mat DecodeImage(std::string_view bytes);

// Reads and decodes a file. Throws ImageDecodeError naming the path.
cv::Mat ReadImageFile(const std::string& path);

// A borrowed view of an 8-bit Mat (1, 3 or 4 channels) for Predictor / PreprocessImage.
ImageView ViewOf(const cv::Mat& image);

}  // namespace facet

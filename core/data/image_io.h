// Decoding images with OpenCV, and viewing them for the LibTorch-only predictor.
// Pure functions, thread-safe. They throw ImageDecodeError (an std::invalid_argument) for bytes that are not an
// image they accept.
#pragma once

#include "core/image/image_view.h"

#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace facet {

// Bytes that are not a decodable image: bad input, so an std::invalid_argument (the server answers
// INVALID_ARGUMENT), and a type of its own for callers that skip such images (the loader).
class ImageDecodeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Width and height from a JPEG, PNG or BMP header, without decoding; nullopt for other or malformed data.
std::optional<cv::Size> PeekImageSize(std::string_view bytes);

// Decodes bytes to 8-bit BGR. Throws ImageDecodeError saying why (empty, not an image, corrupt).
// With max_pixels > 0, only JPEG, PNG and BMP are accepted and their header is read first: an image of more pixels
// (a decompression bomb) is refused before any pixel is allocated.
cv::Mat DecodeImage(std::string_view bytes, int64_t max_pixels = 0);

// Reads and decodes a file. Throws ImageDecodeError naming the path.
cv::Mat ReadImageFile(const std::string& path);

// A borrowed view of an 8-bit Mat (1, 3 or 4 channels) for the image primitives and the Predictor.
ImageView ViewOf(const cv::Mat& image);

}  // namespace facet

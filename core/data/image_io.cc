#include "core/data/image_io.h"

#include <opencv2/imgcodecs.hpp>

#include <fstream>
#include <iterator>
#include <vector>

namespace facet {

namespace {

uint32_t BigEndian(std::string_view b, size_t at, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

int32_t LittleEndian32(std::string_view b, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return static_cast<int32_t>(v);
}

std::optional<cv::Size> JpegSize(std::string_view b) {
  size_t i = 2;  // after SOI (FF D8)
  while (i + 4 <= b.size()) {
    if (static_cast<uint8_t>(b[i]) != 0xFF) return std::nullopt;
    const uint8_t marker = static_cast<uint8_t>(b[i + 1]);
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without a length
      i += 2;
      continue;
    }
    const uint32_t length = BigEndian(b, i + 2, 2);
    const bool start_of_frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (start_of_frame) {
      if (i + 9 > b.size()) return std::nullopt;
      return cv::Size(static_cast<int>(BigEndian(b, i + 7, 2)), static_cast<int>(BigEndian(b, i + 5, 2)));
    }
    if (marker == 0xDA || length < 2) return std::nullopt;  // image data before any frame header
    i += 2 + length;
  }
  return std::nullopt;
}

}  // namespace

std::optional<cv::Size> PeekImageSize(std::string_view b) {
  if (b.size() >= 24 && b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8) && b.substr(12, 4) == "IHDR") {
    const uint32_t w = BigEndian(b, 16, 4), h = BigEndian(b, 20, 4);
    if (w > INT32_MAX || h > INT32_MAX) return std::nullopt;
    return cv::Size(static_cast<int>(w), static_cast<int>(h));
  }
  if (b.size() >= 4 && static_cast<uint8_t>(b[0]) == 0xFF && static_cast<uint8_t>(b[1]) == 0xD8) return JpegSize(b);
  if (b.size() >= 26 && b.substr(0, 2) == "BM") {
    const int32_t w = LittleEndian32(b, 18), h = LittleEndian32(b, 22);
    if (w <= 0 || h == INT32_MIN) return std::nullopt;
    return cv::Size(w, h < 0 ? -h : h);
  }
  return std::nullopt;
}

cv::Mat DecodeImage(std::string_view bytes, int64_t max_pixels) {
  if (bytes.empty()) throw ImageDecodeError("empty image data");
  if (max_pixels > 0) {
    const auto size = PeekImageSize(bytes);
    if (!size) throw ImageDecodeError("cannot decode image: not a JPEG, PNG or BMP image, or its header is corrupt");
    const int64_t pixels = static_cast<int64_t>(size->width) * size->height;
    if (pixels > max_pixels) {
      throw ImageDecodeError("image is " + std::to_string(size->width) + "x" + std::to_string(size->height) + " = " +
                             std::to_string(pixels) + " pixels; the limit is " + std::to_string(max_pixels));
    }
  }
  const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat image;
  try {
    image = cv::imdecode(buffer, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw ImageDecodeError(std::string("cannot decode image: ") + e.what());
  }
  if (image.empty()) throw ImageDecodeError("cannot decode image: not a supported format, or corrupt");
  return image;
}

cv::Mat ReadImageFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ImageDecodeError("cannot open image '" + path + "'");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    return DecodeImage(bytes);
  } catch (const ImageDecodeError& e) {
    throw ImageDecodeError("'" + path + "': " + e.what());
  }
}

ImageView ViewOf(const cv::Mat& image) {
  if (image.depth() != CV_8U) throw std::invalid_argument("ViewOf needs an 8-bit image");
  return ImageView{image.data, image.rows, image.cols, image.channels(), image.step[0]};
}

}  // namespace facet

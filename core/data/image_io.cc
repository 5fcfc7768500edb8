#include "core/data/image_io.h"

#include <opencv2/imgcodecs.hpp>

#include <fstream>
#include <iterator>
#include <vector>

namespace facet {

cv::Mat DecodeImage(std::string_view bytes) {
  if (bytes.empty()) throw ImageDecodeError("empty image data");
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

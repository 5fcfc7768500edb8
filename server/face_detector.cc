#include "server/face_detector.h"

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include <stdexcept>

namespace facet::server {
namespace {

// UTKFace's chips show the whole head with some background: the Haar box (brows to chin) grown by 40% a side.
constexpr double kMarginRatio = 0.4;

}  // namespace

FaceDetector::FaceDetector(const std::string& cascade_path) : cascade_(std::make_unique<cv::CascadeClassifier>()) {
  if (!cascade_->load(cascade_path)) {
    throw std::runtime_error("cannot load face cascade '" + cascade_path + "' (Debian package opencv-data)");
  }
}

FaceDetector::~FaceDetector() = default;

std::vector<DetectedFace> FaceDetector::Detect(const cv::Mat& bgr) const {
  cv::Mat gray;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  cv::equalizeHist(gray, gray);
  std::vector<cv::Rect> boxes;
  const int min_side = std::max(24, std::min(gray.rows, gray.cols) / 20);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cascade_->detectMultiScale(gray, boxes, 1.1, 5, 0, cv::Size(min_side, min_side));
  }
  std::vector<DetectedFace> faces;
  const cv::Rect photo(0, 0, bgr.cols, bgr.rows);
  for (const auto& box : boxes) {
    const int margin = static_cast<int>(box.width * kMarginRatio);
    const cv::Rect grown = cv::Rect(box.x - margin, box.y - margin, box.width + 2 * margin, box.height + 2 * margin) & photo;
    faces.push_back({box, bgr(grown).clone()});
  }
  return faces;
}

}  // namespace facet::server

// Finds faces in uncropped photos (OpenCV Haar cascade) and crops them the way UTKFace's aligned crops look.
#pragma once

#include <opencv2/core/mat.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cv {
class CascadeClassifier;
}

namespace facet::server {

struct DetectedFace {
  cv::Rect box;  // the detector's box, in the photo's pixels
  cv::Mat crop;  // the box grown by the margin, square, clipped to the photo
};

class FaceDetector {
 public:
  // Throws std::runtime_error when the cascade file cannot be loaded.
  explicit FaceDetector(const std::string& cascade_path);
  ~FaceDetector();
  // Not thread-safe in OpenCV: calls are serialised inside.
  std::vector<DetectedFace> Detect(const cv::Mat& bgr) const;

  static constexpr const char* kDefaultCascade =
      "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";

 private:
  std::unique_ptr<cv::CascadeClassifier> cascade_;
  mutable std::mutex mutex_;
};

}  // namespace facet::server

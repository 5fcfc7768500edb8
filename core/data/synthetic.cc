#include "core/data/synthetic.h"

#include "core/util/seed.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace facet {
namespace {

double Uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

// BGR skin tones, one per ethnicity (white, black, asian, indian, other).
const cv::Scalar kSkinTones[kNumEthnicities] = {
    {196, 210, 240}, {45, 65, 95}, {150, 195, 225}, {85, 130, 175}, {120, 160, 200}};
const cv::Scalar kEyeColours[kNumEthnicities] = {
    {160, 110, 40}, {20, 30, 40}, {30, 40, 60}, {30, 50, 70}, {40, 90, 60}};

cv::Scalar Jitter(const cv::Scalar& c, double amount, std::mt19937_64& rng) {
  return cv::Scalar(std::clamp(c[0] + Uniform(rng, -amount, amount), 0.0, 255.0),
                    std::clamp(c[1] + Uniform(rng, -amount, amount), 0.0, 255.0),
                    std::clamp(c[2] + Uniform(rng, -amount, amount), 0.0, 255.0));
}

}  // namespace

cv::Mat RenderSyntheticFace(const FaceLabels& labels, int size, std::mt19937_64& rng) {
  const double s = size / 100.0;  // drawing is laid out on a 100x100 canvas, then scaled
  cv::Mat img(size, size, CV_8UC3, Jitter(cv::Scalar(128, 128, 128), 90, rng));
  const double age = labels.age;

  // Head: children have smaller heads; the rest is random placement.
  const double growth = std::min(1.0, 0.7 + 0.3 * age / 18.0);
  const cv::Point centre(static_cast<int>((50 + Uniform(rng, -4, 4)) * s), static_cast<int>((52 + Uniform(rng, -4, 4)) * s));
  const cv::Size axes(static_cast<int>(30 * growth * s), static_cast<int>(38 * growth * s));
  const cv::Scalar skin = Jitter(kSkinTones[labels.ethnicity], 12, rng);

  // Hair greys with age: dark until 30, white by 80.
  const double grey = std::clamp((age - 30.0) / 50.0, 0.0, 1.0);
  const cv::Scalar hair_base = Jitter(cv::Scalar(25, 30, 40), 15, rng);
  const cv::Scalar hair = hair_base * (1 - grey) + cv::Scalar(225, 225, 225) * grey;
  const bool female = labels.gender == 1;
  if (female) {  // long hair: a wide block behind the head down to the shoulders
    cv::rectangle(img, cv::Point(centre.x - axes.width - static_cast<int>(8 * s), centre.y - axes.height / 2),
                  cv::Point(centre.x + axes.width + static_cast<int>(8 * s), size - 1), hair, cv::FILLED);
  }
  cv::ellipse(img, centre, axes, 0, 0, 360, skin, cv::FILLED, cv::LINE_AA);
  // Hair on top of the head (short for men).
  cv::ellipse(img, cv::Point(centre.x, centre.y - axes.height / 2), cv::Size(axes.width + 2, axes.height / 2 + 2), 0,
              180, 360, hair, cv::FILLED, cv::LINE_AA);

  // Eyes, nose, mouth.
  const int eye_dy = static_cast<int>(axes.height * 0.05), eye_dx = static_cast<int>(axes.width * 0.4);
  const int eye_r = std::max(1, static_cast<int>(3.5 * s));
  const cv::Scalar eye = Jitter(kEyeColours[labels.ethnicity], 10, rng);
  for (int side : {-1, 1}) {
    cv::circle(img, cv::Point(centre.x + side * eye_dx, centre.y - eye_dy), eye_r + 1, cv::Scalar(240, 240, 240),
               cv::FILLED, cv::LINE_AA);
    cv::circle(img, cv::Point(centre.x + side * eye_dx, centre.y - eye_dy), eye_r, eye, cv::FILLED, cv::LINE_AA);
  }
  const cv::Scalar shade = skin * 0.7;
  cv::line(img, cv::Point(centre.x, centre.y), cv::Point(centre.x, centre.y + axes.height / 5), shade,
           std::max(1, static_cast<int>(2 * s)), cv::LINE_AA);
  cv::ellipse(img, cv::Point(centre.x, centre.y + axes.height * 2 / 5), cv::Size(axes.width / 3, std::max(1, axes.height / 12)),
              0, 0, 180, female ? cv::Scalar(80, 60, 190) : cv::Scalar(70, 70, 120), std::max(1, static_cast<int>(2 * s)),
              cv::LINE_AA);

  // Beard shadow for adult men.
  if (!female && age >= 16) {
    cv::ellipse(img, cv::Point(centre.x, centre.y + axes.height * 3 / 5), cv::Size(axes.width * 2 / 3, axes.height / 4),
                0, 0, 180, skin * 0.55, cv::FILLED, cv::LINE_AA);
  }
  // Wrinkles: one forehead line per decade past 25.
  const int wrinkles = static_cast<int>(std::clamp((age - 25.0) / 10.0, 0.0, 6.0));
  for (int i = 0; i < wrinkles; ++i) {
    const int y = centre.y - axes.height / 4 - static_cast<int>(i * 2.2 * s);
    cv::line(img, cv::Point(centre.x - axes.width / 2, y), cv::Point(centre.x + axes.width / 2, y), skin * 0.6,
             std::max(1, static_cast<int>(s)), cv::LINE_AA);
  }

  // Lighting and sensor noise.
  cv::Mat noise(img.size(), CV_16SC3);
  cv::randn(noise, 0, 8);
  cv::Mat img16;
  img.convertTo(img16, CV_16SC3, Uniform(rng, 0.85, 1.15), Uniform(rng, -15, 15));
  img16 += noise;
  img16.convertTo(img, CV_8UC3);
  return img;
}

int WriteSyntheticDataset(const std::string& folder, const SyntheticOptions& options) {
  if (options.count < 1 || options.image_size < 16) {
    throw std::invalid_argument("synthetic data needs count >= 1 and image_size >= 16");
  }
  std::filesystem::create_directories(folder);
  const std::vector<int> jpeg = {cv::IMWRITE_JPEG_QUALITY, options.jpeg_quality};
  for (int i = 0; i < options.count; ++i) {
    std::mt19937_64 rng(MixSeed(options.seed, static_cast<uint64_t>(i)));
    cv::theRNG().state = MixSeed(options.seed ^ 0xC0FFEE, static_cast<uint64_t>(i));  // cv::randn's noise
    FaceLabels labels;
    labels.age = static_cast<int>(std::lround(std::exp(Uniform(rng, 0.0, std::log(90.0)))));
    labels.gender = static_cast<int>(rng() % kNumGenders);
    labels.ethnicity = static_cast<int>(rng() % kNumEthnicities);
    const cv::Mat image = RenderSyntheticFace(labels, options.image_size, rng);
    char datetime[32];
    std::snprintf(datetime, sizeof(datetime), "20260101%09d", i);
    const std::string path = (std::filesystem::path(folder) / MakeUtkFaceName(labels, datetime)).string();
    if (!cv::imwrite(path, image, jpeg)) throw std::runtime_error("cannot write synthetic image '" + path + "'");
  }
  return options.count;
}

}  // namespace facet

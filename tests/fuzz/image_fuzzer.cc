// libFuzzer target: a Predict image's path through the server, bytes to model input: header check, decode within
// the limits, preprocessing. Refusals (StatusError, ImageDecodeError) are expected; any other exception, a crash
// or a sanitizer report is a bug.
#include "core/data/image_io.h"
#include "core/infer/preprocess.h"
#include "server/services.h"
#include "server/status.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  facet::server::InferenceLimits limits;
  limits.max_image_bytes = 1 << 20;
  limits.max_image_pixels = 4'000'000;  // far below the default, so bombs are cheap to reach
  try {
    const cv::Mat image = facet::server::DecodeRequestImage(std::string(reinterpret_cast<const char*>(data), size), limits);
    if (image.empty() || static_cast<int64_t>(image.cols) * image.rows > limits.max_image_pixels) std::abort();
    const auto input = facet::PreprocessImage(facet::ViewOf(image), 32);
    if (input.size(0) != 3 || input.size(1) != 32 || input.size(2) != 32) std::abort();
  } catch (const facet::server::StatusError&) {
  } catch (const facet::ImageDecodeError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}

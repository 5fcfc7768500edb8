// A closed-loop Predict load generator: `concurrency` callers, each sending its next request as soon as the last one
// is answered, for a fixed time. Used by `facetctl bench predict`.
// RunPredictLoad blocks its caller and runs the callers on threads of its own; it throws std::invalid_argument on
// options it cannot run (no images, concurrency < 1). Failed requests are counted by code, not thrown.
#pragma once

#include "client/facet_client.h"

#include <map>
#include <string>
#include <vector>

namespace facet::client {

struct LoadOptions {
  int concurrency = 8;
  double seconds = 10;
  double warm_up_seconds = 1;  // requests finishing before this are not counted
  int images_per_request = 1;
};

struct LoadResult {
  int concurrency = 0;
  double seconds = 0;          // measured window
  int64_t requests = 0;        // answered OK in the window
  int64_t images = 0;
  std::map<std::string, int64_t> errors;  // by gRPC code name
  double images_per_s = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
};

// `images` are encoded image files, used round-robin. Each caller has its own channel, as separate clients would.
LoadResult RunPredictLoad(const ConnectionOptions& connection, const std::vector<std::string>& images,
                          const LoadOptions& options);

}  // namespace facet::client

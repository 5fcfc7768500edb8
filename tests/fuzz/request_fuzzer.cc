// libFuzzer target: the validation of every RPC's request, on the server's real job manager, model registry and
// data root (in a temporary state folder). The first byte picks the RPC, the rest is its request message in
// protobuf wire format. Refusals with a gRPC status other than INTERNAL are expected; INTERNAL (a request the
// validation let through to fail later), any other exception, a crash or a sanitizer report is a bug.
#include "core/data/image_io.h"
#include "core/data/synthetic.h"
#include "facet/v1/facet.pb.h"
#include "server/data_root.h"
#include "server/job_manager.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/services.h"
#include "server/status.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

namespace {

namespace fs = std::filesystem;
using namespace facet;
using namespace facet::server;

// The server's parts, built once per fuzzing process. The job manager is never started: submitted jobs only queue.
struct Server {
  Server() {
    root = fs::temp_directory_path() / ("facet-request-fuzzer-" + std::to_string(::getpid()));
    fs::remove_all(root);
    // libFuzzer ends with exit(), and this server is never destroyed (it lives as long as the process), so its
    // directory goes at exit. A crash leaves it, beside the crashing input.
    static fs::path directory_at_exit;
    directory_at_exit = root;
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(directory_at_exit, ignored);
    });
    WriteSyntheticDataset((root / "data" / "faces").string(), {/*count=*/24, /*image_size=*/32});
    fs::create_directories(root / "data" / "empty");
    metrics = std::make_unique<Metrics>("");
    store = std::make_unique<JobStore>((root / "facet.db").string());
    data_root = std::make_unique<DataRoot>((root / "data").string());
    models = std::make_unique<ModelRegistry>(*store, (root / "models").string(), PredictorOptions{},
                                             [](const std::string&) {});
    JobManagerOptions options;
    options.state_dir = root.string();
    jobs = std::make_unique<JobManager>(options, *store, *data_root, *models, *metrics);
  }
  fs::path root;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<JobStore> store;
  std::unique_ptr<DataRoot> data_root;
  std::unique_ptr<ModelRegistry> models;
  std::unique_ptr<JobManager> jobs;
};

template <typename Message>
bool Parse(const uint8_t* data, size_t size, Message* message) {
  return message->ParseFromArray(data, static_cast<int>(size));
}

void Call(Server& s, uint8_t which, const uint8_t* data, size_t size) {
  switch (which % 9) {
    case 0: {
      v1::StartTrainingRequest r;
      if (Parse(data, size, &r)) s.jobs->Submit(r.config());
      return;
    }
    case 1: {
      v1::GetJobRequest r;
      if (Parse(data, size, &r)) s.jobs->Get(r.id());
      return;
    }
    case 2: {
      v1::ListJobsRequest r;
      std::string next;
      if (Parse(data, size, &r)) s.jobs->List(r.state(), r.page_size(), r.page_token(), &next);
      return;
    }
    case 3: {
      v1::CancelJobRequest r;
      if (Parse(data, size, &r)) s.jobs->Cancel(r.id());
      return;
    }
    case 4: {
      v1::GetModelRequest r;
      if (Parse(data, size, &r)) s.models->Get(r.id());
      return;
    }
    case 5: {
      v1::ActivateModelRequest r;
      if (Parse(data, size, &r)) s.models->Activate(r.id());
      return;
    }
    case 6: {
      v1::RegisterModelRequest r;
      if (Parse(data, size, &r)) s.models->Register(s.data_root->Resolve(r.path(), "path", PathKind::kFile), r.path());
      return;
    }
    case 7: {
      v1::PredictRequest r;
      if (!Parse(data, size, &r)) return;
      InferenceLimits limits;
      limits.max_images_per_request = 8;
      limits.max_image_pixels = 4'000'000;
      CheckPredictRequest(r, limits);
      for (const auto& image : r.images()) {
        try {
          DecodeRequestImage(image, limits);
        } catch (const ImageDecodeError&) {  // answered per image
        }
      }
      return;
    }
    case 8: {
      v1::WatchJobRequest r;
      if (Parse(data, size, &r)) s.jobs->Unsubscribe(r.id(), s.jobs->Subscribe(r.id(), [](const v1::JobEvent&, bool) {}));
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Server* server = new Server();
  if (size < 1) return 0;
  try {
    Call(*server, data[0], data + 1, size - 1);
  } catch (const std::exception& e) {
    const grpc::Status status = ToStatus(e);
    if (status.error_code() == grpc::StatusCode::INTERNAL) {
      std::fprintf(stderr, "request %d was let through validation and failed as INTERNAL: %s\n", data[0] % 9, e.what());
      std::abort();
    }
  }
  return 0;
}

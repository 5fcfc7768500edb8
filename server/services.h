// The gRPC services: thin callback-API shells over the job manager, the model registry and the batcher.
// Thread-safe: gRPC calls the handlers on its own threads at once. No exception leaves a handler: each becomes the
// call's status through ToStatus (server/status.h).
#pragma once

#include "facet/v1/facet.grpc.pb.h"
#include "server/auth.h"
#include "server/batcher.h"
#include "server/face_detector.h"
#include "server/job_manager.h"
#include "server/metrics.h"
#include "server/model_registry.h"

#include <memory>

namespace facet::server {

class TrainingServiceImpl final : public v1::TrainingService::CallbackService {
 public:
  // `auth` null: every caller may call every method (the server then listens on loopback only, unless told).
  // `primary` set: this server is a Predict replica of that address, and refuses StartTraining.
  TrainingServiceImpl(JobManager& jobs, const TokenAuthenticator* auth, std::string primary = "")
      : jobs_(jobs), auth_(auth), primary_(std::move(primary)) {}
  grpc::ServerUnaryReactor* StartTraining(grpc::CallbackServerContext* context, const v1::StartTrainingRequest* request,
                                          v1::Job* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context, const v1::GetJobRequest* request,
                                   v1::Job* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context, const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* context,
                                                   const v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context, const v1::CancelJobRequest* request,
                                      v1::Job* response) override;

 private:
  JobManager& jobs_;
  const TokenAuthenticator* auth_;
  const std::string primary_;
};

class ModelServiceImpl final : public v1::ModelService::CallbackService {
 public:
  // `primary` set: a Predict replica of that address; it refuses ActivateModel and RegisterModel.
  ModelServiceImpl(ModelRegistry& models, const DataRoot& data_root, const TokenAuthenticator* auth,
                   std::string primary = "")
      : models_(models), data_root_(data_root), auth_(auth), primary_(std::move(primary)) {}
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context, const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
                                     v1::Model* response) override;
  grpc::ServerUnaryReactor* ActivateModel(grpc::CallbackServerContext* context,
                                          const v1::ActivateModelRequest* request, v1::Model* response) override;
  grpc::ServerUnaryReactor* RegisterModel(grpc::CallbackServerContext* context,
                                          const v1::RegisterModelRequest* request, v1::Model* response) override;
  grpc::ServerWriteReactor<v1::Model>* WatchActiveModel(grpc::CallbackServerContext* context,
                                                        const v1::WatchActiveModelRequest* request) override;
  grpc::ServerWriteReactor<v1::ModelChunk>* DownloadModel(grpc::CallbackServerContext* context,
                                                          const v1::DownloadModelRequest* request) override;

 private:
  void RefuseOnReplica(const char* what) const;
  ModelRegistry& models_;
  const DataRoot& data_root_;
  const TokenAuthenticator* auth_;
  const std::string primary_;
};

struct InferenceLimits {
  int max_images_per_request = 64;
  size_t max_image_bytes = 10 << 20;
  int64_t max_image_pixels = 40'000'000;  // width * height, read from the header before decoding
};

// Refuses, with INVALID_ARGUMENT, a Predict request with no image or more than the limit allows.
void CheckPredictRequest(const v1::PredictRequest& request, const InferenceLimits& limits);
// Decodes one request image within the byte and pixel limits (read from the header before decoding). Throws
// StatusError INVALID_ARGUMENT naming the limit, or ImageDecodeError (an std::invalid_argument) from the decoder.
cv::Mat DecodeRequestImage(const std::string& bytes, const InferenceLimits& limits);

class InferenceServiceImpl final : public v1::InferenceService::CallbackService {
 public:
  InferenceServiceImpl(ModelRegistry& models, DynamicBatcher& batcher, const FaceDetector* detector,
                       Metrics& metrics, InferenceLimits limits, const TokenAuthenticator* auth)
      : models_(models), batcher_(batcher), detector_(detector), metrics_(metrics), limits_(limits), auth_(auth) {}
  // Decodes and preprocesses on the calling gRPC thread (milliseconds of CPU work), then hands the images to the
  // batcher and returns: the forward pass never holds a gRPC thread. The reactor finishes from the batcher thread.
  grpc::ServerUnaryReactor* Predict(grpc::CallbackServerContext* context, const v1::PredictRequest* request,
                                    v1::PredictResponse* response) override;

 private:
  ModelRegistry& models_;
  DynamicBatcher& batcher_;
  const FaceDetector* detector_;  // null when face detection is unavailable
  Metrics& metrics_;
  const InferenceLimits limits_;
  const TokenAuthenticator* auth_;
};

}  // namespace facet::server

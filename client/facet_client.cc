#include "client/facet_client.h"

#include <grpcpp/health_check_service_interface.h>

#include <fstream>
#include <sstream>

#include "grpc/health/v1/health.grpc.pb.h"

namespace facet::client {
namespace {

std::string ReadPem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read '" + path + "'");
  std::ostringstream pem;
  pem << in.rdbuf();
  return pem.str();
}

std::shared_ptr<grpc::Channel> MakeChannel(const ConnectionOptions& o) {
  grpc::ChannelArguments args;
  if (!o.load_balancing.empty()) args.SetLoadBalancingPolicyName(o.load_balancing);
  const bool tls = o.tls || !o.tls_ca_file.empty() || !o.tls_cert_file.empty() || !o.tls_server_name.empty();
  if (!tls) return grpc::CreateCustomChannel(o.address, grpc::InsecureChannelCredentials(), args);
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    throw std::runtime_error("a client certificate needs its key, and a key its certificate");
  }
  grpc::SslCredentialsOptions ssl;
  if (!o.tls_ca_file.empty()) ssl.pem_root_certs = ReadPem(o.tls_ca_file);
  if (!o.tls_cert_file.empty()) {
    ssl.pem_cert_chain = ReadPem(o.tls_cert_file);
    ssl.pem_private_key = ReadPem(o.tls_key_file);
  }
  if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  return grpc::CreateCustomChannel(o.address, grpc::SslCredentials(ssl), args);
}

// Takes the response by value after the call has filled it (never pass the call and its response in one
// argument list: their evaluation order is unspecified).
template <typename Response>
Response Check(const std::string& method, const grpc::Status& status, Response response) {
  if (!status.ok()) throw RpcError(method, status);
  return response;
}

}  // namespace

RpcError::RpcError(const std::string& method, const grpc::Status& status)
    : std::runtime_error(method + ": " + StatusCodeName(status.error_code()) + ": " + status.error_message()),
      code_(status.error_code()) {}

FacetClient::FacetClient(const ConnectionOptions& options)
    : channel_(MakeChannel(options)),
      training_(v1::TrainingService::NewStub(channel_)),
      models_(v1::ModelService::NewStub(channel_)),
      inference_(v1::InferenceService::NewStub(channel_)),
      timeout_(options.timeout),
      authorization_(options.token.empty() ? "" : "Bearer " + options.token) {}

namespace {
ConnectionOptions PlainConnection(const std::string& address, std::chrono::milliseconds timeout) {
  ConnectionOptions options;
  options.address = address;
  options.timeout = timeout;
  return options;
}
}  // namespace

FacetClient::FacetClient(const std::string& address, std::chrono::milliseconds timeout)
    : FacetClient(PlainConnection(address, timeout)) {}

std::unique_ptr<grpc::ClientContext> FacetClient::Context(std::optional<std::chrono::milliseconds> timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout) context->set_deadline(std::chrono::system_clock::now() + *timeout);
  if (!authorization_.empty()) context->AddMetadata("authorization", authorization_);
  return context;
}

v1::Job FacetClient::StartTraining(const v1::TrainingConfig& config) {
  v1::StartTrainingRequest request;
  *request.mutable_config() = config;
  v1::Job job;
  auto context = Context();
  const grpc::Status status = training_->StartTraining(context.get(), request, &job);
  return Check("StartTraining", status, std::move(job));
}

v1::Job FacetClient::GetJob(const std::string& id) {
  v1::GetJobRequest request;
  request.set_id(id);
  v1::Job job;
  auto context = Context();
  const grpc::Status status = training_->GetJob(context.get(), request, &job);
  return Check("GetJob", status, std::move(job));
}

v1::ListJobsResponse FacetClient::ListJobs(v1::JobState state, int page_size, const std::string& page_token) {
  v1::ListJobsRequest request;
  request.set_state(state);
  request.set_page_size(page_size);
  request.set_page_token(page_token);
  v1::ListJobsResponse response;
  auto context = Context();
  const grpc::Status status = training_->ListJobs(context.get(), request, &response);
  return Check("ListJobs", status, std::move(response));
}

v1::Job FacetClient::CancelJob(const std::string& id) {
  v1::CancelJobRequest request;
  request.set_id(id);
  v1::Job job;
  auto context = Context();
  const grpc::Status status = training_->CancelJob(context.get(), request, &job);
  return Check("CancelJob", status, std::move(job));
}

void FacetClient::WatchJob(const std::string& id, const std::function<void(const v1::JobEvent&)>& on_event) {
  v1::WatchJobRequest request;
  request.set_id(id);
  const auto context = Context(std::nullopt);  // a watch lasts as long as the job
  auto reader = training_->WatchJob(context.get(), request);
  v1::JobEvent event;
  while (reader->Read(&event)) on_event(event);
  const grpc::Status status = reader->Finish();
  if (!status.ok()) throw RpcError("WatchJob", status);
}

void FacetClient::WatchActiveModel(const std::function<void(const v1::Model&)>& on_model, CallCanceller* canceller) {
  const auto context = Context(std::nullopt);  // a follower watches for as long as it runs
  const CallCanceller::Attachment attachment(canceller, context.get());  // detached before context is freed
  auto reader = models_->WatchActiveModel(context.get(), v1::WatchActiveModelRequest());
  v1::Model model;
  while (reader->Read(&model)) {
    try {
      on_model(model);
    } catch (...) {  // end the stream properly before the error leaves
      context->TryCancel();
      reader->Finish();
      throw;
    }
  }
  const grpc::Status status = reader->Finish();
  if (status.error_code() == grpc::StatusCode::CANCELLED && canceller && canceller->cancelled()) return;
  if (!status.ok()) throw RpcError("WatchActiveModel", status);
}

std::string FacetClient::DownloadModel(const std::string& id, const std::string& path, int64_t max_bytes) {
  v1::DownloadModelRequest request;
  request.set_id(id);
  // Large files take longer than one call's timeout: at least 10 minutes.
  const auto context = Context(std::max(timeout_, std::chrono::milliseconds(600000)));
  auto reader = models_->DownloadModel(context.get(), request);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  v1::ModelChunk chunk;
  std::string sha256;
  int64_t total = -1, received = 0;
  while (reader->Read(&chunk)) {
    if (total < 0) {
      total = chunk.total_bytes();
      sha256 = chunk.sha256();
      if (total > max_bytes) {
        context->TryCancel();
        reader->Finish();
        throw std::runtime_error("model " + id + " is " + std::to_string(total) + " bytes, over the limit of " +
                                 std::to_string(max_bytes));
      }
    }
    received += static_cast<int64_t>(chunk.data().size());
    if (received > total) {
      context->TryCancel();
      reader->Finish();
      throw std::runtime_error("model " + id + ": more bytes than the announced " + std::to_string(total));
    }
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) throw RpcError("DownloadModel", status);
  out.close();
  if (!out || received != total) {
    throw std::runtime_error("model " + id + ": received " + std::to_string(received) + " of " +
                             std::to_string(total) + " bytes");
  }
  return sha256;
}

v1::ListModelsResponse FacetClient::ListModels() {
  v1::ListModelsResponse response;
  auto context = Context();
  const grpc::Status status = models_->ListModels(context.get(), v1::ListModelsRequest(), &response);
  return Check("ListModels", status, std::move(response));
}

v1::Model FacetClient::GetModel(const std::string& id) {
  v1::GetModelRequest request;
  request.set_id(id);
  v1::Model model;
  auto context = Context();
  const grpc::Status status = models_->GetModel(context.get(), request, &model);
  return Check("GetModel", status, std::move(model));
}

v1::Model FacetClient::ActivateModel(const std::string& id) {
  v1::ActivateModelRequest request;
  request.set_id(id);
  v1::Model model;
  auto context = Context();
  const grpc::Status status = models_->ActivateModel(context.get(), request, &model);
  return Check("ActivateModel", status, std::move(model));
}

v1::Model FacetClient::RegisterModel(const std::string& path) {
  v1::RegisterModelRequest request;
  request.set_path(path);
  v1::Model model;
  auto context = Context();
  const grpc::Status status = models_->RegisterModel(context.get(), request, &model);
  return Check("RegisterModel", status, std::move(model));
}

v1::PredictResponse FacetClient::Predict(const v1::PredictRequest& request) {
  v1::PredictResponse response;
  auto context = Context();
  const grpc::Status status = inference_->Predict(context.get(), request, &response);
  return Check("Predict", status, std::move(response));
}

std::string FacetClient::Health(const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  auto context = Context();
  const grpc::Status status = stub->Check(context.get(), request, &response);
  Check("Health.Check", status, 0);
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
}

}  // namespace facet::client

// Predict replicas: two `facet-server --follow` processes behind gRPC's own round_robin load balancer follow a
// primary's active model; a switch on the primary reaches both without a failed request.
#include "core/data/synthetic.h"
#include "server/job_store.h"
#include "server/model_follower.h"
#include "server/model_registry.h"
#include "tests/server_process.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace facet {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::ServerProcess;

// How long a replica may take to serve a newly activated model (download, verify, load): stated in docs/deploy.md.
constexpr double kSwitchSeconds = 10.0;

v1::PredictRequest OneFace(const std::string& folder) {
  v1::PredictRequest request;
  request.add_images(ReadFile(fs::directory_iterator(folder)->path()));
  return request;
}

std::string ServedModel(client::FacetClient& client, const v1::PredictRequest& request) {
  try {
    return client.Predict(request).model_id();
  } catch (const std::exception&) {
    return "";
  }
}

// facet_predict_requests_total{code="OK"} of a server, from its /metrics.
double AnsweredRequests(const ServerProcess& server) {
  const std::string text = testing::HttpGet(server.metrics_address(), "/metrics");
  const std::string key = "facet_predict_requests_total{code=\"OK\"} ";
  const auto at = text.find(key);
  return at == std::string::npos ? 0.0 : std::stod(text.substr(at + key.size()));
}

bool WaitForModel(client::FacetClient& client, const v1::PredictRequest& request, const std::string& id,
                  double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ServedModel(client, request) == id) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(PredictReplicas, FollowThePrimaryAndSwitchModelsWithoutAFailedRequest) {
  testing::TempDir root;
  const std::string data = root / "data";
  WriteSyntheticDataset(data + "/faces", {/*count=*/96, /*image_size=*/40});
  ServerProcess primary(data, root / "primary");
  const v1::TrainingConfig config = testing::TinyJob(0, 1);
  std::string first = primary.client().StartTraining(config).id();
  primary.client().WatchJob(first, [](const v1::JobEvent&) {});
  const v1::Job job = primary.client().GetJob(first);
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  const std::string model_a = job.model_id();
  // A second model: the same file registered again gets its own id, which is what replicas key on.
  fs::copy_file(root / "primary/models/" + model_a + ".pt", data + "/second.pt");
  const std::string model_b = primary.client().RegisterModel("second.pt").id();
  primary.client().ActivateModel(model_a);

  ServerProcess replica1(data, root / "replica1", std::vector<std::string>{"--follow", primary.address()});
  ServerProcess replica2(data, root / "replica2", std::vector<std::string>{"--follow", primary.address()});
  const v1::PredictRequest request = OneFace(data + "/faces");
  ASSERT_TRUE(WaitForModel(replica1.client(), request, model_a, 30)) << replica1.Log();
  ASSERT_TRUE(WaitForModel(replica2.client(), request, model_a, 30)) << replica2.Log();
  EXPECT_EQ(replica1.client().Health("facet.v1.InferenceService"), "SERVING");

  // Clients reach the replicas through gRPC's standard round_robin policy over both addresses.
  client::ConnectionOptions balanced;
  balanced.address = "ipv4:" + replica1.address() + "," + replica2.address();
  balanced.load_balancing = "round_robin";
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0}, answered{0};
  std::mutex seen_mutex;
  std::map<std::string, int> seen;  // model id -> answers
  std::string first_error;
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&] {
      client::FacetClient client(balanced);
      while (!stop) {
        try {
          const auto response = client.Predict(request);
          ++answered;
          std::lock_guard<std::mutex> lock(seen_mutex);
          ++seen[response.model_id()];
        } catch (const std::exception& e) {
          ++failed;
          std::lock_guard<std::mutex> lock(seen_mutex);
          if (first_error.empty()) first_error = e.what();
        }
      }
    });
  }
  const double before1 = AnsweredRequests(replica1), before2 = AnsweredRequests(replica2);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  primary.client().ActivateModel(model_b);
  const auto switched = std::chrono::steady_clock::now();
  const bool both = WaitForModel(replica1.client(), request, model_b, kSwitchSeconds) &&
                    WaitForModel(replica2.client(), request, model_b, kSwitchSeconds);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - switched).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& t : clients) t.join();

  EXPECT_TRUE(both) << "replicas did not switch within " << kSwitchSeconds << " s\n" << replica1.Log();
  std::cout << "both replicas served the new model " << seconds << " s after ActivateModel; " << answered.load()
            << " requests answered during the switch\n";
  EXPECT_EQ(failed.load(), 0) << first_error;
  // round_robin spread the clients' calls over both replicas (each also got a few direct polls above).
  EXPECT_GT(AnsweredRequests(replica1) - before1, answered.load() / 4);
  EXPECT_GT(AnsweredRequests(replica2) - before2, answered.load() / 4);
  EXPECT_GT(seen[model_a], 0);
  EXPECT_GT(seen[model_b], 0);

  // A replica takes no training and no model changes: those belong to the primary.
  EXPECT_EQ(testing::CodeOf([&] { replica1.client().StartTraining(config); }),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(testing::CodeOf([&] { replica1.client().ActivateModel(model_a); }),
            grpc::StatusCode::FAILED_PRECONDITION);
  // What it serves is byte for byte the primary's file, checked against the recorded SHA-256.
  EXPECT_EQ(replica1.client().GetModel(model_b).sha256(), primary.client().GetModel(model_b).sha256());
  EXPECT_EQ(ReadFile(root / "replica1/models/" + model_b + ".pt"), ReadFile(root / "primary/models/" + model_b + ".pt"));
}

TEST(PredictReplicas, KeepServingWhileThePrimaryIsDown) {
  testing::TempDir root;
  const std::string data = root / "data";
  WriteSyntheticDataset(data + "/faces", {/*count=*/64, /*image_size=*/40});
  auto primary = std::make_unique<ServerProcess>(data, root / "primary");
  const v1::TrainingConfig config = testing::TinyJob(0, 1);
  const std::string id = primary->client().StartTraining(config).id();
  primary->client().WatchJob(id, [](const v1::JobEvent&) {});
  const std::string model = primary->client().GetJob(id).model_id();
  primary->client().ActivateModel(model);
  ServerProcess replica(data, root / "replica", std::vector<std::string>{"--follow", primary->address()});
  const v1::PredictRequest request = OneFace(data + "/faces");
  ASSERT_TRUE(WaitForModel(replica.client(), request, model, 30)) << replica.Log();
  primary.reset();  // the primary goes away: the replica keeps its model and keeps trying to reconnect
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ServedModel(replica.client(), request), model);
  EXPECT_EQ(replica.client().Health("facet.v1.InferenceService"), "SERVING");
  EXPECT_NE(replica.Log().find("retrying in"), std::string::npos) << replica.Log();
}

// A follower is destroyed at every point of its watch: connecting to a live primary, waiting on its stream,
// failing against an address where nothing listens, and after the primary went away under it. The destructor
// cancels the watch through a CallCanceller that the watch detaches before its context is freed; under ASan
// (make test-sanitize) a cancel that reached a freed context fails here.
TEST(ModelFollower, StopsWhereverItsWatchIs) {
  testing::TempDir root;
  fs::create_directories(root / "data");
  server::JobStore store(root / "replica.db");
  server::ModelRegistry models(store, root / "models", PredictorOptions{}, [](const std::string&) {});
  auto primary = std::make_unique<ServerProcess>(root / "data", root / "primary");
  const auto options = [&](const std::string& address) {
    server::FollowerOptions o;
    o.primary.address = address;
    o.download_dir = root / "downloads";
    o.max_backoff = std::chrono::milliseconds(20);
    return o;
  };
  // Liveness, not speed: a stop must not wait for a watch that no longer exists, or for a whole backoff.
  const auto seconds_to_stop = [&](const std::string& address, int i) {
    auto follower = std::make_unique<server::ModelFollower>(options(address), models);
    std::this_thread::sleep_for(std::chrono::microseconds(300 * (i % 10)));  // a different point each time
    const auto stopping = std::chrono::steady_clock::now();
    follower.reset();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - stopping).count();
  };
  for (int i = 0; i < 40; ++i) {
    EXPECT_LT(seconds_to_stop(primary->address(), i), 5.0) << "following a live primary, round " << i;
    EXPECT_LT(seconds_to_stop("127.0.0.1:1", i), 5.0) << "following an unreachable address, round " << i;
  }
  std::vector<std::unique_ptr<server::ModelFollower>> followers;
  for (int i = 0; i < 8; ++i) {
    followers.push_back(std::make_unique<server::ModelFollower>(options(primary->address()), models));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  primary.reset();  // every watch ends under its follower
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(500 * i));
    followers[i].reset();
  }
  EXPECT_EQ(models.Active(), nullptr);  // nothing was active on the primary, so nothing was followed
}

}  // namespace
}  // namespace facet

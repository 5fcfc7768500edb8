// Data-parallel training over c10d Gloo on loopback: real processes (tests/distributed_probe.cc) for the core, the
// real facet-server for the service.
#include "core/data/synthetic.h"
#include "core/distributed/distributed_group.h"
#include "tests/server_process.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace facet {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::RunCommand;
using testing::ServerProcess;

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<at::Tensor> LoadParameters(const std::string& path) {
  std::vector<at::Tensor> params;
  torch::load(params, path);
  return params;
}

class DistributedTraining : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!DistributedTrainingAvailable()) return;
    dir_ = new testing::TempDir();
    // 88 faces: 66 train (4 global batches of 16), 22 validate (11 per rank).
    WriteSyntheticDataset(*dir_ / "faces", {/*count=*/88, /*image_size=*/40});
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!DistributedTrainingAvailable()) GTEST_SKIP() << "this LibTorch build has no c10d Gloo (install libgloo-dev)";
  }

  // Runs `world` probes side by side; returns their exit statuses, in rank order.
  static std::vector<int> RunProbes(int world, int global_batch, int epochs, const std::string& out,
                                    int die_at_step_of_rank1 = 0, const std::string& environment = "") {
    const int port = testing::FreeLoopbackPort();
    std::ostringstream script;
    for (int r = 0; r < world; ++r) {
      script << environment << " " << FACET_PROBE_BINARY << " " << *dir_ / "faces" << " " << world << " " << r << " " << port << " "
             << global_batch << " " << epochs << " " << (r == 1 ? die_at_step_of_rank1 : 0) << " " << out << r
             << " > " << out << r << ".log 2>&1 & p" << r << "=$!; ";
    }
    for (int r = 0; r < world; ++r) script << "wait $p" << r << "; echo status $?; ";
    std::string text;
    RunCommand("bash -c '" + script.str() + "'", &text);
    std::vector<int> statuses;
    std::istringstream in(text);
    for (std::string word; in >> word;) {
      if (word == "status") {
        int s = -1;
        in >> s;
        statuses.push_back(s);
      }
    }
    return statuses;
  }

  static testing::TempDir* dir_;
};
testing::TempDir* DistributedTraining::dir_ = nullptr;

TEST_F(DistributedTraining, RanksHoldIdenticalWeightsAfterEveryStep) {
  const std::string out = *dir_ / "identical";
  ASSERT_EQ(RunProbes(2, 16, 2, out), (std::vector<int>{0, 0})) << ReadFile(out + "0.log") << ReadFile(out + "1.log");
  const auto rank0 = Lines(out + "0.steps"), rank1 = Lines(out + "1.steps");
  ASSERT_EQ(rank0.size(), 2u * 4 + 2) << "2 epochs of 4 steps, and 2 epoch lines";
  // Every line: the step's parameter digest, and at each epoch's end the BatchNorm statistics and validation over
  // both ranks' halves of the validation set (n = all 22).
  EXPECT_EQ(rank0, rank1);
  EXPECT_NE(rank0[0], rank0[1]) << "the weights must change from step to step";
  EXPECT_NE(rank0[4].find(" n 22"), std::string::npos) << rank0[4];
}

// Two processes of 8 images against one of 16: the same data, order, augmentation and initial weights, and the
// gradient of the same global batch.
// - Exactly, where each image's gradient does not depend on its batch mates (the probe's per-sample mode: no
//   dropout, BatchNorm on running statistics): the weights after an epoch differ by less than
//   kExactTolerance of how far training moved them (float rounding: the sums run in another order).
// - As trained (BatchNorm normalises over each rank's 8 images, dropout draws differ, as with PyTorch's
//   DistributedDataParallel without SyncBatchNorm): the validation loss is within kRecipeTolerance of the
//   one-process run's.
constexpr double kExactTolerance = 1e-4;
constexpr double kRecipeTolerance = 0.05;

double RelativeToUpdate(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b,
                        const std::vector<at::Tensor>& init) {
  double diff = 0, update = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]).pow(2).sum().item<double>();
    update += (b[i] - init[i]).pow(2).sum().item<double>();
  }
  return std::sqrt(diff / update);
}

double LastValidationLoss(const std::string& steps_file) {
  double loss = NAN;
  for (const auto& line : Lines(steps_file)) {
    const auto at = line.find(" val_loss ");
    if (at != std::string::npos) loss = std::stod(line.substr(at + 10));
  }
  return loss;
}

TEST_F(DistributedTraining, EqualsOneProcessWithTheSameGlobalBatch) {
  const std::string two = *dir_ / "exact2", one = *dir_ / "exact1", half = *dir_ / "exact_half";
  ASSERT_EQ(RunProbes(2, 16, 1, two, 0, "PROBE_PER_SAMPLE=1"), (std::vector<int>{0, 0})) << ReadFile(two + "0.log");
  ASSERT_EQ(RunProbes(1, 16, 1, one, 0, "PROBE_PER_SAMPLE=1"), (std::vector<int>{0})) << ReadFile(one + "0.log");
  // A control: one process on half the batch, i.e. what a rank would learn on its own, without the all-reduce.
  ASSERT_EQ(RunProbes(1, 8, 1, half, 0, "PROBE_PER_SAMPLE=1"), (std::vector<int>{0})) << ReadFile(half + "0.log");
  const auto init = LoadParameters(one + "0.init.pt");
  const double relative = RelativeToUpdate(LoadParameters(two + "0.pt"), LoadParameters(one + "0.pt"), init);
  const double control = RelativeToUpdate(LoadParameters(half + "0.pt"), LoadParameters(one + "0.pt"), init);
  std::cout << "weights after one epoch, distance to the one-process run relative to its update: 2 x 8 images "
            << relative << ", 1 x 8 images " << control << "\n";
  EXPECT_LT(relative, kExactTolerance);
  EXPECT_GT(control, 0.1) << "the control must differ, or the comparison proves nothing";
}

TEST_F(DistributedTraining, TrainsLikeOneProcessWithBatchNormAndDropout) {
  const std::string two = *dir_ / "recipe2", one = *dir_ / "recipe1";
  ASSERT_EQ(RunProbes(2, 16, 2, two), (std::vector<int>{0, 0})) << ReadFile(two + "0.log");
  ASSERT_EQ(RunProbes(1, 16, 2, one), (std::vector<int>{0})) << ReadFile(one + "0.log");
  const double loss_two = LastValidationLoss(two + "0.steps"), loss_one = LastValidationLoss(one + "0.steps");
  std::cout << "validation loss after 2 epochs: 2 x 8 images " << loss_two << ", 1 x 16 images " << loss_one << "\n";
  EXPECT_LT(std::abs(loss_two - loss_one) / loss_one, kRecipeTolerance);
}

TEST_F(DistributedTraining, APeerThatDiesFailsTheOthersWithAClearError) {
  const std::string out = *dir_ / "dies";
  const auto started = std::chrono::steady_clock::now();
  const auto statuses = RunProbes(2, 16, 2, out, /*die_at_step_of_rank1=*/3);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(statuses, (std::vector<int>{1, 3}));
  EXPECT_NE(ReadFile(out + "0.log").find("collective failed"), std::string::npos) << ReadFile(out + "0.log");
  EXPECT_LT(seconds, 20.0 + 30.0) << "rank 0 must give up within its collective timeout (20 s) and start-up";
}

// ------------------------------------------------------------------------------------------ through the server

v1::TrainingConfig TwoProcessJob(int epochs) {
  v1::TrainingConfig c = testing::TinyJob(0, epochs);
  c.set_world_size(2);
  c.set_val_fraction(0.25);
  return c;
}

v1::Job WaitUntil(client::FacetClient& client, const std::string& id, const std::function<bool(const v1::Job&)>& done,
                  double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  v1::Job job = client.GetJob(id);
  while (!done(job) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    job = client.GetJob(id);
  }
  return job;
}

bool Ended(const v1::Job& j) {
  return j.state() == v1::JOB_STATE_SUCCEEDED || j.state() == v1::JOB_STATE_FAILED ||
         j.state() == v1::JOB_STATE_CANCELLED;
}

// The pid of the job's worker of `rank`, found through /proc (its command line names the job's task file).
pid_t WorkerPid(const std::string& job_id, int rank) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline, environ;
    try {
      cmdline = ReadFile(entry.path() / "cmdline");
      environ = ReadFile(entry.path() / "environ");
    } catch (const std::exception&) {
      continue;
    }
    if (cmdline.find("train-worker") == std::string::npos || cmdline.find(job_id) == std::string::npos) continue;
    if (environ.find(std::string("\0RANK=", 6) + std::to_string(rank) + '\0') != std::string::npos) {
      return static_cast<pid_t>(std::stoi(name));
    }
  }
  return -1;
}

TEST_F(DistributedTraining, ServerTrainsAJobOnTwoProcessesAndServesItsModel) {
  testing::TempDir root;  // the state dir inside it, so that the server's log beside the state dir goes too
  const std::string state = root / "state";
  ServerProcess server(dir_->path(), state);
  const v1::Job submitted = server.client().StartTraining(TwoProcessJob(2));
  const v1::Job job = WaitUntil(server.client(), submitted.id(), Ended, 300);
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << "\n" << server.Log();
  EXPECT_EQ(job.history_size(), 2);
  EXPECT_EQ(job.latest().validation().n(), 22) << "validation covers both ranks' shards";
  EXPECT_TRUE(job.has_calibration());
  EXPECT_NE(job.rendezvous().find("127.0.0.1:"), std::string::npos);
  // Rank 0 exported the model; the server registered it and can serve it.
  server.client().ActivateModel(job.model_id());
  v1::PredictRequest request;
  request.add_images(ReadFile(fs::directory_iterator(dir_->path() + "/faces")->path()));
  const auto response = server.client().Predict(request);
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).faces_size(), 1);
  EXPECT_TRUE(fs::exists(state + "/jobs/" + job.id() + "/rank-1.log"));
}

TEST_F(DistributedTraining, KillingARankFailsTheJobWithAClearError) {
  testing::TempDir root;
  ServerProcess server(dir_->path(), root / "state", std::vector<std::string>{"--collective-timeout-s", "20"});
  const v1::Job submitted = server.client().StartTraining(TwoProcessJob(50));
  const v1::Job running =
      WaitUntil(server.client(), submitted.id(), [](const v1::Job& j) { return j.progress().global_step() >= 2; }, 120);
  ASSERT_GE(running.progress().global_step(), 2) << server.Log();
  const pid_t rank1 = WorkerPid(submitted.id(), 1);
  ASSERT_GT(rank1, 0) << "no worker process of rank 1 found";
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  const v1::Job job = WaitUntil(server.client(), submitted.id(), Ended, 60);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  ASSERT_EQ(job.state(), v1::JOB_STATE_FAILED) << server.Log();
  EXPECT_NE(job.error().find("rank 1 was killed by signal 9"), std::string::npos) << job.error();
  EXPECT_LT(seconds, 20.0) << "the server sees the death at once, not after the collective timeout";
  EXPECT_EQ(WorkerPid(submitted.id(), 0), -1) << "rank 0 must not outlive the failed job";
  // The server is still fine, and a job that asks for a nonsense split is refused up front.
  v1::TrainingConfig bad = TwoProcessJob(1);
  bad.set_batch_size(15);
  EXPECT_EQ(testing::CodeOf([&] { server.client().StartTraining(bad); }), grpc::StatusCode::INVALID_ARGUMENT);
  bad = TwoProcessJob(1);
  bad.set_local_processes(3);
  EXPECT_EQ(testing::CodeOf([&] { server.client().StartTraining(bad); }), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace facet

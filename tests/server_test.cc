// Integration tests: the real facet-server process, driven through gRPC stubs and facetctl.
#include "core/data/synthetic.h"
#include "core/data/utkface_dataset.h"
#include "core/model/model_file.h"
#include "core/train/checkpoint.h"
#include "tests/server_process.h"

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <torch/version.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace facet {
namespace {

namespace fs = std::filesystem;
using client::RpcError;
using testing::CodeOf;
using testing::ReadFile;
using testing::ServerProcess;
using testing::TinyJob;

v1::Job WaitForEnd(client::FacetClient& client, const std::string& id) {
  v1::Job last;
  client.WatchJob(id, [&](const v1::JobEvent& e) {
    if (e.has_snapshot()) last = e.snapshot();
  });
  return client.GetJob(id);
}

// One server and one trained, activated model shared by the suite: training is the slow part.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new testing::TempDir();
    data_ = *root_ / "data";
    WriteSyntheticDataset(data_ + "/faces", {/*count=*/160, /*image_size=*/48});
    server_ = new ServerProcess(data_, *root_ / "state");
    const v1::Job job = server_->client().StartTraining(TinyJob());
    first_job_ = new v1::Job(WaitForEnd(server_->client(), job.id()));
  }
  static void TearDownTestSuite() {
    delete server_;
    delete first_job_;
    delete root_;
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "---- server log ----\n%s\n", server_->Log().c_str());
  }
  client::FacetClient& client() { return server_->client(); }

  static testing::TempDir* root_;
  static std::string data_;
  static ServerProcess* server_;
  static v1::Job* first_job_;
};
testing::TempDir* ServerTest::root_ = nullptr;
std::string ServerTest::data_;
ServerProcess* ServerTest::server_ = nullptr;
v1::Job* ServerTest::first_job_ = nullptr;

TEST_F(ServerTest, AJobRunsToSuccessWithMetricsInItsHistoryAndProducesAModel) {
  const v1::Job& job = *first_job_;
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  ASSERT_EQ(job.history_size(), 2);
  EXPECT_EQ(job.history(1).stage(), 2);
  EXPECT_GT(job.history(1).validation().n(), 0);
  EXPECT_EQ(job.history(1).log_variances_size(), 3);
  EXPECT_EQ(job.history(1).validation().ethnicity_class_accuracy_size(), 5);
  // Per-group metrics: every group holds images, and each dimension's groups add up to the whole set.
  std::map<std::string, int64_t> images_by_dimension;
  for (const auto& g : job.history(1).validation().groups()) {
    EXPECT_GT(g.n(), 0) << g.dimension() << " " << g.group();
    images_by_dimension[g.dimension()] += g.n();
  }
  ASSERT_EQ(images_by_dimension.size(), 3u);
  for (const auto& [dimension, n] : images_by_dimension) EXPECT_EQ(n, job.history(1).validation().n()) << dimension;
  // Calibrated on the validation split after the last epoch.
  ASSERT_TRUE(job.has_calibration());
  EXPECT_EQ(job.calibration().n(), job.history(1).validation().n());
  for (double t : {job.calibration().gender_temperature(), job.calibration().ethnicity_temperature()}) {
    EXPECT_GE(t, 1.0 / 20 - 1e-9);  // the search range of FitTemperature
    EXPECT_LE(t, 20.0 + 1e-9);
  }
  EXPECT_EQ(job.calibration().age_coverage(), 0.9);  // 32 validation images are enough for a 90% interval
  EXPECT_TRUE(job.has_best());
  EXPECT_TRUE(job.has_started_at());
  EXPECT_TRUE(job.has_finished_at());
  ASSERT_FALSE(job.model_id().empty());
  const v1::Model model = client().GetModel(job.model_id());
  EXPECT_EQ(model.job_id(), job.id());
  EXPECT_EQ(model.arch(), "resnet18");
  EXPECT_EQ(model.image_size(), 32);
  EXPECT_EQ(model.calibration().gender_temperature(), job.calibration().gender_temperature());
  // The job's config shows every value the run used, defaults included.
  EXPECT_EQ(job.config().data_dir(), "faces");
  EXPECT_DOUBLE_EQ(job.config().weight_decay(), 0.01);
  EXPECT_EQ(job.config().age_loss(), "log-mse");
  EXPECT_DOUBLE_EQ(job.config().log_variance_lr_scale(), 1.0);
  EXPECT_EQ(job.config().label_smoothing(), 0.0);
  EXPECT_EQ(job.config().ethnicity_balance(), 0.0);
  EXPECT_EQ(job.config().ema_decay(), 0.0);
  EXPECT_EQ(job.config().mixup_alpha(), 0.0);
  EXPECT_EQ(job.config().augment().erase_probability(), 0.0);
  EXPECT_DOUBLE_EQ(job.config().augment().max_erase_area(), 0.33);
}

TEST_F(ServerTest, WatchStreamsStateProgressAndEpochsAndALateWatcherGetsTheCurrentState) {
  const v1::Job job = client().StartTraining(TinyJob(1, 1));
  EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
  std::vector<v1::JobEvent> events;
  client().WatchJob(job.id(), [&](const v1::JobEvent& e) { events.push_back(e); });
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.front().has_snapshot());
  std::set<v1::JobState> states;
  int progress = 0, epochs = 0;
  for (const auto& e : events) {
    if (e.has_snapshot()) states.insert(e.snapshot().state());
    progress += e.has_progress();
    epochs += e.has_epoch();
  }
  EXPECT_TRUE(states.count(v1::JOB_STATE_RUNNING));
  EXPECT_TRUE(events.back().has_snapshot());
  EXPECT_EQ(events.back().snapshot().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_GE(progress, 1);
  EXPECT_EQ(epochs, 2);

  std::vector<v1::JobEvent> late;  // the job has ended: one snapshot, then the stream closes
  client().WatchJob(job.id(), [&](const v1::JobEvent& e) { late.push_back(e); });
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].snapshot().state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(late[0].snapshot().history_size(), 2);
}

TEST_F(ServerTest, BadConfigsAreRefusedBeforeAnythingIsQueued) {
  const int before = client().ListJobs(v1::JOB_STATE_UNSPECIFIED, 500, "").jobs_size();
  auto expect = [&](v1::TrainingConfig c, grpc::StatusCode code, const std::string& field) {
    try {
      client().StartTraining(c);
      ADD_FAILURE() << "accepted a bad config; expected " << field;
    } catch (const RpcError& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  auto c = TinyJob();
  c.set_batch_size(1);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "batch_size");
  c = TinyJob();
  c.set_arch("vgg16");
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "arch");
  c = TinyJob();
  c.set_data_dir("../../etc");
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "data_dir");
  c = TinyJob();
  c.set_data_dir("/etc");
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "data_dir");
  c = TinyJob();
  c.set_data_dir("missing");
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "data_dir");
  fs::create_directories(data_ + "/empty");
  std::ofstream(data_ + "/empty/README.md") << "no faces";
  c = TinyJob();
  c.set_data_dir("empty");
  expect(c, grpc::StatusCode::FAILED_PRECONDITION, "data_dir");
  c = TinyJob();
  c.set_batch_size(1000);
  expect(c, grpc::StatusCode::FAILED_PRECONDITION, "batch_size");
  c = TinyJob();
  c.set_loss_weighting(v1::LOSS_WEIGHTING_FIXED);
  c.add_fixed_weights(1);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "fixed_weights");
  c = TinyJob();
  c.set_age_loss("l2-years");
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "age_loss");
  c = TinyJob();
  c.set_log_variance_lr_scale(-1);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "log_variance_lr_scale");
  c = TinyJob();
  c.set_label_smoothing(0.9);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "label_smoothing");
  c = TinyJob();
  c.set_ethnicity_balance(-0.5);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "ethnicity_balance");
  c = TinyJob();
  c.set_ema_decay(1.0);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "ema_decay");
  c = TinyJob();
  c.set_mixup_alpha(50);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "mixup_alpha");
  c = TinyJob();
  c.set_time_budget_seconds(-60);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "time_budget_seconds");
  c = TinyJob();
  c.mutable_augment()->set_erase_probability(1.5);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "erase_probability");
  c = TinyJob();
  c.mutable_augment()->set_max_erase_area(0.95);
  expect(c, grpc::StatusCode::INVALID_ARGUMENT, "max_erase_area");
  EXPECT_EQ(client().ListJobs(v1::JOB_STATE_UNSPECIFIED, 500, "").jobs_size(), before);
  EXPECT_EQ(CodeOf([&] { client().GetJob("job-nope"); }), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CodeOf([&] { client().ListJobs(v1::JOB_STATE_UNSPECIFIED, 10, "x"); }), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, CancelStopsARunningJobAndAQueuedOne) {
  const v1::Job running = client().StartTraining(TinyJob(2, 30));
  const v1::Job queued = client().StartTraining(TinyJob(1, 1));
  // Cancel the queued one first: it never runs.
  const v1::Job cancelled_queued = client().CancelJob(queued.id());
  EXPECT_EQ(cancelled_queued.state(), v1::JOB_STATE_CANCELLED);
  bool cancel_sent = false;
  client().WatchJob(running.id(), [&](const v1::JobEvent& e) {
    if (!cancel_sent && e.has_progress()) {
      client().CancelJob(running.id());
      cancel_sent = true;
    }
  });
  const v1::Job after = client().GetJob(running.id());
  EXPECT_EQ(after.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_LT(after.history_size(), 32);
  EXPECT_TRUE(after.model_id().empty());
  EXPECT_EQ(CodeOf([&] { client().CancelJob(running.id()); }), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(client().GetJob(queued.id()).history_size(), 0);
}

TEST_F(ServerTest, ListJobsFiltersByStateAndPages) {
  const auto succeeded = client().ListJobs(v1::JOB_STATE_SUCCEEDED, 500, "");
  ASSERT_GE(succeeded.jobs_size(), 1);
  for (const auto& job : succeeded.jobs()) {
    EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(job.history_size(), 0) << "lists leave the history out";
  }
  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    const auto page = client().ListJobs(v1::JOB_STATE_UNSPECIFIED, 1, token);
    for (const auto& job : page.jobs()) EXPECT_TRUE(seen.insert(job.id()).second) << "listed twice: " << job.id();
    token = page.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 100);
  EXPECT_EQ(static_cast<int>(seen.size()), client().ListJobs(v1::JOB_STATE_UNSPECIFIED, 500, "").jobs_size());
}

TEST_F(ServerTest, PredictAnswersEachImageAndReportsACorruptOneAlone) {
  client().ActivateModel(first_job_->model_id());
  EXPECT_EQ(client().Health("facet.v1.InferenceService"), "SERVING");
  const auto files = ScanUtkFaceFolder(data_ + "/faces").samples;
  v1::PredictRequest request;
  request.add_images(ReadFile(files[0].path));
  request.add_images("this is not an image");
  request.add_images(ReadFile(files[1].path));
  const v1::PredictResponse response = client().Predict(request);
  EXPECT_EQ(response.model_id(), first_job_->model_id());
  ASSERT_EQ(response.results_size(), 3);
  for (int i : {0, 2}) {
    const auto& r = response.results(i);
    EXPECT_EQ(r.error_code(), 0) << r.error_message();
    ASSERT_EQ(r.faces_size(), 1);
    EXPECT_GT(r.faces(0).age_years(), 0.5);
    EXPECT_LT(r.faces(0).age_years(), 120);
    EXPECT_EQ(r.faces(0).gender_probabilities_size(), 2);
    EXPECT_EQ(r.faces(0).ethnicity_probabilities_size(), 5);
    EXPECT_TRUE(r.faces(0).gender() == "male" || r.faces(0).gender() == "female");
    ASSERT_TRUE(r.faces(0).has_age_interval());
    EXPECT_LE(r.faces(0).age_interval().low_years(), r.faces(0).age_years());
    EXPECT_GE(r.faces(0).age_interval().high_years(), r.faces(0).age_years());
    EXPECT_EQ(r.faces(0).age_interval().coverage(), 0.9);
  }
  EXPECT_EQ(response.results(1).error_code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(response.results(1).error_message().find("decode"), std::string::npos);

  // A PNG whose header claims 100000 x 100000 pixels is refused for that image, before decoding.
  std::string bomb = ReadFile(files[0].path);
  std::vector<uchar> png;
  cv::imencode(".png", cv::Mat(8, 8, CV_8UC3, cv::Scalar(0, 0, 0)), png);
  bomb.assign(png.begin(), png.end());
  for (int offset : {16, 20}) bomb.replace(offset, 4, std::string("\x00\x01\x86\xA0", 4));
  v1::PredictRequest with_bomb;
  with_bomb.add_images(bomb);
  with_bomb.add_images(ReadFile(files[0].path));
  const auto bomb_response = client().Predict(with_bomb);
  EXPECT_EQ(bomb_response.results(0).error_code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(bomb_response.results(0).error_message().find("the limit is"), std::string::npos)
      << bomb_response.results(0).error_message();
  EXPECT_EQ(bomb_response.results(1).error_code(), 0);

  v1::PredictRequest empty;
  EXPECT_EQ(CodeOf([&] { client().Predict(empty); }), grpc::StatusCode::INVALID_ARGUMENT);
  v1::PredictRequest too_many;
  for (int i = 0; i < 65; ++i) too_many.add_images("x");
  EXPECT_EQ(CodeOf([&] { client().Predict(too_many); }), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServerTest, ActivateSwapsModelsWhilePredictRunsWithoutAFailedRequest) {
  // A second model, registered from a file exported by the core library.
  MultiTaskNet other(ResNetOptions{Arch::kResNet18, 8});
  ExportModel(data_ + "/other.pt", other, MakeMultiTaskLoss({})->LogVariances(), 40);
  const v1::Model second = client().RegisterModel("other.pt");
  EXPECT_EQ(second.image_size(), 40);
  EXPECT_EQ(CodeOf([&] { client().RegisterModel("faces"); }), grpc::StatusCode::INVALID_ARGUMENT);
  client().ActivateModel(first_job_->model_id());

  const std::string image = ReadFile(ScanUtkFaceFolder(data_ + "/faces").samples[0].path);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::set<std::string> served;
  std::mutex served_mutex;
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&] {
      client::FacetClient c(server_->address(), std::chrono::seconds(30));
      v1::PredictRequest request;
      request.add_images(image);
      while (!stop) {
        try {
          const auto r = c.Predict(request);
          if (r.results(0).error_code() != 0) throw std::runtime_error(r.results(0).error_message());
          std::lock_guard<std::mutex> lock(served_mutex);
          served.insert(r.model_id());
          ++ok;
        } catch (const std::exception& e) {
          ++failed;
          std::fprintf(stderr, "predict failed during swap: %s\n", e.what());
        }
      }
    });
  }
  for (int i = 0; i < 6; ++i) {
    client().ActivateModel(i % 2 ? first_job_->model_id() : second.id());
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 6);
  EXPECT_EQ(served.size(), 2u) << "both models answered";
  // A model file that cannot load leaves the serving model as it was.
  fs::copy_file(data_ + "/other.pt", data_ + "/broken.pt");
  const v1::Model broken = client().RegisterModel("broken.pt");
  std::ofstream(root_->path() + "/state/models/" + broken.id() + ".pt", std::ios::trunc) << "garbage";
  EXPECT_EQ(CodeOf([&] { client().ActivateModel(broken.id()); }), grpc::StatusCode::FAILED_PRECONDITION);
  v1::PredictRequest request;
  request.add_images(image);
  EXPECT_EQ(client().Predict(request).model_id(), first_job_->model_id());
}

TEST_F(ServerTest, MetricsEndpointExposesTrainingAndServingMetrics) {
  v1::PredictRequest request;
  request.add_images(ReadFile(ScanUtkFaceFolder(data_ + "/faces").samples[0].path));
  client().ActivateModel(first_job_->model_id());
  client().Predict(request);
  const std::string text = testing::HttpGet(server_->metrics_address(), "/metrics");
  ASSERT_FALSE(text.empty());
  for (const std::string& needle : std::vector<std::string>{
           "facet_training_jobs{state=\"succeeded\"}", "facet_job_validation_age_mae_years{job_id=\"" + first_job_->id(),
        "facet_job_validation_accuracy_ratio{job_id=\"" + first_job_->id() + "\",task=\"ethnicity\"}",
        "facet_job_task_log_variance{job_id=\"" + first_job_->id() + "\",task=\"age\"}",
        "facet_job_validation_group_age_mae_years{dimension=\"ethnicity\"",
        "facet_job_validation_group_accuracy_ratio{dimension=\"age_decade\"",
        "facet_job_validation_calibration_error_ratio{job_id=\"" + first_job_->id() + "\",task=\"gender\"}",
        "facet_job_task_effective_weight", "facet_job_images_per_second", "facet_predict_requests_total{code=\"OK\"}",
        "facet_predict_latency_seconds_bucket", "facet_predict_queue_seconds_bucket", "facet_predict_batch_size_bucket",
        "facet_active_model_info{model_id=\"" + first_job_->model_id() + "\"} 1", "facet_predict_images_total",
        // The server runs on the CPU here; a GPU host shows device="cuda" (or "cuda:N") instead.
        "facet_server_info{device=\"cpu\",libtorch=\"" + std::string(TORCH_VERSION) + "\",version=\""}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle;
  }
  std::string promtool;
  if (testing::RunCommand("command -v promtool", &promtool) != 0) {
    GTEST_SKIP() << "promtool (Debian package prometheus) is not installed: lint skipped";
  }
  testing::TempDir tmp;
  std::ofstream(tmp / "metrics.txt") << text;
  std::string lint;
  EXPECT_EQ(testing::RunCommand("promtool check metrics < " + (tmp / "metrics.txt"), &lint), 0) << lint;
}

TEST_F(ServerTest, FacetctlDrivesTheServer) {
  const std::string ctl = std::string(FACETCTL_BINARY) + " --server " + server_->address() + " ";
  std::string out;
  EXPECT_EQ(testing::RunCommand(ctl + "jobs", &out), 0) << out;
  EXPECT_NE(out.find(first_job_->id()), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "job " + first_job_->id(), &out), 0) << out;
  EXPECT_NE(out.find("SUCCEEDED"), std::string::npos) << out;
  EXPECT_NE(out.find("best epoch"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "models", &out), 0) << out;
  EXPECT_NE(out.find(first_job_->model_id()), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "activate " + first_job_->model_id(), &out), 0) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "predict " + data_ + "/faces --batch 7", &out), 0) << out;
  EXPECT_NE(out.find("male"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "predict --json " + ScanUtkFaceFolder(data_ + "/faces").samples[0].path, &out), 0);
  EXPECT_NE(out.find("\"age_years\""), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "health", &out), 0) << out;
  EXPECT_NE(out.find("SERVING"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "train --data faces --arch resnet18 --width 8 --size 32 --batch 16 "
                                      "--frozen-epochs 1 --unfrozen-epochs 1 --watch", &out), 0) << out;
  EXPECT_NE(out.find("epoch"), std::string::npos) << out;
  EXPECT_NE(out.find("SUCCEEDED"), std::string::npos) << out;

  // Errors: server errors with status and message (1), bad flags (2), unreachable server (3).
  EXPECT_EQ(testing::RunCommand(ctl + "job job-nope", &out), 1) << out;
  EXPECT_NE(out.find("NOT_FOUND"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "train --data faces --batch 1", &out), 1) << out;
  EXPECT_NE(out.find("INVALID_ARGUMENT: batch_size"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "jobs --bogus", &out), 2) << out;
  EXPECT_EQ(testing::RunCommand(ctl + "frobnicate", &out), 2) << out;
  const std::string nowhere = std::to_string(testing::FreeLoopbackPort());
  EXPECT_EQ(testing::RunCommand(std::string(FACETCTL_BINARY) + " --server 127.0.0.1:" + nowhere + " --timeout 2 jobs",
                                &out), 3) << out;
  EXPECT_EQ(testing::RunCommand(std::string(FACETCTL_BINARY) + " --help", &out), 0);
  EXPECT_NE(out.find("facet-make-dataset"), std::string::npos) << out;
  // The training flags come from the core's table: the server's defaults and ranges.
  EXPECT_EQ(testing::RunCommand(ctl + "train --help", &out), 0) << out;
  EXPECT_NE(out.find("--batch"), std::string::npos) << out;
  EXPECT_NE(out.find("[2, 4096]"), std::string::npos) << out;
  EXPECT_NE(out.find("--max-zoom"), std::string::npos) << out;
}

TEST_F(ServerTest, FacetctlSetsEveryAugmentationStrengthAndShowsItInTheJob) {
  const std::string ctl = std::string(FACETCTL_BINARY) + " --server " + server_->address() + " ";
  const std::string tiny = "train --data faces --arch resnet18 --width 8 --size 32 --batch 16 --frozen-epochs 0 "
                           "--unfrozen-epochs 1 ";
  std::string out;
  ASSERT_EQ(testing::RunCommand(ctl + tiny + "--flip-probability 1 --rotate-probability 0.25 --max-rotate-degrees 5 "
                                "--zoom-probability 0 --max-zoom 1.05 --warp-probability 0.1 --max-warp 0.05 "
                                "--lighting-probability 0.3 --max-lighting 0.1 --erase-probability 0.2 "
                                "--max-erase-area 0.1 --watch", &out), 0) << out;
  const auto id = out.find("job-");
  ASSERT_NE(id, std::string::npos) << out;
  const std::string job_id = out.substr(id, out.find_first_not_of("job-0123456789abcdef", id) - id);
  ASSERT_EQ(testing::RunCommand(ctl + "job " + job_id, &out), 0) << out;
  EXPECT_NE(out.find("augment    flip 1, rotate 0.25 (up to 5 deg), zoom 0 (up to 1.05), warp 0.1 (up to 0.05), "
                     "lighting 0.3 (up to 0.1), erase 0.2 (up to 0.1 of the image)"), std::string::npos) << out;
  EXPECT_NE(out.find("SUCCEEDED"), std::string::npos) << out;

  // Unset flags keep the server's defaults, which --help shows; a strength outside the augmenter's range is refused.
  ASSERT_EQ(testing::RunCommand(ctl + "train --help", &out), 0) << out;
  EXPECT_NE(out.find("--max-rotate-degrees"), std::string::npos) << out;
  EXPECT_NE(out.find("the largest warp, in normalised coordinates [0, 0.5] (default 0.2)"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + tiny + "--max-warp 0.7", &out), 1) << out;
  EXPECT_NE(out.find("INVALID_ARGUMENT: augment.max_warp"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(ctl + tiny + "--no-augment --watch", &out), 0) << out;
  EXPECT_NE(out.find("SUCCEEDED"), std::string::npos) << out;
}

TEST_F(ServerTest, DetectFacesFindsAndCropsAFaceInAnUncroppedPhoto) {
  const auto sample = testing::SharedDataDir("utkface-sample");
  if (!sample) GTEST_SKIP() << "../shared/data/utkface-sample is absent: face detection test skipped";
  client().ActivateModel(first_job_->model_id());
  // A real face chip placed in a larger, plain photo.
  const cv::Mat face = cv::imread(*sample + "/22_0_0_20170103234830581.jpg.chip.jpg");
  ASSERT_FALSE(face.empty());
  cv::Mat photo(480, 640, CV_8UC3, cv::Scalar(90, 110, 100));
  face.copyTo(photo(cv::Rect(300, 120, face.cols, face.rows)));
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", photo, jpeg);
  v1::PredictRequest request;
  request.add_images(std::string(jpeg.begin(), jpeg.end()));
  request.add_images(std::string(jpeg.begin(), jpeg.end()).substr(0, 64));  // truncated: that image's error only
  request.set_detect_faces(true);
  const auto response = client().Predict(request);
  ASSERT_EQ(response.results_size(), 2);
  const auto& result = response.results(0);
  ASSERT_EQ(result.error_code(), 0) << result.error_message();
  ASSERT_GE(result.faces_size(), 1);
  const auto& box = result.faces(0).box();
  const cv::Rect found(box.x(), box.y(), box.width(), box.height());
  EXPECT_GT((found & cv::Rect(300, 120, 200, 200)).area(), found.area() / 2) << "the box lies on the pasted face";
  EXPECT_GT(result.faces(0).age_years(), 0);
  EXPECT_NE(response.results(1).error_code(), 0);
}

TEST_F(ServerTest, APythonClientPredictsOnRealFacesAndSeesHealthAndReflection) {
  const auto sample = testing::SharedDataDir("utkface-sample");
  if (!sample) GTEST_SKIP() << "../shared/data/utkface-sample is absent: Python client test skipped";
  std::string probe;
  if (testing::RunCommand("/usr/bin/python3 -c 'import grpc' && command -v protoc", &probe) != 0) {
    GTEST_SKIP() << "python3-grpcio or protoc is not installed: Python client test skipped";
  }
  client().ActivateModel(first_job_->model_id());
  std::string out;
  const std::string command = std::string("/usr/bin/python3 ") + FACET_SOURCE_DIR + "/tests/python/predict_client.py " +
                              server_->address() + " " + FACET_SOURCE_DIR + "/proto " + *sample + " 24";
  ASSERT_EQ(testing::RunCommand(command, &out), 0) << out;
  EXPECT_NE(out.find(first_job_->model_id()), std::string::npos) << out;
}

// Restart and crash recovery each need their own server.
TEST(ServerRestart, JobsAndModelsSurviveAGracefulRestart) {
  testing::TempDir root;
  WriteSyntheticDataset(root / "data/faces", {/*count=*/80, /*image_size=*/48});
  std::string job_id, model_id;
  {
    ServerProcess server(root / "data", root / "state");
    const v1::Job job = WaitForEnd(server.client(), server.client().StartTraining(TinyJob()).id());
    ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << server.Log();
    job_id = job.id();
    model_id = job.model_id();
    server.client().ActivateModel(model_id);
    EXPECT_EQ(server.Terminate(), 0) << "SIGTERM is a clean exit\n" << server.Log();
  }
  ServerProcess server(root / "data", root / "state");
  const v1::Job job = server.client().GetJob(job_id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.history_size(), 2);
  EXPECT_TRUE(server.client().GetModel(model_id).active());
  EXPECT_EQ(server.client().Health("facet.v1.InferenceService"), "SERVING") << "the active model is restored";
  v1::PredictRequest request;
  request.add_images(ReadFile(ScanUtkFaceFolder(root / "data/faces").samples[0].path));
  EXPECT_EQ(server.client().Predict(request).model_id(), model_id);
}

TEST(ServerRestart, AJobRunningWhenTheServerIsKilledResumesFromItsCheckpoint) {
  testing::TempDir root;
  WriteSyntheticDataset(root / "data/faces", {/*count=*/80, /*image_size=*/48});
  std::string job_id;
  {
    ServerProcess server(root / "data", root / "state");
    job_id = server.client().StartTraining(TinyJob(1, 5)).id();
    bool killed = false;
    try {
      server.client().WatchJob(job_id, [&](const v1::JobEvent& e) {
        if (e.has_epoch() && e.epoch().epoch() == 2 && !killed) {
          killed = true;
          server.Kill();  // kill -9 mid-run
        }
      });
    } catch (const RpcError&) {
      // the stream breaks with the server
    }
    ASSERT_TRUE(killed);
  }
  ServerProcess server(root / "data", root / "state");
  const v1::Job job = WaitForEnd(server.client(), job_id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << server.Log();
  EXPECT_GE(job.resumed_from_epoch(), 2);
  ASSERT_EQ(job.history_size(), 6) << "history intact: every epoch once";
  for (int i = 0; i < 6; ++i) EXPECT_EQ(job.history(i).epoch(), i + 1);
  EXPECT_FALSE(job.model_id().empty());
}

TEST(ServerRestart, SigtermMidEpochCheckpointsThatStepAndTheRestartedJobContinuesThere) {
  testing::TempDir root;
  // 48 steps per epoch at 64 px: epoch 2 lasts several of the server's 0.5 s progress intervals, so a progress
  // event from inside it reaches the watcher however fast the machine is.
  WriteSyntheticDataset(root / "data/faces", {/*count=*/960, /*image_size=*/64});
  auto config = TinyJob(1, 2);
  config.set_image_size(64);
  std::string job_id;
  {
    ServerProcess server(root / "data", root / "state");
    job_id = server.client().StartTraining(config).id();
    bool signalled = false;
    try {
      server.client().WatchJob(job_id, [&](const v1::JobEvent& e) {
        if (e.has_progress() && e.progress().epoch() == 2 && e.progress().step() >= 2 && !signalled) {
          signalled = true;
          server.Signal(SIGTERM);
        }
      });
      ADD_FAILURE() << "the watch stream ended cleanly although the job did not";
    } catch (const RpcError& e) {
      EXPECT_EQ(e.code(), grpc::StatusCode::UNAVAILABLE) << e.what();
    }
    ASSERT_TRUE(signalled);
    EXPECT_EQ(server.Wait(), 0) << server.Log();
    EXPECT_NE(server.Log().find("suspended by shutdown"), std::string::npos) << server.Log();
  }
  // The newest checkpoint is the step the job was at: epoch-0001.step-NNNNNN.ckpt.
  const auto checkpoints = ListCheckpoints(root / "state/jobs/" + job_id + "/checkpoints");
  ASSERT_FALSE(checkpoints.empty());
  const std::string newest = fs::path(checkpoints[0]).filename();
  ASSERT_EQ(newest.rfind("epoch-0001.step-", 0), 0u) << newest;
  const int suspended_at = std::stoi(newest.substr(16, 6));

  ServerProcess server(root / "data", root / "state");
  int first_epoch = 0, first_step = 0;
  server.client().WatchJob(job_id, [&](const v1::JobEvent& e) {
    if (e.has_progress() && first_step == 0) {
      first_epoch = e.progress().epoch();
      first_step = static_cast<int>(e.progress().step());
    }
  });
  EXPECT_EQ(first_epoch, 2);
  EXPECT_EQ(first_step, suspended_at + 1) << "the restarted job continues at the next step";
  const v1::Job job = server.client().GetJob(job_id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error() << server.Log();
  ASSERT_EQ(job.history_size(), 3) << "history intact: every epoch once";
  for (int i = 0; i < 3; ++i) EXPECT_EQ(job.history(i).epoch(), i + 1);
}

}  // namespace
}  // namespace facet

namespace facet {
namespace {

// facet-make-dataset: the synthetic writer as a tool of its own (facetctl no longer links OpenCV).
TEST(MakeDatasetTool, WritesAScannableSetAndRefusesBadFlags) {
  testing::TempDir dir;
  const std::string tool = FACET_MAKE_DATASET_BINARY;
  std::string out;
  ASSERT_EQ(testing::RunCommand(tool + " --out " + (dir / "faces") + " --count 12 --size 40", &out), 0) << out;
  EXPECT_NE(out.find("wrote 12"), std::string::npos) << out;
  const ScanResult scan = ScanUtkFaceFolder(dir / "faces");
  EXPECT_EQ(scan.report.usable, 12);
  EXPECT_EQ(testing::RunCommand(tool + " --count 12", &out), 2) << out;  // no --out
  EXPECT_NE(out.find("--out"), std::string::npos) << out;
  EXPECT_EQ(testing::RunCommand(tool + " --out " + (dir / "x") + " --count zero", &out), 2) << out;
  EXPECT_EQ(testing::RunCommand(tool + " --help", &out), 0) << out;
  EXPECT_NE(out.find("usage: facet-make-dataset"), std::string::npos) << out;
}

}  // namespace
}  // namespace facet

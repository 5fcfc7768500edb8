// A core-only example: make a synthetic UTKFace-format set, train the multi-task model on it, print the
// per-epoch metrics, export the model and predict a few images with it. No server involved.
//
//   facet-train-example [--data DIR] [--out model.pt] [--arch resnet18] [--width 16] [--size 64]
//                       [--frozen-epochs 1] [--unfrozen-epochs 3] [--batch 32] [--images 600] [--threads 0]
#include "core/data/image_io.h"
#include "core/data/synthetic.h"
#include "core/infer/predictor.h"
#include "core/train/run_data.h"
#include "core/train/trainer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

namespace {

const char kUsage[] =
    "usage: facet-train-example [options]\n"
    "Trains facet's multi-task model (age, gender, ethnicity) with the core library alone.\n"
    "  --data DIR             UTKFace-format folder (default: generate a synthetic set)\n"
    "  --synthetic-dir DIR    where to write the synthetic set (default: facet-synthetic in the temp folder)\n"
    "  --images N             synthetic images to generate (default 600)\n"
    "  --out FILE             exported model (default: facet-example-model.pt)\n"
    "  --arch NAME            resnet18 | resnet34 | resnet50 (default resnet18)\n"
    "  --width N              ResNet base width; 64 is standard (default 16, a small fast model)\n"
    "  --size N               input size in pixels (default 64)\n"
    "  --batch N              batch size (default 32)\n"
    "  --frozen-epochs N      stage 1 epochs, encoder frozen (default 1)\n"
    "  --unfrozen-epochs N    stage 2 epochs (default 3)\n"
    "  --threads N            LibTorch threads, 0 = all cores (default 0)\n"
    "  --device D             cpu | cuda | cuda:N | auto (default auto)\n";

std::map<std::string, std::string> ParseFlags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "error: unexpected argument '%s'\n%s", arg.c_str(), kUsage);
      std::exit(2);
    }
    flags[arg.substr(2)] = argv[++i];
  }
  return flags;
}

int IntFlag(const std::map<std::string, std::string>& flags, const std::string& name, int fallback) {
  auto it = flags.find(name);
  if (it == flags.end()) return fallback;
  char* end = nullptr;
  const long v = std::strtol(it->second.c_str(), &end, 10);
  if (*end != '\0') {
    std::fprintf(stderr, "error: --%s needs an integer, got '%s'\n", name.c_str(), it->second.c_str());
    std::exit(2);
  }
  return static_cast<int>(v);
}

std::string StrFlag(const std::map<std::string, std::string>& flags, const std::string& name, std::string fallback) {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

}  // namespace

int main(int argc, char** argv) {
  const auto flags = ParseFlags(argc, argv);
  try {
    facet::TrainingConfig config;
    config.data.data_dir = StrFlag(flags, "data", "");
    if (config.data.data_dir.empty()) {
      config.data.data_dir = StrFlag(flags, "synthetic-dir",
                                (std::filesystem::temp_directory_path() / "facet-synthetic").string());
      facet::SyntheticOptions synthetic;
      synthetic.count = IntFlag(flags, "images", 600);
      synthetic.image_size = 96;
      std::printf("writing %d synthetic images to %s\n", synthetic.count, config.data.data_dir.c_str());
      std::filesystem::remove_all(config.data.data_dir);
      facet::WriteSyntheticDataset(config.data.data_dir, synthetic);
    }
    config.arch = StrFlag(flags, "arch", "resnet18");
    config.base_width = IntFlag(flags, "width", 16);
    config.image_size = IntFlag(flags, "size", 64);
    config.batch_size = IntFlag(flags, "batch", 32);
    config.frozen = {IntFlag(flags, "frozen-epochs", 1), 1e-2, 0.0};
    config.unfrozen = {IntFlag(flags, "unfrozen-epochs", 3), 3e-3, 3e-4};
    config.threads = IntFlag(flags, "threads", 0);
    config.device = StrFlag(flags, "device", "auto");
    facet::ValidateTrainingConfig(config);

    facet::TrainingData data = facet::OpenTrainingData(config);
    std::printf("data: %s\n", data.train_report.Summary().c_str());
    std::printf("split: %lld train, %lld validation\n", static_cast<long long>(data.train->num_samples()),
                static_cast<long long>(data.validation->num_samples()));

    facet::Trainer trainer(config, *data.train, *data.validation);
    std::printf("model: %s width %d, %d px, device %s\n", config.arch.c_str(), config.base_width, config.image_size,
                trainer.device().str().c_str());
    std::printf("%5s %5s %10s %9s %8s %9s %8s %8s %9s %8s\n", "stage", "epoch", "train_loss", "val_loss", "age_rmse",
                "age_mae_y", "gender", "ethnic", "img/s", "seconds");
    facet::TrainerCallbacks callbacks;
    callbacks.on_epoch = [](const facet::EpochMetrics& m) {
      std::printf("%5d %5d %10.4f %9.4f %8.4f %9.2f %8.3f %8.3f %9.1f %8.1f   log_vars [%.3f %.3f %.3f]\n",
                  static_cast<int>(m.stage), m.epoch, m.train_loss, m.validation.loss, m.validation.age_rmse,
                  m.validation.age_mae_years, m.validation.gender_accuracy, m.validation.ethnicity_accuracy,
                  m.images_per_s, m.seconds, m.log_variances[0], m.log_variances[1], m.log_variances[2]);
      std::fflush(stdout);
    };
    const facet::TrainResult result = trainer.Run(callbacks);
    std::printf("best epoch: %d\n", result.best_epoch);

    const facet::CalibrationReport calibration = trainer.Calibrate();
    std::printf("calibration: T gender %.3f, ethnicity %.3f; 90%% age interval x/÷ %.3f\n",
                calibration.calibration.gender_temperature, calibration.calibration.ethnicity_temperature,
                std::exp(calibration.calibration.age_log_halfwidth));
    const std::string out = StrFlag(flags, "out", "facet-example-model.pt");
    trainer.ExportModel(out);
    std::printf("exported %s\n", out.c_str());

    auto predictor = facet::Predictor::FromExport(out, facet::PredictorOptions{config.device});
    const auto scan = facet::ScanUtkFaceFolder(config.data.data_dir);
    std::printf("\n%-44s %6s %6s %8s %6s %10s %6s\n", "image", "age", "true", "gender", "true", "ethnicity", "true");
    for (size_t i = 0; i < scan.samples.size() && i < 5; ++i) {
      const auto& sample = scan.samples[i * (scan.samples.size() / 5)];
      const cv::Mat image = facet::ReadImageFile(sample.path);
      const auto p = predictor->Predict({facet::ViewOf(image)}).at(0);
      std::printf("%-44s %6.1f %6d %8s %6s %10s %6s\n", std::filesystem::path(sample.path).filename().c_str(),
                  p.age_years, sample.labels.age, facet::kGenderNames[p.gender],
                  facet::kGenderNames[sample.labels.gender], facet::kEthnicityNames[p.ethnicity],
                  facet::kEthnicityNames[sample.labels.ethnicity]);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

// facetctl: the command-line client of facet-server. `facetctl --help` lists the commands.
#include "client/facet_client.h"
#include "client/tools/load_generator.h"
#include "core/train/training_config.h"
#include "core/util/flag_set.h"
#include "core/util/sha256.h"
#include "proto/field_path.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace {

namespace fs = std::filesystem;
namespace v1 = facet::v1;
using facet::FlagSet;
using facet::client::FacetClient;
using facet::client::RpcError;

// Exit codes: 0 success, 1 the server answered with an error (or the job failed), 2 usage error, 3 unreachable.
constexpr int kExitError = 1, kExitUsage = 2, kExitUnreachable = 3;

const char kUsage[] =
    "usage: facetctl [--server HOST:PORT] [--token T] [--tls-ca PEM] [--timeout SECONDS] COMMAND [flags] [args]\n"
    "\n"
    "The command-line client of facet-server (multi-task face model: age, gender, ethnicity).\n"
    "\n"
    "commands:\n"
    "  train --data DIR [flags]     submit a training job (DIR relative to the server's data root); --watch follows it\n"
    "  jobs [--state S]             list jobs, newest first\n"
    "  job ID [--json]              one job: per-epoch history, validation by group, calibration\n"
    "  watch ID                     follow a job: live progress, per-epoch metrics, a summary at the end\n"
    "  cancel ID                    cancel a queued or running job\n"
    "  models                       list models\n"
    "  model ID [--json]            one model\n"
    "  activate ID                  make a model the one Predict serves\n"
    "  register PATH                add an exported model file (relative to the data root)\n"
    "  predict FILE|DIR... [flags]  predict age (with its 90% range when the model is calibrated), gender and\n"
    "                               ethnicity of images (--json, --detect-faces)\n"
    "  health                       the server's health, per service\n"
    "  bench predict --images DIR [--concurrency 1,8,64,256] [--seconds 10] [--json]\n"
    "                               closed-loop Predict load: images/s and latency percentiles per concurrency\n"
    "  token create --role ROLE [--name NAME]\n"
    "                               make a random API token and the line that enables it in a server's token file\n"
    "                               (roles: admin, predict, read; no server needed)\n"
    "\n"
    "A synthetic UTKFace-format data set to try it with: facet-make-dataset --out DIR (a tool of its own).\n"
    "`facetctl COMMAND --help` shows a command's flags. --server defaults to $FACET_SERVER or localhost:7070.\n"
    "Tokens: --token, $FACET_TOKEN or --token-file ($FACET_TOKEN_FILE). TLS: --tls-ca (or --tls for the system's\n"
    "roots), and --tls-cert/--tls-key for servers that require client certificates.\n"
    "Exit status: 0 success, 1 error from the server or a failed job, 2 usage error, 3 server unreachable.\n";

FlagSet CommandFlags(const std::string& usage) {
  FlagSet f(usage);
  f.String("server", "localhost:7070", "facet-server address (any gRPC target, e.g. dns:///replicas:7070)",
           "FACET_SERVER");
  f.String("load-balancing", "", "gRPC load-balancing policy, e.g. round_robin: spread calls over every address "
           "--server resolves to (Predict replicas)", "FACET_LOAD_BALANCING");
  f.Double("timeout", 30, "per-call deadline in seconds");
  f.String("token", "", "API token (sent as a Bearer token)", "FACET_TOKEN");
  f.String("token-file", "", "file whose first line is the API token", "FACET_TOKEN_FILE");
  f.Bool("tls", false, "connect over TLS, trusting the system's CA roots unless --tls-ca", "FACET_TLS");
  f.String("tls-ca", "", "PEM CA that signed the server's certificate (implies --tls)", "FACET_TLS_CA");
  // Not FACET_TLS_CERT/KEY: those configure the server, and both programs may share one environment.
  f.String("tls-cert", "", "PEM client certificate, for servers that require mutual TLS", "FACET_CLIENT_CERT");
  f.String("tls-key", "", "PEM private key of --tls-cert", "FACET_CLIENT_KEY");
  f.String("tls-server-name", "", "name to check the server's certificate against (default: the host)",
           "FACET_TLS_SERVER_NAME");
  return f;
}

facet::client::ConnectionOptions ConnectionFromFlags(const FlagSet& f) {
  facet::client::ConnectionOptions o;
  o.address = f.GetString("server");
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(f.GetDouble("timeout") * 1000));
  o.token = f.GetString("token");
  if (o.token.empty() && !f.GetString("token-file").empty()) {
    std::ifstream in(f.GetString("token-file"));
    if (!in || !std::getline(in, o.token) || o.token.empty()) {
      throw std::invalid_argument("--token-file: cannot read a token from '" + f.GetString("token-file") + "'");
    }
  }
  o.tls = f.GetBool("tls");
  o.tls_ca_file = f.GetString("tls-ca");
  o.tls_cert_file = f.GetString("tls-cert");
  o.tls_key_file = f.GetString("tls-key");
  o.tls_server_name = f.GetString("tls-server-name");
  o.load_balancing = f.GetString("load-balancing");
  return o;
}

// 32 random bytes from the kernel, hex: 256 bits, so the unsalted SHA-256 in the token file cannot be reversed.
int CreateToken(const FlagSet& f) {
  const std::string role = f.GetString("role");
  if (role != "admin" && role != "predict" && role != "read") {
    throw std::invalid_argument("token create: --role must be admin, predict or read");
  }
  const std::string name = f.GetString("name");
  if (name.find_first_of(" \t#") != std::string::npos) {
    throw std::invalid_argument("token create: --name may not contain spaces or '#'");
  }
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[32];
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof(bytes))) throw std::runtime_error("cannot read /dev/urandom");
  std::string token = "fct_";
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char b : bytes) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 15]);
  }
  std::printf("token: %s\n", token.c_str());
  std::printf("token file line: %s %s%s\n", role.c_str(), facet::Sha256Hex(token).c_str(),
              name.empty() ? "" : (" " + name).c_str());
  return 0;
}

std::string FormatTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0) return "-";
  const std::time_t s = t.seconds();
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%d %H:%M:%S", std::localtime(&s));
  return out;
}

std::string StateName(v1::JobState s) {
  std::string name = v1::JobState_Name(s);
  return name.rfind("JOB_STATE_", 0) == 0 ? name.substr(10) : name;
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

std::string Duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "-";
  const long s = std::lround(seconds);
  char out[32];
  std::snprintf(out, sizeof(out), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return out;
}

void PrintEpochHeader() {
  std::printf("%5s %5s %10s %9s %8s %9s %8s %8s %9s %8s  %s\n", "epoch", "stage", "train_loss", "val_loss",
              "age_rmse", "age_mae_y", "gender", "ethnic", "img/s", "seconds", "log_vars (age gender ethnicity)");
}

void PrintEpoch(const v1::EpochMetrics& m) {
  const auto& v = m.validation();
  std::printf("%5d %5d %10.4f %9.4f %8.4f %9.2f %8.3f %8.3f %9.1f %8.1f ", m.epoch(), m.stage(), m.train_loss(),
              v.loss(), v.age_rmse(), v.age_mae_years(), v.gender_accuracy(), v.ethnicity_accuracy(), m.images_per_s(),
              m.seconds());
  for (double s : m.log_variances()) std::printf(" %7.3f", s);
  std::printf("\n");
}

// Where the model is weak: the latest validation by ethnicity, gender and age decade.
void PrintGroups(const v1::ValidationMetrics& v) {
  if (v.groups_size() == 0) return;
  std::printf("\nlatest validation by group:\n%-10s %-9s %6s %9s %8s %8s\n", "dimension", "group", "n", "age_mae_y",
              "gender", "ethnic");
  for (const auto& g : v.groups()) {
    std::printf("%-10s %-9s %6lld %9.2f %8.3f %8.3f\n", g.dimension().c_str(), g.group().c_str(),
                static_cast<long long>(g.n()), g.age_mae_years(), g.gender_accuracy(), g.ethnicity_accuracy());
  }
}

void PrintCalibration(const v1::Calibration& c) {
  std::printf("\ncalibration on %lld validation images: temperature gender %.3f, ethnicity %.3f\n",
              static_cast<long long>(c.n()), c.gender_temperature(), c.ethnicity_temperature());
  std::printf("  ECE gender %.4f -> %.4f, ethnicity %.4f -> %.4f\n", c.gender_ece_before(), c.gender_ece_after(),
              c.ethnicity_ece_before(), c.ethnicity_ece_after());
  if (c.age_coverage() > 0) {
    std::printf("  age interval: %.0f%% conformal, age x/÷ %.3f\n", 100 * c.age_coverage(),
                std::exp(c.age_log_halfwidth()));
  }
}

// What a job's augmentation does to a training image: each transform's probability and largest strength.
void PrintAugment(const v1::AugmentConfig& a) {
  if (!a.enabled()) {
    std::printf("augment    off\n");
    return;
  }
  std::printf("augment    flip %g, rotate %g (up to %g deg), zoom %g (up to %g), warp %g (up to %g), lighting %g (up "
              "to %g)", a.flip_probability(), a.rotate_probability(), a.max_rotate_degrees(), a.zoom_probability(),
              a.max_zoom(), a.warp_probability(), a.max_warp(), a.lighting_probability(), a.max_lighting());
  if (a.erase_probability() > 0) {
    std::printf(", erase %g (up to %g of the image)", a.erase_probability(), a.max_erase_area());
  }
  std::printf("\n");
}

void PrintJob(const v1::Job& job) {
  const auto& c = job.config();
  std::printf("job        %s\nstate      %s\n", job.id().c_str(), StateName(job.state()).c_str());
  if (!job.error().empty()) std::printf("error      %s\n", job.error().c_str());
  char split[64];
  std::snprintf(split, sizeof(split), "a seeded %.0f%% of it", c.val_fraction() * 100);
  std::printf("data       %s (validation: %s)\n", c.data_dir().c_str(), c.val_dir().empty() ? split : c.val_dir().c_str());
  std::printf("model      %s width %d, %d px, batch %d, epochs %d frozen + %d unfrozen, seed %llu\n", c.arch().c_str(),
              c.base_width(), c.image_size(), c.batch_size(), c.frozen().epochs(), c.unfrozen().epochs(),
              static_cast<unsigned long long>(c.seed()));
  std::printf("loss       %s, age %s, log-variance lr x%g, label smoothing %g\n",
              v1::LossWeighting_Name(c.loss_weighting()).c_str(), c.age_loss().c_str(), c.log_variance_lr_scale(),
              c.label_smoothing());
  if (c.ethnicity_balance() > 0) std::printf("sampling   ethnicity balance %g\n", c.ethnicity_balance());
  if (c.ema_decay() > 0) std::printf("weights    moving average, decay %g\n", c.ema_decay());
  if (c.mixup_alpha() > 0) std::printf("mixup      every batch, Beta(%g, %g)\n", c.mixup_alpha(), c.mixup_alpha());
  PrintAugment(c.augment());
  if (c.time_budget_seconds() > 0) {
    std::printf("budget     %g min: unfrozen epochs as fit (%d planned)\n", c.time_budget_seconds() / 60,
                job.progress().total_epochs() - c.frozen().epochs());
  }
  std::printf("created    %s  started %s  finished %s\n", FormatTime(job.created_at()).c_str(),
              FormatTime(job.started_at()).c_str(), FormatTime(job.finished_at()).c_str());
  if (job.config().world_size() > 1) {
    std::printf("processes  %d (rendezvous %s)\n", job.config().world_size(),
                job.rendezvous().empty() ? "not yet" : job.rendezvous().c_str());
  }
  if (job.resumed_from_epoch() > 0) std::printf("resumed    after epoch %d\n", job.resumed_from_epoch());
  if (!job.model_id().empty()) std::printf("produced   %s\n", job.model_id().c_str());
  if (job.history_size() > 0) {
    std::printf("\n");
    PrintEpochHeader();
    for (const auto& m : job.history()) PrintEpoch(m);
    std::printf("best epoch: %d\n", job.best().epoch());
    PrintGroups(job.latest().validation());
  }
  if (job.has_calibration()) PrintCalibration(job.calibration());
}

// ----------------------------------------------------------------------------------------------- commands

// The numeric flags come from the core's table of training settings (TrainingFields), so that each default, range
// and help text is the server's own; an unset flag does not travel, and the server's default applies.
void DefineTrainingFlags(FlagSet& f) {
  const facet::TrainingConfig defaults;
  f.String("data", "", "training folder, relative to the server's data root (required)");
  f.String("val-dir", "", "separate validation folder (then all of --data trains)");
  f.String("arch", defaults.arch, "resnet18, resnet34 or resnet50");
  for (const auto& field : facet::TrainingFields()) {
    if (field.flag.empty()) continue;  // the core's own, not in the API
    const double value = field.get(defaults) / field.flag_scale;
    const std::string help = field.help + " " + field.RangeText();
    if (field.integer) {
      f.Int(field.flag, static_cast<long>(value), help);
    } else {
      f.Double(field.flag, value, help);
    }
  }
  f.String("loss", facet::LossWeightingName(defaults.loss.weighting), "uncertainty, uncertainty-seed, equal or fixed");
  f.String("fixed-weights", "", "with --loss fixed: age,gender,ethnicity weights, e.g. 1,0.5,0.5");
  f.String("age-loss", facet::AgeLossName(defaults.loss.age_loss),
           "the age task's loss: log-mse (MSE of the scaled log-age) or l1-years (mean absolute error in years / 100)");
  f.Bool("augment", defaults.data.augment.enabled, "train-time augmentation (--no-augment to turn it off)");
  f.Int("seed", static_cast<long>(defaults.seed), "seed of the split, order, augmentation and initialisation");
  f.String("pretrained", "", "torchvision encoder state dict, relative to the data root");
  f.String("precision", defaults.precision,
           "fp32, or bf16: bfloat16 autocast in the training step (faster, less precise)");
  f.Int("local-processes", 0, "of --world-size, how many the server starts on its host (0: all); the rest join "
        "from other hosts with `facet-server train-worker`");
  f.String("config", "", "a file of flag=value lines (same names as these flags); command-line flags win");
  f.Bool("watch", false, "follow the job until it ends");
}

// A config file holds `name = value` lines with the train flags' names; '#' starts a comment.
std::vector<std::string> ConfigFileArgs(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("--config: cannot read '" + path + "'");
  std::vector<std::string> args;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    line = line.substr(0, line.find('#'));
    const auto eq = line.find('=');
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t\r"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
      return s;
    };
    if (trim(line).empty()) continue;
    if (eq == std::string::npos) throw std::invalid_argument("--config: line " + std::to_string(number) + " has no '='");
    args.push_back("--" + trim(line.substr(0, eq)) + "=" + trim(line.substr(eq + 1)));
  }
  return args;
}

v1::TrainingConfig TrainingConfigFromFlags(const FlagSet& f) {
  v1::TrainingConfig c;
  c.set_data_dir(f.GetString("data"));
  c.set_val_dir(f.GetString("val-dir"));
  // Only flags the user set travel, so that the server's defaults apply to the rest.
  for (const auto& field : facet::TrainingFields()) {
    if (field.flag.empty() || !f.IsSet(field.flag)) continue;
    const double value = field.integer ? static_cast<double>(f.GetInt(field.flag)) : f.GetDouble(field.flag);
    facet::proto::SetNumberAt(c, field.name, value * field.flag_scale);
  }
  if (f.IsSet("arch")) c.set_arch(f.GetString("arch"));
  const std::string loss = f.GetString("loss");
  const std::string proto_name = "LOSS_WEIGHTING_" + [&] {
    std::string upper;
    for (char ch : loss) upper += ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
    return upper;
  }();
  v1::LossWeighting weighting;
  if (!v1::LossWeighting_Parse(proto_name, &weighting) || weighting == v1::LOSS_WEIGHTING_UNSPECIFIED) {
    throw std::invalid_argument("--loss: '" + loss + "' is not one of uncertainty, uncertainty-seed, equal, fixed");
  }
  c.set_loss_weighting(weighting);
  if (!f.GetString("fixed-weights").empty()) {
    std::stringstream list(f.GetString("fixed-weights"));
    std::string item;
    while (std::getline(list, item, ',')) {
      try {
        c.add_fixed_weights(std::stod(item));
      } catch (const std::exception&) {
        throw std::invalid_argument("--fixed-weights: '" + item + "' is not a number");
      }
    }
  }
  if (f.IsSet("age-loss")) c.set_age_loss(f.GetString("age-loss"));
  if (f.IsSet("augment")) c.mutable_augment()->set_enabled(f.GetBool("augment"));
  if (f.IsSet("seed")) c.set_seed(static_cast<uint64_t>(f.GetInt("seed")));
  c.set_pretrained_encoder(f.GetString("pretrained"));
  if (f.IsSet("precision")) c.set_precision(f.GetString("precision"));
  if (f.IsSet("local-processes") && f.GetInt("local-processes") != 0) {
    c.set_local_processes(static_cast<int>(f.GetInt("local-processes")));
  }
  return c;
}

// Follows a job: a progress bar on a terminal, a line per epoch, a summary at the end. Returns the exit code.
int Watch(FacetClient& client, const std::string& id) {
  const bool tty = ::isatty(STDOUT_FILENO);
  bool header = false, bar_shown = false;
  v1::Job last;
  client.WatchJob(id, [&](const v1::JobEvent& event) {
    if (event.has_snapshot()) {
      last = event.snapshot();
      if (bar_shown) std::printf("\n"), bar_shown = false;
      std::printf("job %s %s\n", last.id().c_str(), StateName(last.state()).c_str());
      if (!header && last.history_size() > 0) {
        PrintEpochHeader();
        header = true;
        for (const auto& m : last.history()) PrintEpoch(m);
      }
    } else if (event.has_progress() && tty) {
      const auto& p = event.progress();
      const int width = 30;
      const double done = p.total_steps() ? double(p.global_step()) / p.total_steps() : 0;
      const int filled = static_cast<int>(done * width);
      std::printf("\r[%s%s] %3.0f%% epoch %d/%d step %lld/%lld loss %.4f %.0f img/s ETA %s   ",
                  std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(), done * 100, p.epoch(),
                  p.total_epochs(), static_cast<long long>(p.step()), static_cast<long long>(p.steps_in_epoch()),
                  p.loss(), p.images_per_s(), Duration(p.eta_seconds()).c_str());
      bar_shown = true;
    } else if (event.has_epoch()) {
      if (bar_shown) std::printf("\r%s\r", std::string(110, ' ').c_str()), bar_shown = false;
      if (!header) PrintEpochHeader(), header = true;
      PrintEpoch(event.epoch());
    }
    std::fflush(stdout);
  });
  std::printf("\n");
  const v1::Job job = client.GetJob(id);
  PrintJob(job);
  return job.state() == v1::JOB_STATE_SUCCEEDED ? 0 : kExitError;
}

int Train(FacetClient& client, const FlagSet& f) {
  const v1::Job job = client.StartTraining(TrainingConfigFromFlags(f));
  std::printf("submitted %s (%s)\n", job.id().c_str(), StateName(job.state()).c_str());
  return f.GetBool("watch") ? Watch(client, job.id()) : 0;
}

int Jobs(FacetClient& client, const FlagSet& f) {
  v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  if (!f.GetString("state").empty()) {
    std::string upper = "JOB_STATE_";
    for (char c : f.GetString("state")) upper += static_cast<char>(std::toupper(c));
    if (!v1::JobState_Parse(upper, &state)) {
      throw std::invalid_argument("--state: '" + f.GetString("state") +
                                  "' is not one of queued, running, succeeded, failed, cancelled");
    }
  }
  const auto response = client.ListJobs(state, static_cast<int>(f.GetInt("limit")), f.GetString("page-token"));
  std::printf("%-18s %-10s %-20s %-12s %9s %8s %8s %-18s\n", "JOB", "STATE", "CREATED", "PROGRESS", "AGE_MAE_Y",
              "GENDER", "ETHNIC", "MODEL");
  for (const auto& job : response.jobs()) {
    const std::string progress = std::to_string(job.latest().epoch()) + "/" + std::to_string(job.progress().total_epochs());
    std::printf("%-18s %-10s %-20s %-12s", job.id().c_str(), StateName(job.state()).c_str(),
                FormatTime(job.created_at()).c_str(), progress.c_str());
    if (job.has_latest()) {
      std::printf(" %9.2f %8.3f %8.3f", job.latest().validation().age_mae_years(),
                  job.latest().validation().gender_accuracy(), job.latest().validation().ethnicity_accuracy());
    } else {
      std::printf(" %9s %8s %8s", "-", "-", "-");
    }
    std::printf(" %-18s\n", job.model_id().empty() ? "-" : job.model_id().c_str());
  }
  if (!response.next_page_token().empty()) std::printf("more: --page-token %s\n", response.next_page_token().c_str());
  return 0;
}

int Models(FacetClient& client) {
  std::printf("%-20s %-7s %-9s %6s %5s %9s %8s %8s %-18s %s\n", "MODEL", "ACTIVE", "ARCH", "WIDTH", "SIZE",
              "AGE_MAE_Y", "GENDER", "ETHNIC", "JOB", "CREATED");
  const v1::ListModelsResponse response = client.ListModels();  // named: a range-for over a temporary's member dangles
  for (const auto& m : response.models()) {
    std::printf("%-20s %-7s %-9s %6d %5d", m.id().c_str(), m.active() ? "*" : "", m.arch().c_str(), m.base_width(),
                m.image_size());
    if (m.has_metrics()) {
      std::printf(" %9.2f %8.3f %8.3f", m.metrics().age_mae_years(), m.metrics().gender_accuracy(),
                  m.metrics().ethnicity_accuracy());
    } else {
      std::printf(" %9s %8s %8s", "-", "-", "-");
    }
    std::printf(" %-18s %s\n", m.job_id().empty() ? ("(" + m.source() + ")").c_str() : m.job_id().c_str(),
                FormatTime(m.created_at()).c_str());
  }
  return 0;
}

std::vector<std::string> ImageFiles(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  for (const auto& arg : args) {
    if (fs::is_directory(arg)) {
      std::vector<std::string> in_dir;
      for (const auto& e : fs::directory_iterator(arg)) {
        std::string ext = e.path().extension().string();
        for (auto& ch : ext) ch = static_cast<char>(std::tolower(ch));
        if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp")) {
          in_dir.push_back(e.path().string());
        }
      }
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else {
      files.push_back(arg);
    }
  }
  return files;
}

int Predict(FacetClient& client, const FlagSet& f) {
  const auto files = ImageFiles(f.positional());
  if (files.empty()) throw std::invalid_argument("predict: give at least one image file or folder");
  const bool json = f.GetBool("json");
  const size_t per_request = static_cast<size_t>(std::max(1L, f.GetInt("batch")));
  if (!json) {
    std::printf("%-44s %6s %-11s %-7s %6s %-10s %6s\n", "IMAGE", "AGE", "AGE RANGE", "GENDER", "P", "ETHNICITY",
                "P");
  }
  int failures = 0;
  for (size_t start = 0; start < files.size(); start += per_request) {
    v1::PredictRequest request;
    request.set_detect_faces(f.GetBool("detect-faces"));
    std::vector<std::string> names;
    for (size_t i = start; i < files.size() && i < start + per_request; ++i) {
      std::ifstream in(files[i], std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "%s: cannot read\n", files[i].c_str());
        ++failures;
        continue;
      }
      request.add_images(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
      names.push_back(files[i]);
    }
    if (names.empty()) continue;
    const auto response = client.Predict(request);
    for (int i = 0; i < response.results_size(); ++i) {
      const auto& r = response.results(i);
      if (json) {
        v1::ImageResult copy = r;
        std::string line;
        google::protobuf::util::JsonPrintOptions options;
        options.preserve_proto_field_names = true;
        (void)google::protobuf::util::MessageToJsonString(copy, &line, options);
        std::printf("{\"image\":\"%s\",\"model_id\":\"%s\",\"result\":%s}\n", names[i].c_str(),
                    response.model_id().c_str(), line.c_str());
        failures += r.error_code() != 0;
        continue;
      }
      const std::string shown = fs::path(names[i]).filename().string();
      if (r.error_code() != 0) {
        std::printf("%-44s error %d: %s\n", shown.c_str(), r.error_code(), r.error_message().c_str());
        ++failures;
        continue;
      }
      if (r.faces_size() == 0) std::printf("%-44s no face found\n", shown.c_str());
      for (const auto& face : r.faces()) {
        const float pg = *std::max_element(face.gender_probabilities().begin(), face.gender_probabilities().end());
        const float pe =
            *std::max_element(face.ethnicity_probabilities().begin(), face.ethnicity_probabilities().end());
        char range[32] = "-";
        if (face.has_age_interval()) {
          std::snprintf(range, sizeof(range), "%.0f-%.0f", face.age_interval().low_years(),
                        face.age_interval().high_years());
        }
        std::printf("%-44s %6.1f %-11s %-7s %6.3f %-10s %6.3f", shown.c_str(), face.age_years(), range,
                    face.gender().c_str(), pg, face.ethnicity().c_str(), pe);
        if (face.has_box()) {
          std::printf("  box %d,%d %dx%d", face.box().x(), face.box().y(), face.box().width(), face.box().height());
        }
        std::printf("\n");
      }
    }
  }
  return failures ? kExitError : 0;
}

int Health(FacetClient& client) {
  int code = 0;
  for (const char* service : {"", "facet.v1.TrainingService", "facet.v1.ModelService", "facet.v1.InferenceService"}) {
    const std::string status = client.Health(service);
    std::printf("%-28s %s\n", *service ? service : "(server)", status.c_str());
    if (!*service && status != "SERVING") code = kExitError;
  }
  return code;
}

int BenchPredict(const facet::client::ConnectionOptions& connection, const FlagSet& f) {
  if (f.GetString("images").empty()) throw std::invalid_argument("bench predict: --images DIR is required");
  auto files = ImageFiles({f.GetString("images")});
  files.resize(std::min<size_t>(files.size(), static_cast<size_t>(std::max(1L, f.GetInt("max-images")))));
  std::vector<std::string> images;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    images.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (images.empty()) throw std::invalid_argument("bench predict: no image files in " + f.GetString("images"));
  const bool json = f.GetBool("json");
  if (!json) {
    std::printf("%11s %9s %10s %9s %9s %9s %9s  %s\n", "CONCURRENCY", "REQUESTS", "IMAGES/S", "P50_MS", "P90_MS",
                "P99_MS", "MAX_MS", "ERRORS");
  }
  std::string concurrency_list = f.GetString("concurrency");
  std::stringstream in(concurrency_list);
  int failed = 0;
  for (std::string item; std::getline(in, item, ',');) {
    facet::client::LoadOptions options;
    options.concurrency = std::stoi(item);
    options.seconds = f.GetDouble("seconds");
    options.warm_up_seconds = f.GetDouble("warm-up");
    options.images_per_request = static_cast<int>(f.GetInt("images-per-request"));
    const auto r = facet::client::RunPredictLoad(connection, images, options);
    std::string errors;
    for (const auto& [code, n] : r.errors) errors += (errors.empty() ? "" : ",") + code + "=" + std::to_string(n);
    failed += !r.errors.empty();
    if (json) {
      std::printf("{\"concurrency\":%d,\"seconds\":%.1f,\"requests\":%lld,\"images\":%lld,\"images_per_s\":%.2f,"
                  "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errors\":\"%s\"}\n",
                  r.concurrency, r.seconds, static_cast<long long>(r.requests), static_cast<long long>(r.images),
                  r.images_per_s, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, errors.c_str());
    } else {
      std::printf("%11d %9lld %10.1f %9.2f %9.2f %9.2f %9.2f  %s\n", r.concurrency, static_cast<long long>(r.requests),
                  r.images_per_s, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms, errors.empty() ? "-" : errors.c_str());
    }
    std::fflush(stdout);
  }
  return failed ? kExitError : 0;
}

int Run(const std::string& command, int argc, const char* const* argv, int first) {
  FlagSet f = CommandFlags("usage: facetctl " + command + " [flags]");
  if (command == "train") DefineTrainingFlags(f);
  if (command == "jobs") {
    f.String("state", "", "only jobs in this state (queued, running, succeeded, failed, cancelled)");
    f.Int("limit", 50, "jobs per page");
    f.String("page-token", "", "the token a previous page printed");
  }
  if (command == "job" || command == "model") f.Bool("json", false, "print the whole message as JSON");
  if (command == "predict") {
    f.Bool("json", false, "one JSON object per image");
    f.Bool("detect-faces", false, "find faces in uncropped photos (one result per face)");
    f.Int("batch", 16, "images per request");
  }
  if (command == "bench") {
    f.String("images", "", "folder of image files to send (round-robin)");
    f.String("concurrency", "1,8,64,256", "concurrent callers, one measurement per value");
    f.Double("seconds", 10, "measured time per concurrency");
    f.Double("warm-up", 2, "seconds before measuring, per concurrency");
    f.Int("images-per-request", 1, "images in each Predict");
    f.Int("max-images", 512, "images read from --images");
    f.Bool("json", false, "one JSON object per concurrency");
  }
  if (command == "token") {
    f.String("role", "", "admin (everything), predict (Predict only) or read (get, list, watch)");
    f.String("name", "", "who holds the token, shown in the server's logs");
  }
  f.Parse(argc, argv, first);
  if (command == "train" && !f.GetString("config").empty()) {
    // Re-parse with the file's lines first, so that the command line wins.
    std::vector<std::string> merged = ConfigFileArgs(f.GetString("config"));
    std::vector<const char*> args = {argv[0]};
    for (auto& a : merged) args.push_back(a.c_str());
    for (int i = first; i < argc; ++i) args.push_back(argv[i]);
    FlagSet again = CommandFlags("usage: facetctl train [flags]");
    DefineTrainingFlags(again);
    again.Parse(static_cast<int>(args.size()), args.data(), 1);
    f = again;
  }
  if (f.help_requested()) {
    std::fputs(f.Help().c_str(), stdout);
    return 0;
  }
  const auto& pos = f.positional();
  if (command == "token") {
    if (pos.size() != 1 || pos[0] != "create") throw std::invalid_argument("token: the subcommand is `create`");
    return CreateToken(f);
  }
  if (command == "bench") {
    if (pos.size() != 1 || pos[0] != "predict") throw std::invalid_argument("bench: the benchmark is `predict`");
    return BenchPredict(ConnectionFromFlags(f), f);
  }

  const bool needs_id = command == "job" || command == "watch" || command == "cancel" || command == "model" ||
                        command == "activate" || command == "register";
  if (needs_id && pos.size() != 1) throw std::invalid_argument(command + ": needs exactly one argument (see --help)");
  if (!needs_id && command != "predict" && !pos.empty()) {
    throw std::invalid_argument(command + ": unexpected argument '" + pos[0] + "'");
  }
  if (command == "train" && f.GetString("data").empty()) throw std::invalid_argument("train: --data DIR is required");

  FacetClient client(ConnectionFromFlags(f));
  if (command == "train") return Train(client, f);
  if (command == "jobs") return Jobs(client, f);
  if (command == "job") {
    const auto job = client.GetJob(pos[0]);
    f.GetBool("json") ? (void)std::printf("%s\n", Json(job).c_str()) : PrintJob(job);
    return job.state() == v1::JOB_STATE_FAILED ? kExitError : 0;
  }
  if (command == "watch") return Watch(client, pos[0]);
  if (command == "cancel") {
    const auto job = client.CancelJob(pos[0]);
    std::printf("%s: cancellation %s\n", job.id().c_str(),
                job.state() == v1::JOB_STATE_CANCELLED ? "done" : "requested (stops between two steps)");
    return 0;
  }
  if (command == "models") return Models(client);
  if (command == "model") {
    const auto m = client.GetModel(pos[0]);
    std::printf("%s\n", Json(m).c_str());
    return 0;
  }
  if (command == "activate") {
    const auto m = client.ActivateModel(pos[0]);
    std::printf("%s is now serving Predict\n", m.id().c_str());
    return 0;
  }
  if (command == "register") {
    const auto m = client.RegisterModel(pos[0]);
    std::printf("registered %s (%s width %d, %d px)\n", m.id().c_str(), m.arch().c_str(), m.base_width(),
                m.image_size());
    return 0;
  }
  if (command == "predict") return Predict(client, f);
  if (command == "health") return Health(client);
  throw std::invalid_argument("unknown command '" + command + "' (see facetctl --help)");
}

}  // namespace

int main(int argc, char** argv) {
  // Global flags may come before the command: facetctl --server HOST:PORT jobs
  int i = 1;
  std::vector<std::string> leading;
  while (i < argc && std::string(argv[i]).rfind("--", 0) == 0) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    leading.push_back(arg);
    const bool takes_value = arg != "--tls";  // the one global flag without a value
    if (takes_value && arg.find('=') == std::string::npos && i + 1 < argc) leading.push_back(argv[++i]);
    ++i;
  }
  if (i >= argc) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  const std::string command = argv[i];
  std::vector<const char*> args = {argv[0]};
  for (int k = i + 1; k < argc; ++k) args.push_back(argv[k]);
  for (const auto& l : leading) args.push_back(l.c_str());
  try {
    return Run(command, static_cast<int>(args.size()), args.data(), 1);
  } catch (const RpcError& e) {
    std::fprintf(stderr, "facetctl: %s\n", e.what());
    if (e.code() == grpc::StatusCode::UNAVAILABLE) {
      std::fprintf(stderr, "facetctl: is facet-server running at the address given by --server / $FACET_SERVER?\n");
      return kExitUnreachable;
    }
    return kExitError;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "facetctl: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "facetctl: %s\n", e.what());
    return kExitError;
  }
}

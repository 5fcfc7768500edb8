// facet-server: trains and serves the multi-task face model over gRPC. See --help.
#include "core/util/flag_set.h"
#include "server/logging.h"
#include "server/server.h"
#include "server/train_worker.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

const char kUsage[] =
    "usage: facet-server [flags]\n"
    "       facet-server train-worker --task FILE   (one rank of a data-parallel job; see train-worker --help)\n"
    "Trains and serves facet's multi-task face model (age, gender, ethnicity) over gRPC.\n"
    "Every flag can also be set through the environment variable shown; a flag on the command line wins.\n"
    "Signals: SIGTERM or SIGINT shut down gracefully (running jobs resume on the next start); SIGHUP reads the\n"
    "--auth-tokens file and the --tls-* files again (a bad file is refused and what is in use stays).";

facet::FlagSet MakeFlags() {
  facet::FlagSet f(kUsage);
  f.String("listen", "127.0.0.1:7070", "gRPC listen address (host:port; port 0 picks a free one)", "FACET_LISTEN");
  f.String("metrics-listen", "127.0.0.1:9464", "Prometheus /metrics address; empty to disable", "FACET_METRICS_LISTEN");
  f.String("data-root", ".", "folder that training data and model paths in requests are relative to",
           "FACET_DATA_ROOT");
  f.String("state-dir", "facet-state", "jobs database, checkpoints and models live here", "FACET_STATE_DIR");
  f.String("device", "auto", "cpu, cuda, cuda:N or auto (cuda when available)", "FACET_DEVICE");
  f.Int("threads", 0, "LibTorch intra-op threads; 0 = all cores", "FACET_THREADS");
  f.Int("concurrent-jobs", 1, "training jobs that run at the same time", "FACET_CONCURRENT_JOBS");
  f.String("rendezvous-address", "127.0.0.1",
           "data-parallel jobs: address of this host that their other ranks reach (c10d TCPStore of rank 0)",
           "FACET_RENDEZVOUS_ADDRESS");
  f.Int("rendezvous-timeout-s", 300, "data-parallel jobs: how long every rank has to join", "FACET_RENDEZVOUS_TIMEOUT_S");
  f.Int("collective-timeout-s", 300, "data-parallel jobs: longest wait for one collective (a stuck or remote dead rank)",
        "FACET_COLLECTIVE_TIMEOUT_S");
  f.String("follow", "", "run as a Predict replica of this primary (host:port): serve its active model, refuse "
           "training and model changes", "FACET_FOLLOW");
  f.String("follow-token", "", "token for --follow (a `read` role suffices)", "FACET_FOLLOW_TOKEN");
  f.String("follow-tls-ca", "", "PEM CA of the primary's certificate: reach --follow over TLS", "FACET_FOLLOW_TLS_CA");
  f.Int("max-batch-size", 64, "largest Predict batch per forward pass", "FACET_MAX_BATCH_SIZE");
  f.Int("max-queue-delay-us", 2000, "longest wait for a Predict batch to fill, microseconds",
        "FACET_MAX_QUEUE_DELAY_US");
  f.Int("max-queued-images", 1024, "Predict queue bound; past it RESOURCE_EXHAUSTED", "FACET_MAX_QUEUED_IMAGES");
  f.Int("max-images-per-request", 64, "images one Predict may carry", "FACET_MAX_IMAGES_PER_REQUEST");
  f.Int("max-image-bytes", 10 << 20, "largest encoded image", "FACET_MAX_IMAGE_BYTES");
  f.Int("max-image-pixels", 40000000, "largest decoded image (width*height): stops decompression bombs",
        "FACET_MAX_IMAGE_PIXELS");
  f.Int("max-message-bytes", 64 << 20, "largest gRPC message", "FACET_MAX_MESSAGE_BYTES");
  f.String("face-cascade", facet::server::FaceDetector::kDefaultCascade,
           "OpenCV Haar cascade for detect_faces; empty disables it", "FACET_FACE_CASCADE");
  f.Bool("flip-average", false, "average each prediction with the mirrored image's", "FACET_FLIP_AVERAGE");
  f.String("auth-tokens", "", "token file (ROLE SHA256 [NAME] per line; see `facetctl token create`), read again on "
           "SIGHUP; empty: no authentication", "FACET_AUTH_TOKENS");
  f.Bool("allow-unauthenticated-remote", false,
         "without --auth-tokens, listen on --listen as given instead of its loopback equivalent",
         "FACET_ALLOW_UNAUTHENTICATED_REMOTE");
  f.String("tls-cert", "",
           "PEM certificate chain: serve gRPC over TLS (with --tls-key); SIGHUP rereads the --tls-* files",
           "FACET_TLS_CERT");
  f.String("tls-key", "", "PEM private key of --tls-cert", "FACET_TLS_KEY");
  f.String("tls-client-ca", "", "PEM CA: require client certificates it signed (mutual TLS)", "FACET_TLS_CLIENT_CA");
  f.Int("shutdown-grace-ms", 10000, "on SIGTERM/SIGINT, how long in-flight requests may take", "FACET_SHUTDOWN_GRACE_MS");
  f.String("log-level", "info", "trace, debug, info, warn, error, critical or off", "FACET_LOG_LEVEL");
  f.Bool("log-json", false, "one JSON object per log line", "FACET_LOG_JSON");
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "train-worker") return facet::server::RunTrainWorker(argc - 1, argv + 1);
  facet::FlagSet flags = MakeFlags();
  try {
    flags.Parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "facet-server: %s\n", e.what());
    return 2;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (!flags.positional().empty()) {
    std::fprintf(stderr, "facet-server: unexpected argument '%s' (see --help)\n", flags.positional()[0].c_str());
    return 2;
  }
  try {
    facet::server::ConfigureLogging(flags.GetString("log-level"), flags.GetBool("log-json"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "facet-server: %s\n", e.what());
    return 2;
  }
  // Signals are taken by a dedicated thread (sigwait), so shutdown and reloads run as ordinary code, not in a
  // handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  facet::server::ServerOptions options;
  options.listen_address = flags.GetString("listen");
  options.metrics_address = flags.GetString("metrics-listen");
  options.data_root = flags.GetString("data-root");
  options.state_dir = flags.GetString("state-dir");
  options.device = flags.GetString("device");
  options.threads = static_cast<int>(flags.GetInt("threads"));
  options.concurrent_jobs = static_cast<int>(flags.GetInt("concurrent-jobs"));
  options.rendezvous_address = flags.GetString("rendezvous-address");
  options.rendezvous_timeout_s = static_cast<int>(flags.GetInt("rendezvous-timeout-s"));
  options.collective_timeout_s = static_cast<int>(flags.GetInt("collective-timeout-s"));
  options.follow = flags.GetString("follow");
  options.follow_connection.token = flags.GetString("follow-token");
  options.follow_connection.tls_ca_file = flags.GetString("follow-tls-ca");
  options.batching.max_batch_size = static_cast<int>(flags.GetInt("max-batch-size"));
  options.batching.max_queue_delay = std::chrono::microseconds(flags.GetInt("max-queue-delay-us"));
  options.batching.max_queued_images = static_cast<size_t>(flags.GetInt("max-queued-images"));
  options.limits.max_images_per_request = static_cast<int>(flags.GetInt("max-images-per-request"));
  options.limits.max_image_bytes = static_cast<size_t>(flags.GetInt("max-image-bytes"));
  options.limits.max_image_pixels = flags.GetInt("max-image-pixels");
  options.max_message_bytes = static_cast<int>(flags.GetInt("max-message-bytes"));
  options.face_cascade = flags.GetString("face-cascade");
  options.flip_average = flags.GetBool("flip-average");
  options.auth_token_file = flags.GetString("auth-tokens");
  options.allow_unauthenticated_remote = flags.GetBool("allow-unauthenticated-remote");
  options.tls_cert_file = flags.GetString("tls-cert");
  options.tls_key_file = flags.GetString("tls-key");
  options.tls_client_ca_file = flags.GetString("tls-client-ca");

  std::unique_ptr<facet::server::FacetServer> server;
  try {
    server = std::make_unique<facet::server::FacetServer>(options);
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  std::thread signal_thread([&] {
    int signal = 0;
    while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
      spdlog::info("received SIGHUP: reloading credentials");
      server->ReloadCredentials();
    }
    spdlog::info("received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    server->Shutdown(std::chrono::milliseconds(flags.GetInt("shutdown-grace-ms")));
  });
  server->Wait();
  signal_thread.join();
  server.reset();
  return 0;
}

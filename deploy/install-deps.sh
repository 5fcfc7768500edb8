#!/usr/bin/env bash
# Installs the Debian packages facet needs, on Debian 12 (bookworm, LibTorch 1.13) or Debian 13 (trixie, LibTorch
# 2.6): the package names are the same on both.
#   deploy/install-deps.sh              everything the build, the tests, the demo and the long runs need (default)
#   deploy/install-deps.sh image-cpu    what the CPU image's build stage needs: compilers, CPU LibTorch, libraries
#   deploy/install-deps.sh image-cuda   the same with Debian's CUDA LibTorch, CUDA toolkit, NCCL and Gloo for CUDA
#                                       (Debian 13 with contrib and non-free; see NVIDIA_CUDNN_LICENSE below)
#   deploy/install-deps.sh runtime FILE the packages listed in FILE (one per line, `name` or `name=version`)
# Idempotent: when everything is already installed it touches nothing and needs no network.
# Run as root, or as a user with sudo.
#
# CUDA LibTorch depends on Debian's nvidia-cudnn, whose installer downloads cuDNN from NVIDIA after asking to accept
# NVIDIA's cuDNN licence. NVIDIA_CUDNN_LICENSE answers that question: `accept` (cuDNN is downloaded) or `decline`
# (no cuDNN: enough to compile, not to run). It must be set for image-cuda, and for runtime lists that need cuDNN.
set -euo pipefail

profile=${1:-dev}

# Compilers and the libraries facet-server and facetctl build against, LibTorch aside.
BUILD=(
  build-essential cmake ninja-build ccache pkg-config
  # image decode, augmentation, face detection (Haar cascades live in opencv-data)
  libopencv-dev opencv-data
  # service: gRPC, Protobuf, logs, metrics, embedded store
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libspdlog-dev libfmt-dev prometheus-cpp-dev libsqlite3-dev libssl-dev
  # tests
  libgtest-dev libgmock-dev
)
# The BLAS LibTorch calls (through the libblas.so.3 alternative). It must be safe to call from many threads at once
# (LibTorch's OpenMP workers, concurrent Predict calls) and must not use much thread-local storage: OpenBLAS's
# pthread and OpenMP builds carry 60 KiB of static TLS, which leaves no room in the 100 KiB stacks of
# prometheus-cpp's HTTP threads, so /metrics never answers. Debian 12: the serial OpenBLAS (0.3.21). Debian 13: its
# serial OpenBLAS (0.3.29) gives wrong numbers when called from several threads ("BLAS : Bad memory unallocation!",
# ResNet-50 in double), so BLIS's serial build, which measured as fast or faster (docs/deploy.md).
if grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
  BLAS=libopenblas0-serial
else
  BLAS=libblis4-serial
fi
# CPU LibTorch. libgloo-dev: the headers of Gloo, which c10d's ProcessGroupGloo includes (data-parallel training).
TORCH_CPU=(libtorch-dev "$BLAS" libgloo-dev)
# CUDA LibTorch (Debian 13 contrib), the CUDA toolkit CMake's Torch package configures with (non-free), NCCL.
TORCH_CUDA=(libtorch-cuda-dev nvidia-cuda-toolkit libnccl-dev libgloo-cuda-dev "$BLAS")
# Only for development, tests and the long runs.
DEV=(
  git openssl
  # fuzzing and the sanitizer build: clang with libFuzzer, ASan and UBSan runtimes
  clang libclang-rt-dev
  # metrics lint (promtool) and the Python gRPC client test
  prometheus python3-grpcio python3-yaml
  # deployment checks: docker-compose validates the compose files (no Docker engine is needed for that)
  docker-compose
  # reference and parity checks run with Debian's python3 (never part of the product)
  python3 python3-torch python3-torchvision python3-opencv python3-numpy
  # make bench: the latency/throughput plot
  python3-matplotlib
)

case "$profile" in
  dev) PACKAGES=("${BUILD[@]}" "${TORCH_CPU[@]}" "${DEV[@]}") ;;
  image-cpu) PACKAGES=("${BUILD[@]}" "${TORCH_CPU[@]}") ;;
  image-cuda) PACKAGES=("${BUILD[@]}" "${TORCH_CUDA[@]}") ;;
  runtime)
    [ $# -eq 2 ] && [ -r "$2" ] || { echo "install-deps: usage: $0 runtime PACKAGE_LIST_FILE" >&2; exit 2; }
    mapfile -t PACKAGES < <(grep -v '^[[:space:]]*$' "$2")
    ;;
  *) echo "install-deps: unknown profile '$profile' (dev, image-cpu, image-cuda, runtime FILE)" >&2; exit 2 ;;
esac

installed() {  # name or name=version
  local name=${1%%=*} want="" have
  [ "$name" != "$1" ] && want=${1#*=}
  have=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$name" 2>/dev/null) || return 1
  [ "${have%% *}" = installed ] || return 1
  [ -z "$want" ] || [ "${have#* }" = "$want" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

if printf '%s\n' "${missing[@]}" | grep -qE '^(libtorch-cuda|nvidia-cudnn)'; then
  case "${NVIDIA_CUDNN_LICENSE:-}" in
    accept) answer="I Agree" ;;
    decline) answer="I Decline" ;;
    *)
      echo "install-deps: CUDA LibTorch needs cuDNN, which Debian's nvidia-cudnn downloads from NVIDIA once you" \
           "accept NVIDIA's cuDNN licence. Read it (https://docs.nvidia.com/deeplearning/cudnn/sla/), then set" \
           "NVIDIA_CUDNN_LICENSE=accept (or =decline to compile without cuDNN)." >&2
      exit 1
      ;;
  esac
  echo "nvidia-cudnn nvidia-cudnn/question select $answer" | $SUDO debconf-set-selections
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"

#!/usr/bin/env bash
# Installs every Debian (bookworm) package that facet's build, tests and demo need.
# Idempotent: when everything is already installed it touches nothing and needs no network.
# Run as root, or as a user with sudo.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # ML: CPU LibTorch. The serial OpenBLAS replaces the reference BLAS (~15x faster matmul); the pthread/OpenMP
  # builds are avoided on purpose: their thread-local storage stops prometheus-cpp's HTTP threads from starting.
  libtorch-dev libopenblas0-serial
  # data-parallel training: the headers of Gloo, which c10d's ProcessGroupGloo includes
  libgloo-dev
  # image decode, augmentation, face detection (Haar cascades live in opencv-data)
  libopencv-dev opencv-data
  # service: gRPC, Protobuf, logs, metrics, embedded store
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libspdlog-dev libfmt-dev prometheus-cpp-dev libsqlite3-dev libssl-dev openssl
  # tests
  libgtest-dev libgmock-dev
  # fuzzing and the sanitizer build: clang with libFuzzer, ASan and UBSan runtimes
  clang libclang-rt-14-dev
  # metrics lint (promtool) and the Python gRPC client test
  prometheus python3-grpcio python3-yaml
  # deployment checks: docker-compose validates the compose files (no Docker engine is needed for that)
  docker-compose
  # reference and parity checks run with Debian's python3 (never part of the product)
  python3 python3-torch python3-torchvision python3-opencv python3-numpy
  # make bench: the latency/throughput plot
  python3-matplotlib
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
    missing+=("$p")
  fi
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

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"

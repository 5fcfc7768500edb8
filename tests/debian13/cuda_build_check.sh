#!/usr/bin/env bash
# The CUDA compile check (`make check-cuda-build`), run inside a Debian 13 chroot by tests/debian13/chroot.sh:
# facet-server and the core tests compiled and linked against Debian's CUDA LibTorch with NCCL on, as the GPU
# image's build stage compiles them (the same deploy/install-deps.sh image-cuda, the same CMake flags), so that
# every CUDA and NCCL branch of the code compiles here, on a machine without a GPU or cuDNN.
#
# CUDA LibTorch links against cuDNN, which Debian's nvidia-cudnn downloads from NVIDIA; here its licence question is
# declined, so there is no libcudnn.so.9. A stand-in is made for the link alone: a library of empty functions with
# the cuDNN symbols that libtorch_cuda needs, in the build folder, given to the linker with -rpath-link only. It is
# never installed, never on a run-time path, and never shipped.
#   tests/debian13/cuda_build_check.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
cd "$(dirname "$0")/../.."
bash deploy/apt-components.sh contrib non-free
NVIDIA_CUDNN_LICENSE=decline bash deploy/install-deps.sh image-cuda

torch_cuda=$(find /usr/lib -name 'libtorch_cuda.so' | head -n 1)
[ -n "$torch_cuda" ] || { echo "cuda_build_check: libtorch_cuda.so not found" >&2; exit 1; }
standin=$build/cudnn-link-standin
mkdir -p "$standin"
if [ ! -e /usr/lib/x86_64-linux-gnu/libcudnn.so.9 ]; then
  nm -D --undefined-only "$torch_cuda" | awk '$2 ~ /^cudnn/ {sub(/@.*/, "", $2); print $2}' | sort -u \
    | awk '{print "void " $1 "(void) {}"}' > "$standin/cudnn_standin.c"
  echo "cuda_build_check: cuDNN link stand-in with $(wc -l < "$standin/cudnn_standin.c") symbols (link only)"
  # libtorch_cuda asks for versioned symbols (cudnnGetVersion@libcudnn.so.9): the stand-in defines that version.
  echo 'libcudnn.so.9 { global: *; };' > "$standin/cudnn_standin.map"
  cc -shared -fPIC -Wl,-soname,libcudnn.so.9 -Wl,--version-script,"$standin/cudnn_standin.map" \
    -o "$standin/libcudnn.so.9" "$standin/cudnn_standin.c"
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFACET_NCCL=ON -DFACET_BUILD_TESTS=ON \
  -DFACET_FUZZ_BUILD_DIR="$build/no-fuzzers" \
  -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$(pwd)/$standin" -DCMAKE_SHARED_LINKER_FLAGS="-Wl,-rpath-link,$(pwd)/$standin"
grep -q '^FACET_NCCL_INCLUDE_DIR:PATH=/' "$build/CMakeCache.txt"
time cmake --build "$build" --target facet-server facetctl facet_core_tests facet_server_tests facet-distributed-probe

# What was compiled: ProcessGroupNCCL is linked in, and LibTorch is the CUDA build.
# (grep without -q: an early exit would kill nm with SIGPIPE, which pipefail reports as a failure)
nm -C "$build/server/facet-server" | grep 'c10d::ProcessGroupNCCL::ProcessGroupNCCL' >/dev/null \
  || { echo "cuda_build_check: facet-server does not construct ProcessGroupNCCL" >&2; exit 1; }
ldd "$build/server/facet-server" | grep -E 'libtorch_cuda|libnccl|libcudnn'
echo "cuda_build_check: facet-server, facetctl and both test binaries compiled and linked against CUDA LibTorch" \
     "$(dpkg-query -W -f='${Version}' libtorch-cuda-dev) with NCCL $(dpkg-query -W -f='${Version}' libnccl-dev)"

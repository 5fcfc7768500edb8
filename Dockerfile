# syntax=docker/dockerfile:1
# facet-server and facetctl in two flavours, selected with --target:
#   runtime-gpu (default): CUDA LibTorch, the official LibTorch distribution for a pinned CUDA version
#   runtime-cpu: Debian bookworm's CPU LibTorch, built exactly as deploy/install-deps.sh does on a host
# docker compose builds runtime-gpu; docker-compose.cpu.yml switches to runtime-cpu.

ARG DEBIAN_IMAGE=debian:bookworm
ARG DEBIAN_SLIM_IMAGE=debian:bookworm-slim

# Libraries both flavours run with (Debian bookworm), without LibTorch.
ARG RUNTIME_PACKAGES="libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libopencv-objdetect406 \
  opencv-data libgrpc++1.51 libprotobuf32 libspdlog1.10 libfmt9 libprometheus-cpp-core1.0 \
  libprometheus-cpp-pull1.0 libsqlite3-0 libssl3 libopenblas0-serial ca-certificates"

# ---------------------------------------------------------------------------------------------- CPU build
FROM ${DEBIAN_IMAGE} AS build-cpu
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN bash deploy/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFACET_BUILD_TESTS=OFF \
 && cmake --build /build --target facet-server facetctl

# ---------------------------------------------------------------------------------------------- GPU build
# The official LibTorch distribution (cxx11 ABI) for one CUDA version, pinned by URL and checksum. It carries the
# CUDA runtime libraries it needs; the host provides only the driver (NVIDIA container toolkit).
# CMake's Torch package needs the CUDA toolkit (nvcc, headers) to configure against CUDA LibTorch: it comes from
# NVIDIA's Debian 12 repository; a toolkit of the same major version as LibTorch's CUDA works (minor versions are
# compatible).
FROM ${DEBIAN_IMAGE} AS build-gpu
ARG LIBTORCH_URL=https://download.pytorch.org/libtorch/cu121/libtorch-cxx11-abi-shared-with-deps-2.1.2%2Bcu121.zip
ARG LIBTORCH_SHA256=""
ARG CUDA_REPO=https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64
ARG CUDA_TOOLKIT_PACKAGE=cuda-toolkit-12-4
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake ninja-build pkg-config \
      curl unzip ca-certificates libopencv-dev opencv-data libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev \
      protobuf-compiler libspdlog-dev libfmt-dev prometheus-cpp-dev libsqlite3-dev \
 && curl -fsSL -o /tmp/cuda-keyring.deb "${CUDA_REPO}/cuda-keyring_1.1-1_all.deb" \
 && dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb \
 && apt-get update && apt-get install -y --no-install-recommends "${CUDA_TOOLKIT_PACKAGE}" \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/local/cuda/bin:${PATH}
RUN curl -fsSL -o /tmp/libtorch.zip "${LIBTORCH_URL}" \
 && if [ -n "${LIBTORCH_SHA256}" ]; then echo "${LIBTORCH_SHA256}  /tmp/libtorch.zip" | sha256sum -c -; fi \
 && unzip -q /tmp/libtorch.zip -d /opt && rm /tmp/libtorch.zip
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFACET_BUILD_TESTS=OFF \
      -DCMAKE_PREFIX_PATH=/opt/libtorch \
 && cmake --build /build --target facet-server facetctl

# ------------------------------------------------------------------------------------------------ runtimes
FROM ${DEBIAN_SLIM_IMAGE} AS runtime-base
ARG RUNTIME_PACKAGES
RUN apt-get update && apt-get install -y --no-install-recommends ${RUNTIME_PACKAGES} \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/facet --create-home facet \
 && mkdir -p /data && chown facet /data
ENV FACET_LISTEN=0.0.0.0:7070 \
    FACET_METRICS_LISTEN=0.0.0.0:9464 \
    FACET_DATA_ROOT=/data \
    FACET_STATE_DIR=/var/lib/facet \
    FACET_SERVER=127.0.0.1:7070
VOLUME ["/var/lib/facet", "/data"]
EXPOSE 7070 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["facetctl", "--timeout", "3", "health"]
USER facet
ENTRYPOINT ["facet-server"]

FROM runtime-base AS runtime-cpu
USER root
RUN apt-get update && apt-get install -y --no-install-recommends libtorch1.13 && rm -rf /var/lib/apt/lists/*
COPY --from=build-cpu /build/server/facet-server /build/client/facetctl /usr/local/bin/
USER facet

FROM runtime-base AS runtime-gpu
COPY --from=build-gpu /opt/libtorch/lib /opt/libtorch/lib
COPY --from=build-gpu /build/server/facet-server /build/client/facetctl /usr/local/bin/
ENV LD_LIBRARY_PATH=/opt/libtorch/lib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

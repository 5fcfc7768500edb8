# facet-server and facetctl in two flavours, both from the Debian packages of one release (Debian 13, trixie), no
# archive fetched from a URL and no second apt repository; selected with --target:
#   runtime-gpu (default): Debian's CUDA LibTorch (libtorch-cuda-dev, contrib) with NCCL, CUDA 12.4 from Debian
#   runtime-cpu: Debian's CPU LibTorch
# Build with BuildKit (DOCKER_BUILDKIT=1, the default of `docker compose build`): compiles go through a ccache kept in
# a cache mount, so that a rebuild after a small change recompiles only what changed.
# The GPU build needs NVIDIA_CUDNN_LICENSE=accept: Debian's nvidia-cudnn then downloads cuDNN from NVIDIA while the
# image is built (deploy/install-deps.sh says more); that download is the only thing fetched outside Debian.
# The image is for x86-64 hosts (the runtime-gpu stage copies cuDNN from the multiarch folder of amd64).
# No `# syntax=` line on purpose: it would make BuildKit fetch its frontend from a registry.

ARG DEBIAN_IMAGE=debian:trixie
ARG DEBIAN_SLIM_IMAGE=debian:trixie-slim

# --------------------------------------------------------------------------------------------------- builds
FROM ${DEBIAN_IMAGE} AS build-cpu
WORKDIR /src
COPY deploy/install-deps.sh deploy/install-deps.sh
RUN bash deploy/install-deps.sh image-cpu && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFACET_BUILD_TESTS=OFF \
 && cmake --build /build --target facet-server facetctl facet-make-dataset
RUN bash deploy/runtime-packages.sh /build/server/facet-server /build/client/facetctl /build/core/facet-make-dataset > /build/runtime-packages.txt

# CMake's Torch package configures CUDA LibTorch with nvcc (nvidia-cuda-toolkit, non-free) and the NCCL headers.
# cuDNN is downloaded here, once: the runtime stage copies it instead of downloading it again.
FROM ${DEBIAN_IMAGE} AS build-gpu
ARG NVIDIA_CUDNN_LICENSE=""
WORKDIR /src
COPY deploy/install-deps.sh deploy/apt-components.sh deploy/
RUN if [ "${NVIDIA_CUDNN_LICENSE}" != accept ]; then \
      echo "The GPU image needs cuDNN, which Debian's nvidia-cudnn downloads from NVIDIA under NVIDIA's cuDNN" \
           "licence (docs/deploy.md links it): set NVIDIA_CUDNN_LICENSE=accept in .env" \
           "(or --build-arg NVIDIA_CUDNN_LICENSE=accept) to accept it." >&2; exit 1; fi \
 && bash deploy/apt-components.sh contrib non-free \
 && NVIDIA_CUDNN_LICENSE=accept bash deploy/install-deps.sh image-cuda \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DFACET_BUILD_TESTS=OFF -DFACET_NCCL=ON \
 && cmake --build /build --target facet-server facetctl facet-make-dataset
RUN bash deploy/runtime-packages.sh /build/server/facet-server /build/client/facetctl /build/core/facet-make-dataset > /build/runtime-packages.txt

# ------------------------------------------------------------------------------------------------ runtimes
FROM ${DEBIAN_SLIM_IMAGE} AS runtime-base
RUN useradd --system --uid 10001 --home-dir /var/lib/facet --create-home facet \
 && mkdir -p /data && chown facet /data
ENV FACET_LISTEN=0.0.0.0:7070 \
    FACET_METRICS_LISTEN=0.0.0.0:9464 \
    FACET_DATA_ROOT=/data \
    FACET_STATE_DIR=/var/lib/facet \
    FACET_SERVER=127.0.0.1:7070
VOLUME ["/var/lib/facet", "/data"]
EXPOSE 7070 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["facetctl", "--timeout", "3", "health"]
ENTRYPOINT ["facet-server"]

# The packages are the build's own list (deploy/runtime-packages.sh: the owners of every library the binaries load,
# at the build's versions). Docker keys the COPY by content, so a code change that keeps the list reuses this layer.
FROM runtime-base AS runtime-cpu
COPY deploy/install-deps.sh /tmp/install-deps.sh
COPY --from=build-cpu /build/runtime-packages.txt /tmp/runtime-packages.txt
RUN bash /tmp/install-deps.sh runtime /tmp/runtime-packages.txt && rm -rf /var/lib/apt/lists/*
COPY --from=build-cpu /build/server/facet-server /build/client/facetctl /build/core/facet-make-dataset /usr/local/bin/
USER facet

# Debian's CUDA libraries come as packages; cuDNN, which no package holds, comes from the build stage (the package
# nvidia-cudnn is installed with its question declined, so that it does not download cuDNN a second time).
# CUDA LibTorch's package depends on libcuda1, Debian's copy of the driver's library: the NVIDIA container toolkit
# mounts the host driver's own libcuda over it when the container starts, so that the two always match.
FROM runtime-base AS runtime-gpu
COPY deploy/install-deps.sh deploy/apt-components.sh /tmp/
COPY --from=build-gpu /build/runtime-packages.txt /tmp/runtime-packages.txt
RUN bash /tmp/apt-components.sh contrib non-free \
 && NVIDIA_CUDNN_LICENSE=decline bash /tmp/install-deps.sh runtime /tmp/runtime-packages.txt \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build-gpu /usr/lib/x86_64-linux-gnu/libcudnn* /usr/lib/x86_64-linux-gnu/
RUN ldconfig
COPY --from=build-gpu /build/server/facet-server /build/client/facetctl /build/core/facet-make-dataset /usr/local/bin/
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER facet

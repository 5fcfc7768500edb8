# facet: the two commands a newcomer needs are `make demo` and `make test` (see README.md).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
CTEST_JOBS ?= 2

ASAN_OPTIONS_TESTS := detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0

# Relative paths in the cache key, so that another checkout of the same commit (CI's clean clone) hits the cache.
export CCACHE_BASEDIR := $(CURDIR)

# The sanitizer build: clang, ASan + UBSan everywhere, libFuzzer coverage; shared by `make fuzz` and
# `make test-sanitize`.
SANITIZE_DIR ?= build-sanitize
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20

# Benchmarks run on a Release build of their own.
RELEASE_DIR ?= build-release

.PHONY: all deps configure build test demo clean configure-sanitize fuzz-build fuzz test-sanitize configure-tsan test-tsan soak bench \
	bench-distributed accuracy accuracy-study accuracy-study-only release-build test-debian13 test-deploy check-cuda-build

all: build

deps:
	@bash deploy/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DFACET_FUZZ_BUILD_DIR=$(CURDIR)/$(SANITIZE_DIR) $(CMAKE_FLAGS)

build: configure
	@cmake --build $(BUILD_DIR)

# The fuzz smoke run (fuzz.smoke in ctest) needs the fuzzers, which live in the sanitizer build.
test: build fuzz-build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(CTEST_JOBS)

configure-sanitize: deps
	@CC=clang CXX=clang++ cmake -S . -B $(SANITIZE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFACET_SANITIZE=ON -DFACET_FUZZ=ON $(CMAKE_FLAGS)

fuzz-build: configure-sanitize
	@cmake --build $(SANITIZE_DIR) --target facet_fuzz_image facet_fuzz_request

# Each fuzzer for FUZZ_SECONDS from the seed corpus; new inputs collect in $(SANITIZE_DIR)/fuzz-corpus.
fuzz: fuzz-build
	@bash tests/fuzz/run_fuzzers.sh $(SANITIZE_DIR) $(FUZZ_SECONDS)

# The unit and integration tests, every library instrumented with ASan and UBSan.
test-sanitize: configure-sanitize
	@cmake --build $(SANITIZE_DIR)
	@cd $(SANITIZE_DIR) && ASAN_OPTIONS=$(ASAN_OPTIONS_TESTS) UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/sanitize/lsan.supp ctest --output-on-failure -j $(CTEST_JOBS)

# The concurrent code under ThreadSanitizer (clang): the dynamic batcher, the model registry's hot swap under load,
# the replica follower, the job manager and its worker supervision, the data loader. LibTorch, OpenCV and gRPC's
# own libraries are not instrumented: tests/sanitize/tsan.supp says which of their frames are set aside, and why.
TSAN_DIR ?= build-tsan
TSAN_TESTS ?= ^(DynamicBatcher|LoaderTest|ModelFollower|PredictReplicas|SuperviseWorkers|ServerRestart)\.|^ServerTest\.(AJobRuns|Watch|Cancel|ListJobs|Activate)
configure-tsan: deps
	@CC=clang CXX=clang++ cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFACET_TSAN=ON \
	  $(CMAKE_FLAGS)

test-tsan: configure-tsan
	@cmake --build $(TSAN_DIR) --target facet_core_tests facet_server_tests
	@cd $(TSAN_DIR) && TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 \
	  suppressions=$(CURDIR)/tests/sanitize/tsan.supp" ctest --output-on-failure -j 1 -R '$(TSAN_TESTS)'

# Speed beside the Python reference: prints a table, writes docs/benchmarks.md (+ .json, + a PNG plot).
release-build: deps
	@cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DFACET_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	@cmake --build $(RELEASE_DIR) --target facet-bench facet-server facetctl

bench: release-build
	@/usr/bin/python3 tests/bench/run_bench.py --build $(RELEASE_DIR)

# Only the data-parallel section (1 vs 2 processes): a few minutes, the rest of docs/benchmarks.json is kept.
bench-distributed: release-build
	@/usr/bin/python3 tests/bench/run_bench.py --build $(RELEASE_DIR) --only distributed

# Accuracy on real faces beside the Python reference: facet trains for ACCURACY_MINUTES, the reference for the
# wall time facet took (tests/accuracy/run_accuracy.py); docs/accuracy.md.
ACCURACY_MINUTES ?= 45
accuracy: release-build
	@/usr/bin/python3 tests/accuracy/run_accuracy.py --build $(RELEASE_DIR) --minutes $(ACCURACY_MINUTES)

# The same, plus one facet run per loss weighting (STUDY_MINUTES each) for the weighting table.
STUDY_MINUTES ?= $(ACCURACY_MINUTES)
accuracy-study: release-build
	@/usr/bin/python3 tests/accuracy/run_accuracy.py --build $(RELEASE_DIR) --minutes $(ACCURACY_MINUTES) \
	  --study weighting --study-minutes $(STUDY_MINUTES)

# Only the weighting study, STUDY_EPOCHS a weighting (8: about 10 minutes each here), in place of the one in
# docs/accuracy.json; the main run and the reference stay.
STUDY_EPOCHS ?= 8
accuracy-study-only: release-build
	@/usr/bin/python3 tests/accuracy/run_accuracy.py --build $(RELEASE_DIR) --study-only --study-epochs $(STUDY_EPOCHS)

# Concurrent Predict clients with real faces, training, model swaps and malformed requests (SOAK_SECONDS).
SOAK_SECONDS ?= 300
soak: build
	@/usr/bin/python3 tests/soak/soak.py --build $(BUILD_DIR) --seconds $(SOAK_SECONDS)

# The whole of `make test` on Debian 13 (trixie: LibTorch 2.6, gcc 14, clang 19) in a chroot made from Debian's
# packages alone (tests/debian13/chroot.sh; made on first use, kept in DEBIAN13_ROOT). Not part of `make test`.
DEBIAN13_ROOT ?= /var/tmp/facet-debian13
test-debian13:
	@bash tests/debian13/chroot.sh $(DEBIAN13_ROOT) \
	  'make test BUILD_DIR=build-debian13 SANITIZE_DIR=build-debian13-sanitize CMAKE_FLAGS="$(CMAKE_FLAGS)"'

# facet-server and the core tests compiled and linked against Debian 13's CUDA LibTorch with NCCL, in a chroot of its
# own (CUDA LibTorch and the CPU one do not install side by side); no GPU or cuDNN needed. Not in `make test`.
DEBIAN13_CUDA_ROOT ?= /var/tmp/facet-debian13-cuda
check-cuda-build:
	@bash tests/debian13/chroot.sh $(DEBIAN13_CUDA_ROOT) 'bash tests/debian13/cuda_build_check.sh build-debian13-cuda'

# The real images and the real docker-compose.yml, driven from the host: build, up, train through a restart and a
# SIGKILL, predict, metrics, down (tests/deploy/container_test.py). Starts Docker only if none runs. Not in `make test`.
# DEPLOY_TEST_FLAGS: e.g. --cold (measure a build from nothing), --json FILE, --keep (container_test.py --help).
DEPLOY_TEST_FLAGS ?=
test-deploy: deps
	@/usr/bin/python3 tests/deploy/container_test.py $(DEPLOY_TEST_FLAGS)

demo: build
	@bash deploy/demo.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(SANITIZE_DIR) $(RELEASE_DIR)

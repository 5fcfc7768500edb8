# facet: the two commands a newcomer needs are `make demo` and `make test` (see README.md).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
CTEST_JOBS ?= 2

# ccache must tolerate precompiled headers, or every file misses the cache.
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime
# Relative paths in the cache key, so that another checkout of the same commit (CI's clean clone) hits the cache.
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: all deps configure build test demo clean

all: build

deps:
	@bash deploy/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	@cmake --build $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(CTEST_JOBS)

demo: build
	@bash deploy/demo.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)

# Thin wrapper over CMake. On a fresh Debian 12 machine:
#   make demo   installs deps, builds, runs the demo exchange against a live server
#   make test   installs deps, builds, runs every test: unit and integration tests, then the
#               same suite under ASan+UBSan and under TSan, then each fuzzer for 60 s
# Quicker loops while developing: `make check` (unit tests only), `make test-asan`,
# `make test-tsan`, `make fuzz FUZZ_SECONDS=10`, `make fuzz-long`, `make bench`,
# `make package` (.deb), `make install PREFIX=...`.
BUILD ?= build
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
FUZZ_LONG_RUNS ?= 10000000
CMAKE_FLAGS ?=

.PHONY: deps configure build demo check test test-asan test-tsan fuzz fuzz-long bench package install clean

deps:
	scripts/install-deps

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	scripts/demo $(BUILD)/bin

check: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test: check test-asan test-tsan fuzz

test-asan: deps
	scripts/test-sanitized build-asan address,undefined $(JOBS)

test-tsan: deps
	scripts/test-sanitized build-tsan thread $(JOBS)

fuzz: deps
	scripts/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Each fuzzer for 10 M executions (not part of `make test`; see docs/FUZZING.md for its time).
fuzz-long: deps
	scripts/fuzz --runs $(FUZZ_LONG_RUNS) $(FUZZ_TARGETS)

bench:
	bench/run.sh

# A .deb of the tools, headers and libraries (CPack), written to $(BUILD)/.
package: build
	cd $(BUILD) && cpack -G DEB

# Installs into PREFIX (default /usr/local).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz build-release

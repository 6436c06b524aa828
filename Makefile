# Front door: `make test`, `make demo`, `make bench`. Each installs its own dependencies.
# Sanitizers and fuzzing (docs/reliability.md): `make test SANITIZE=address,undefined`,
# `make test-sanitize` (unit tests only), `make tsan`, `make fuzz FUZZ_SECONDS=N`.
# SANITIZE=address,undefined builds in build-fuzz with clang (ASan+UBSan on
# every target, as for the fuzzers): CI compiles that tree once for
# `make test SANITIZE=address,undefined`, `make fuzz` and `make test-sanitize`.
# Any other list (thread, address, ...) builds with the default compiler.
SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD_DIR ?= build
else ifeq "$(SANITIZE)" "address,undefined"
BUILD_DIR ?= build-fuzz
else ifeq ($(SANITIZE),thread)
BUILD_DIR ?= build-tsan
else
BUILD_DIR ?= build-asan
endif
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
ASHIATO_WERROR ?= OFF

DEB_PACKAGES := g++ cmake make pkg-config libcurl4-openssl-dev nlohmann-json3-dev libspdlog-dev \
  libfmt-dev libgtest-dev libgmock-dev libmicrohttpd-dev libyaml-cpp-dev libcli11-dev \
  prometheus-cpp-dev zlib1g-dev libsqlite3-dev sqlite3 libssl-dev libmbedtls-dev libbenchmark-dev libsimdjson-dev \
  openssl curl jq

# clang's libFuzzer and sanitizer runtimes, for `make fuzz` only.
FUZZ_PACKAGES := clang libclang-rt-dev

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Sanitizer runtime options: every finding fails the test, with a stack.
SANITIZER_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:history_size=4

.PHONY: deps configure build test demo bench chaos clean format fuzz fuzz-deps test-sanitize tsan \
  images test-images images-deps monitoring-deps agent-static agent-static-deps test-agent-static

# $(call apt_install,PACKAGES): installs those of PACKAGES that are missing.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,$(DEB_PACKAGES))
	@command -v kubectl >/dev/null || echo "note: kubectl not found; kubectl-driven tests will be skipped"

ifeq "$(SANITIZE)" "address,undefined"
configure: fuzz-deps
	$(FUZZ_CONFIGURE)
else
configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DASHIATO_WERROR=$(ASHIATO_WERROR) \
	  -DASHIATO_SANITIZE=$(SANITIZE)
endif

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && $(SANITIZER_ENV) ctest --output-on-failure -j $(JOBS) --timeout 300

# The unit tests and the fuzz corpora (not the process-spawning e2e tests)
# under ASan+UBSan, built by clang in build-fuzz, whose objects `make fuzz`
# links too: meant for CI next to `make fuzz` (docs/reliability.md), so the
# sanitized tree compiles once. Warnings are gcc's business (`make test`),
# hence no -Werror.
SANITIZE_UNIT_TESTS := common_test common_kube_test agent_test pusher_test aggregator_test \
  cm_test kubesim_unit_test
FUZZ_CONFIGURE := cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DASHIATO_FUZZ=ON -DASHIATO_WERROR=OFF -DASHIATO_BENCH=OFF
test-sanitize: fuzz-deps
	$(FUZZ_CONFIGURE)
	cmake --build build-fuzz -j $(JOBS) --target $(SANITIZE_UNIT_TESTS) fuzz_targets
	$(SANITIZER_ENV) bash tests/run_test_binaries.sh build-fuzz $(JOBS) $(SANITIZE_UNIT_TESTS)
	cd build-fuzz && $(SANITIZER_ENV) ctest --output-on-failure -j $(JOBS) -L fuzz

# ThreadSanitizer over the threaded parts: the pusher, the agent, the HTTP
# server with suspended streams, the aggregator service and store, the
# ConfigMap writer; whole test binaries, one at a time.
TSAN_TESTS := pusher_test agent_test common_test aggregator_test cm_test
tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DASHIATO_WERROR=$(ASHIATO_WERROR) \
	  -DASHIATO_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS) --target $(TSAN_TESTS)
	$(SANITIZER_ENV) bash tests/run_test_binaries.sh build-tsan 1 $(TSAN_TESTS)

# libFuzzer targets (tests/fuzz) built with clang in build-fuzz, each run for
# FUZZ_SECONDS; FUZZ_TARGETS="report service" picks some.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz-deps: deps
	$(call apt_install,$(FUZZ_PACKAGES))

fuzz: fuzz-deps
	$(FUZZ_CONFIGURE)
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	bash tests/fuzz/run_fuzz.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

demo: build
	bash tests/demo/run_demo.sh $(BUILD_DIR)

BENCH_TARGETS := kubesim ashiato-agent ashiato-aggregator agent_bench ingest_bench api_cost_bench \
  cm_bench codec_bench store_bench state_mem_bench

bench: deps
	cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DASHIATO_WERROR=$(ASHIATO_WERROR)
	cmake --build build/release -j $(JOBS) --target $(BENCH_TARGETS)
	bash tests/bench/run_bench.sh build/release

# The chaos soak (docs/reliability.md): kubesim, the aggregator and 20 agents
# under a schedule of faults for CHAOS_SECONDS (default 900), checked against
# the truth of every change made. `make test` runs a 100 s variant.
CHAOS_SECONDS ?= 900
chaos: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target chaos_soak
	$(BUILD_DIR)/bin/chaos_soak --seconds $(CHAOS_SECONDS) --nodes 20 --rate 14

# A statically linked ashiato-agent (docs/benchmarks.md, "Agent memory"), the binary
# Dockerfile.agent ships: libcurl (HTTP(S), OpenSSL, zlib), libmicrohttpd (no HTTPS)
# and prometheus-cpp built from Debian's own sources (`apt-get source`, needs deb-src
# entries) into $(STATIC_BUILD_DIR)/deps, then $(STATIC_BUILD_DIR)/bin/ashiato-agent.
# Not part of `make test` (a cold build takes ~10 min on 2 cores).
STATIC_BUILD_DIR ?= build-static
STATIC_AGENT_PACKAGES := dpkg-dev xz-utils
agent-static-deps: deps
	$(call apt_install,$(STATIC_AGENT_PACKAGES))
	bash tests/images/static_agent_deps.sh $(STATIC_BUILD_DIR)/deps $(JOBS)

# MinSizeRel (-Os): the kernel maps a static binary's code in 64 KiB windows around
# each page it runs, so RSS follows code size: 6.5 instead of 7.2 MiB with -O3, at
# the same CPU per event (docs/benchmarks.md).
agent-static: agent-static-deps
	cmake -S . -B $(STATIC_BUILD_DIR) -DCMAKE_BUILD_TYPE=MinSizeRel -DASHIATO_WERROR=$(ASHIATO_WERROR) \
	  -DASHIATO_STATIC_AGENT=ON -DASHIATO_STATIC_DEPS=$(abspath $(STATIC_BUILD_DIR))/deps
	cmake --build $(STATIC_BUILD_DIR) -j $(JOBS) --target ashiato-agent http_server_plain_test
	cd $(STATIC_BUILD_DIR) && ctest --output-on-failure -R PlainHttpServer
	bash tests/images/static_agent_tls_check.sh $(STATIC_BUILD_DIR)/bin/ashiato-agent

# Every end-to-end test (kubesim, aggregator and agents as processes) with the
# static agent in place of this tree's (ASHIATO_AGENT_BIN): the binary the image
# ships, its libcurl on mbedTLS, against the real flows. Run by .ci/run.
test-agent-static: build agent-static
	cd $(BUILD_DIR) && ASHIATO_AGENT_BIN=$(abspath $(STATIC_BUILD_DIR))/bin/ashiato-agent \
	  ctest --output-on-failure -j $(JOBS) --timeout 300 -R 'E2E\.'

# Container images (docs/install.md#images): Dockerfile.agent and
# Dockerfile.aggregator built with podman (chroot isolation, vfs storage); without a
# registry the Debian bases are built with mmdebstrap. Package lists and sizes go to
# $(BUILD_DIR)/images. Not part of `make test`: a cold build takes ~30 min on 2 cores
# (the build stage compiles everything; docs/install.md has the figures).
IMAGE_DEB_PACKAGES := podman mmdebstrap uidmap
images-deps:
	$(call apt_install,$(IMAGE_DEB_PACKAGES))

images: images-deps
	bash tests/images/build_images.sh $(BUILD_DIR)/images

# Runs each image's entrypoint in its read-only root filesystem as uid 65532 (no
# container runtime needed): the agent's --oneshot against kubesim, the aggregator's
# /healthz; see tests/images/test_images.sh.
test-images: images configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target kubesim
	bash tests/images/test_images.sh $(BUILD_DIR)/bin

# promtool, for the Monitoring* tests (skipped without it). Debian ships it in the
# prometheus package (19 MB download, 96 MB installed, and a Prometheus server service),
# too heavy for DEB_PACKAGES, which the Dockerfiles' build stage installs too.
monitoring-deps:
	$(call apt_install,prometheus)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR)

# Front door: `make test`, `make demo`, `make bench`. Each installs its own dependencies.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
ASHIATO_WERROR ?= OFF

DEB_PACKAGES := g++ cmake make pkg-config libcurl4-openssl-dev nlohmann-json3-dev libspdlog-dev \
  libfmt-dev libgtest-dev libgmock-dev libmicrohttpd-dev libyaml-cpp-dev libcli11-dev \
  prometheus-cpp-dev zlib1g-dev libsqlite3-dev sqlite3 libssl-dev libbenchmark-dev openssl curl jq

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps configure build test demo bench chaos clean format images test-images images-deps \
  monitoring-deps

# Installs the Debian packages given as $(1) that are not installed yet.
define install_missing
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
	$(call install_missing,$(DEB_PACKAGES))
	@command -v kubectl >/dev/null || echo "note: kubectl not found; kubectl-driven tests will be skipped"

configure: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DASHIATO_WERROR=$(ASHIATO_WERROR)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300

demo: build
	bash tests/demo/run_demo.sh $(BUILD_DIR)

BENCH_TARGETS := kubesim ashiato-agent ashiato-aggregator agent_bench ingest_bench api_cost_bench \
  cm_bench codec_bench store_bench

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

# Container images (docs/install.md#images): Dockerfile.agent and
# Dockerfile.aggregator built with podman (chroot isolation, vfs storage); without a
# registry the Debian bases are built with mmdebstrap. Package lists and sizes go to
# $(BUILD_DIR)/images. Not part of `make test`: a cold build takes ~30 min on 2 cores
# (the build stage compiles everything; docs/install.md has the figures).
IMAGE_DEB_PACKAGES := podman mmdebstrap uidmap
images-deps:
	$(call install_missing,$(IMAGE_DEB_PACKAGES))

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
	$(call install_missing,prometheus)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD_DIR)

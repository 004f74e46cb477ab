# evert — build, run and test. Every target installs what it needs first.
#   make run        build and start evert on its defaults
#   make test       build and run every test (what CI runs)
#   make test-asan  the tests again under AddressSanitizer + UBSan
#   make bench      micro-benchmarks of the log against the raw disk
#   make bench-peers  evert side by side with Redis, NATS, PostgreSQL, fio (bench/peers/)

SHELL := /bin/bash
BUILD_DIR ?= build
ASAN_BUILD_DIR ?= build-asan
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

# Debian packages the build and the tests need (bookworm names).
DEB_PACKAGES := build-essential cmake ninja-build ccache pkg-config \
  libfmt-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libboost-dev \
  librdkafka-dev libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev \
  libpg-query-dev librocksdb-dev libsimdjson-dev \
  python3 procps curl kcat python3-confluent-kafka python3-kafka

# What `make bench` needs beyond DEB_PACKAGES: the PostgreSQL baseline of the
# view benchmark (bench/views/pg_baseline.py).
BENCH_PACKAGES := postgresql-15 python3-psycopg2

# What `make bench-peers` needs beyond DEB_PACKAGES and BENCH_PACKAGES: the
# peers, their C clients (the load generators in bench/peers/ link them),
# fio and iperf3 for the physical limits, strace for the fsync check,
# matplotlib for the plots.
PEERS_PACKAGES := redis-server libhiredis-dev nats-server libnats-dev libpq-dev fio iperf3 strace \
  python3-matplotlib
PEERS_BUILD_DIR ?= build-peers
PEERS_ARGS ?=

.PHONY: deps build run test test-asan bench clean

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v npm >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; }
	@cd tests/clients && [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --silent

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	ninja -C $(BUILD_DIR) -j $(JOBS)

run: build
	./$(BUILD_DIR)/evert serve

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

$(ASAN_BUILD_DIR)/build.ninja:
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DEVERT_SANITIZE=ON

test-asan: deps $(ASAN_BUILD_DIR)/build.ninja
	ninja -C $(ASAN_BUILD_DIR) -j $(JOBS)
	cd $(ASAN_BUILD_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

.PHONY: bench-deps
bench-deps:
	@missing=$$(for p in $(BENCH_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

bench: build bench-deps
	./$(BUILD_DIR)/bench/log_bench --benchmark_counters_tabular=true
	./$(BUILD_DIR)/bench/decode_bench
	@mkdir -p bench/results
	./$(BUILD_DIR)/bench/view_bench --json bench/results/view_bench.json
	/usr/bin/python3 bench/views/pg_baseline.py --json bench/results/pg_baseline.json
	/usr/bin/python3 bench/views/compare.py bench/results/view_bench.json bench/results/pg_baseline.json
	/usr/bin/python3 bench/views/backfill_vs_refresh.py --view-bench ./$(BUILD_DIR)/bench/view_bench \
	  --json bench/results/backfill_vs_refresh.json

# Side-by-side run against the peers (docs/BENCHMARKS.md, "Side by side").
# PEERS_ARGS=--quick for a smoke run of about 2 minutes.
.PHONY: bench-peers-deps bench-peers
bench-peers-deps: deps bench-deps
	@missing=$$(for p in $(PEERS_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(PEERS_BUILD_DIR)/build.ninja:
	cmake -S . -B $(PEERS_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

bench-peers: bench-peers-deps $(PEERS_BUILD_DIR)/build.ninja
	cmake $(PEERS_BUILD_DIR)  # picks up hiredis/libnats installed since the first configure
	ninja -C $(PEERS_BUILD_DIR) -j $(JOBS) evert view_bench redis_bench nats_bench agg_bench
	/usr/bin/python3 bench/peers/run.py --build-dir $(PEERS_BUILD_DIR) $(PEERS_ARGS)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR)

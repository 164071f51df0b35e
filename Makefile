# Sluice — a thin wrapper over CMake. The two quick-start commands:
#   make run    install what is missing, build, start a single-node broker
#   make test   install what is missing, build, run every test (incl. ASan+UBSan)
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)
CONFIG     ?= deploy/config/single-node.properties

.PHONY: all deps configure run test test-unit test-asan test-fuzz bench-micro codec bench-compare bench-cluster clean

all: deps configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@bash deploy/setup.sh

configure:
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) --preset release >/dev/null

run: all
	@mkdir -p data
	exec ./$(BUILD)/sluice --config $(CONFIG)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-fuzz

test-unit: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

test-asan: deps
	@test -f $(ASAN_BUILD)/CMakeCache.txt || cmake -S . -B $(ASAN_BUILD) --preset asan >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) -L unit

# libFuzzer targets (tests/fuzz/): clang, ASan+UBSan, about FUZZ_SECONDS in
# total across the targets, failing on any crash.
test-fuzz: deps
	@test -f $(FUZZ_BUILD)/CMakeCache.txt || cmake -S . -B $(FUZZ_BUILD) --preset fuzz >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Regenerate the Kafka codec (net/kafka_codec*) from the schemas in ../shared.
codec:
	python3 tools/gen_kafka_codec.py --schemas ../shared/kafka-protocol --out net/

bench-micro: all
	@mkdir -p $(BUILD)/bench
	./$(BUILD)/bench/sluice-micro --benchmark_out=$(BUILD)/bench/micro.json \
		--benchmark_out_format=json

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# Sluice vs NATS JetStream vs Redis Streams vs this machine's limits
# (bench/compare.sh; results.json, results.md, latency.png).
bench-compare: all
	bash bench/compare.sh --out $(BUILD)/bench/compare

# 3-broker RF=3 acks=all vs single-node acks=1 in one run (bench/cluster_compare.sh;
# bench/results/<date>/cluster.md). BENCH_ARGS="--quick" for a smoke run.
bench-cluster: all
	bash bench/cluster_compare.sh --build $(BUILD) $(BENCH_ARGS)

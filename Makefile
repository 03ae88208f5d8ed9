# fetchrelay: the two commands a newcomer needs are `make run` and `make test`.
BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
TSAN_BUILD  ?= build-tsan
FUZZ_S      ?= 60
JOBS        ?= 2
CONFIG      ?= examples/fetchrelay.yaml
BUILD_TYPE  ?= RelWithDebInfo
CMAKE_FLAGS ?=
# Unity build (each target's sources compiled in batches): a cold build ~⅓ faster. A tree keeps the
# setting it was configured with; UNITY=OFF for a tree rebuilt file by file while editing.
UNITY       ?= ON

.PHONY: all deps build test test-sanitize test-tsan run clean format bench-client bench fuzz

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DFETCHRELAY_UNITY=$(UNITY) $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 300

$(ASAN_BUILD)/build.ninja: | deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFETCHRELAY_SANITIZE=ON -DFETCHRELAY_UNITY=$(UNITY) $(CMAKE_FLAGS)

test-sanitize: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	@echo "test-sanitize: ASan+UBSan build; tests labelled 'perf' (memory/speed assertions) and 'browser' (the console in Chromium) are left out"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) --timeout 600 -LE "perf|browser"

# ThreadSanitizer: the actor, HTTP and store test binaries (ctest label tsan) and a planted race
# the run must catch. CAF is rebuilt with TSan from Debian's source of the same version
# (scripts/build-caf-tsan.sh, once, into $(TSAN_BUILD)/caf): Debian's uninstrumented libcaf hides
# its mailbox's synchronisation from TSan. Reports that are still not ours are named in
# tests/tsan/suppressions.txt, each with why.
TSAN_CAF     = $(TSAN_BUILD)/caf
TSAN_TARGETS = actors_test http_test persistence_test tsan_planted_race
$(TSAN_CAF)/.caf-0.17.6-tsan: | deps
	scripts/build-caf-tsan.sh $(TSAN_CAF)

$(TSAN_BUILD)/build.ninja: | deps $(TSAN_CAF)/.caf-0.17.6-tsan
	cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFETCHRELAY_TSAN=ON -DFETCHRELAY_UNITY=$(UNITY) \
	  -DCMAKE_PREFIX_PATH=$(CURDIR)/$(TSAN_CAF) $(CMAKE_FLAGS)

test-tsan: deps $(TSAN_BUILD)/build.ninja
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_TARGETS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan/suppressions.txt" \
	  ctest --test-dir $(TSAN_BUILD) --output-on-failure -j $(JOBS) --timeout 600 -L tsan

# libFuzzer targets (tests/fuzz), FUZZ_S seconds each from the committed corpora; clang build in
# build-fuzz/ (core and the targets only). Not while another build runs.
$(FUZZ_BUILD)/build.ninja:
	@scripts/install-deps.sh --fuzz
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFETCHRELAY_FUZZ=ON -DFETCHRELAY_TESTS=OFF

fuzz: $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_S)

# Outbound client: pooled vs new connection per request (docs/benchmarks.md). Not during a build.
bench-client: build
	$(BUILD)/bench/client_bench

# The benchmark (bench/run.sh): direct ceiling and W1, medians of 3. Not during a build.
# `make bench PEERS=1` also runs BullMQ on Redis beside fetchrelay (issue 18; bench/run.sh's header).
bench: build
	@scripts/install-deps.sh --bench
	bench/run.sh

run: build
	mkdir -p data
	$(BUILD)/fetchrelay serve --config $(CONFIG)

format:
	find actors app config core http persistence plugins tests bench -name '*.h' -o -name '*.cpp' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)

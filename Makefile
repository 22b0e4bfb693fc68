# Thin wrapper over CMake. `make` installs missing Debian packages (only when
# something is missing), then builds build/segd.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
BENCH_BUILD?= build-bench
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build build-quiet test test-unit test-asan fuzz demo bench clean

all: build

deps:
	@scripts/install-deps.sh --check >/dev/null 2>&1 || scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory

# The same build, quiet: a newcomer's first look is the demo, not 90 lines
# of make. The full log stays in $(BUILD)/build.log, and is shown on failure.
build-quiet: deps
	@mkdir -p $(BUILD)
	@echo "building segd (log: $(BUILD)/build.log) ..."
	@{ cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo && \
	   cmake --build $(BUILD) -j$(JOBS) -- --no-print-directory; } >$(BUILD)/build.log 2>&1 || \
	  { tail -n 40 $(BUILD)/build.log; echo "build failed; see $(BUILD)/build.log" >&2; exit 1; }

# Every test: unit, fuzz-corpus regression and integration on the release
# build, then the unit and corpus tests again under ASan+UBSan.
test: build test-asan
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSEG_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j$(JOBS) -L 'unit|fuzz'

# libFuzzer targets (clang). `make fuzz FUZZ_SECONDS=60` runs each one.
FUZZ_SECONDS ?= 30
fuzz: deps
	@CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSEG_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@for t in $(FUZZ_BUILD)/tests/fuzz_*; do \
	  name=$$(basename $$t); corpus=tests/fuzz/corpus/$${name#fuzz_}; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$name; \
	  echo "== $$name ($(FUZZ_SECONDS)s)"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(FUZZ_BUILD)/corpus/$$name $$corpus || exit 1; \
	done

demo: build-quiet
	@scripts/demo.sh $(BUILD)

bench: deps
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DSEG_BENCH=ON >/dev/null
	@cmake --build $(BENCH_BUILD) -j$(JOBS)
	@bench/run.py $(BENCH_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(BENCH_BUILD)

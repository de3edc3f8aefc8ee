# Thin front over CMake. `make test` and `make demo` install what they need first.
BUILD ?= build
# The CUDA build (LibTorch of the PyTorch wheel the GPU machines run, version in
# scripts/torch-version.env): its own build directory.
CUDA_BUILD ?= build-cuda
JOBS  ?= $(shell nproc)
PREFIX ?= /usr/local
CMAKE_FLAGS ?=

.PHONY: all deps deps-cuda configure build cuda test test-cuda demo bench bench-mini mini-model install clean docs

all: build

deps:
	@scripts/install-deps.sh --with-torch

deps-cuda:
	@scripts/install-deps.sh --with-cuda

$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

configure: $(BUILD)/CMakeCache.txt

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The CUDA build: fetches the pinned wheel's LibTorch (no pip) into
# ~/.cache/rass, configures and builds $(CUDA_BUILD) against it and the CUDA toolkit.
cuda: deps-cuda
	@JOBS=$(JOBS) scripts/build-cuda.sh $(CUDA_BUILD)

# Both builds' tests: Debian's LibTorch 1.13 (CPU) first, then the CUDA build
# (its CPU tests; those that need a GPU skip with 77 where there is none).
test: deps
	@$(MAKE) --no-print-directory build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory test-cuda

test-cuda: deps-cuda
	@JOBS=$(JOBS) scripts/build-cuda.sh --test $(CUDA_BUILD)

demo: deps
	@$(MAKE) --no-print-directory build
	@scripts/demo.sh $(BUILD)

# The embedded default model (models/mini) from nothing: scenes, pretraining,
# SCR, RAS (scripts/mini-model.sh; resumable, seeds fixed).
mini-model: deps
	@$(MAKE) --no-print-directory build
	@scripts/mini-model.sh $(BUILD)

# Seed 000's ablation in the mini world (hours on two cores; resumable).
bench-mini: deps
	@$(MAKE) --no-print-directory build
	@scripts/bench-mini-rass.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory build
	@cmake --build $(BUILD) -j $(JOBS) --target rass-bench-degrade rass-bench-eval-iqa rass-bench-eval-miou
	@cmake --build $(BUILD) -j $(JOBS) --target rass-bench-nn 2>/dev/null || true
	@scripts/bench-degrade.sh $(BUILD)
	@scripts/bench-eval-iqa.sh $(BUILD)
	@scripts/bench-eval-iqa-memory.sh $(BUILD)
	@scripts/bench-eval-miou.sh $(BUILD)
	@if [ -x $(BUILD)/rass-bench-nn ]; then scripts/bench-nn.sh $(BUILD); fi

# Regenerates completions/ from the CLI definitions.
docs: build
	@$(BUILD)/rass-gen-docs completions

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	@rm -rf $(BUILD) $(CUDA_BUILD)

# Thin front over CMake. `make test` and `make demo` install what they need first.
BUILD ?= build
JOBS  ?= $(shell nproc)
PREFIX ?= /usr/local
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo bench install clean docs

all: build

deps:
	@scripts/install-deps.sh --with-torch

$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null

configure: $(BUILD)/CMakeCache.txt

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: deps
	@$(MAKE) --no-print-directory build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: deps
	@$(MAKE) --no-print-directory build
	@scripts/demo.sh $(BUILD)

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
	@rm -rf $(BUILD)

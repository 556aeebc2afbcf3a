# growplate — a thin wrapper over CMake. `make` builds into build/ (the CLI is
# build/growplate); `make demo` and `make check` are the README's two commands.
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

FUZZ_SECONDS ?= 60

.PHONY: all build demo check test bench soak fuzz install clean distclean services-start services-stop

all: build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The main job: install what is missing, build, start the private servers,
# run the tour.
demo:
	scripts/bootstrap
	$(MAKE) --no-print-directory build
	scripts/services start
	eval "$$(scripts/services env)" && $(BUILD)/growplate demo
	@if [ -x $(BUILD)/examples/service ]; then echo; echo 'Next, the example HTTP service on these tenants (examples/service/README.md): eval "$$(scripts/services env)"; $(BUILD)/examples/service 8080 & curl -H "X-Tenant: trattoria-demo" http://127.0.0.1:8080/menu'; fi

# The whole test suite: plain, then ASan+UBSan, then the concurrency tests
# under TSan. Starts the private servers and stops them afterwards.
check:
	scripts/bootstrap
	scripts/check

# Just the plain suite against already-running servers (for development).
test: build
	eval "$$(scripts/services env)" && cd $(BUILD) && ctest --output-on-failure

bench:
	scripts/bootstrap
	scripts/bench

# Mixed load for SOAK_SECONDS (default 600) through a restart of each
# server; prints the clients' memory and descriptors (not with `make check`).
soak:
	scripts/bootstrap
	scripts/soak

# The libFuzzer targets (fuzz/README.md) for FUZZ_SECONDS each (default 60),
# built with clang into build-fuzz/; `make check` runs them for a few seconds.
fuzz:
	scripts/bootstrap --fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run

install: build
	cmake --install $(BUILD)

services-start:
	scripts/services start
services-stop:
	scripts/services stop

clean:
	rm -rf $(BUILD) build-asan build-tsan build-bench build-fuzz

distclean: clean
	scripts/services clean

# regcache — every command a fresh machine needs. See README.md.

CARGO ?= cargo
RELEASE_BIN := target/release/regcache
# The benchmark tree; empty: 600 MB of this project's own target/debug
# (a real cargo target dir, there once the tests are built).
BENCH_TREE ?=

.PHONY: all build demo test lint unit generated bench deps clean

all: build

build:
	$(CARGO) build --release

# The main job on the embedded default (a local OCI-layout dir, no server):
# save a sample tree, restore it elsewhere, compare, inspect.
demo: build
	scripts/demo.sh $(RELEASE_BIN)

# Installs what the tests need, then runs lint and the whole suite.
test: deps lint unit

unit:
	$(CARGO) test --all-targets --locked

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

# Rewrites the shell completions and man pages from the clap definitions.
generated:
	REGCACHE_BLESS=1 $(CARGO) test --test generated_files

# Save/restore throughput against `tar | zstd -T0` on the same tree, and
# the peak RSS of restoring a layer of 10^6 empty files.
bench: deps build
	$(CARGO) build --all-targets
	$(CARGO) build --release --example many_files
	scripts/bench.py $(RELEASE_BIN) $(BENCH_TREE) --many-files target/release/examples/many_files

# Tools the tests and benchmarks call, installed only when missing.
deps:
	@command -v $(CARGO) >/dev/null || { echo "cargo is required (rustup.rs)"; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@command -v zstd >/dev/null && command -v tar >/dev/null || scripts/apt-install.sh zstd tar
	@test -x /usr/bin/time || scripts/apt-install.sh time
	@test -x /usr/bin/docker-registry || scripts/apt-install.sh docker-registry

clean:
	$(CARGO) clean

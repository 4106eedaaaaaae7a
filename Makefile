# regcache — every command a fresh machine needs. See README.md.

CARGO ?= cargo
RELEASE_BIN := target/release/regcache
# The cargo benchmark tree; empty: 700 MB (--size) of this project's own
# target/debug (a real cargo target dir, there once the tests are built).
BENCH_TREE ?=

.PHONY: all build demo test lint unit generated fuzz bench deps clean

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

# Rewrites the shell completions and man pages from the clap definitions,
# and the key table of docs/spec.md from the spec parser's.
generated:
	REGCACHE_BLESS=1 $(CARGO) test --test it generated_files::

# The property tests (src/fuzz.rs, src/layer/tar_fuzz.rs) for as long as
# asked, every property at once, each drawing fresh random cases in rounds
# until the time is up:
#   make fuzz                        60 seconds
#   make fuzz FUZZ_SECONDS=600       ten minutes
#   make fuzz PROPTEST_CASES=50000   one round of 50000 cases per property
#                                    (with FUZZ_SECONDS too: rounds that size)
# A failure prints its shrunk input and the PROPTEST_RNG_SEED that replays
# it. The debug build is used on purpose: its overflow checks turn a silent
# wrap-around into a failure.
ifdef PROPTEST_CASES
FUZZ_SECONDS ?= 0
export PROPTEST_CASES
endif
FUZZ_SECONDS ?= 60
fuzz:
	REGCACHE_FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --lib --locked fuzz -- --test-threads=64 --nocapture

# The benchmark that judges saves, for two trees: a real cargo target dir
# and a generated node_modules-shaped one (~9000 files, 80 MB). Rows: cold
# save to a local dir and to a loopback registry vs `tar | zstd -3 -T0`,
# restores vs `zstd -d | tar -x`, copy, no-op save and 1 %-changed save
# (mode=max/min; bytes sent vs bytes changed) vs cold, a chain of five delta
# saves restored vs the same tree saved in one go, gzip vs zstd, the peak
# RSS of every regcache command, and the 10^6-empty-file restore. Ends with
# a table: ratio, absolute numbers, goal, met / not met; asserts nothing.
# BENCH_ARGS picks a part, e.g.
#   make bench BENCH_ARGS="--trees npm --rows noop,changed --runs 1"
#   make bench BENCH_ARGS="--size 100 --npm-scale 0.2"   (a quick look)
# (scripts/bench.py --help lists every row and option.)
BENCH_ARGS ?=
bench: deps build
	$(CARGO) build --all-targets
	$(CARGO) build --release --example many_files
	scripts/bench.py $(RELEASE_BIN) $(BENCH_TREE) --many-files target/release/examples/many_files $(BENCH_ARGS)

# Tools the tests and benchmarks call, installed only when missing.
deps:
	@command -v $(CARGO) >/dev/null || { echo "cargo is required (rustup.rs)"; exit 1; }
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@command -v zstd >/dev/null && command -v tar >/dev/null || scripts/apt-install.sh zstd tar
	@test -f /etc/ssl/certs/ca-certificates.crt || scripts/apt-install.sh ca-certificates
	@test -x /usr/bin/time || scripts/apt-install.sh time
	@test -x /usr/bin/docker-registry || scripts/apt-install.sh docker-registry
	@command -v skopeo >/dev/null || scripts/apt-install.sh skopeo
	@command -v strace >/dev/null || scripts/apt-install.sh strace
	@command -v node >/dev/null || scripts/apt-install.sh nodejs

clean:
	$(CARGO) clean

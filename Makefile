# mcp-edge: two commands do everything on a fresh machine.
#   make demo   build, start sample MCP servers and mcp-edge (conf/demo.toml), print what to try
#   make test   install what the tests need (system packages, pinned MCP peers), run every test,
#               then every fuzz target for 15 s (the CI smoke)
#   make fuzz   coverage-guided fuzzing, every target FUZZ_TIME seconds (default 600; nightly)

CARGO ?= cargo

.PHONY: demo test build dist deps peers bench loadtest fmt fuzz fuzz-smoke

FUZZ_TIME ?= 600

deps:
	@scripts/deps.sh

peers: deps
	@scripts/peers.sh

build: deps
	$(CARGO) build --release --bins

# The binary to install and to benchmark: release plus LTO (Cargo.toml [profile.dist]).
dist: deps
	$(CARGO) build --profile dist --bins

demo: build
	scripts/demo.sh

test: peers
	$(CARGO) build --release --bins
	$(CARGO) test --release -- --test-threads 2
	FUZZ_TIME=15 fuzz/run.sh

bench: deps
	$(CARGO) bench --benches

loadtest: build
	loadtest/run.sh

fmt:
	$(CARGO) fmt --all

# Installs the pinned cargo-fuzz when missing; the growing corpus is fuzz/corpus/ (gitignored).
fuzz: deps
	FUZZ_TIME=$(FUZZ_TIME) fuzz/run.sh

# Every target for 20 s, failing on any crash (`make test` runs each for 15 s).
fuzz-smoke: deps
	FUZZ_TIME=20 fuzz/run.sh
